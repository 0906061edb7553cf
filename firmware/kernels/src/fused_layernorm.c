/* tinyml kernels: Keras LayerNormalization rows as one pass (see tinyml/fused.h). */
#include "fused_common.h"

/* r = RSQRT(ADD(v, eps)), once per row (tinyml_ln_rsqrt). */
static int32_t ln_rsqrt(const tinyml_ln_rsqrt *p, int32_t v)
{
    const int32_t s = fused_rescale(&p->v_rescale, v, 20) + p->eps;
    const int32_t av = TINYML_CLAMP(tinyml_requantize_double(s, p->add_output.multiplier, p->add_output.shift) +
                                    p->add_offset, p->add_activation.min, p->add_activation.max);
    const int32_t value = av - p->input_zp;
    if (value == 0) {
        return 127;
    }
    int32_t m, sh;
    tinyml_inv_sqrt_multiplier(value, &m, &sh);
    const int32_t data = tinyml_requantize_double(1, m, sh + 20);
    const int32_t out = tinyml_requantize_double(data, p->output.multiplier, p->output.shift) + p->output_zp;
    return TINYML_CLAMP(out, -128, 127);
}

/* The rows; `full`: every member MUL/ADD clamps to -128..127; `fast`: every
 * member MUL/ADD/SQUARED_DIFFERENCE requantization meets tinyml_requantize_bounded's
 * preconditions (fused_common.h). Both are fixed at compile time in each of the
 * two copies the dispatcher below instantiates. */
static inline __attribute__((always_inline)) void layernorm_rows(const tinyml_layernorm_params *params,
                                                                 const int8_t *gamma, const int8_t *beta,
                                                                 const int8_t *input, int8_t *output,
                                                                 const int full, const int fast)
{
    /* A local copy: the int8 stores below cannot alias it, so its fields stay
     * in registers or on the stack instead of being reloaded after every store. */
    const tinyml_layernorm_params P = *params;
    const int32_t rows = P.rows, depth = P.depth;
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = input + r * depth;
        int8_t *y = output + r * depth;
        /* m = MEAN(x), nm = -m requantized. */
        const int32_t m = fused_mean_finish(&P.mean, tinyml_sum_s8(x, depth));   /* SMLAD, 4 per step */
        const int32_t nm = P.neg_table[m + 128];
        /* v = MEAN((x - m)^2): the squared differences are summed, never stored. */
        const int32_t mb = fused_rescale(&P.sqdiff.input2, m, 7);
        int32_t sq_sum = 0;
        for (int32_t c = 0; c < depth; ++c) {
            sq_sum += fused_sqdiff_b_ff(&P.sqdiff, x[c], mb, fast);
        }
        const int32_t v = fused_mean_finish(&P.variance, sq_sum);
        const int32_t rs = ln_rsqrt(&P.rsqrt, v);
        /* y = x * g + (beta + nm * g), g = gamma * rsqrt(v + eps); x[c] is read before y[c] is written. */
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t xc = x[c];
            const int32_t g = fused_mul_ff(&P.mul_gamma, rs, gamma[c], full, fast);
            const int32_t t1 = fused_mul_ff(&P.mul_center, nm, g, full, fast);
            const int32_t t2 = fused_add_ff(&P.add_beta, t1, beta[c], full, fast);
            const int32_t t3 = fused_mul_ff(&P.mul_x, xc, g, full, fast);
            y[c] = (int8_t)fused_add_ff(&P.add_out, t3, t2, full, fast);
        }
    }
}

/* ---- The fast rows: every member op meets fused_quant_fast and clamps to
 * -128..127, and the rescalings of x (SQUARED_DIFFERENCE), t1 and t3 (the two
 * ADDs' first inputs) are the unit one (fused_common.h; TFLite gives the
 * larger-scale ADD input the real multiplier 0.5): the same integers as
 * layernorm_rows(.., 1, 1) in fewer instructions. Each requantization is
 * fused_rq on the doubled accumulator; a MUL with a per-row operand is one MLA. */

/* Channels per block of the fast rows' per-row tables (stack, 9 B per channel). */
#define LN_BLOCK 64
/* Slots of the fast rows' memo of RSQRT(ADD(v, eps)) by v (v & 15). */
#define LN_RSQRT_MEMO 16

/* The constants of the fast rows' channel loops, prepared once per call. Each
 * loop is its own function so that GCC allocates its registers locally (one
 * function with all of them kept every constant on the stack). */
typedef struct {
    int32_t a_g, c_g;                 /* 2 MUL(r, gamma) = a_g gamma + c_g */
    fused_rq q_g;
    int32_t a_c, c_c;                 /* 2 MUL(nm, g) = a_c g + c_c */
    fused_rq q_c;
    fused_rq q_b;
    fused_rq_rescale o2;              /* rescale(t2) of ADD(t3, t2) */
    int32_t x_off2, x_o2;             /* 2 MUL(x, g) = (2 x + x_off2)(g + x_o2) */
    fused_rq q_x;
    int32_t o1_off20;                 /* 2 rescale(t3) = (t3 << 20) + o1_off20 */
    fused_rq q_o;
} ln_fast;

