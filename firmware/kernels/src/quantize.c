/* tinyml kernels: float <-> 8-bit conversions (QUANTIZE, DEQUANTIZE).
 * 8-bit -> 8-bit requantization is a table (tinyml_lut_8). No libm needed. */
#include "tinyml/activation.h"
#include "tinyml/s16.h"

tinyml_status tinyml_dequantize_s8_f32(float scale, int32_t zero_point, int32_t n, const int8_t *input,
                                       float *output)
{
    if (!input || !output || n < 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t i = 0; i < n; ++i) {
        /* (input - zp) has at most 9 significant bits, so the float product
         * is the exact product rounded once, as the reference's double
         * product cast to float. */
        output[i] = scale * (float)((int32_t)input[i] - zero_point);
    }
    return TINYML_OK;
}

/* round(x) half away from zero, then to int32, saturating; NaN -> INT32_MIN. */
static int32_t round_to_int32(float x)
{
    if (!(x > -2147483648.0f)) {        /* also catches NaN */
        return INT32_MIN;
    }
    if (x >= 2147483648.0f) {
        return INT32_MAX;
    }
    const float ax = x < 0.0f ? -x : x;
    if (ax >= 8388608.0f) {             /* 2^23: already an integer */
        return (int32_t)x;
    }
    const int32_t t = (int32_t)x;       /* toward zero; exact below 2^23 */
    const float frac = x - (float)t;    /* exact: |frac| < 1 on x's grid */
    if (frac >= 0.5f) {
        return t + 1;
    }
    if (frac <= -0.5f) {
        return t - 1;
    }
    return t;
}

static int32_t quantize_one(float x, float scale, int32_t zero_point, int32_t qmin, int32_t qmax)
{
    int32_t q = round_to_int32(x / scale);
    /* Add the zero point without int32 overflow. */
    if (q > qmax - zero_point) {
        return qmax;
    }
    if (q < qmin - zero_point) {
        return qmin;
    }
    return q + zero_point;
}

tinyml_status tinyml_quantize_f32_s8(float scale, int32_t zero_point, int32_t n, const float *input,
                                     int8_t *output)
{
    if (!input || !output || n < 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t i = 0; i < n; ++i) {
        output[i] = (int8_t)quantize_one(input[i], scale, zero_point, -128, 127);
    }
    return TINYML_OK;
}

tinyml_status tinyml_quantize_f32_u8(float scale, int32_t zero_point, int32_t n, const float *input,
                                     uint8_t *output)
{
    if (!input || !output || n < 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t i = 0; i < n; ++i) {
        output[i] = (uint8_t)quantize_one(input[i], scale, zero_point, 0, 255);
    }
    return TINYML_OK;
}

/* ---- 16x8 (tinyml/s16.h) ---- */

tinyml_status tinyml_quantize_f32_s16(float scale, int32_t zero_point, int32_t size, const float *input,
                                      int16_t *output)
{
    if (!input || !output || size < 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        output[i] = (int16_t)quantize_one(input[i], scale, zero_point, -32768, 32767);
    }
    return TINYML_OK;
}

tinyml_status tinyml_dequantize_s16_f32(float scale, int32_t zero_point, int32_t size, const int16_t *input,
                                        float *output)
{
    if (!input || !output || size < 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        /* (input - zp) has at most 17 significant bits: the float product is the
         * exact product rounded once, as the reference's double product cast to float. */
        output[i] = scale * (float)((int32_t)input[i] - zero_point);
    }
    return TINYML_OK;
}

static inline int32_t requant_one(const tinyml_requant_params *p, int32_t x)
{
    const int32_t v = x - p->input_zp;
    return (p->double_rounding ? tinyml_requantize_double(v, p->quant.multiplier, p->quant.shift)
                               : tinyml_requantize(v, p->quant.multiplier, p->quant.shift)) + p->output_zp;
}

tinyml_status tinyml_requant_s16_s8(const tinyml_requant_params *params, int32_t size, const int16_t *input,
                                    int8_t *output)
{
    if (!params || size < 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        output[i] = (int8_t)TINYML_CLAMP(requant_one(params, input[i]), -128, 127);
    }
    return TINYML_OK;
}

tinyml_status tinyml_requant_s16_s16(const tinyml_requant_params *params, int32_t size, const int16_t *input,
                                     int16_t *output)
{
    if (!params || size < 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        output[i] = (int16_t)TINYML_CLAMP(requant_one(params, input[i]), -32768, 32767);
    }
    return TINYML_OK;
}
