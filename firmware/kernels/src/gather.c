/* tinyml kernels: GATHER (any element width). See shape.h. */
#include "tinyml/shape.h"

#include <string.h>

tinyml_status tinyml_gather(const tinyml_gather_params *params, int32_t elem_bytes, const void *input,
                            const int32_t *indices, void *output)
{
    if (!params || !input || !indices || !output || elem_bytes <= 0 || params->inner < 0 || params->outer < 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t k = 0; k < params->count; ++k) {
        if (indices[k] < 0 || indices[k] >= params->axis_size) {
            return TINYML_ERROR_ARG;
        }
    }
    const size_t block = (size_t)params->inner * (size_t)elem_bytes;
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    for (int32_t o = 0; o < params->outer; ++o) {
        const uint8_t *base = in + (size_t)o * (size_t)params->axis_size * block;
        for (int32_t k = 0; k < params->count; ++k) {
            memcpy(out, base + (size_t)indices[k] * block, block);
            out += block;
        }
    }
    return TINYML_OK;
}