/* gb[c] = g = MUL(r, gamma[c]). */
static __attribute__((noinline)) void ln_gamma_row(const ln_fast *F, int32_t n, const int8_t *gamma, int8_t *gb)
{
    const int32_t a = F->a_g, c0 = F->c_g;
    const fused_rq q = F->q_g;
    for (int32_t c = 0; c < n; ++c) {
        gb[c] = (int8_t)fused_sat8(fused_rq_apply(q, a * gamma[c] + c0));
    }
}

/* ob[c] = rescale(t2) (ADD(t3, t2)'s second input), t2 = ADD(MUL(nm, gb[c]), beta[c]),
 * bb[c] = 2 rescale(beta[c]) + b1_off20 (the doubled sum less t1 << 20). */
static __attribute__((noinline)) void ln_center_row(const ln_fast *F, int32_t n, const int8_t *gb,
                                                    const int32_t *bb, int32_t *ob)
{
    const int32_t a = F->a_c, c0 = F->c_c;
    const fused_rq q_c = F->q_c, q_b = F->q_b;
    const fused_rq_rescale o2 = F->o2;
    for (int32_t c = 0; c < n; ++c) {
        const int32_t t1 = fused_sat8(fused_rq_apply(q_c, a * gb[c] + c0));
        const int32_t t2 = fused_sat8(fused_rq_apply(q_b, bb[c] + (int32_t)((uint32_t)t1 << 20)));
        ob[c] = fused_rq_apply(o2.q, o2.c + (int32_t)((uint32_t)t2 << 21));
    }
}

/* y[c] = ADD(MUL(x[c], gb[c]), t2) with ob[c] = rescale(t2). */
static __attribute__((noinline)) void ln_out_row(const ln_fast *F, int32_t n, const int8_t *x, const int8_t *gb,
                                                 const int32_t *ob, int8_t *y)
{
    const int32_t x_off2 = F->x_off2, x_o2 = F->x_o2, o1_off20 = F->o1_off20;
    const fused_rq q_x = F->q_x, q_o = F->q_o;
    for (int32_t c = 0; c < n; ++c) {
        const int32_t t3 = fused_sat8(fused_rq_apply(q_x, (x_off2 + 2 * x[c]) * (gb[c] + x_o2)));
        y[c] = (int8_t)fused_sat8(fused_rq_apply(q_o, o1_off20 + (int32_t)((uint32_t)t3 << 20) + 2 * ob[c]));
    }
}

/* SUM(SQUARED_DIFFERENCE(x, m)) of one row with mb = rescale(m, 7) of input2 and
 * the unit rescale(x, 7) = (x + offset) << 6. d * d >= 0 and the multiplier >= 0:
 * h >= 0, no sign nudge. */
static __attribute__((noinline)) int32_t ln_sqdiff_sum(const tinyml_fused_add *p, const int8_t *x, int32_t n,
                                                       int32_t mb)
{
    const fused_rq q = fused_rq_make(&p->output, p->output_offset);
    const int32_t qm = q.m, qk = q.k, qe = q.e;
    const int32_t c0 = (int32_t)((uint32_t)p->input1.offset << 6) - mb;
    int32_t sum = 0;
    for (int32_t c = 0; c < n; ++c) {
        const int32_t d = c0 + (int32_t)((uint32_t)x[c] << 6);
        sum += fused_sat8(fused_smmlar((int32_t)((uint32_t)(d * d) << 1), qm, qk) >> qe);
    }
    return sum;
}

