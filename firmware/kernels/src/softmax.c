/* tinyml kernels: int8 softmax (TFLite reference fixed-point arithmetic, exp by table). */
#include "tinyml/elementwise.h"

tinyml_status tinyml_softmax_row_s8(const int32_t *exp_table, int32_t depth, const int8_t *x, int8_t *y)
{
    int32_t max = -128;
    for (int32_t c = 0; c < depth; ++c) {
        max = TINYML_MAX(max, (int32_t)x[c]);
    }
    const int32_t *et = exp_table + max;      /* et[-x] = exp_table[max - x] */
    /* Sum of exps in Q12.19. Table entries are exps in Q0.31, never negative,
     * so RoundingDivideByPOT(e, 12) = (e + 2^11) >> 12 (unsigned: no overflow). */
    int32_t sum = 0;
    for (int32_t c = 0; c < depth; ++c) {
        sum += (int32_t)(((uint32_t)et[-x[c]] + 2048u) >> 12);
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
    if (exponent >= 1) {
        /* For scale, e >= 0 the two steps below compose into one floor division:
         * RoundingDivideByPOT(floor((scale e + 2^30) / 2^31), x) =
         * floor((scale e + 2^30 + 2^(30+x)) / 2^(31+x)), x = exponent >= 1 (<= 31, so
         * the constant is below 2^62): one 64-bit multiply-accumulate, its high word
         * shifted right by x - 1. */
        const int64_t k = (1ll << 30) + (1ll << (30 + exponent));
        const int32_t sh = exponent - 1;
        for (int32_t c = 0; c < depth; ++c) {
            const int64_t r = k + (int64_t)scale * et[-x[c]];
            const int32_t v = ((int32_t)(r >> 32) >> sh) - 128;
            y[c] = (int8_t)(v > 127 ? 127 : v);   /* v >= -128: the product is never negative */
        }
        return TINYML_OK;
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

/* gemmlowp SaturatingRoundingMultiplyByPOT for an exponent >= 0. */
static int32_t sat_pot(int32_t x, int32_t exponent)
{
    return exponent == 0 ? x : tinyml_sat_shift_left(x, exponent);
}

static int32_t sat_add(int32_t a, int32_t b)
{
    const int64_t s = (int64_t)a + b;
    return (int32_t)(s > INT32_MAX ? INT32_MAX : (s < INT32_MIN ? INT32_MIN : s));
}

static int32_t wrap_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* ln(x) for x >= 1 in Q12.19, result in Q5.26: TFLite's
 * log_x_for_x_greater_than_or_equal_to_1<5>(FixedPoint<int32_t, 12>). x is
 * normalised two ways (by its leading zeros, and after a multiply by sqrt(1/2))
 * so the mantissa r lies near 2^-1/4; ln(r) comes from a rational polynomial in
 * q = 2 (r - 2^-1/4) and the exponent part from a multiple of ln 2, summed in
 * Q6.25 and saturated to Q5.26. Products are gemmlowp fixed-point products
 * (tinyml_doubling_high_mul), sums wrap like gemmlowp's. */
static int32_t log_q5_of_q12(int32_t x)
{
    const int32_t ln2 = 1488522236, sqrt_sqrt_half = 1805811301, sqrt_half = 1518500250;
    const int32_t alpha_n = 117049297, alpha_d = 127690142, alpha_i = 1057819769, alpha_f = 638450708;
    const int32_t quarter_q6 = 1 << 23;            /* 1/4 in Q6.25 */
    const int32_t in_bits = 12, q6_shift = 25;     /* Q6.25: 31 - 6 */
    const int32_t a_hr1 = tinyml_clz32((uint32_t)x);
    const int32_t r_a = sat_pot(tinyml_doubling_high_mul(sat_pot(x, a_hr1 - 1), sqrt_half), 1);
    const int32_t e_a = sat_add(sat_pot(in_bits - a_hr1, q6_shift), quarter_q6);
    const int32_t b_hr = tinyml_clz32((uint32_t)tinyml_doubling_high_mul(x, sqrt_half)) - 1;
    const int32_t r_b = sat_pot(x, b_hr);
    const int32_t e_b = sat_add(sat_pot(in_bits - b_hr, q6_shift), -quarter_q6);
    const int32_t r = TINYML_MIN(r_a, r_b);
    const int32_t e = TINYML_MAX(e_a, e_b);
    const int64_t ps = (int64_t)r + sqrt_sqrt_half;
    const int32_t p = (int32_t)((ps + (ps >= 0 ? 1 : -1)) / 2);    /* RoundingHalfSum */
    int32_t q = (int32_t)((uint32_t)r - (uint32_t)sqrt_sqrt_half);
    q = wrap_add(q, q);
    const int32_t sq = tinyml_doubling_high_mul(q, q);
    const int32_t num = wrap_add(tinyml_doubling_high_mul(q, r),
                                 tinyml_doubling_high_mul(tinyml_doubling_high_mul(q, sq), alpha_n));
    const int32_t inner = wrap_add(wrap_add(alpha_i, q), tinyml_doubling_high_mul(alpha_d, sq));
    const int32_t denom = wrap_add(tinyml_doubling_high_mul(p, inner), tinyml_doubling_high_mul(alpha_f, q));
    const int32_t recip = tinyml_one_over_one_plus_x(denom);
    const int32_t acc = wrap_add(tinyml_doubling_high_mul(e, ln2),
                                 tinyml_doubling_high_mul(tinyml_rounding_divide_by_pot(num, 6), recip));
    return tinyml_sat_shift_left(acc, 1);
}

tinyml_status tinyml_log_softmax_s8(const tinyml_log_softmax_params *params, int32_t rows, int32_t depth,
                                    const int8_t *input, int8_t *output)
{
    if (!params || rows < 0 || depth <= 0 || depth > 4096) {
        return TINYML_ERROR_ARG;
    }
#if TINYML_SINGLE_ROUNDING
    const int32_t *exp12 = params->exp12_single;
#else
    const int32_t *exp12 = params->exp12_double;
#endif
    const int32_t m = params->input_quant.multiplier, ls = params->input_quant.shift;
    for (int32_t row = 0; row < rows; ++row) {
        const int8_t *x = input + row * depth;
        int8_t *y = output + row * depth;
        int32_t max = -128;
        for (int32_t c = 0; c < depth; ++c) {
            max = TINYML_MAX(max, (int32_t)x[c]);
        }
        int32_t sum = 0;
        for (int32_t c = 0; c < depth; ++c) {
            sum = wrap_add(sum, exp12[max - x[c]]);
        }
        const int32_t log_sum = log_q5_of_q12(sum);
        const int32_t lowest = tinyml_requantize(wrap_add(log_sum, INT32_MIN), params->reverse_quant.multiplier,
                                                 params->reverse_quant.shift);
        const int32_t adjusted_min = TINYML_MAX(params->diff_min - 1, lowest);
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t d = (int32_t)x[c] - max;
            if (d > adjusted_min) {
                const int32_t scaled = tinyml_requantize(d, m, ls);
                const int32_t v = tinyml_rounding_divide_by_pot((int32_t)((uint32_t)scaled - (uint32_t)log_sum), 22)
                                  + 127;
                y[c] = (int8_t)TINYML_CLAMP(v, -128, 127);
            } else {
                y[c] = -128;
            }
        }
    }
    return TINYML_OK;
}
