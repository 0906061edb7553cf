/* tinyml kernels: DIV (int8, broadcasting). See elementwise.h. */
#include "tinyml/elementwise.h"

/* Leading redundant sign bits of x (31 for 0). */
static int32_t leading_sign_bits(int32_t x)
{
    return x >= 0 ? tinyml_clz32((uint32_t)x) - 1 : tinyml_clz32(~(uint32_t)x) - 1;
}

/* GetReciprocal(x, 31, &shift) for x > 0. */
static int32_t reciprocal(int32_t x, int32_t *shift)
{
    const int32_t headroom_plus_one = tinyml_clz32((uint32_t)x);
    *shift = 31 - headroom_plus_one;
    const int32_t shifted_minus_one = (int32_t)(((uint32_t)x << headroom_plus_one) - (1u << 31));
    return tinyml_one_over_one_plus_x(shifted_minus_one);
}

static inline int8_t div_elem(const tinyml_div_params *p, int32_t x1, int32_t x2, int *bad)
{
    int32_t a = x1 + p->input1_offset;
    int32_t b = x2 + p->input2_offset;
    if (b == 0) {
        *bad = 1;
        return 0;
    }
    if (b < 0) {
        a = -a;
        b = -b;
    }
    int32_t rs;
    const int32_t inv = reciprocal(b, &rs);
    const int32_t h = leading_sign_bits(a);
    const int32_t q = tinyml_doubling_high_mul((int32_t)((uint32_t)a << h), inv);
#if TINYML_SINGLE_ROUNDING
    const tinyml_quant *oq = &p->output;         /* TFLite's float32 scale quotient */
#else
    const tinyml_quant *oq = &p->output_tflm;    /* tflite_micro's double-precision one */
#endif
    const int32_t y = tinyml_requantize_double(q, oq->multiplier, oq->shift - rs - h) + p->output_offset;
    return (int8_t)TINYML_CLAMP(y, p->activation.min, p->activation.max);
}

tinyml_status tinyml_div_s8(const tinyml_div_params *params, const tinyml_broadcast *shape,
                            const int8_t *input1, const int8_t *input2, int8_t *output)
{
    const int32_t *d = shape->dims;
    const int32_t *s1 = shape->stride1;
    const int32_t *s2 = shape->stride2;
    if (!params || d[0] < 0 || d[1] < 0 || d[2] < 0 || d[3] < 0) {
        return TINYML_ERROR_ARG;
    }
    int bad = 0;
    int8_t *out = output;
    for (int32_t i0 = 0; i0 < d[0]; ++i0) {
        for (int32_t i1 = 0; i1 < d[1]; ++i1) {
            for (int32_t i2 = 0; i2 < d[2]; ++i2) {
                for (int32_t i3 = 0; i3 < d[3]; ++i3) {
                    const int32_t a = i0 * s1[0] + i1 * s1[1] + i2 * s1[2] + i3 * s1[3];
                    const int32_t b = i0 * s2[0] + i1 * s2[1] + i2 * s2[2] + i3 * s2[3];
                    *out++ = div_elem(params, input1[a], input2[b], &bad);
                }
            }
        }
    }
    return bad ? TINYML_ERROR_ARG : TINYML_OK;
}
