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

#if TINYML_DSP
/* Two query rows at a time (DSP builds): each key and value word loaded serves
 * both rows. Limits of the pair path's stack buffers; larger heads take the
 * one-row path. */
#define ATT_PAIR_MAX_DEPTH 64
#define ATT_PAIR_MAX_KEYS 64

/* requant + offset + clamp of one BATCH_MATMUL output with the rounding fixed
 * at the call site: `fast` = tinyml_requantize_bounded's preconditions hold
 * (|acc| < 2^30: at most 255 * 255 * 64 here; shift -22..-1, |offset| <= 128). */
static inline __attribute__((always_inline)) int32_t mm_requant_f(const tinyml_matmul_params *p, int32_t acc,
                                                                  const int fast)
{
    if (fast) {
        acc = tinyml_requantize_bounded(acc, p->quant.multiplier, p->quant.shift, p->output_offset);
    } else {
        acc = (p->double_rounding ? tinyml_requantize_double_fast(acc, p->quant.multiplier, p->quant.shift)
                                  : tinyml_requantize(acc, p->quant.multiplier, p->quant.shift)) + p->output_offset;
    }
    return tinyml_clamp(acc, p->activation.min, p->activation.max);
}

static inline int mm_fast(const tinyml_matmul_params *p, int32_t depth)
{
    return p->double_rounding && p->quant.multiplier >= 0 && p->quant.shift >= -22 && p->quant.shift <= -1 &&
           p->output_offset >= -128 && p->output_offset <= 128 && depth <= 64 * 256;
}

/* s0[j], s1[j]: the scores of query rows q0, q1 against every key (BATCH_MATMUL
 * adj_y, then the score table), keys two at a time (2 x 2 blocks). qw: the two
 * query rows plus qk.lhs_offset widened to int16 pairs, per block of 4 depth
 * values (q0[k], q0[k+2]), (q0[k+1], q0[k+3]), (q1[k], q1[k+2]), (q1[k+1], q1[k+3]),
 * then the dk % 4 tail values of q0 and of q1. rt0, rt1: qk.rhs_offset * sum(q + lo). */
static inline __attribute__((always_inline)) void qk_pair(const int32_t *qw, const int8_t *keys, int32_t stride,
                                                          int32_t nk, int32_t dk, int32_t rt0, int32_t rt1,
                                                          const tinyml_matmul_params *qk, const int8_t *table,
                                                          int8_t *s0, int8_t *s1, const int fast)
{
    const int32_t n4 = dk & ~3, nt = dk & 3;
    const int16_t *qt = (const int16_t *)(const void *)(qw + n4);
    for (int32_t j = 0; j < nk; j += 2) {
        const int8_t *k0 = keys + j * stride;
        const int8_t *k1 = j + 1 < nk ? k0 + stride : k0;   /* an odd last key is done twice */
        int32_t a00 = rt0, a01 = rt1, a10 = rt0, a11 = rt1;
        const int32_t *xp = qw;
        for (int32_t k = 0; k < n4; k += 4) {
            int32_t q0e, q0o, q1e, q1o;
            TINYML_LDRD(xp, 0, q0e, q0o);
            TINYML_LDRD(xp, 8, q1e, q1o);
            xp += 4;
            int32_t w = tinyml_read_s8x4(k0 + k);
            int32_t we = __sxtb16(w), wo = tinyml_sxtb16_ror8(w);
            a00 = __smlad(we, q0e, a00);
            a00 = __smlad(wo, q0o, a00);
            a01 = __smlad(we, q1e, a01);
            a01 = __smlad(wo, q1o, a01);
            w = tinyml_read_s8x4(k1 + k);
            we = __sxtb16(w);
            wo = tinyml_sxtb16_ror8(w);
            a10 = __smlad(we, q0e, a10);
            a10 = __smlad(wo, q0o, a10);
            a11 = __smlad(we, q1e, a11);
            a11 = __smlad(wo, q1o, a11);
        }
        for (int32_t t = 0; t < nt; ++t) {
            const int32_t u0 = qt[t], u1 = qt[nt + t];
            a00 += k0[n4 + t] * u0;
            a01 += k0[n4 + t] * u1;
            a10 += k1[n4 + t] * u0;
            a11 += k1[n4 + t] * u1;
        }
        int32_t v00 = mm_requant_f(qk, a00, fast), v01 = mm_requant_f(qk, a01, fast);
        if (table) {
            v00 = table[v00 + 128];
            v01 = table[v01 + 128];
        }
        s0[j] = (int8_t)v00;
        s1[j] = (int8_t)v01;
        if (j + 1 < nk) {
            int32_t v10 = mm_requant_f(qk, a10, fast), v11 = mm_requant_f(qk, a11, fast);
            if (table) {
                v10 = table[v10 + 128];
                v11 = table[v11 + 128];
            }
            s0[j + 1] = (int8_t)v10;
            s1[j + 1] = (int8_t)v11;
        }
    }
}

