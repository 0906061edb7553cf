/* tinyml kernels: attention one query row at a time (see tinyml/fused.h). */
#include "fused_common.h"
#include "tinyml/fc.h"

/* Scratch: the query row plus its offset as int16 (DSP operand order), one row
 * of scores, and the scores plus their offset as int16 pairs. Keys and values are
 * read in place (no transposed copies). */
int32_t tinyml_fused_attention_s8_scratch_size(const tinyml_attention_params *params)
{
    return 2 * tinyml_pad4(params->depth) + tinyml_pad4(params->keys) + 2 * tinyml_pad4(params->keys + 1);
}

/* BATCH_MATMUL's requantization, rounding as tinyml_batch_matmul_s8 does. */
static inline int32_t mm_requant(const tinyml_matmul_params *p, int32_t acc)
{
    acc = p->double_rounding ? tinyml_requantize_double_fast(acc, p->quant.multiplier, p->quant.shift)
                             : tinyml_requantize(acc, p->quant.multiplier, p->quant.shift);
    acc += p->output_offset;
    return TINYML_CLAMP(acc, p->activation.min, p->activation.max);
}

#if TINYML_DSP
/* Halfword packing, one PKHBT / PKHTB each (GCC does not emit them from C):
 * pack_lo = (low half of a, low half of b), pack_hi = (high half of a, high half of b). */
static inline int32_t pack_lo(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

static inline int32_t pack_hi(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(b), "r"(a));
    return r;
}
#endif

/* s[j] = sum_k (q[k] + qlo) * key_j[k] for j < nk; q16 holds q + qlo as int16 in
 * the order the DSP loop reads (per block of 4: k, k+2, k+1, k+3; the tail in order). */
static void qk_dots(const int16_t *q16, const int8_t *q, int32_t qlo, const int8_t *keys, int32_t stride,
                    int32_t nk, int32_t dk, int32_t *out4, int8_t *scores, const tinyml_matmul_params *qk,
                    const int8_t *score_table, int32_t row_term)
{
    int32_t j = 0;
#if TINYML_DSP
    const int32_t n4 = dk & ~3;
    const int32_t *qw = (const int32_t *)(const void *)q16;
    for (; j + 4 <= nk; j += 4) {
        const int8_t *k0 = keys + j * stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
        int32_t a0 = row_term, a1 = row_term, a2 = row_term, a3 = row_term;
        for (int32_t k = 0; k < n4; k += 4) {
            const int32_t qe = qw[k >> 1], qo = qw[(k >> 1) + 1];
            int32_t w = tinyml_read_s8x4(k0 + k);
            a0 = __smlad(__sxtb16(w), qe, a0);
            a0 = __smlad(tinyml_sxtb16_ror8(w), qo, a0);
            w = tinyml_read_s8x4(k1 + k);
            a1 = __smlad(__sxtb16(w), qe, a1);
            a1 = __smlad(tinyml_sxtb16_ror8(w), qo, a1);
            w = tinyml_read_s8x4(k2 + k);
            a2 = __smlad(__sxtb16(w), qe, a2);
            a2 = __smlad(tinyml_sxtb16_ror8(w), qo, a2);
            w = tinyml_read_s8x4(k3 + k);
            a3 = __smlad(__sxtb16(w), qe, a3);
            a3 = __smlad(tinyml_sxtb16_ror8(w), qo, a3);
        }
        for (int32_t k = n4; k < dk; ++k) {
            const int32_t qv = q16[k];
            a0 += k0[k] * qv;
            a1 += k1[k] * qv;
            a2 += k2[k] * qv;
            a3 += k3[k] * qv;
        }
        out4[0] = a0; out4[1] = a1; out4[2] = a2; out4[3] = a3;
        for (int32_t u = 0; u < 4; ++u) {
            const int32_t sv = mm_requant(qk, out4[u]);
            scores[j + u] = (int8_t)(score_table ? score_table[sv + 128] : sv);
        }
    }
#else
    (void)q16;
    (void)out4;
#endif
    for (; j < nk; ++j) {
        const int8_t *kj = keys + j * stride;
        int32_t a = row_term;
        for (int32_t k = 0; k < dk; ++k) {
            a += (q[k] + qlo) * kj[k];
        }
        const int32_t sv = mm_requant(qk, a);
        scores[j] = (int8_t)(score_table ? score_table[sv + 128] : sv);
    }
}

