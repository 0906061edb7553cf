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
