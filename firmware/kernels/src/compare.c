/* tinyml kernels: MAXIMUM, MINIMUM, comparisons, SELECT_V2, PRELU (int8 and int16, broadcasting),
   ADD_N. See elementwise.h and s16.h. */
#include "tinyml/elementwise.h"
#include "tinyml/s16.h"

#define TINYML_FOR_BROADCAST(shape, BODY)                                                     \
    do {                                                                                      \
        const int32_t *d_ = (shape)->dims;                                                    \
        if (d_[0] < 0 || d_[1] < 0 || d_[2] < 0 || d_[3] < 0) {                               \
            return TINYML_ERROR_ARG;                                                          \
        }                                                                                     \
        int32_t o_ = 0;                                                                       \
        for (int32_t i0 = 0; i0 < d_[0]; ++i0) {                                              \
            for (int32_t i1 = 0; i1 < d_[1]; ++i1) {                                          \
                for (int32_t i2 = 0; i2 < d_[2]; ++i2) {                                      \
                    for (int32_t i3 = 0; i3 < d_[3]; ++i3, ++o_) {                            \
                        BODY                                                                  \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    } while (0)

#define TINYML_AT(s) (i0 * (s)[0] + i1 * (s)[1] + i2 * (s)[2] + i3 * (s)[3])

/* MAXIMUM / MINIMUM (TFLite maximum_minimum.cc, int8 and int16): the larger / smaller of the
   two broadcast inputs, compared and copied raw (TFLite does not rescale them). */
#define TINYML_PICK(name, type, cmp)                                                                 \
    tinyml_status tinyml_##name(const tinyml_broadcast *shape, const type *input1, const type *input2, \
                                type *output)                                                        \
    {                                                                                                \
        TINYML_FOR_BROADCAST(shape, {                                                                \
            const type a = input1[TINYML_AT(shape->stride1)];                                        \
            const type b = input2[TINYML_AT(shape->stride2)];                                        \
            output[o_] = a cmp b ? a : b;                                                            \
        });                                                                                          \
        return TINYML_OK;                                                                            \
    }

TINYML_PICK(maximum_s8, int8_t, >)

TINYML_PICK(minimum_s8, int8_t, <)

static inline int32_t cmp_scaled(int32_t x, int32_t offset, int32_t left_shift, tinyml_quant q)
{
    return tinyml_requantize_double((x + offset) * (1 << left_shift), q.multiplier, q.shift);
}

tinyml_status tinyml_compare_s8(const tinyml_compare_params *params, const tinyml_broadcast *shape,
                                const int8_t *input1, const int8_t *input2, uint8_t *output)
{
    if (!params || params->op < TINYML_CMP_EQUAL || params->op > TINYML_CMP_GREATER_EQUAL ||
        params->left_shift < 0 || params->left_shift > 16) {
        return TINYML_ERROR_ARG;
    }
    TINYML_FOR_BROADCAST(shape, {
        const int32_t a = cmp_scaled(input1[TINYML_AT(shape->stride1)], params->input1_offset,
                                     params->left_shift, params->input1);
        const int32_t b = cmp_scaled(input2[TINYML_AT(shape->stride2)], params->input2_offset,
                                     params->left_shift, params->input2);
        int r;
        switch (params->op) {
        case TINYML_CMP_EQUAL: r = a == b; break;
        case TINYML_CMP_NOT_EQUAL: r = a != b; break;
        case TINYML_CMP_LESS: r = a < b; break;
        case TINYML_CMP_LESS_EQUAL: r = a <= b; break;
        case TINYML_CMP_GREATER: r = a > b; break;
        default: r = a >= b; break;
        }
        output[o_] = (uint8_t)r;
    });
    return TINYML_OK;
}

tinyml_status tinyml_select_s8(const tinyml_broadcast3 *shape, const uint8_t *condition,
                               const int8_t *input_x, const int8_t *input_y, int8_t *output)
{
    TINYML_FOR_BROADCAST(shape, {
        output[o_] = condition[TINYML_AT(shape->stride_cond)] ? input_x[TINYML_AT(shape->stride_x)]
                                                              : input_y[TINYML_AT(shape->stride_y)];
    });
    return TINYML_OK;
}

/* PRELU (reference_ops::BroadcastPrelu4DSlow: int8 input and alpha; int16 input with int8 alpha,
   as tflite_micro's prelu.cc); |v * a| <= 2^15 * 2^8 fits int32. */
#define TINYML_PRELU(name, type, sat)                                                                  \
    tinyml_status tinyml_##name(const tinyml_prelu_params *params, const tinyml_broadcast *shape,     \
                                const type *input, const int8_t *alpha, type *output)                 \
    {                                                                                                  \
        if (!params) {                                                                                 \
            return TINYML_ERROR_ARG;                                                                   \
        }                                                                                              \
        TINYML_FOR_BROADCAST(shape, {                                                                  \
            const int32_t v = input[TINYML_AT(shape->stride1)] + params->input_offset;                 \
            int32_t y;                                                                                 \
            if (v >= 0) {                                                                              \
                y = tinyml_requantize_double(v, params->positive.multiplier, params->positive.shift);  \
            } else {                                                                                   \
                const int32_t a = alpha[TINYML_AT(shape->stride2)] + params->alpha_offset;             \
                y = tinyml_requantize_double(v * a, params->negative.multiplier,                       \
                                             params->negative.shift);                                  \
            }                                                                                          \
            output[o_] = sat(y + params->output_offset);                                               \
        });                                                                                            \
        return TINYML_OK;                                                                              \
    }

TINYML_PRELU(prelu_s8, int8_t, tinyml_sat_s8)

static inline int16_t prelu_sat_s16(int32_t x)
{
    return (int16_t)TINYML_CLAMP(x, -32768, 32767);
}

TINYML_PRELU(prelu_s16, int16_t, prelu_sat_s16)

static inline int32_t add_n_scaled(const tinyml_add_n_params *p, int32_t v)
{
    return tinyml_requantize_double((v + p->input_offset) * (1 << p->left_shift), p->input.multiplier,
                                    p->input.shift);
}

tinyml_status tinyml_add_n_s8(const tinyml_add_n_params *params, int32_t size, const int8_t *input0,
                              const int8_t *input1, const int8_t *input2, const int8_t *input3,
                              int8_t *output)
{
    const int8_t *in[4] = {input0, input1, input2, input3};
    if (!params || params->count < 2 || params->count > 4 || size < 0 || params->left_shift > 20) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t j = 0; j < params->count; ++j) {
        if (!in[j]) {
            return TINYML_ERROR_ARG;
        }
    }
    const int32_t start = add_n_scaled(params, 0);
    for (int32_t i = 0; i < size; ++i) {
        int32_t acc = start;
        for (int32_t j = 0; j < params->count; ++j) {
            acc += add_n_scaled(params, in[j][i]);
        }
        const int32_t y = tinyml_requantize_double(acc, params->output.multiplier, params->output.shift)
                          + params->output_offset;
        output[i] = (int8_t)TINYML_CLAMP(y, params->activation.min, params->activation.max);
    }
    return TINYML_OK;
}

TINYML_PICK(maximum_s16, int16_t, >)

TINYML_PICK(minimum_s16, int16_t, <)

tinyml_status tinyml_select_s16(const tinyml_broadcast3 *shape, const uint8_t *condition,
                                const int16_t *input_x, const int16_t *input_y, int16_t *output)
{
    TINYML_FOR_BROADCAST(shape, {
        output[o_] = condition[TINYML_AT(shape->stride_cond)] ? input_x[TINYML_AT(shape->stride_x)]
                                                              : input_y[TINYML_AT(shape->stride_y)];
    });
    return TINYML_OK;
}
