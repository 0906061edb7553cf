/* tinyml kernels: GATHER_ND, DYNAMIC_UPDATE_SLICE, FILL, CAST. See shape.h. */
#include "tinyml/shape.h"

#include <string.h>

tinyml_status tinyml_gather_nd(const tinyml_gather_nd_params *params, int32_t elem_bytes, const void *input,
                               const int32_t *indices, void *output)
{
    if (!params || !input || !indices || !output || elem_bytes <= 0 || params->depth < 1 || params->depth > 4
        || params->inner < 0 || params->count < 0) {
        return TINYML_ERROR_ARG;
    }
    const size_t block = (size_t)params->inner * (size_t)elem_bytes;
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    for (int32_t k = 0; k < params->count; ++k) {
        int64_t pos = 0;
        for (int32_t j = 0; j < params->depth; ++j) {
            pos += (int64_t)indices[k * params->depth + j] * params->stride[j];
        }
        if (pos < 0 || pos + params->inner > params->total) {
            return TINYML_ERROR_ARG;
        }
        memcpy(out + (size_t)k * block, in + (size_t)pos * (size_t)elem_bytes, block);
    }
    return TINYML_OK;
}

tinyml_status tinyml_dynamic_update_slice(const tinyml_update_slice_params *params, int32_t elem_bytes,
                                          const void *operand, const void *update,
                                          const int32_t *start_indices, void *output)
{
    if (!params || !operand || !update || !start_indices || !output || elem_bytes <= 0 || params->rank < 1
        || params->rank > 4) {
        return TINYML_ERROR_ARG;
    }
    const int32_t *od = params->operand_dims;
    const int32_t *ud = params->update_dims;
    int32_t start[4] = {0, 0, 0, 0};
    for (int32_t j = 0; j < params->rank; ++j) {
        const int32_t a = 4 - params->rank + j;
        const int32_t hi = od[a] - ud[a];
        const int32_t v = start_indices[j];
        start[a] = v < 0 ? 0 : (v > hi ? hi : v);
    }
    for (int32_t a = 0; a < 4; ++a) {
        if (od[a] < 1 || ud[a] < 0 || ud[a] > od[a]) {
            return TINYML_ERROR_ARG;
        }
    }
    const size_t total = (size_t)od[0] * (size_t)od[1] * (size_t)od[2] * (size_t)od[3] * (size_t)elem_bytes;
    if (operand != output) {
        memcpy(output, operand, total);
    }
    const size_t row = (size_t)ud[3] * (size_t)elem_bytes;
    const uint8_t *u = (const uint8_t *)update;
    uint8_t *out = (uint8_t *)output;
    for (int32_t i0 = 0; i0 < ud[0]; ++i0) {
        for (int32_t i1 = 0; i1 < ud[1]; ++i1) {
            for (int32_t i2 = 0; i2 < ud[2]; ++i2) {
                const size_t o = (((size_t)(start[0] + i0) * (size_t)od[1] + (size_t)(start[1] + i1))
                                  * (size_t)od[2] + (size_t)(start[2] + i2)) * (size_t)od[3] + (size_t)start[3];
                memcpy(out + o * (size_t)elem_bytes, u, row);
                u += row;
            }
        }
    }
    return TINYML_OK;
}

tinyml_status tinyml_fill(int32_t count, int32_t elem_bytes, const void *value, void *output)
{
    if (count < 0 || elem_bytes <= 0 || !value || !output) {
        return TINYML_ERROR_ARG;
    }
    uint8_t *out = (uint8_t *)output;
    for (int32_t i = 0; i < count; ++i) {
        memcpy(out + (size_t)i * (size_t)elem_bytes, value, (size_t)elem_bytes);
    }
    return TINYML_OK;
}

/* Float to integer as static_cast: truncation toward zero (the value must be in
 * range, as for the reference; out-of-range values saturate here). */
static int64_t float_to_int(float f, int64_t lo, int64_t hi)
{
    if (!(f == f)) {
        return 0;
    }
    if (f <= (float)lo) {
        return lo;
    }
    if (f >= (float)hi) {
        return hi;
    }
    return (int64_t)f;
}

tinyml_status tinyml_cast(int32_t count, int32_t in_type, const void *input, int32_t out_type, void *output)
{
    if (count < 0 || !input || !output) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t i = 0; i < count; ++i) {
        int64_t v = 0;
        float f = 0.0f;
        int is_float = 0;
        switch (in_type) {
        case TINYML_TYPE_INT8: v = ((const int8_t *)input)[i]; break;
        case TINYML_TYPE_UINT8: v = ((const uint8_t *)input)[i]; break;
        case TINYML_TYPE_INT16: v = ((const int16_t *)input)[i]; break;
        case TINYML_TYPE_INT32: v = ((const int32_t *)input)[i]; break;
        case TINYML_TYPE_BOOL: v = ((const uint8_t *)input)[i] != 0; break;
        case TINYML_TYPE_FLOAT32: f = ((const float *)input)[i]; is_float = 1; break;
        default: return TINYML_ERROR_ARG;
        }
        switch (out_type) {
        case TINYML_TYPE_INT8:
            ((int8_t *)output)[i] = (int8_t)(uint8_t)(is_float ? float_to_int(f, -128, 127) : v);
            break;
        case TINYML_TYPE_UINT8:
            ((uint8_t *)output)[i] = (uint8_t)(is_float ? float_to_int(f, 0, 255) : v);
            break;
        case TINYML_TYPE_INT16:
            ((int16_t *)output)[i] = (int16_t)(uint16_t)(is_float ? float_to_int(f, -32768, 32767) : v);
            break;
        case TINYML_TYPE_INT32:
            ((int32_t *)output)[i] = (int32_t)(uint32_t)(is_float ? float_to_int(f, INT32_MIN, INT32_MAX) : v);
            break;
        case TINYML_TYPE_BOOL:
            ((uint8_t *)output)[i] = (uint8_t)(is_float ? f != 0.0f : v != 0);
            break;
        case TINYML_TYPE_FLOAT32:
            ((float *)output)[i] = is_float ? f : (float)v;
            break;
        default:
            return TINYML_ERROR_ARG;
        }
    }
    return TINYML_OK;
}
