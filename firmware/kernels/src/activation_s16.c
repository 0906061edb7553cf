/* 16x8 table activations: LOGISTIC, TANH (tinyml/s16.h states each contract). */
#include "tinyml/s16.h"

/* x on the table's 1/(3*4096) scale: (x * multiplier + round) >> shift, arithmetic shift. */
static inline int32_t sigmoid_input_s16(const tinyml_sigmoid_s16_params *p, int32_t x)
{
    const int32_t round = p->input_shift > 0 ? (int32_t)1 << (p->input_shift - 1) : 0;
    const int32_t v = x * p->input_multiplier + round;   /* |x| <= 2^15, multiplier < 2^15 */
    return v >> p->input_shift;
}

tinyml_status tinyml_logistic_s16(const tinyml_sigmoid_s16_params *params, int32_t size, const int16_t *input,
                                  int16_t *output)
{
    if (!params || !params->table || size < 0 || params->input_shift < 0 || params->input_shift > 31) {
        return TINYML_ERROR_ARG;
    }
    const uint16_t *t = params->table;
    for (int32_t i = 0; i < size; ++i) {
        const int32_t v = sigmoid_input_s16(params, input[i]);
        const uint32_t a = (uint32_t)(v < 0 ? -v : v);
        const uint32_t idx = a >> 9;
        uint32_t r;
        if (idx >= 255u) {
            r = (uint32_t)0x7FFF << 10;
        } else {
            const uint32_t lo = t[idx], hi = t[idx + 1];
            r = (lo << 9) + (a & 0x1FFu) * (hi - lo);
        }
        r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
        output[i] = (int16_t)(r >> 10);
    }
    return TINYML_OK;
}

tinyml_status tinyml_tanh_s16(const tinyml_sigmoid_s16_params *params, int32_t size, const int16_t *input,
                              int16_t *output)
{
    if (!params || !params->table || size < 0 || params->input_shift < 0 || params->input_shift > 31) {
        return TINYML_ERROR_ARG;
    }
    const uint16_t *t = params->table;
    for (int32_t i = 0; i < size; ++i) {
        const int32_t v = sigmoid_input_s16(params, input[i]);
        const uint32_t a = (uint32_t)(v < 0 ? -v : v);
        const uint32_t idx = a >> 8;
        int32_t r;
        if (idx >= 255u) {
            r = (int32_t)0xFFFF << 8;
        } else {
            const uint32_t lo = t[idx], hi = t[idx + 1];
            r = (int32_t)((lo << 8) + (a & 0xFFu) * (hi - lo));
        }
        r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
        output[i] = (int16_t)(r >> 8);     /* arithmetic shift: floor */
    }
    return TINYML_OK;
}

/* LUTLookup: 9-bit index, 7-bit fraction, rounded linear interpolation. */
static inline int16_t lut16_lookup(int16_t value, const int16_t *lut)
{
    const uint16_t index = (uint16_t)(256 + (value >> 7));
    const int32_t offset = value & 0x7F;
    const int16_t base = lut[index];
    const int16_t slope = (int16_t)(lut[index + 1] - lut[index]);
    return (int16_t)(base + ((slope * offset + 64) >> 7));
}

static inline int16_t clamp_s16(int32_t v)
{
    return (int16_t)TINYML_CLAMP(v, -32768, 32767);
}

tinyml_status tinyml_softmax_s16(const tinyml_softmax_s16_params *params, int32_t rows, int32_t depth,
                                 const int16_t *input, int16_t *output)
{
#if TINYML_SINGLE_ROUNDING
    const int16_t *one_over = params ? params->one_over_one_plus_x_lut_tflite : NULL;
#else
    const int16_t *one_over = params ? params->one_over_one_plus_x_lut : NULL;
#endif
    if (!params || !params->exp_lut || !one_over || rows < 0 || depth <= 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t r = 0; r < rows; ++r) {
        const int16_t *x = input + r * depth;
        int16_t *y = output + r * depth;
        int16_t max_in_row = -32768;
        for (int32_t c = 0; c < depth; ++c) {
            max_in_row = x[c] > max_in_row ? x[c] : max_in_row;
        }
        int32_t sum = 0;
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t d = tinyml_requantize_double(x[c] - max_in_row, params->input_multiplier,
                                                       params->input_shift) + 32767;
            y[c] = lut16_lookup(clamp_s16(d), params->exp_lut);
            sum += y[c];
        }
        /* sum > 0: the row maximum's exp is about 32767. */
        const int32_t headroom_plus_one = __builtin_clz((uint32_t)sum);
        const int32_t shifted = (int32_t)((((int64_t)sum << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
        const int16_t recip = lut16_lookup(clamp_s16(shifted - ((1 << 15) + (1 << 16))), one_over);
        const int32_t right = 31 - headroom_plus_one;
        const int64_t round = (int64_t)1 << (right - 1);
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t v = (int32_t)(((int64_t)y[c] * recip + round) >> right);
            y[c] = (int16_t)TINYML_CLAMP(v, 0, 32767);
        }
    }
    return TINYML_OK;
}

tinyml_status tinyml_lut16_s16(const int16_t *table, int32_t size, const int16_t *input, int16_t *output)
{
    if (!table || !input || !output || size < 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        output[i] = lut16_lookup(input[i], table);
    }
    return TINYML_OK;
}

tinyml_status tinyml_leaky_relu_s16(const tinyml_leaky_relu_s16_params *params, int32_t size,
                                    const int16_t *input, int16_t *output)
{
    if (!params || !input || !output || size < 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        const int32_t x = input[i];
        int32_t y;
        if (x >= 0) {
            y = tinyml_requantize_double(x, params->identity.multiplier, params->identity.shift);
        } else {
            y = tinyml_requantize_double(x, params->alpha.multiplier, params->alpha.shift);
            y = params->alpha_negative ? -y : y;
        }
        output[i] = clamp_s16(y);
    }
    return TINYML_OK;
}

tinyml_status tinyml_abs_s16(const tinyml_quant *quant, int32_t size, const int16_t *input, int16_t *output)
{
    if (!input || !output || size < 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        const int32_t v = input[i] < 0 ? -(int32_t)input[i] : input[i];
        output[i] = clamp_s16(quant ? tinyml_requantize_double(v, quant->multiplier, quant->shift) : v);
    }
    return TINYML_OK;
}