static __attribute__((noinline)) void layernorm_fast(const tinyml_layernorm_params *P, const int8_t *gamma,
                                                     const int8_t *beta, const int8_t *input, int8_t *output)
{
    const int32_t rows = P->rows, depth = P->depth;
    ln_fast F;
    F.q_g = fused_rq_make(&P->mul_gamma.output, P->mul_gamma.output_offset);
    F.q_c = fused_rq_make(&P->mul_center.output, P->mul_center.output_offset);
    F.q_b = fused_rq_make(&P->add_beta.output, P->add_beta.output_offset);
    F.o2 = fused_rq_rescale_make(&P->add_out.input2, 20);
    F.x_off2 = 2 * P->mul_x.input1_offset;
    F.x_o2 = P->mul_x.input2_offset;
    F.q_x = fused_rq_make(&P->mul_x.output, P->mul_x.output_offset);
    F.o1_off20 = (int32_t)((uint32_t)P->add_out.input1.offset << 20);
    F.q_o = fused_rq_make(&P->add_out.output, P->add_out.output_offset);
    /* 2 rescale(t1) = (t1 << 20) + b1_off20 (unit) */
    const int32_t b1_off20 = (int32_t)((uint32_t)P->add_beta.input1.offset << 20);
    const fused_rq_rescale b2 = fused_rq_rescale_make(&P->add_beta.input2, 20);
    /* Per block of channels: bb = 2 rescale(beta[c]) + b1_off20 (row-independent: once per
     * call when depth <= LN_BLOCK), and per row gb[c] = g and ob[c]. */
    int32_t bb[LN_BLOCK], ob[LN_BLOCK];
    int8_t gb[LN_BLOCK];
    const int one_block = depth <= LN_BLOCK;
    int16_t memo_v[LN_RSQRT_MEMO];     /* v of the slot's r, or 256: empty */
    int8_t memo_r[LN_RSQRT_MEMO];
    for (int32_t i = 0; i < LN_RSQRT_MEMO; ++i) {
        memo_v[i] = 256;
    }
    for (int32_t c = 0; one_block && c < depth; ++c) {
        bb[c] = b1_off20 + 2 * fused_rq_apply(b2.q, b2.c + (int32_t)((uint32_t)beta[c] << 21));
    }
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = input + r * depth;
        int8_t *y = output + r * depth;
        const int32_t m = fused_mean_finish(&P->mean, tinyml_sum_s8(x, depth));
        const int32_t nm = P->neg_table[m + 128];
        const int32_t mb = fused_rescale(&P->sqdiff.input2, m, 7);
        const int32_t v = fused_mean_finish(&P->variance, ln_sqdiff_sum(&P->sqdiff, x, depth, mb));
        /* r depends on the int8 v only: rows with a v seen before reuse it. */
        int32_t rs;
        const uint32_t slot = (uint32_t)v & (LN_RSQRT_MEMO - 1);
        if (memo_v[slot] == (int16_t)v) {
            rs = memo_r[slot];
        } else {
            rs = ln_rsqrt(&P->rsqrt, v);
            memo_v[slot] = (int16_t)v;
            memo_r[slot] = (int8_t)rs;
        }
        F.a_g = 2 * (rs + P->mul_gamma.input1_offset);
        F.c_g = F.a_g * P->mul_gamma.input2_offset;
        F.a_c = 2 * (nm + P->mul_center.input1_offset);
        F.c_c = F.a_c * P->mul_center.input2_offset;
        for (int32_t c0 = 0; c0 < depth; c0 += LN_BLOCK) {
            const int32_t n = depth - c0 < LN_BLOCK ? depth - c0 : LN_BLOCK;
            for (int32_t c = 0; !one_block && c < n; ++c) {
                bb[c] = b1_off20 + 2 * fused_rq_apply(b2.q, b2.c + (int32_t)((uint32_t)beta[c0 + c] << 21));
            }
            ln_gamma_row(&F, n, gamma + c0, gb);
            ln_center_row(&F, n, gb, bb, ob);
            ln_out_row(&F, n, x + c0, gb, ob, y + c0);
        }
    }
}

/* The other rows out of line (their local copy of the parameters stays off
 * the fast rows' frame): `fast` requantizations without the unit rescalings,
 * and the general path. */
static __attribute__((noinline)) void layernorm_fast_any(const tinyml_layernorm_params *params,
                                                         const int8_t *gamma, const int8_t *beta,
                                                         const int8_t *input, int8_t *output)
{
    layernorm_rows(params, gamma, beta, input, output, 1, 1);
}

static __attribute__((noinline)) void layernorm_slow(const tinyml_layernorm_params *params, const int8_t *gamma,
                                                     const int8_t *beta, const int8_t *input, int8_t *output)
{
    layernorm_rows(params, gamma, beta, input, output, 0, 0);
}

tinyml_status tinyml_fused_layernorm_s8(const tinyml_layernorm_params *params, const int8_t *input,
                                        const int8_t *gamma, const int8_t *beta, int8_t *output)
{
    if (params->rows < 0 || params->depth <= 0 || !gamma || !beta || !input || !output) {
        return TINYML_ERROR_ARG;
    }
    if (fused_full_range(&params->mul_gamma.activation) && fused_full_range(&params->mul_center.activation) &&
        fused_full_range(&params->add_beta.activation) && fused_full_range(&params->mul_x.activation) &&
        fused_full_range(&params->add_out.activation) &&
        fused_quant_fast(&params->sqdiff.output, params->sqdiff.output_offset) &&
        fused_quant_fast(&params->mul_gamma.output, params->mul_gamma.output_offset) &&
        fused_quant_fast(&params->mul_center.output, params->mul_center.output_offset) &&
        fused_quant_fast(&params->add_beta.output, params->add_beta.output_offset) &&
        fused_quant_fast(&params->mul_x.output, params->mul_x.output_offset) &&
        fused_quant_fast(&params->add_out.output, params->add_out.output_offset)) {
        if (fused_rescale_unit(&params->sqdiff.input1) && fused_rescale_unit(&params->add_beta.input1) &&
            fused_rescale_unit(&params->add_out.input1)) {
            layernorm_fast(params, gamma, beta, input, output);
        } else {
            layernorm_fast_any(params, gamma, beta, input, output);
        }
    } else {
        layernorm_slow(params, gamma, beta, input, output);
    }
    return TINYML_OK;
}
