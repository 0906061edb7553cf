/* tinyml kernels: int8 softmax (TFLite reference fixed-point arithmetic, exp by table). */
#include "tinyml/elementwise.h"

tinyml_status tinyml_softmax_row_s8(const int32_t *exp_table, int32_t depth, const int8_t *x, int8_t *y)
{
    int32_t max = -128;
    for (int32_t c = 0; c < depth; ++c) {
        max = TINYML_MAX(max, (int32_t)x[c]);
    }
    const int32_t *et = exp_table + max;      /* et[-x] = exp_table[max - x] */
    /* Sum of exps in Q12.19. */
    int32_t sum = 0;
    for (int32_t c = 0; c < depth; ++c) {
        sum += tinyml_rounding_divide_by_pot(et[-x[c]], 12);
    }
    /* GetReciprocal(sum, 12): 1/sum = scale * 2^-num_bits_over_unit. */
    const int32_t headroom_plus_one = __builtin_clz((uint32_t)sum);
    const int32_t num_bits_over_unit = 12 - headroom_plus_one;
    const int32_t shifted_sum_minus_one = (int32_t)(((uint32_t)sum << headroom_plus_one) - (1u << 31));
    const int32_t scale = tinyml_one_over_one_plus_x(shifted_sum_minus_one);
    const int32_t exponent = num_bits_over_unit + 31 - 8;
    if (exponent < 0 || exponent > 31) {
        return TINYML_ERROR_ARG;
    }
    const int32_t mask = (int32_t)((1ll << exponent) - 1);
    const int32_t half = mask >> 1;
    for (int32_t c = 0; c < depth; ++c) {
        /* SaturatingRoundingDoublingHighMul(scale, e) for scale, e >= 0 is
         * floor((scale * e + 2^30) / 2^31); then RoundingDivideByPOT (the value
         * is non-negative, so its threshold is mask / 2). */
        const int32_t h = (int32_t)(((int64_t)scale * et[-x[c]] + (1ll << 30)) >> 31);
        const int32_t v = (h >> exponent) + ((h & mask) > half ? 1 : 0) - 128;
        y[c] = (int8_t)TINYML_CLAMP(v, -128, 127);
    }
    return TINYML_OK;
}

tinyml_status tinyml_softmax_s8(const int32_t *exp_table, int32_t rows, int32_t depth,
                                const int8_t *input, int8_t *output)
{
    if (rows < 0 || depth <= 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t r = 0; r < rows; ++r) {
        const tinyml_status st = tinyml_softmax_row_s8(exp_table, depth, input + r * depth, output + r * depth);
        if (st != TINYML_OK) {
            return st;
        }
    }
    return TINYML_OK;
}
