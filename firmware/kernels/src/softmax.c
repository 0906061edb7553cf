/* tinyml kernels: int8 softmax and log-softmax (TFLite reference fixed-point
 * arithmetic; exps from a generator table, or computed for short rows). */
#include "tinyml/elementwise.h"

/* One out-of-line doubling high multiply for the exp arithmetic below (eight
 * call sites; inlined it is ~40 B each, and speed does not matter there). */
static __attribute__((noinline)) int32_t dhm(int32_t a, int32_t b)
{
    return tinyml_doubling_high_mul(a, b);
}

/* gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl: a in
 * [-1/4, 0) in Q0.31 -> exp(a) in Q0.31. exp(-1/8) times a fourth-order
 * Taylor polynomial in x = a + 1/8; the sums wrap like gemmlowp's. */
static int32_t exp_quarter(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668, one_third = 715827883;
    const int32_t x = (int32_t)((uint32_t)a + (1u << 28));
    const int32_t x2 = dhm(x, x);
    const int32_t x3 = dhm(x2, x);
    const int32_t x4_over_4 = tinyml_rounding_divide_by_pot(dhm(x2, x2), 2);
    const int32_t cubic = dhm((int32_t)((uint32_t)x4_over_4 + (uint32_t)x3), one_third);
    const int32_t poly = tinyml_rounding_divide_by_pot((int32_t)((uint32_t)cubic + (uint32_t)x2), 1);
    return (int32_t)((uint32_t)exp_minus_one_eighth +
                     (uint32_t)dhm(exp_minus_one_eighth,
                                                        (int32_t)((uint32_t)x + (uint32_t)poly)));
}

/* gemmlowp exp_on_negative_values for Q5.26 input a <= 0 -> Q0.31: the input's
 * part modulo 1/4 through exp_quarter, then one fixed-point factor exp(-2^k)
 * (k = -2..4) per bit set in the rest. exp(0) is saturated to INT32_MAX. */
static int32_t exp_neg_q5(int32_t a)
{
    static const int32_t factor[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t one_quarter = 1 << 24;
    const int32_t a_mod = (a & (one_quarter - 1)) - one_quarter;
    int32_t r = exp_quarter(tinyml_sat_shift_left(a_mod, 5));
    const uint32_t rest = (uint32_t)a_mod - (uint32_t)a;
    for (int32_t k = 0; k < 7; ++k) {
        if (rest & (1u << (24 + k))) {
            r = dhm(r, factor[k]);
        }
    }
    return a == 0 ? INT32_MAX : r;
}

/* The exp of the difference -k (0 <= k <= 255) as the generator's table holds
 * it (codegen/ops/softmax.py softmax_exp_table): the difference rescaled into
 * Q5.26 with double rounding, 0 below diff_min. */
static __attribute__((noinline)) int32_t softmax_exp(const tinyml_softmax_params *p, int32_t k)
{
    if (-k < p->diff_min) {
        return 0;
    }
    return exp_neg_q5(tinyml_requantize_double(-k, p->input_quant.multiplier, p->input_quant.shift));
}

/* One row; the exps come from `table` (et[k] = exp of -k) or, when it is NULL,
 * from softmax_exp (one out-of-line function: its three call sites share it). */
static inline __attribute__((always_inline)) tinyml_status
softmax_row(const int32_t *table, const tinyml_softmax_params *p, int32_t depth, const int8_t *x, int8_t *y)
{
    int32_t max = -128;
    for (int32_t c = 0; c < depth; ++c) {
        max = TINYML_MAX(max, (int32_t)x[c]);
    }
#define SOFTMAX_EXP(c) (table ? table[max - x[c]] : softmax_exp(p, max - x[c]))
    /* Sum of exps in Q12.19. The exps are in Q0.31, never negative, so
     * RoundingDivideByPOT(e, 12) = (e + 2^11) >> 12 (unsigned: no overflow). */
    int32_t sum = 0;
    for (int32_t c = 0; c < depth; ++c) {
        sum += (int32_t)(((uint32_t)SOFTMAX_EXP(c) + 2048u) >> 12);
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
    /* Both the sum and the output read x before y[c] is written: in place. */
    if (exponent >= 1) {
        /* For scale, e >= 0 the two steps below compose into one floor division:
         * RoundingDivideByPOT(floor((scale e + 2^30) / 2^31), x) =
         * floor((scale e + 2^30 + 2^(30+x)) / 2^(31+x)), x = exponent >= 1 (<= 31, so
         * the constant is below 2^62): one 64-bit multiply-accumulate, its high word
         * shifted right by x - 1. */
        const int64_t k = (1ll << 30) + (1ll << (30 + exponent));
        const int32_t sh = exponent - 1;
        for (int32_t c = 0; c < depth; ++c) {
            const int64_t r = k + (int64_t)scale * SOFTMAX_EXP(c);
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
        const int32_t h = (int32_t)(((int64_t)scale * SOFTMAX_EXP(c) + (1ll << 30)) >> 31);
        const int32_t v = (h >> exponent) + ((h & mask) > half ? 1 : 0) - 128;
        y[c] = (int8_t)TINYML_CLAMP(v, -128, 127);
    }
#undef SOFTMAX_EXP
    return TINYML_OK;
}

tinyml_status tinyml_softmax_row_s8(const int32_t *exp_table, int32_t depth, const int8_t *x, int8_t *y)
{
    return softmax_row(exp_table, NULL, depth, x, y);
}

tinyml_status tinyml_softmax_s8(const int32_t *exp_table, int32_t rows, int32_t depth,
                                const int8_t *input, int8_t *output)
{
    if (!exp_table || rows < 0 || depth <= 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t r = 0; r < rows; ++r) {
        const tinyml_status st = softmax_row(exp_table, NULL, depth, input + r * depth, output + r * depth);
        if (st != TINYML_OK) {
            return st;
        }
    }
    return TINYML_OK;
}

tinyml_status tinyml_softmax_exp_s8(const tinyml_softmax_params *params, int32_t rows, int32_t depth,
                                    const int8_t *input, int8_t *output)
{
    if (!params || rows < 0 || depth <= 0) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t r = 0; r < rows; ++r) {
        const tinyml_status st = softmax_row(NULL, params, depth, input + r * depth, output + r * depth);
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