/* acc = {column c of p0, of p1, column c + 2 of p0, of p1} over the key pairs
 * (pw as in pv_pair), c = d + odd; odd is a compile-time constant at each call. */
static inline __attribute__((always_inline)) void pv_cols(const int32_t *pp, const int32_t *pend, const int8_t *vp,
                                                          int32_t vs, int32_t ct0, int32_t ct1, int32_t *acc,
                                                          const int odd)
{
    int32_t a0 = ct0, a1 = ct1, b0 = ct0, b1 = ct1;
    while (pp < pend) {
        int32_t p0, p1;
        TINYML_LDRD(pp, 0, p0, p1);
        pp += 2;
        int32_t e0 = tinyml_read_s8x4(vp), e1 = tinyml_read_s8x4(vp + vs);
        vp += 2 * vs;
        e0 = odd ? tinyml_sxtb16_ror8(e0) : __sxtb16(e0);
        e1 = odd ? tinyml_sxtb16_ror8(e1) : __sxtb16(e1);
        int32_t c = pack_lo(e0, e1);
        a0 = __smlad(c, p0, a0);
        a1 = __smlad(c, p1, a1);
        c = pack_hi(e0, e1);
        b0 = __smlad(c, p0, b0);
        b1 = __smlad(c, p1, b1);
    }
    acc[0] = a0; acc[1] = a1; acc[2] = b0; acc[3] = b1;
}

/* The odd last key (when nk is odd): its value row `vl` times pl0 / pl1. */
static inline __attribute__((always_inline)) void pv_tail(int32_t *acc, int32_t nk, const int8_t *vl, int32_t pl0,
                                                          int32_t pl1, const int odd)
{
    if (nk & 1) {
        const int32_t va = vl[odd], vb = vl[odd + 2];
        acc[0] += pl0 * va;
        acc[1] += pl1 * va;
        acc[2] += pl0 * vb;
        acc[3] += pl1 * vb;
    }
}

/* Requantize acc (pv_cols' order) into columns 0 and 2 of o0 and o1. */
static inline __attribute__((always_inline)) void store_cols(const tinyml_matmul_params *pv, const int32_t *acc,
                                                             int8_t *o0, int8_t *o1, const int fast)
{
    const int32_t y0 = mm_requant_f(pv, acc[0], fast), y1 = mm_requant_f(pv, acc[1], fast);
    const int32_t z0 = mm_requant_f(pv, acc[2], fast), z1 = mm_requant_f(pv, acc[3], fast);
    o0[0] = (int8_t)y0;
    o0[2] = (int8_t)z0;
    o1[0] = (int8_t)y1;
    o1[2] = (int8_t)z1;
}

/* o0[d], o1[d] = requant(sum_j (p[j] + lo) * v[j][d] + ro * sum_j (p[j] + lo)) for the
 * two probability rows: pw[2 jj] = (p0[2jj] + lo, p0[2jj+1] + lo), pw[2 jj + 1] the same
 * of p1 (an odd last key as the pair (p + lo, 0) against a zero row, done apart).
 * Columns d and d + 2 come from one SXTB16 of a value word, d + 1 and d + 3 from
 * SXTB16 ROR 8; two value rows are paired per column with PKHBT / PKHTB. */