tinyml_status tinyml_fused_attention_s8(const tinyml_ctx *ctx, const tinyml_attention_params *p,
                                        const int8_t *q, const int8_t *k, const int8_t *v, int8_t *output)
{
    const int32_t nq = p->queries, nk = p->keys, dk = p->depth, dv = p->value_depth;
    if (!ctx || !ctx->buf || !q || !k || !v || !output || p->heads <= 0 || nq <= 0 || nk <= 0 || dk <= 0 ||
        dv <= 0) {
        return TINYML_ERROR_ARG;
    }
    TINYML_SCRATCH_CHECK(ctx, tinyml_fused_attention_s8_scratch_size(p));
    uint8_t *sp = (uint8_t *)ctx->buf;
    int16_t *q16 = (int16_t *)(void *)sp;
    sp += 2 * tinyml_pad4(dk);
    int8_t *scores = (int8_t *)sp;
    sp += tinyml_pad4(nk);
    int16_t *p16 = (int16_t *)(void *)sp;
    const tinyml_matmul_params qk = p->qk, pv = p->pv;
    const int8_t *score_table = p->score_table;
    const int32_t *exp_table = p->exp_table;
    const int32_t qlo = qk.lhs_offset, qro = qk.rhs_offset;
    const int32_t plo = pv.lhs_offset, pro = pv.rhs_offset;
    const int32_t ks = p->k_token_stride, vs = p->v_token_stride;
    int32_t out4[4];
    for (int32_t h = 0; h < p->heads; ++h) {
        const int8_t *kh = k + h * p->k_head_stride;
        const int8_t *vh = v + h * p->v_head_stride;
        for (int32_t i = 0; i < nq; ++i) {
            const int8_t *qi = q + i * p->q_token_stride + h * p->q_head_stride;
            /* s = sum (q + lo)(k + ro) = sum (q + lo) k + ro sum (q + lo) */
            int32_t q_sum = 0;
            for (int32_t c = 0; c < dk; ++c) {
                q_sum += qi[c] + qlo;
            }
#if TINYML_DSP
            {
                const int32_t n4 = dk & ~3;
                for (int32_t c = 0; c < n4; c += 4) {
                    q16[c] = (int16_t)(qi[c] + qlo);
                    q16[c + 1] = (int16_t)(qi[c + 2] + qlo);
                    q16[c + 2] = (int16_t)(qi[c + 1] + qlo);
                    q16[c + 3] = (int16_t)(qi[c + 3] + qlo);
                }
                for (int32_t c = n4; c < dk; ++c) {
                    q16[c] = (int16_t)(qi[c] + qlo);
                }
            }
#endif
            qk_dots(q16, qi, qlo, kh, ks, nk, dk, out4, scores, &qk, score_table, qro * q_sum);
            if (tinyml_softmax_row_s8(exp_table, nk, scores, scores) != TINYML_OK) {
                return TINYML_ERROR_ARG;
            }
            /* o[d] = sum_j (p + plo)(v + pro) = sum_j (p + plo) v + pro sum_j (p + plo) */
            int32_t p_sum = 0;
            for (int32_t j = 0; j < nk; ++j) {
                const int32_t pj = scores[j] + plo;
                p16[j] = (int16_t)pj;
                p_sum += pj;
            }
            const int32_t col_term = pro * p_sum;
            int8_t *oi = output + i * p->o_token_stride + h * p->o_head_stride;
            int32_t d = 0;
#if TINYML_DSP
            const int32_t *pw = (const int32_t *)(const void *)p16;
            const int32_t half = nk >> 1;
            for (; d + 4 <= dv; d += 4) {
                int32_t a0 = col_term, a1 = col_term, a2 = col_term, a3 = col_term;
                const int8_t *vp = vh + d;
                for (int32_t jj = 0; jj < half; ++jj) {
                    /* pw[jj] = (p[2jj] + plo, p[2jj+1] + plo); pair up the same
                     * column of value rows 2jj and 2jj+1. */
                    const int32_t pj = pw[jj];
                    const int32_t v0 = tinyml_read_s8x4(vp), v1 = tinyml_read_s8x4(vp + vs);
                    vp += 2 * vs;
                    const int32_t e0 = __sxtb16(v0), e1 = __sxtb16(v1);
                    const int32_t o0 = tinyml_sxtb16_ror8(v0), o1 = tinyml_sxtb16_ror8(v1);
                    a0 = __smlad(pack_lo(e0, e1), pj, a0);
                    a2 = __smlad(pack_hi(e0, e1), pj, a2);
                    a1 = __smlad(pack_lo(o0, o1), pj, a1);
                    a3 = __smlad(pack_hi(o0, o1), pj, a3);
                }
                if (nk & 1) {
                    const int32_t pl = p16[nk - 1];
                    a0 += pl * vp[0];
                    a1 += pl * vp[1];
                    a2 += pl * vp[2];
                    a3 += pl * vp[3];
                }
                oi[d] = (int8_t)mm_requant(&pv, a0);
                oi[d + 1] = (int8_t)mm_requant(&pv, a1);
                oi[d + 2] = (int8_t)mm_requant(&pv, a2);
                oi[d + 3] = (int8_t)mm_requant(&pv, a3);
            }
#endif
            for (; d < dv; ++d) {
                int32_t a = col_term;
                for (int32_t j = 0; j < nk; ++j) {
                    a += p16[j] * vh[j * vs + d];
                }
                oi[d] = (int8_t)mm_requant(&pv, a);
            }
        }
    }
    return TINYML_OK;
}
