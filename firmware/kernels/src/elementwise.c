/* tinyml kernels: int8 binary elementwise ops with broadcasting, and lookup tables. */
#include "tinyml/elementwise.h"

static inline int32_t shifted_input(int32_t x, int32_t offset, int32_t left_shift, tinyml_quant q)
{
    /* (x + offset) << left_shift stays below 2^31 for int8 x and left_shift <= 20. */
    return tinyml_requantize_double((x + offset) * (1 << left_shift), q.multiplier, q.shift);
}

static inline int8_t add_elem(const tinyml_add_params *p, int32_t x1, int32_t x2)
{
    const int32_t a = shifted_input(x1, p->input1_offset, p->left_shift, p->input1);
    const int32_t b = shifted_input(x2, p->input2_offset, p->left_shift, p->input2);
    int32_t y = tinyml_requantize_double(a + b, p->output.multiplier, p->output.shift) + p->output_offset;
    return (int8_t)TINYML_CLAMP(y, p->activation.min, p->activation.max);
}

static inline int8_t sqdiff_elem(const tinyml_add_params *p, int32_t x1, int32_t x2)
{
    const int32_t a = shifted_input(x1, p->input1_offset, p->left_shift, p->input1);
    const int32_t b = shifted_input(x2, p->input2_offset, p->left_shift, p->input2);
    const int32_t d = a - b;
    /* |d| <= 255 * 2^7, so d * d < 2^31. */
    int32_t y = tinyml_requantize_double(d * d, p->output.multiplier, p->output.shift) + p->output_offset;
    return (int8_t)TINYML_CLAMP(y, p->activation.min, p->activation.max);
}

static inline int8_t mul_elem(const tinyml_mul_params *p, int32_t x1, int32_t x2)
{
    const int32_t prod = (x1 + p->input1_offset) * (x2 + p->input2_offset);
    int32_t y = tinyml_requantize_double(prod, p->output.multiplier, p->output.shift) + p->output_offset;
    return (int8_t)TINYML_CLAMP(y, p->activation.min, p->activation.max);
}

/* Runs ELEM(params, a, b) over the broadcast geometry. The innermost
 * dimension has a specialised loop for each contiguous/broadcast pattern. */
#define TINYML_BROADCAST_LOOP(ELEM)                                                   \
    do {                                                                              \
        const int32_t *d = shape->dims;                                               \
        const int32_t *s1 = shape->stride1;                                           \
        const int32_t *s2 = shape->stride2;                                           \
        if (d[0] < 0 || d[1] < 0 || d[2] < 0 || d[3] < 0) {                           \
            return TINYML_ERROR_ARG;                                                  \
        }                                                                             \
        int8_t *out = output;                                                         \
        for (int32_t i0 = 0; i0 < d[0]; ++i0) {                                       \
            for (int32_t i1 = 0; i1 < d[1]; ++i1) {                                   \
                for (int32_t i2 = 0; i2 < d[2]; ++i2) {                               \
                    const int8_t *a = input1 + i0 * s1[0] + i1 * s1[1] + i2 * s1[2];  \
                    const int8_t *b = input2 + i0 * s2[0] + i1 * s2[1] + i2 * s2[2];  \
                    const int32_t n = d[3];                                           \
                    if (s1[3] == 1 && s2[3] == 1) {                                   \
                        for (int32_t i = 0; i < n; ++i) {                             \
                            out[i] = ELEM(params, a[i], b[i]);                        \
                        }                                                             \
                    } else if (s1[3] == 1 && s2[3] == 0) {                            \
                        const int32_t bv = b[0];                                      \
                        for (int32_t i = 0; i < n; ++i) {                             \
                            out[i] = ELEM(params, a[i], bv);                          \
                        }                                                             \
                    } else if (s1[3] == 0 && s2[3] == 1) {                            \
                        const int32_t av = a[0];                                      \
                        for (int32_t i = 0; i < n; ++i) {                             \
                            out[i] = ELEM(params, av, b[i]);                          \
                        }                                                             \
                    } else {                                                          \
                        for (int32_t i = 0; i < n; ++i) {                             \
                            out[i] = ELEM(params, a[i * s1[3]], b[i * s2[3]]);        \
                        }                                                             \
                    }                                                                 \
                    out += n;                                                         \
                }                                                                     \
            }                                                                         \
        }                                                                             \
    } while (0)

tinyml_status tinyml_add_s8(const tinyml_add_params *params, const tinyml_broadcast *shape,
                            const int8_t *input1, const int8_t *input2, int8_t *output)
{
    TINYML_BROADCAST_LOOP(add_elem);
    return TINYML_OK;
}

tinyml_status tinyml_squared_difference_s8(const tinyml_add_params *params, const tinyml_broadcast *shape,
                                           const int8_t *input1, const int8_t *input2, int8_t *output)
{
    TINYML_BROADCAST_LOOP(sqdiff_elem);
    return TINYML_OK;
}

tinyml_status tinyml_mul_s8(const tinyml_mul_params *params, const tinyml_broadcast *shape,
                            const int8_t *input1, const int8_t *input2, int8_t *output)
{
    TINYML_BROADCAST_LOOP(mul_elem);
    return TINYML_OK;
}

tinyml_status tinyml_lut_s8(const int8_t *table, int32_t size, const int8_t *input, int8_t *output)
{
    if (size < 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        output[i] = table[(int32_t)input[i] + 128];
    }
    return TINYML_OK;
}