static inline __attribute__((always_inline)) void pv_pair(const int32_t *pw, const int8_t *vh, int32_t vs,
                                                          int32_t nk, int32_t dv, int32_t ct0, int32_t ct1,
                                                          int32_t pl0, int32_t pl1, const tinyml_matmul_params *pv,
                                                          int8_t *o0, int8_t *o1, const int fast)
{
    const int32_t half = nk >> 1;
    const int32_t *pend = pw + 2 * half;
    int32_t d = 0;
    for (; d + 4 <= dv; d += 4) {
        int32_t acc[4];
        pv_cols(pw, pend, vh + d, vs, ct0, ct1, acc, 0);
        pv_tail(acc, nk, vh + (nk - 1) * vs + d, pl0, pl1, 0);
        store_cols(pv, acc, o0 + d, o1 + d, fast);
        pv_cols(pw, pend, vh + d, vs, ct0, ct1, acc, 1);
        pv_tail(acc, nk, vh + (nk - 1) * vs + d, pl0, pl1, 1);
        store_cols(pv, acc, o0 + d + 1, o1 + d + 1, fast);
    }
    for (; d < dv; ++d) {
        int32_t a0 = ct0, a1 = ct1;
        const int16_t *p16 = (const int16_t *)(const void *)pw;
        for (int32_t j = 0; j + 1 < nk; j += 2) {
            const int32_t va = vh[j * vs + d], vb = vh[(j + 1) * vs + d];
            a0 += p16[2 * j] * va + p16[2 * j + 1] * vb;
            a1 += p16[2 * j + 2] * va + p16[2 * j + 3] * vb;
        }
        if (nk & 1) {
            const int32_t va = vh[(nk - 1) * vs + d];
            a0 += pl0 * va;
            a1 += pl1 * va;
        }
        o0[d] = (int8_t)mm_requant_f(pv, a0, fast);
        o1[d] = (int8_t)mm_requant_f(pv, a1, fast);
    }
}

/* Query rows i and i + 1 of head h: scores, softmax and values for both. The
 * output rows are written after both query rows are read (widened), so the
 * in-place contract of tinyml_fused_attention_s8 holds. s0, s1: nk bytes each
 * of the call's scratch (the one-row path's score row and int16 row). */
