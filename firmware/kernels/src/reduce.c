/* tinyml kernels: int8 MEAN / SUM, REDUCE_MAX / REDUCE_MIN over any set of axes; ARG_MAX / ARG_MIN. */
#include "tinyml/reduce.h"
#include "tinyml/elementwise.h"

#include <string.h>

static inline int8_t finish_mean(const tinyml_mean_params *p, int32_t sum)
{
    const int32_t y = tinyml_requantize_double(sum - p->count * p->input_zp, p->quant.multiplier, p->quant.shift);
    return tinyml_sat_s8(y + p->output_zp);
}

tinyml_status tinyml_mean_s8(const tinyml_mean_params *params, const tinyml_reduce_shape *shape,
                             const int8_t *input, int8_t *output)
{
    const int32_t *d = shape->dims;
    if (params->count <= 0 || d[0] <= 0 || d[1] <= 0 || d[2] <= 0 || d[3] <= 0) {
        return TINYML_ERROR_ARG;
    }
    /* Kept extents (outer loops) and reduced extents (inner loops). */
    int32_t keep[4], red[4];
    for (int k = 0; k < 4; ++k) {
        keep[k] = shape->reduce[k] ? 1 : d[k];
        red[k] = shape->reduce[k] ? d[k] : 1;
    }
    const int32_t st2 = d[3], st1 = d[2] * d[3], st0 = d[1] * d[2] * d[3];
    int8_t *out = output;
    for (int32_t o0 = 0; o0 < keep[0]; ++o0) {
        for (int32_t o1 = 0; o1 < keep[1]; ++o1) {
            for (int32_t o2 = 0; o2 < keep[2]; ++o2) {
                for (int32_t o3 = 0; o3 < keep[3]; ++o3) {
                    const int8_t *base = input + o0 * st0 + o1 * st1 + o2 * st2 + o3;
                    int32_t sum = 0;
                    for (int32_t r0 = 0; r0 < red[0]; ++r0) {
                        for (int32_t r1 = 0; r1 < red[1]; ++r1) {
                            for (int32_t r2 = 0; r2 < red[2]; ++r2) {
                                const int8_t *p = base + r0 * st0 + r1 * st1 + r2 * st2;
                                if (red[3] > 1) {
                                    for (int32_t r3 = 0; r3 < red[3]; ++r3) {
                                        sum += p[r3];
                                    }
                                } else {
                                    sum += p[0];
                                }
                            }
                        }
                    }
                    *out++ = finish_mean(params, sum);
                }
            }
        }
    }
    return TINYML_OK;
}

/* REDUCE_MAX (want_max = 1) / REDUCE_MIN (0): same traversal as tinyml_mean_s8. */
static tinyml_status reduce_extreme(const tinyml_reduce_shape *shape, const int8_t *input, int8_t *output,
                                    int want_max)
{
    const int32_t *d = shape->dims;
    if (d[0] <= 0 || d[1] <= 0 || d[2] <= 0 || d[3] <= 0) {
        return TINYML_ERROR_ARG;
    }
    int32_t keep[4], red[4];
    for (int k = 0; k < 4; ++k) {
        keep[k] = shape->reduce[k] ? 1 : d[k];
        red[k] = shape->reduce[k] ? d[k] : 1;
    }
    const int32_t st2 = d[3], st1 = d[2] * d[3], st0 = d[1] * d[2] * d[3];
    int8_t *out = output;
    for (int32_t o0 = 0; o0 < keep[0]; ++o0) {
        for (int32_t o1 = 0; o1 < keep[1]; ++o1) {
            for (int32_t o2 = 0; o2 < keep[2]; ++o2) {
                for (int32_t o3 = 0; o3 < keep[3]; ++o3) {
                    const int8_t *base = input + o0 * st0 + o1 * st1 + o2 * st2 + o3;
                    int32_t acc = want_max ? -128 : 127;
                    for (int32_t r0 = 0; r0 < red[0]; ++r0) {
                        for (int32_t r1 = 0; r1 < red[1]; ++r1) {
                            for (int32_t r2 = 0; r2 < red[2]; ++r2) {
                                const int8_t *p = base + r0 * st0 + r1 * st1 + r2 * st2;
                                for (int32_t r3 = 0; r3 < red[3]; ++r3) {
                                    const int32_t v = p[r3];
                                    acc = want_max ? (v > acc ? v : acc) : (v < acc ? v : acc);
                                }
                            }
                        }
                    }
                    *out++ = (int8_t)acc;
                }
            }
        }
    }
    return TINYML_OK;
}

tinyml_status tinyml_reduce_max_s8(const tinyml_reduce_shape *shape, const int8_t *input, int8_t *output)
{
    return reduce_extreme(shape, input, output, 1);
}

tinyml_status tinyml_reduce_min_s8(const tinyml_reduce_shape *shape, const int8_t *input, int8_t *output)
{
    return reduce_extreme(shape, input, output, 0);
}

tinyml_status tinyml_arg_max_min_s8(const tinyml_arg_params *params, const int8_t *input, void *output)
{
    if (!params || !input || !output || params->axis_size <= 0 || params->outer < 0 || params->inner < 0 ||
        (params->index_bytes != 4 && params->index_bytes != 8)) {
        return TINYML_ERROR_ARG;
    }
    uint8_t *out = (uint8_t *)output;
    for (int32_t o = 0; o < params->outer; ++o) {
        const int8_t *block = input + (size_t)o * (size_t)params->axis_size * (size_t)params->inner;
        for (int32_t i = 0; i < params->inner; ++i) {
            int32_t best = block[i];
            int32_t best_k = 0;
            for (int32_t k = 1; k < params->axis_size; ++k) {
                const int32_t v = block[(size_t)k * (size_t)params->inner + (size_t)i];
                if (params->is_min ? v < best : v > best) {
                    best = v;
                    best_k = k;
                }
            }
            if (params->index_bytes == 4) {
                const int32_t idx = best_k;
                memcpy(out, &idx, 4);
            } else {
                const int64_t idx = best_k;
                memcpy(out, &idx, 8);
            }
            out += params->index_bytes;
        }
    }
    return TINYML_OK;
}
