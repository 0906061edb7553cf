/* 16x8 elementwise ops: ADD / SUB, MUL (broadcasting), MEAN, RELU
 * family, on int16 activations (tinyml/s16.h states each contract). */
#include "tinyml/s16.h"

static inline int16_t add_elem_s16(const tinyml_add_params *p, int32_t x1, int32_t x2)
{
    /* |x + offset| < 2^16 and left_shift 15: the shifted value fits int32. */
    const int32_t a = tinyml_requantize_double((x1 + p->input1_offset) * (1 << p->left_shift),
                                               p->input1.multiplier, p->input1.shift);
    const int32_t b = tinyml_requantize_double((x2 + p->input2_offset) * (1 << p->left_shift),
                                               p->input2.multiplier, p->input2.shift);
    const int32_t y = tinyml_requantize_double(a + b, p->output.multiplier, p->output.shift) + p->output_offset;
    return (int16_t)TINYML_CLAMP(y, p->activation.min, p->activation.max);
}

static inline int16_t mul_elem_s16(const tinyml_mul_params *p, int32_t x1, int32_t x2)
{
    const int32_t prod = (x1 + p->input1_offset) * (x2 + p->input2_offset);
    const int32_t y = tinyml_requantize_double(prod, p->output.multiplier, p->output.shift) + p->output_offset;
    return (int16_t)TINYML_CLAMP(y, p->activation.min, p->activation.max);
}

static inline int16_t sqdiff_elem_s16(const tinyml_add_params *p, int32_t x1, int32_t x2)
{
    /* left_shift 0 and input rescales below 1/2: |a - b| <= 2^15, so the square fits int32. */
    const int32_t a = tinyml_requantize_double((x1 + p->input1_offset) * (1 << p->left_shift),
                                               p->input1.multiplier, p->input1.shift);
    const int32_t b = tinyml_requantize_double((x2 + p->input2_offset) * (1 << p->left_shift),
                                               p->input2.multiplier, p->input2.shift);
    const int32_t d = a - b;
    const int32_t y = tinyml_requantize_double(d * d, p->output.multiplier, p->output.shift) + p->output_offset;
    return (int16_t)TINYML_CLAMP(y, p->activation.min, p->activation.max);
}

/* ELEM(params, a, b) over the broadcast geometry (strides in elements). */
#define S16_BROADCAST_LOOP(ELEM)                                                      \
    do {                                                                              \
        const int32_t *d = shape->dims;                                               \
        const int32_t *s1 = shape->stride1;                                           \
        const int32_t *s2 = shape->stride2;                                           \
        if (d[0] < 0 || d[1] < 0 || d[2] < 0 || d[3] < 0) {                           \
            return TINYML_ERROR_ARG;                                                  \
        }                                                                             \
        int16_t *out = output;                                                        \
        for (int32_t i0 = 0; i0 < d[0]; ++i0) {                                       \
            for (int32_t i1 = 0; i1 < d[1]; ++i1) {                                   \
                for (int32_t i2 = 0; i2 < d[2]; ++i2) {                               \
                    const int16_t *a = input1 + i0 * s1[0] + i1 * s1[1] + i2 * s1[2]; \
                    const int16_t *b = input2 + i0 * s2[0] + i1 * s2[1] + i2 * s2[2]; \
                    for (int32_t i = 0; i < d[3]; ++i) {                              \
                        out[i] = ELEM(params, a[i * s1[3]], b[i * s2[3]]);            \
                    }                                                                 \
                    out += d[3];                                                      \
                }                                                                     \
            }                                                                         \
        }                                                                             \
    } while (0)

tinyml_status tinyml_add_s16(const tinyml_add_params *params, const tinyml_broadcast *shape,
                             const int16_t *input1, const int16_t *input2, int16_t *output)
{
    S16_BROADCAST_LOOP(add_elem_s16);
    return TINYML_OK;
}

tinyml_status tinyml_squared_difference_s16(const tinyml_add_params *params, const tinyml_broadcast *shape,
                                            const int16_t *input1, const int16_t *input2, int16_t *output)
{
    S16_BROADCAST_LOOP(sqdiff_elem_s16);
    return TINYML_OK;
}

tinyml_status tinyml_mul_s16(const tinyml_mul_params *params, const tinyml_broadcast *shape,
                             const int16_t *input1, const int16_t *input2, int16_t *output)
{
    S16_BROADCAST_LOOP(mul_elem_s16);
    return TINYML_OK;
}

tinyml_status tinyml_mean_s16(const tinyml_mean_params *params, const tinyml_reduce_shape *shape,
                              const int16_t *input, int16_t *output)
{
    const int32_t *d = shape->dims;
    if (params->count <= 0 || d[0] <= 0 || d[1] <= 0 || d[2] <= 0 || d[3] <= 0) {
        return TINYML_ERROR_ARG;
    }
    int32_t keep[4], red[4];
    for (int k = 0; k < 4; ++k) {
        keep[k] = shape->reduce[k] ? 1 : d[k];
        red[k] = shape->reduce[k] ? d[k] : 1;
    }
    const int32_t st2 = d[3], st1 = d[2] * d[3], st0 = d[1] * d[2] * d[3];
    int16_t *out = output;
    for (int32_t o0 = 0; o0 < keep[0]; ++o0) {
        for (int32_t o1 = 0; o1 < keep[1]; ++o1) {
            for (int32_t o2 = 0; o2 < keep[2]; ++o2) {
                for (int32_t o3 = 0; o3 < keep[3]; ++o3) {
                    const int16_t *base = input + o0 * st0 + o1 * st1 + o2 * st2 + o3;
                    int32_t sum = 0;     /* the reference sums in int32 too (count * 2^15 < 2^31: checked) */
                    for (int32_t r0 = 0; r0 < red[0]; ++r0) {
                        for (int32_t r1 = 0; r1 < red[1]; ++r1) {
                            for (int32_t r2 = 0; r2 < red[2]; ++r2) {
                                const int16_t *p = base + r0 * st0 + r1 * st1 + r2 * st2;
                                for (int32_t r3 = 0; r3 < red[3]; ++r3) {
                                    sum += p[r3];
                                }
                            }
                        }
                    }
                    const int32_t y = tinyml_requantize_double(sum - params->count * params->input_zp,
                                                               params->quant.multiplier, params->quant.shift)
                                      + params->output_zp;
                    *out++ = (int16_t)TINYML_CLAMP(y, -32768, 32767);
                }
            }
        }
    }
    return TINYML_OK;
}

tinyml_status tinyml_relu_s16(const tinyml_relu_params *params, int32_t size, const int16_t *input,
                              int16_t *output)
{
    if (!params || size < 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        const int32_t y = params->output_offset
                          + tinyml_requantize_double(input[i] + params->input_offset, params->quant.multiplier,
                                                     params->quant.shift);
        output[i] = (int16_t)TINYML_CLAMP(y, params->activation.min, params->activation.max);
    }
    return TINYML_OK;
}