static inline __attribute__((always_inline)) tinyml_status attend_pair(const tinyml_attention_params *p, int32_t h,
                                                                       int32_t i, const int8_t *q, const int8_t *kh,
                                                                       const int8_t *vh, int8_t *output, int8_t *s0,
                                                                       int8_t *s1, const int fast_qk, const int fast_pv)
{
    const int32_t nk = p->keys, dk = p->depth, dv = p->value_depth;
    const int32_t qlo = p->qk.lhs_offset, qro = p->qk.rhs_offset;
    const int32_t plo = p->pv.lhs_offset, pro = p->pv.rhs_offset;
    int32_t qw[ATT_PAIR_MAX_DEPTH];                   /* 2 rows x dk int16 */
    int32_t pw[ATT_PAIR_MAX_KEYS + 2];                /* 2 rows x (nk rounded up to even) int16 */
    const int8_t *q0 = q + i * p->q_token_stride + h * p->q_head_stride;
    const int8_t *q1 = q0 + p->q_token_stride;
    const int32_t n4 = dk & ~3, nt = dk & 3;
    const int32_t lo2 = (int32_t)(((uint32_t)(uint16_t)qlo << 16) | (uint16_t)qlo);
    int32_t qs0 = 0, qs1 = 0;
    for (int32_t k = 0; k < n4; k += 4) {
        const int32_t v0 = tinyml_read_s8x4(q0 + k), v1 = tinyml_read_s8x4(q1 + k);
        qs0 = __smlad(__sxtb16(v0), 0x00010001, qs0);
        qs0 = __smlad(tinyml_sxtb16_ror8(v0), 0x00010001, qs0);
        qs1 = __smlad(__sxtb16(v1), 0x00010001, qs1);
        qs1 = __smlad(tinyml_sxtb16_ror8(v1), 0x00010001, qs1);
        qw[k] = __sadd16(__sxtb16(v0), lo2);
        qw[k + 1] = __sadd16(tinyml_sxtb16_ror8(v0), lo2);
        qw[k + 2] = __sadd16(__sxtb16(v1), lo2);
        qw[k + 3] = __sadd16(tinyml_sxtb16_ror8(v1), lo2);
    }
    int16_t *qt = (int16_t *)(void *)(qw + n4);
    for (int32_t t = 0; t < nt; ++t) {
        qs0 += q0[n4 + t];
        qs1 += q1[n4 + t];
        qt[t] = (int16_t)(q0[n4 + t] + qlo);
        qt[nt + t] = (int16_t)(q1[n4 + t] + qlo);
    }
    /* s = sum (q + lo)(k + ro) = sum (q + lo) k + ro sum (q + lo) */
    const int32_t rt0 = qro * (qs0 + dk * qlo), rt1 = qro * (qs1 + dk * qlo);
    qk_pair(qw, kh, p->k_token_stride, nk, dk, rt0, rt1, &p->qk, p->score_table, s0, s1, fast_qk);
    if (tinyml_softmax_row_s8(p->exp_table, nk, s0, s0) != TINYML_OK ||
        tinyml_softmax_row_s8(p->exp_table, nk, s1, s1) != TINYML_OK) {
        return TINYML_ERROR_ARG;
    }
    /* o[d] = sum_j (p + plo)(v + pro) = sum_j (p + plo) v + pro sum_j (p + plo) */
    int16_t *ph = (int16_t *)(void *)pw;
    int32_t ps0 = 0, ps1 = 0;
    const int32_t half = nk >> 1;
    for (int32_t jj = 0; jj < half; ++jj) {
        const int32_t a = s0[2 * jj] + plo, b = s0[2 * jj + 1] + plo;
        const int32_t c = s1[2 * jj] + plo, e = s1[2 * jj + 1] + plo;
        ph[4 * jj] = (int16_t)a;
        ph[4 * jj + 1] = (int16_t)b;
        ph[4 * jj + 2] = (int16_t)c;
        ph[4 * jj + 3] = (int16_t)e;
        ps0 += a + b;
        ps1 += c + e;
    }
    int32_t pl0 = 0, pl1 = 0;
    if (nk & 1) {
        pl0 = s0[nk - 1] + plo;
        pl1 = s1[nk - 1] + plo;
        ps0 += pl0;
        ps1 += pl1;
    }
    int8_t *o0 = output + i * p->o_token_stride + h * p->o_head_stride;
    pv_pair(pw, vh, p->v_token_stride, nk, dv, pro * ps0, pro * ps1, pl0, pl1, &p->pv, o0,
            o0 + p->o_token_stride, fast_pv);
    return TINYML_OK;
}
#endif

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
        int32_t i = 0;
#if TINYML_DSP
        if (dk <= ATT_PAIR_MAX_DEPTH && nk <= ATT_PAIR_MAX_KEYS) {
            const int fqk = mm_fast(&qk, dk), fpv = mm_fast(&pv, nk);
            for (; i + 2 <= nq; i += 2) {
                tinyml_status st;
                if (fqk && fpv) {
                    st = attend_pair(p, h, i, q, kh, vh, output, scores, (int8_t *)p16, 1, 1);
                } else {
                    st = attend_pair(p, h, i, q, kh, vh, output, scores, (int8_t *)p16, 0, 0);
                }
                if (st != TINYML_OK) {
                    return st;
                }
            }
        }
#endif
        for (; i < nq; ++i) {
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
