/* tinyml kernels: attention one query row at a time (see tinyml/fused.h). */
#include "fused_common.h"
#include "tinyml/fc.h"

static int32_t pad4(int32_t n)
{
    return (n + 3) & ~3;
}

int32_t tinyml_fused_attention_scratch(const tinyml_attention_params *params)
{
    /* scores (int8), key row sums, value column sums and accumulators (int32). */
    return pad4(params->keys) + 4 * params->keys + 8 * params->value_depth;
}

/* BATCH_MATMUL's requantization, rounding as tinyml_batch_matmul_s8 does. */
static inline int32_t mm_requant(const tinyml_matmul_params *p, int32_t acc)
{
    acc = p->double_rounding ? tinyml_requantize_dr(acc, p->quant.multiplier, p->quant.shift)
                             : tinyml_requantize(acc, p->quant.multiplier, p->quant.shift);
    acc += p->output_offset;
    return TINYML_CLAMP(acc, p->activation.min, p->activation.max);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for exponent > 0. */
static inline int32_t sat_shift_left(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* gemmlowp RoundingHalfSum. */
static inline int32_t rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1 (Q0.31 in and out). */
static int32_t one_over_one_plus_x(int32_t a)
{
    const int32_t half_denominator = rounding_half_sum(a, INT32_MAX);
    const int32_t c48_17 = 1515870810;
    const int32_t cneg32_17 = -1010580540;
    int32_t x = c48_17 + tinyml_doubling_high_mul(half_denominator, cneg32_17);
    for (int i = 0; i < 3; ++i) {
        const int32_t hdx = tinyml_doubling_high_mul(half_denominator, x);
        const int32_t one_minus = (1 << 29) - hdx;
        x = x + sat_shift_left(tinyml_doubling_high_mul(x, one_minus), 2);
    }
    return sat_shift_left(x, 1);
}

/* TFLite reference int8 softmax of one row (output scale 1/256, zero point -128), in place. */
static tinyml_status softmax_row(const int32_t *exp_table, int8_t *x, int32_t depth)
{
    int32_t max = -128;
    for (int32_t c = 0; c < depth; ++c) {
        max = TINYML_MAX(max, (int32_t)x[c]);
    }
    int32_t sum = 0;
    for (int32_t c = 0; c < depth; ++c) {
        sum += tinyml_rounding_divide_by_pot(exp_table[max - x[c]], 12);
    }
    const int32_t headroom_plus_one = __builtin_clz((uint32_t)sum);
    const int32_t num_bits_over_unit = 12 - headroom_plus_one;
    const int32_t shifted_sum_minus_one = (int32_t)(((uint32_t)sum << headroom_plus_one) - (1u << 31));
    const int32_t scale = one_over_one_plus_x(shifted_sum_minus_one);
    const int32_t exponent = num_bits_over_unit + 31 - 8;
    if (exponent < 0 || exponent > 31) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t c = 0; c < depth; ++c) {
        const int32_t e = exp_table[max - x[c]];
        const int32_t v = tinyml_rounding_divide_by_pot(tinyml_doubling_high_mul(scale, e), exponent) - 128;
        x[c] = (int8_t)TINYML_CLAMP(v, -128, 127);
    }
    return TINYML_OK;
}

tinyml_status tinyml_fused_attention_s8(const tinyml_attention_params *p, const int8_t *q,
                                        const int8_t *k, const int8_t *v, int8_t *output, void *scratch)
{
    const int32_t nq = p->queries, nk = p->keys, dk = p->depth, dv = p->value_depth;
    if (!q || !k || !v || !output || !scratch || p->heads <= 0 || nq <= 0 || nk <= 0 || dk <= 0 || dv <= 0) {
        return TINYML_ERROR_ARG;
    }
    uint8_t *sp = (uint8_t *)scratch;
    int8_t *scores = (int8_t *)sp;
    int32_t *k_sum = (int32_t *)(void *)(sp + pad4(nk));
    int32_t *v_sum = k_sum + nk;
    int32_t *acc = v_sum + dv;
    const int32_t qlo = p->qk.lhs_offset, qro = p->qk.rhs_offset;
    const int32_t plo = p->pv.lhs_offset, pro = p->pv.rhs_offset;
    for (int32_t h = 0; h < p->heads; ++h) {
        const int8_t *kh = k + h * p->k_head_stride;
        const int8_t *vh = v + h * p->v_head_stride;
        for (int32_t j = 0; j < nk; ++j) {
            k_sum[j] = tinyml_sum_s8(kh + j * p->k_token_stride, dk);
        }
        for (int32_t d = 0; d < dv; ++d) {
            v_sum[d] = 0;
        }
        for (int32_t j = 0; j < nk; ++j) {
            const int8_t *vj = vh + j * p->v_token_stride;
            for (int32_t d = 0; d < dv; ++d) {
                v_sum[d] += vj[d];
            }
        }
        for (int32_t i = 0; i < nq; ++i) {
            const int8_t *qi = q + i * p->q_token_stride + h * p->q_head_stride;
            /* sum (q + lo)(k + ro) = sum qk + ro sum q + lo sum k + depth lo ro */
            const int32_t row_term = qro * tinyml_sum_s8(qi, dk) + dk * qlo * qro;
            for (int32_t j = 0; j < nk; ++j) {
                int32_t s = tinyml_dot_s8(qi, kh + j * p->k_token_stride, dk) + row_term + qlo * k_sum[j];
                s = mm_requant(&p->qk, s);
                scores[j] = (int8_t)(p->score_table ? p->score_table[s + 128] : s);
            }
            if (softmax_row(p->exp_table, scores, nk) != TINYML_OK) {
                return TINYML_ERROR_ARG;
            }
            /* o[d] = sum_j (p + plo)(v + pro) = sum p v + pro sum p + plo v_sum[d] + keys plo pro */
            for (int32_t d = 0; d < dv; ++d) {
                acc[d] = 0;
            }
            int32_t p_sum = 0;
            for (int32_t j = 0; j < nk; ++j) {
                const int32_t pj = scores[j];
                const int8_t *vj = vh + j * p->v_token_stride;
                p_sum += pj;
                for (int32_t d = 0; d < dv; ++d) {
                    acc[d] += pj * vj[d];
                }
            }
            const int32_t col_term = pro * p_sum + nk * plo * pro;
            int8_t *oi = output + i * p->o_token_stride + h * p->o_head_stride;
            for (int32_t d = 0; d < dv; ++d) {
                oi[d] = (int8_t)mm_requant(&p->pv, acc[d] + col_term + plo * v_sum[d]);
            }
        }
    }
    return TINYML_OK;
}
