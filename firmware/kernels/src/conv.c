/* tinyml kernels: CONV_2D (int8, per-channel requantization). See conv.h. */
#include "tinyml/conv.h"
#include "tinyml/fc.h"

/* *s0 += sum x[i] * w0[i], *s1 += sum x[i] * w1[i] for i < n: two output
 * channels share each input load (and, with DSP, its sign extension). */
static inline void dot_s8_x2(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t n,
                             int32_t *s0, int32_t *s1)
{
    int32_t a0 = *s0, a1 = *s1;
    int32_t i = 0;
#if TINYML_DSP
    for (; i + 4 <= n; i += 4) {
        const int32_t xv = tinyml_read_s8x4(x + i);
        const int32_t x02 = (int32_t)__sxtb16(xv);
        const int32_t x13 = (int32_t)__sxtb16((int32_t)tinyml_ror((uint32_t)xv, 8));
        const int32_t v0 = tinyml_read_s8x4(w0 + i);
        const int32_t v1 = tinyml_read_s8x4(w1 + i);
        a0 = __smlad(x02, (int32_t)__sxtb16(v0), a0);
        a0 = __smlad(x13, (int32_t)__sxtb16((int32_t)tinyml_ror((uint32_t)v0, 8)), a0);
        a1 = __smlad(x02, (int32_t)__sxtb16(v1), a1);
        a1 = __smlad(x13, (int32_t)__sxtb16((int32_t)tinyml_ror((uint32_t)v1, 8)), a1);
    }
#endif
    for (; i < n; ++i) {
        a0 += (int32_t)x[i] * (int32_t)w0[i];
        a1 += (int32_t)x[i] * (int32_t)w1[i];
    }
    *s0 = a0;
    *s1 = a1;
}

/* Geometry of one output pixel: the in-image taps and where they start. */
typedef struct {
    int32_t iy0, ky0, ky1;
    int32_t ix0, kx0, kx1;
} pixel_window;

/* Raw sums sum w*x (acc) and sum w (wsum, only if need_wsum) over the
 * in-image taps of output channels o and o + 1 (o1 == o when pairs == 0). */
static void conv_pixel_sums(const tinyml_conv_params *p, const pixel_window *pw,
                            const int8_t *in_b, int32_t in_w, int32_t in_c,
                            const int8_t *w_o0, const int8_t *w_o1, int32_t k_w, int32_t f_c,
                            int32_t group_off, int rows_contiguous, int need_wsum,
                            int32_t acc[2], int32_t wsum[2])
{
    if (rows_contiguous) {
        const int32_t run = (pw->kx1 - pw->kx0) * f_c;
        if (run <= 0) {
            return;
        }
        for (int32_t ky = pw->ky0; ky < pw->ky1; ++ky) {
            const int32_t iy = pw->iy0 + ky * p->dilation_h;
            const int8_t *xr = in_b + ((size_t)iy * in_w + (pw->ix0 + pw->kx0)) * in_c;
            const size_t wo = ((size_t)ky * k_w + pw->kx0) * f_c;
            dot_s8_x2(xr, w_o0 + wo, w_o1 + wo, run, &acc[0], &acc[1]);
            if (need_wsum) {
                wsum[0] += tinyml_sum_s8(w_o0 + wo, run);
                wsum[1] += tinyml_sum_s8(w_o1 + wo, run);
            }
        }
        return;
    }
    for (int32_t ky = pw->ky0; ky < pw->ky1; ++ky) {
        const int32_t iy = pw->iy0 + ky * p->dilation_h;
        for (int32_t kx = pw->kx0; kx < pw->kx1; ++kx) {
            const int32_t ix = pw->ix0 + kx * p->dilation_w;
            const int8_t *xt = in_b + ((size_t)iy * in_w + ix) * in_c + group_off;
            const size_t wo = ((size_t)ky * k_w + kx) * f_c;
            dot_s8_x2(xt, w_o0 + wo, w_o1 + wo, f_c, &acc[0], &acc[1]);
            if (need_wsum) {
                wsum[0] += tinyml_sum_s8(w_o0 + wo, f_c);
                wsum[1] += tinyml_sum_s8(w_o1 + wo, f_c);
            }
        }
    }
}

static inline int8_t conv_finish(int32_t acc, int32_t wsum, int need_wsum, int32_t o,
                                 const tinyml_conv_params *p, const tinyml_per_channel_quant *q,
                                 const int32_t *bias, const int32_t *kernel_sums)
{
    /* sum w (x + io) = sum w x + io sum w, exact in int32. */
    if (p->input_offset != 0) {
        acc += p->input_offset * (need_wsum ? wsum : kernel_sums[o]);
    }
    if (bias) {
        acc += bias[o];
    }
    acc = tinyml_conv_requantize(acc, q->multiplier[o], q->shift[o]);
    acc += p->output_offset;
    return (int8_t)TINYML_CLAMP(acc, p->activation.min, p->activation.max);
}

tinyml_status tinyml_conv2d_s8(const tinyml_conv_params *params, const tinyml_per_channel_quant *quant,
                               const tinyml_dims *input_dims, const int8_t *input,
                               const tinyml_dims *filter_dims, const int8_t *filter,
                               const int32_t *bias, const int32_t *kernel_sums,
                               const tinyml_dims *output_dims, int8_t *output)
{
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w, f_c = filter_dims->c;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, out_c = output_dims->c;
    if (f_c <= 0 || in_c % f_c != 0 || filter_dims->n != out_c || input_dims->n != output_dims->n ||
        params->stride_h <= 0 || params->stride_w <= 0 ||
        params->dilation_h <= 0 || params->dilation_w <= 0) {
        return TINYML_ERROR_ARG;
    }
    const int32_t groups = in_c / f_c;
    if (out_c % groups != 0) {
        return TINYML_ERROR_ARG;
    }
    const int32_t per_group = out_c / groups;
    /* With unit column dilation and one group, the in-image taps of one
     * filter row are a single contiguous run of both input and filter
     * bytes: one dot product of (kx_end - kx_begin) * in_c per row. */
    const int rows_contiguous = (params->dilation_w == 1 && groups == 1);
    const size_t filter_size = (size_t)k_h * k_w * f_c;

    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *in_b = input + (size_t)b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < out_h; ++oy) {
            pixel_window pw;
            pw.iy0 = oy * params->stride_h - params->pad_h;
            tinyml_tap_range(pw.iy0, params->dilation_h, k_h, in_h, &pw.ky0, &pw.ky1);
            for (int32_t ox = 0; ox < out_w; ++ox) {
                pw.ix0 = ox * params->stride_w - params->pad_w;
                tinyml_tap_range(pw.ix0, params->dilation_w, k_w, in_w, &pw.kx0, &pw.kx1);
                const int full = (pw.ky0 == 0 && pw.ky1 == k_h && pw.kx0 == 0 && pw.kx1 == k_w);
                const int need_wsum = (params->input_offset != 0) && !(full && kernel_sums != NULL);
                int8_t *out_px = output + (((size_t)b * out_h + oy) * out_w + ox) * out_c;
                int32_t o = 0;
                while (o < out_c) {
                    const int32_t g = o / per_group;
                    /* Pair o with o + 1 when both read the same input group. */
                    const int pair = (o + 1 < out_c) && ((o + 1) / per_group == g);
                    const int8_t *w0 = filter + (size_t)o * filter_size;
                    const int8_t *w1 = pair ? w0 + filter_size : w0;
                    int32_t acc[2] = {0, 0};
                    int32_t wsum[2] = {0, 0};
                    conv_pixel_sums(params, &pw, in_b, in_w, in_c, w0, w1, k_w, f_c, g * f_c,
                                    rows_contiguous, need_wsum, acc, wsum);
                    out_px[o] = conv_finish(acc[0], wsum[0], need_wsum, o, params, quant, bias, kernel_sums);
                    if (pair) {
                        out_px[o + 1] = conv_finish(acc[1], wsum[1], need_wsum, o + 1, params, quant, bias,
                                                    kernel_sums);
                    }
                    o += pair ? 2 : 1;
                }
            }
        }
    }
    return TINYML_OK;
}

/* ---- packed-filter CONV_2D (groups == 1): 1x1 as a matrix product, KxK through
 * a two-pixel im2col buffer, both on tinyml_fc_s8's inner loops. ---------------- */

static inline void fill_bytes(int8_t *dst, int8_t value, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        dst[i] = value;
    }
}

/* Where input row iy (0 <= iy < in_h) of a packed convolution lives: row
 * iy % ring of `rows` (ring == in_h: the whole image, rows stored in order). */
static inline const int8_t *input_row(const tinyml_conv_packed_params *p, const int8_t *rows, int32_t ring,
                                      int32_t iy)
{
    const int32_t slot = iy < ring ? iy : iy % ring;
    return rows + (size_t)slot * p->in_w * p->in_c;
}

/* The k_h * k_w * in_c window of output pixel (oy, ox) in filter order; taps
 * outside the image hold the input zero point (x + input_offset = 0 there). */
static void im2col_pixel(const tinyml_conv_packed_params *p, const int8_t *rows, int32_t ring, int32_t oy,
                         int32_t ox, int8_t *col)
{
    const int32_t ic = p->in_c, kw = p->k_w;
    const int8_t pad = (int8_t)p->pad_value;
    const int32_t iy0 = oy * p->stride_h - p->pad_h, ix0 = ox * p->stride_w - p->pad_w;
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        int8_t *c = col + ky * kw * ic;
        if (iy < 0 || iy >= p->in_h) {
            fill_bytes(c, pad, kw * ic);
            continue;
        }
        const int8_t *row = input_row(p, rows, ring, iy);
        if (p->dilation_w == 1 && ix0 >= 0 && ix0 + kw <= p->in_w) {
            tinyml_copy_s8(c, row + (size_t)ix0 * ic, kw * ic);
            continue;
        }
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t ix = ix0 + kx * p->dilation_w;
            if (ix < 0 || ix >= p->in_w) {
                fill_bytes(c + kx * ic, pad, ic);
            } else {
                tinyml_copy_s8(c + kx * ic, row + (size_t)ix * ic, ic);
            }
        }
    }
}

#if TINYML_DSP
/* ---- the packed convolution's matrix product on DSP cores: two pixels at a
 * time, their K values sign-extended once into a small stack buffer of
 * SXTB16 halfword pairs, then 2 output channels x 2 pixels per pass.
 *
 * Buffer layout of a pixel pair (x0, x1), one int32 word per halfword pair:
 * for each block of 4 depth values d..d+3: {x0[d], x0[d+2]}, {x0[d+1], x0[d+3]},
 * {x1[d], x1[d+2]}, {x1[d+1], x1[d+3]} (low halfword first, as SXTB16 and
 * SXTB16 ROR #8 leave them), then the K % 4 tail values as {x0[t], x1[t]}
 * word pairs. A packed filter word of 4 depth values w[d..d+3] gives
 * SXTB16 = {w[d], w[d+2]} and SXTB16 ROR #8 = {w[d+1], w[d+3]}, so one SMLAD
 * of each with the matching buffer word adds the 4 products: no reordering of
 * weights, and each input byte is extended once per pixel instead of once per
 * pixel and channel pair (fc.c's group_2x2: 20 instructions per 16
 * multiply-accumulates, here 16). Arithmetic: the exact int32 sum of
 * w * x over the K values, as tinyml_fc_s8; then the same epilogues. */

/* accum_depth range of this path: the buffer is 2 pixels x K x 2 bytes of
 * stack (512 B at 128, under tinyml_fc_s8's own frame, so the stack estimate
 * does not grow); below 16 the per-pixel extension costs more than it saves
 * (measured on QEMU -icount: K = 8 +4.5%, 16 equal, 64 -6%, 128 -10%). */
#define CONV_PAIR_MIN_DEPTH 16
#define CONV_PAIR_DEPTH 128

/* Words of the K % 4 == 3 tail block (pair_extend) before the tail pairs. */
#define CONV_TAIL3_WORDS 6

/* Sign-extend the K values of x0 and x1 into the pair buffer q (layout above).
 * With K % 4 == 3 the tail values t0, t1, t2 of each pixel also come as one
 * more block (before the tail pairs, which pair_row and the double-rounding
 * path read): {t0, t2}, {t1, 0} of x0, the same of x1, then {0, t1} of x0
 * and of x1 (pair_2x2_at's tail3 form). */
static void pair_extend(const int8_t *x0, const int8_t *x1, int32_t n, int32_t *q)
{
    const int32_t n4 = n & ~3;
    q = tinyml_widen_pair_s8(x0, x1, n4, q);
    if ((n & 3) == 3) {
        q[0] = (int32_t)((uint32_t)(uint16_t)x0[n4] | ((uint32_t)x0[n4 + 2] << 16));
        q[1] = (int32_t)(uint16_t)x0[n4 + 1];
        q[2] = (int32_t)((uint32_t)(uint16_t)x1[n4] | ((uint32_t)x1[n4 + 2] << 16));
        q[3] = (int32_t)(uint16_t)x1[n4 + 1];
        q[4] = (int32_t)((uint32_t)x0[n4 + 1] << 16);
        q[5] = (int32_t)((uint32_t)x1[n4 + 1] << 16);
        q += CONV_TAIL3_WORDS;
    }
    for (int32_t i = n4; i < n; ++i) {
        q[0] = x0[i];
        q[1] = x1[i];
        q += 2;
    }
}

/* acc = {row r . x0, row r . x1, row r+1 . x0, row r+1 . x1} for rows r, r+1
 * of a packed 4-row group g (16 bytes per depth block, the tail row by row).
 * tskip: buffer words between the blocks and the tail pairs (pair_extend's
 * tail block, 0 for the chunk buffers). tail3 (nt == 3, pair_extend's
 * buffer): the tail as one block against the tail words of the rows read as
 * whole words: 1 for rows 0 and 1 of a group (each read from its first tail
 * byte; the fourth byte is the next row's, multiplied by the block's 0), 2
 * for rows 2 and 3 (row 3 read from one byte before its tail, so nothing
 * past the group is read: {r2 t2, r3 t1} against {0, t1}, {r3 t0, r3 t2}
 * against {t0, t2}). */
static inline __attribute__((always_inline)) void pair_2x2_at(const int32_t *q, const int8_t *w, int32_t n4,
                                                              const int8_t *t0, int32_t nt, int32_t acc[4],
                                                              const int clean, int32_t tskip, int tail3)
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    /* Depth block i after the trip's start: three LDRDs (q is an int32 array,
     * w word aligned: conv_pair_ok checks the packed filter), 4 SXTB16, 8 SMLAD. */
#define CONV_PAIR_STEP(i)                                                        \
    do {                                                                         \
        int32_t x0e, x0o, x1e, x1o, w0, w1;                                      \
        TINYML_LDRD(q, 16 * (i), x0e, x0o);                                      \
        TINYML_LDRD(q, 16 * (i) + 8, x1e, x1o);                                  \
        TINYML_LDRD(w, 16 * (i), w0, w1);                                        \
        TINYML_MAC_1X2(w0, x0e, x0o, x1e, x1o, a00, a01);                        \
        TINYML_MAC_1X2(w1, x0e, x0o, x1e, x1o, a10, a11);                        \
    } while (0)
    const int32_t *end = q + (n4 & ~7);   /* n4 / 4 blocks of 4 words, two per trip */
    if (clean) {
        /* n4 a non-zero multiple of 8, no tail (pair_rows_clean): whole trips only. */
        do {
            CONV_PAIR_STEP(0);
            CONV_PAIR_STEP(1);
            q += 8;
            w += 32;
        } while (q < end);
        acc[0] = a00; acc[1] = a01; acc[2] = a10; acc[3] = a11;
        return;
    }
    while (q < end) {
        CONV_PAIR_STEP(0);
        CONV_PAIR_STEP(1);
        q += 8;
        w += 32;
    }
    if (n4 & 4) {
        CONV_PAIR_STEP(0);
        q += 4;
    }
#undef CONV_PAIR_STEP
    if (tail3) {
        int32_t x0a, x0b, x1a, x1b;
        TINYML_LDRD(q, 0, x0a, x0b);
        TINYML_LDRD(q, 8, x1a, x1b);
        const int32_t v0 = tinyml_read_s8x4(t0);
        TINYML_MAC_1X2(v0, x0a, x0b, x1a, x1b, a00, a01);
        if (tail3 == 1) {
            const int32_t v1 = tinyml_read_s8x4(t0 + 3);
            TINYML_MAC_1X2(v1, x0a, x0b, x1a, x1b, a10, a11);
        } else {
            int32_t x0c, x1c;
            TINYML_LDRD(q, 16, x0c, x1c);
            const int32_t v1 = tinyml_read_s8x4(t0 + 2);
            const int32_t lo = __sxtb16(v1), hi = tinyml_sxtb16_ror8(v1);
            a10 = __smlad(lo, x0c, a10);
            a10 = __smlad(hi, x0a, a10);
            a11 = __smlad(lo, x1c, a11);
            a11 = __smlad(hi, x1a, a11);
        }
        acc[0] = a00; acc[1] = a01; acc[2] = a10; acc[3] = a11;
        return;
    }
    q += tskip;
    const int8_t *t1 = t0 + nt;
    for (int32_t j = 0; j < nt; ++j) {
        const int32_t u0 = q[2 * j], u1 = q[2 * j + 1];
        a00 += t0[j] * u0;
        a01 += t0[j] * u1;
        a10 += t1[j] * u0;
        a11 += t1[j] * u1;
    }
    acc[0] = a00; acc[1] = a01; acc[2] = a10; acc[3] = a11;
}

static inline __attribute__((always_inline)) void pair_2x2(const int32_t *q, const int8_t *g, int32_t r,
                                                           int32_t n4, int32_t nt, int32_t acc[4])
{
    pair_2x2_at(q, g + 4 * r, n4, g + 4 * n4 + r * nt, nt, acc, 0, nt == 3 ? CONV_TAIL3_WORDS : 0, 0);
}

/* {row . x0, row . x1} for a plain (unpacked) filter row of n values. */
static inline __attribute__((always_inline)) void pair_row(const int32_t *q, const int8_t *w, int32_t n4, int32_t nt,
                                                           int32_t tskip, int32_t acc[2])
{
    int32_t a0 = acc[0], a1 = acc[1];
    for (int32_t k = 0; k < n4; k += 4) {
        const int32_t wv = tinyml_read_s8x4(w + k);
        const int32_t we = __sxtb16(wv), wo = tinyml_sxtb16_ror8(wv);
        a0 = __smlad(we, q[0], a0);
        a0 = __smlad(wo, q[1], a0);
        a1 = __smlad(we, q[2], a1);
        a1 = __smlad(wo, q[3], a1);
        q += 4;
    }
    q += tskip;
    for (int32_t j = 0; j < nt; ++j) {
        a0 += w[n4 + j] * q[2 * j];
        a1 += w[n4 + j] * q[2 * j + 1];
    }
    acc[0] = a0; acc[1] = a1;
}

/* The layer's epilogue constants in locals: int8 output stores may alias any
 * memory, so fields read through the layer pointer would be reloaded after
 * every store. */
typedef struct {
    const int32_t *bias, *mult, *shift;
    int32_t zp, lo, hi;
} pair_epilogue;

/* The fast epilogue of one output channel (modes 1 and 2), computed once per
 * channel and block: m, e = -shift and the rounding constant
 * kh = (2 zp + 1) 2^(e - 1). */
typedef struct {
    int32_t m, kh, e;
} fast_q;

static inline __attribute__((always_inline)) fast_q fast_make(int32_t m, int32_t s, int32_t zph)
{
    const int32_t e = -s;
    const fast_q f = {m, (int32_t)((uint32_t)zph << (e - 1)), e};
    return f;
}

/* tinyml_requantize_bounded(acc, m, -e, zp) in one SMMLAR: with x2 = 2 acc,
 * SMMLAR(x2, m, kh) = kh + SMMULR(x2, m) = kh + h, and the sign nudge [h < 0]
 * is taken as [x2 < 0] (m >= 0: they differ only where h = 0, and then
 * (kh - 1) >> e = kh >> e = zp for e >= 1), so the result is
 * (SMMLAR(x2, m, kh) + (x2 >> 31)) >> e: 4 instructions before the clamp. */
static inline __attribute__((always_inline)) int32_t fast_requant(int32_t acc, const fast_q f)
{
    const int32_t x2 = (int32_t)((uint32_t)acc << 1);
    int32_t h;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(h) : "r"(x2), "r"(f.m), "r"(f.kh));
    return (h + (x2 >> 31)) >> f.e;
}

/* clamp(requant(acc) + output_offset) with (m, s): mode 2
 * tinyml_requantize_bounded and the range -128..127 (one SSAT), mode 1
 * tinyml_requantize_bounded and any range, mode 0 tinyml_requantize_double_fast
 * (tinyml_fc_s8's conv epilogue; fast_requant proved the bounded one equal). */
static inline __attribute__((always_inline)) int8_t pair_finish(const pair_epilogue *e, int32_t acc, int32_t m,
                                                                int32_t s, const int mode)
{
    if (mode >= 1) {
        acc = tinyml_requantize_bounded(acc, m, s, e->zp);
        return (int8_t)(mode == 2 ? __ssat(acc, 8) : tinyml_clamp(acc, e->lo, e->hi));
    }
    acc = tinyml_requantize_double_fast(acc, m, s) + e->zp;
    return (int8_t)tinyml_clamp(acc, e->lo, e->hi);
}

/* fast_finish of an accumulator already doubled (x2 = 2 acc). */
static inline __attribute__((always_inline)) int8_t fast_finish2(const pair_epilogue *e, int32_t x2, const fast_q f,
                                                                 const int mode)
{
    int32_t h;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(h) : "r"(x2), "r"(f.m), "r"(f.kh));
    const int32_t y = (h + (x2 >> 31)) >> f.e;
    return (int8_t)(mode == 2 ? __ssat(y, 8) : tinyml_clamp(y, e->lo, e->hi));
}

/* pair_finish for modes 1 and 2 with the channel's constants made once. */
static inline __attribute__((always_inline)) int8_t fast_finish(const pair_epilogue *e, int32_t acc, const fast_q f,
                                                                const int mode)
{
    acc = fast_requant(acc, f);
    return (int8_t)(mode == 2 ? __ssat(acc, 8) : tinyml_clamp(acc, e->lo, e->hi));
}

/* Output channels o, o + 1 (filter rows at w, their tails at t0) of pixels
 * y0, y1 on the fast epilogue: the bias, multiplier and shift words of the
 * pair in one LDRD each (int32 arrays: word aligned), the constants made
 * once per channel for both pixels. */
static inline __attribute__((always_inline)) void pair_block_fast(const pair_epilogue *e, const int32_t *q,
                                                                  const int8_t *w, const int8_t *t0, int32_t n4,
                                                                  int32_t nt, int32_t o, int32_t zph, int8_t *y0,
                                                                  int8_t *y1, const int mode, const int clean,
                                                                  int tail3)
{
    int32_t b0, b1, m0, m1, s0, s1;
    TINYML_LDRD(e->bias + o, 0, b0, b1);
    int32_t acc[4] = {b0, b0, b1, b1};
    pair_2x2_at(q, w, n4, t0, nt, acc, clean, 0, tail3);
    TINYML_LDRD(e->mult + o, 0, m0, m1);
    TINYML_LDRD(e->shift + o, 0, s0, s1);
    const fast_q f0 = fast_make(m0, s0, zph), f1 = fast_make(m1, s1, zph);
    y0[o] = fast_finish(e, acc[0], f0, mode);
    y1[o] = fast_finish(e, acc[1], f0, mode);
    y0[o + 1] = fast_finish(e, acc[2], f1, mode);
    y1[o + 1] = fast_finish(e, acc[3], f1, mode);
}

/* Output pixels y0 and y1 from the pair buffer q: all channels. */
static inline __attribute__((always_inline)) void pair_outputs(const pair_epilogue *e, int32_t n, int32_t od,
                                                               const int32_t *q, const int8_t *packed_filter,
                                                               int8_t *y0, int8_t *y1, const int mode,
                                                               const int clean)
{
    const int32_t n4 = n & ~3, nt = n & 3;
    const int32_t groups = od >> 2;
    if (mode >= 1) {
        const int32_t zph = 2 * e->zp + 1;
        const int8_t *g = packed_filter;
        for (int32_t o = 0; o < 4 * groups; o += 4) {
            pair_block_fast(e, q, g, g + 4 * n4, n4, nt, o, zph, y0, y1, mode, clean, nt == 3);
            pair_block_fast(e, q, g + 8, g + 4 * n4 + 2 * nt, n4, nt, o + 2, zph, y0, y1, mode, clean,
                            nt == 3 ? 2 : 0);
            g += 4 * n;
        }
    } else {
        for (int32_t gi = 0; gi < groups; ++gi) {
            const int8_t *g = packed_filter + gi * 4 * n;
            for (int32_t r = 0; r < 4; r += 2) {
                const int32_t o = 4 * gi + r;
                int32_t acc[4] = {e->bias[o], e->bias[o], e->bias[o + 1], e->bias[o + 1]};
                pair_2x2(q, g, r, n4, nt, acc);
                const int32_t m0 = e->mult[o], s0 = e->shift[o], m1 = e->mult[o + 1], s1 = e->shift[o + 1];
                const int8_t v00 = pair_finish(e, acc[0], m0, s0, mode), v01 = pair_finish(e, acc[1], m0, s0, mode);
                const int8_t v10 = pair_finish(e, acc[2], m1, s1, mode), v11 = pair_finish(e, acc[3], m1, s1, mode);
                y0[o] = v00;
                y0[o + 1] = v10;
                y1[o] = v01;
                y1[o + 1] = v11;
            }
        }
    }
    const int8_t *rest = packed_filter + groups * 4 * n;
    for (int32_t o = 4 * groups; o < od; ++o) {
        int32_t acc[2] = {e->bias[o], e->bias[o]};
        pair_row(q, rest + (o - 4 * groups) * n, n4, nt, nt == 3 ? CONV_TAIL3_WORDS : 0, acc);
        y0[o] = pair_finish(e, acc[0], e->mult[o], e->shift[o], mode);
        y1[o] = pair_finish(e, acc[1], e->mult[o], e->shift[o], mode);
    }
}

/* Where a pixel pair's K values are: pair b (b even) of a call reads pixels
 * x0 + b * pstride and x1 + b * pstride, each k_h runs of `run` values, run r
 * at x + r * step. Rows of K values (im2col copies, direct 1x1 pixels): one
 * run of K (x1 = x0 + K, pstride = K). Interior windows read straight from
 * the input rows (conv2d_packed_rows): k_h runs of k_w * in_c values (a
 * multiple of 4), one pair per call; runs r >= wrap lie `back` bytes lower
 * (the window's rows wrap around the ring of input rows). */
typedef struct {
    const int8_t *x0, *x1;
    int32_t pstride, run, step, wrap, back;
} pair_src;

#define CONV_NO_WRAP 0x7fffffff

/* Values [k0, k0 + kn) of pixels x0, x1 widened into q (the layout above
 * without the tail). Pieces are multiples of 4 (run, k0 and kn are, or there
 * is one run), so the words equal those of the same values copied into one
 * row first. */
static inline __attribute__((always_inline)) int32_t *window_widen(const int8_t *x0, const int8_t *x1, int32_t run,
                                                                   int32_t step, int32_t wrap, int32_t back,
                                                                   int32_t k0, int32_t kn, int32_t *q)
{
    if (k0 + kn <= run) {   /* rows of K values; a window's first run */
        return tinyml_widen_pair_s8(x0 + k0, x1 + k0, kn, q);
    }
    int32_t r = k0 / run;
    int32_t c = k0 - r * run;
    while (kn > 0) {
        const int32_t piece = run - c < kn ? run - c : kn;
        const ptrdiff_t at = (ptrdiff_t)r * step + c - (r >= wrap ? back : 0);
        q = tinyml_widen_pair_s8(x0 + at, x1 + at, piece, q);
        kn -= piece;
        c = 0;
        ++r;
    }
    return q;
}

/* Pixels 0..pixels-1 (an even count) in pairs. */
static inline __attribute__((always_inline)) void pair_rows(const tinyml_fc_layer *l, int32_t pixels,
                                                            const int8_t *input, const int8_t *packed_filter,
                                                            int8_t *output, const int mode, const int clean)
{
    const int32_t n = l->accum_depth, od = l->output_depth;
    const pair_epilogue e = {l->bias, l->multiplier, l->shift, l->output_offset, l->activation.min,
                             l->activation.max};
    int32_t q[CONV_PAIR_DEPTH + 8];   /* n4 words of pairs (+ the tail block) + 2 words per tail value */
    for (int32_t b = 0; b < pixels; b += 2) {
        const int8_t *x0 = input + (size_t)b * n;
        /* Both input rows are read into q before any output byte is written. */
        pair_extend(x0, x0 + n, n, q);
        pair_outputs(&e, n, od, q, packed_filter, output + (size_t)b * od, output + (size_t)(b + 1) * od, mode,
                     clean);
    }
}

/* ---- K > CONV_PAIR_DEPTH: the same pixel-pair product over depth chunks.
 * The pair buffer holds one chunk of at most CONV_CHUNK_DEPTH depth values of
 * both pixels (a multiple of 4; the K % 4 tail values go with the last chunk);
 * the running sums of up to CONV_CHUNK_CHANNELS output channels x 2 pixels are
 * carried from chunk to chunk in a stack array (the exact int32 sums, added in
 * another order: the same integers). More channels than that take several
 * passes over the chunks, each widening the chunks again. Stack: the chunk
 * buffer plus the sums stay below tinyml_fc_s8's own frame, so the stack
 * estimate does not grow. */
#define CONV_CHUNK_DEPTH 80
#define CONV_CHUNK_CHANNELS 32

/* Sums of output channels [o0, o1) (o0 a multiple of 4) x pixels x0, x1 over
 * depth values [k0, k0 + kn) from the chunk buffer q; s holds 2 sums per
 * channel from o0 ({o . x0, o . x1}); the tail values are in q only when
 * `last`. */
static inline __attribute__((always_inline)) void chunk_sums(int32_t n, int32_t od, int32_t k0, int32_t kn4, int last,
                                                             const int32_t *q, const int8_t *packed_filter,
                                                             int32_t o0, int32_t o1, int32_t *s, const int clean)
{
    const int32_t n4 = n & ~3, tail = n & 3, nt = last ? tail : 0;
    const int32_t grouped = (od >> 2) << 2;
    const int32_t og = o1 < grouped ? o1 : grouped;
    const int8_t *g = packed_filter + (size_t)o0 * n;   /* o0: a multiple of 4 */
    int32_t *a = s;
    int32_t o = o0;
    for (; o < og; o += 4) {
        pair_2x2_at(q, g + 4 * k0, kn4, g + 4 * n4, nt, a, clean, 0, 0);
        pair_2x2_at(q, g + 4 * k0 + 8, kn4, g + 4 * n4 + 2 * tail, nt, a + 4, clean, 0, 0);
        g += 4 * n;
        a += 8;
    }
    for (; o < o1; ++o) {
        pair_row(q, g + k0, kn4, nt, 0, a);
        g += n;
        a += 2;
    }
}

/* All output channels of pixels x0, x1 (windows as window_widen) by depth
 * chunks; q and s are the caller's chunk buffer and running sums. */
static inline __attribute__((always_inline)) void chunk_pair(const tinyml_fc_layer *l, const pair_epilogue *ep,
                                                             const int8_t *x0, const int8_t *x1, int32_t run,
                                                             int32_t step, int32_t wrap, int32_t back,
                                                             const int8_t *packed_filter, int8_t *y0,
                                                             int8_t *y1, int32_t *q, int32_t *s, const int mode,
                                                             const int clean)
{
    const int32_t n = l->accum_depth, od = l->output_depth, n4 = n & ~3;
    const pair_epilogue e = *ep;
    {
        /* One pass reads all of x0, x1 before it writes an output; several
         * passes (od > CONV_CHUNK_CHANNELS) only run where no output overlaps
         * the windows (im2col copies, or conv2d_packed_rows' range check). */
        for (int32_t o0 = 0; o0 < od; o0 += CONV_CHUNK_CHANNELS) {
            const int32_t o1 = od - o0 > CONV_CHUNK_CHANNELS ? o0 + CONV_CHUNK_CHANNELS : od;
            for (int32_t o = o0; o < o1; ++o) {
                s[2 * (o - o0)] = e.bias[o];
                s[2 * (o - o0) + 1] = e.bias[o];
            }
            for (int32_t k0 = 0; k0 < n4; k0 += CONV_CHUNK_DEPTH) {
                const int32_t kn4 = n4 - k0 > CONV_CHUNK_DEPTH ? CONV_CHUNK_DEPTH : n4 - k0;
                const int last = k0 + kn4 == n4;
                int32_t *t = window_widen(x0, x1, run, step, wrap, back, k0, kn4, q);
                if (last && n4 != n) {
                    for (int32_t i = n4; i < n; ++i) {
                        t[0] = x0[i];
                        t[1] = x1[i];
                        t += 2;
                    }
                }
                chunk_sums(n, od, k0, kn4, last, q, packed_filter, o0, o1, s, clean);
            }
            if (mode >= 1) {
                const int32_t zph = 2 * e.zp + 1;
                for (int32_t o = o0; o < o1; ++o) {
                    const fast_q f = fast_make(e.mult[o], e.shift[o], zph);
                    y0[o] = fast_finish(&e, s[2 * (o - o0)], f, mode);
                    y1[o] = fast_finish(&e, s[2 * (o - o0) + 1], f, mode);
                }
            } else {
                for (int32_t o = o0; o < o1; ++o) {
                    const int32_t m = e.mult[o], sh = e.shift[o];
                    y0[o] = pair_finish(&e, s[2 * (o - o0)], m, sh, mode);
                    y1[o] = pair_finish(&e, s[2 * (o - o0) + 1], m, sh, mode);
                }
            }
        }
    }
}

static inline __attribute__((always_inline)) void chunk_rows(const tinyml_fc_layer *l, int32_t pixels,
                                                             const pair_src *src, const int8_t *packed_filter,
                                                             int8_t *output, const int mode, const int clean)
{
    const int32_t od = l->output_depth;
    const pair_epilogue e = {l->bias, l->multiplier, l->shift, l->output_offset, l->activation.min,
                             l->activation.max};
    int32_t q[CONV_CHUNK_DEPTH + 6];          /* one chunk's words + 2 words per tail value */
    int32_t s[2 * CONV_CHUNK_CHANNELS];       /* running sums, 2 pixels per channel */
    for (int32_t b = 0; b < pixels; b += 2) {
        const size_t at = (size_t)b * src->pstride;
        int8_t *y0 = output + (size_t)b * od;
        chunk_pair(l, &e, src->x0 + at, src->x1 + at, src->run, src->step, src->wrap, src->back, packed_filter, y0,
                   y0 + od, q, s, mode,
                   clean);
    }
}

/* One copy of chunk_rows per epilogue, each in its own frame (the stack
 * estimate then counts one set of buffers); the _clean copies for K a
 * multiple of 8 (every chunk then whole two-block trips, no tail). */
#define CONV_CHUNK_ROWS(name, mode, clean)                                                                  \
    static __attribute__((noinline)) void name(const tinyml_fc_layer *l, int32_t pixels, const pair_src *src,  \
                                               const int8_t *packed_filter, int8_t *output)                 \
    {                                                                                                       \
        chunk_rows(l, pixels, src, packed_filter, output, mode, clean);                                     \
    }
CONV_CHUNK_ROWS(chunk_rows_double, 0, 0)
CONV_CHUNK_ROWS(chunk_rows_bounded, 1, 0)
CONV_CHUNK_ROWS(chunk_rows_bounded_ssat, 2, 0)
CONV_CHUNK_ROWS(chunk_rows_bounded_clean, 1, 1)
CONV_CHUNK_ROWS(chunk_rows_bounded_ssat_clean, 2, 1)
#undef CONV_CHUNK_ROWS

/* chunk_rows with the epilogue (and the whole-trip form) chosen once per call
 * by direct calls (a chosen function pointer would make the static stack
 * estimate a lower bound). */
static inline __attribute__((always_inline)) void chunk_rows_any(const tinyml_fc_layer *l, int32_t pixels,
                                                                 const pair_src *src, const int8_t *packed_filter,
                                                                 int8_t *output)
{
    const int full = l->activation.min == -128 && l->activation.max == 127;
    const int clean = (l->accum_depth & 7) == 0;
    if (!l->fast_requant) {
        chunk_rows_double(l, pixels, src, packed_filter, output);
    } else if (full) {
        if (clean) {
            chunk_rows_bounded_ssat_clean(l, pixels, src, packed_filter, output);
        } else {
            chunk_rows_bounded_ssat(l, pixels, src, packed_filter, output);
        }
    } else if (clean) {
        chunk_rows_bounded_clean(l, pixels, src, packed_filter, output);
    } else {
        chunk_rows_bounded(l, pixels, src, packed_filter, output);
    }
}

static void conv_tiny_s8(const tinyml_fc_layer *l, int32_t pixels, const int8_t *input,
                         const int8_t *packed_filter, int8_t *output);

/* kind 2 (conv_pair_ok): chunk_rows with the epilogue chosen once per call;
 * kind 3: conv_tiny_s8 (one out-of-line entry for both keeps the caller's
 * frame as small as before them). */
static __attribute__((noinline)) void conv_chunks_s8(const tinyml_fc_layer *l, int kind, int32_t pixels,
                                                     const pair_src *src, const int8_t *packed_filter,
                                                     int8_t *output)
{
    if (kind == 3) {
        conv_tiny_s8(l, pixels, src->x0, packed_filter, output);
        return;
    }
    chunk_rows_any(l, pixels, src, packed_filter, output);
}

/* ---- tiny-depth pointwise products (the direct 1x1 form, K = 4, 8 or 12,
 * fast epilogue): a run of pixels is sign-extended once into a stack buffer
 * (per pixel K / 2 words, as the pair buffer's per-pixel halves), then each output
 * channel keeps its K weights as K / 2 halfword-pair registers across the run,
 * so a pixel costs K / 2 SMLAD plus the epilogue instead of fc.c's per-pixel
 * weight loads and extensions. Arithmetic: the exact int32 sum of w * x, the
 * bias added first (the same integers as tinyml_fc_s8), then
 * tinyml_requantize_bounded as fast_finish (fast_requant only).
 * Overlap: a run starts at an even pixel, has an even length (but the last)
 * and all its inputs are read before any of its outputs is written, so each
 * output pixel is written after the inputs tinyml_fc_s8's pair order would
 * have read by then (the FC overlap contract holds). */
#define CONV_TINY_WORDS 128   /* the run buffer: 512 B of stack */

/* Output channels of pixels 0..pn-1 of a run from its buffer q (per pixel
 * 2 kb words of halfword pairs, then the nt tail values as words; K = 4 kb + nt):
 * channel o keeps its weights in registers (kb word pairs, nt values) across
 * the run; pixel i's output at y0 + i * od. */
static inline __attribute__((always_inline)) void tiny_outputs(const pair_epilogue *ep, int32_t od, const int32_t *q,
                                                               int32_t pn, const int8_t *packed_filter, int8_t *y0,
                                                               const int kb, const int nt, const int mode)
{
    const int32_t n = 4 * kb + nt, grouped = (od >> 2) << 2, words = 2 * kb + nt;
    const pair_epilogue e = *ep;
    for (int32_t o = 0; o < od; ++o) {
        /* Channel o's word j: in its packed group (16 bytes per depth block,
         * then the groups' tails row by row) or plain row. */
        const int8_t *g = packed_filter + (size_t)(o >> 2) * 4 * n;
        const int8_t *w = o < grouped ? g + 4 * (o & 3) : packed_filter + (size_t)o * n;
        const int8_t *wt = o < grouped ? g + 16 * kb + (o & 3) * nt : w + 4 * kb;
        const int32_t step = o < grouped ? 16 : 4;
        int32_t we[3], wo[3], wt_[3];
        /* The weights doubled (halfwords of at most 254 in magnitude) and the
         * bias doubled: the run's sums are 2 acc (|acc| < 2^30, so no term
         * overflows), fast_finish2's input, one shift fewer per output. */
        for (int j = 0; j < kb; ++j) {
            const int32_t v = tinyml_read_s8x4(w + j * step);
            const int32_t ve = __sxtb16(v), vo = tinyml_sxtb16_ror8(v);
            we[j] = __sadd16(ve, ve);
            wo[j] = __sadd16(vo, vo);
        }
        for (int j = 0; j < nt; ++j) {
            wt_[j] = 2 * wt[j];
        }
        const int32_t b = (int32_t)((uint32_t)e.bias[o] << 1);
        const fast_q f = fast_make(e.mult[o], e.shift[o], 2 * e.zp + 1);
        const int32_t *qp = q, *end = q + pn * words;
        int8_t *y = y0 + o;
        while (qp < end) {
            int32_t acc = b;
            /* Depth block j of this pixel: one LDRD (q: an int32 array). */
#define CONV_TINY_STEP(j)                                                        \
    do {                                                                         \
        int32_t xe, xo;                                                          \
        TINYML_LDRD(qp, 8 * (j), xe, xo);                                        \
        acc = __smlad(we[j], xe, acc);                                           \
        acc = __smlad(wo[j], xo, acc);                                           \
    } while (0)
            if (kb > 0) {
                CONV_TINY_STEP(0);
            }
            if (kb > 1) {
                CONV_TINY_STEP(1);
            }
            if (kb > 2) {
                CONV_TINY_STEP(2);
            }
#undef CONV_TINY_STEP
            for (int j = 0; j < nt; ++j) {
                acc += wt_[j] * qp[2 * kb + j];
            }
            qp += words;
            *y = fast_finish2(&e, acc, f, mode);
            y += od;
        }
    }
}

static inline __attribute__((always_inline)) void tiny_rows(const tinyml_fc_layer *l, int32_t pixels,
                                                            const int8_t *input, const int8_t *packed_filter,
                                                            int8_t *output, const int kb, const int mode)
{
    const int32_t n = 4 * kb, od = l->output_depth;
    const int32_t run = (CONV_TINY_WORDS / (2 * kb)) & ~1;
    const pair_epilogue e = {l->bias, l->multiplier, l->shift, l->output_offset, l->activation.min,
                             l->activation.max};
    int32_t q[CONV_TINY_WORDS];
    for (int32_t p0 = 0; p0 < pixels; p0 += run) {
        const int32_t pn = pixels - p0 < run ? pixels - p0 : run;
        const int8_t *x = input + (size_t)p0 * n;
        int32_t *t = q;
        for (int32_t i = 0; i < pn * kb; ++i) {
            const int32_t v = tinyml_read_s8x4(x + 4 * i);
            t[0] = __sxtb16(v);
            t[1] = tinyml_sxtb16_ror8(v);
            t += 2;
        }
        tiny_outputs(&e, od, q, pn, packed_filter, output + (size_t)p0 * od, kb, 0, mode);
    }
}

#define CONV_TINY_ROWS(name, kb, mode)                                                                      \
    static __attribute__((noinline)) void name(const tinyml_fc_layer *l, int32_t pixels, const int8_t *input, \
                                               const int8_t *packed_filter, int8_t *output)                 \
    {                                                                                                       \
        tiny_rows(l, pixels, input, packed_filter, output, kb, mode);                                       \
    }
CONV_TINY_ROWS(tiny_rows_k4, 1, 1)
CONV_TINY_ROWS(tiny_rows_k4_ssat, 1, 2)
CONV_TINY_ROWS(tiny_rows_k8, 2, 1)
CONV_TINY_ROWS(tiny_rows_k8_ssat, 2, 2)
CONV_TINY_ROWS(tiny_rows_k12, 3, 1)
CONV_TINY_ROWS(tiny_rows_k12_ssat, 3, 2)
#undef CONV_TINY_ROWS

/* tiny_rows for K = l->accum_depth (4, 8 or 12), the epilogue chosen once per call (by direct calls:
   a call through a chosen function pointer would make the static stack estimate a lower bound). */
static void conv_tiny_s8(const tinyml_fc_layer *l, int32_t pixels, const int8_t *input,
                         const int8_t *packed_filter, int8_t *output)
{
    const int full = l->activation.min == -128 && l->activation.max == 127;
    switch (l->accum_depth) {
    case 4:
        if (full) {
            tiny_rows_k4_ssat(l, pixels, input, packed_filter, output);
        } else {
            tiny_rows_k4(l, pixels, input, packed_filter, output);
        }
        break;
    case 8:
        if (full) {
            tiny_rows_k8_ssat(l, pixels, input, packed_filter, output);
        } else {
            tiny_rows_k8(l, pixels, input, packed_filter, output);
        }
        break;
    default:
        if (full) {
            tiny_rows_k12_ssat(l, pixels, input, packed_filter, output);
        } else {
            tiny_rows_k12(l, pixels, input, packed_filter, output);
        }
        break;
    }
}

/* Which product takes this layer: 1 conv_pairs_s8, 2 conv_chunks_s8,
 * 3 conv_tiny_s8 (direct 1x1 with K 4, 8 or 12 and the fast epilogue), 0 none
 * (tinyml_fc_s8; also for a packed filter that is not word aligned, as
 * pair_2x2_at's LDRDs need). `windows`: the pixels are the caller's im2col copies,
 * so outputs never overlap them; otherwise (the direct 1x1 product, where the
 * FC overlap contract lets a pixel pair's outputs cover its own input) the
 * chunked product must finish all channels in one pass. */
static inline int conv_pair_ok(const tinyml_fc_layer *l, const int8_t *packed_filter, int windows)
{
    if (l->output_depth <= 0 || !l->double_rounding || l->table || l->filter_offset != 0 || !l->bias ||
        ((uintptr_t)packed_filter & 3) != 0) {
        return 0;
    }
    if (l->accum_depth < CONV_PAIR_MIN_DEPTH) {
        const int32_t k = l->accum_depth;
        return !windows && l->fast_requant && (k == 4 || k == 8 || k == 12) ? 3 : 0;
    }
    if (l->accum_depth <= CONV_PAIR_DEPTH) {
        return 1;
    }
    return windows || l->output_depth <= CONV_CHUNK_CHANNELS ? 2 : 0;
}

/* pair_rows with the epilogue chosen once per call (its own frame: the
 * buffer is not on the stack while tinyml_fc_s8 runs). */
static __attribute__((noinline)) void conv_pairs_s8(const tinyml_fc_layer *l, int32_t pixels, const int8_t *input,
                                                    const int8_t *packed_filter, int8_t *output)
{
    const int full = l->activation.min == -128 && l->activation.max == 127;
    const int clean = (l->accum_depth & 7) == 0;   /* whole two-block trips, no tail */
    if (l->fast_requant) {
        if (full) {
            if (clean) {
                pair_rows(l, pixels, input, packed_filter, output, 2, 1);
            } else {
                pair_rows(l, pixels, input, packed_filter, output, 2, 0);
            }
        } else {
            if (clean) {
                pair_rows(l, pixels, input, packed_filter, output, 1, 1);
            } else {
                pair_rows(l, pixels, input, packed_filter, output, 1, 0);
            }
        }
    } else {
        pair_rows(l, pixels, input, packed_filter, output, 0, 0);
    }
}

/* ---- interior pixel pairs widened straight from the input rows (no im2col
 * copy): a window with every tap in the image and unit column dilation is
 * k_h runs of k_w * in_c contiguous values (a multiple of 4 here), so
 * window_widen fills the pair buffer with the words the copied window would
 * give, and the products, sums and epilogues are those of pair_rows /
 * chunk_rows (the same integers). One pixel pair per call. */
/* Output pixels y0, y1 (adjacent) of the windows at x0, x1 (kind 1 or 2 of
 * conv_pair_ok); inlined, so the stack holds no frame between the caller
 * and the products. */
static inline __attribute__((always_inline)) void conv_window_s8(const tinyml_fc_layer *l, int kind, const int8_t *x0,
                                                     const int8_t *x1, int32_t run, int32_t step, int32_t wrap,
                                                     int32_t back, const int8_t *packed_filter, int8_t *y0)
{
    const pair_src src = {x0, x1, 0, run, step, wrap, back};
    (void)kind;   /* 2: conv2d_packed_rows takes the windows of chunked products only */
    chunk_rows_any(l, 2, &src, packed_filter, y0);
}

/* The first byte of output pixel q's window when all its taps are in the
 * image, else NULL; *wrap: the first of its k_h rows that wraps around the
 * ring to its start (k_h when none: the window spans fewer rows than the
 * ring, so it wraps at most once). */
static inline const int8_t *window_at(const tinyml_conv_packed_params *p, const int8_t *rows, int32_t ring,
                                      int32_t q, int32_t *wrap)
{
    const int32_t oy = q / p->out_w, ox = q - oy * p->out_w;
    const int32_t iy0 = oy * p->stride_h - p->pad_h, ix0 = ox * p->stride_w - p->pad_w;
    const int32_t span = (p->k_h - 1) * p->dilation_h;
    if (iy0 < 0 || iy0 + span >= p->in_h || ix0 < 0 || ix0 + p->k_w > p->in_w) {
        return NULL;
    }
    const int32_t slot = iy0 < ring ? iy0 : iy0 % ring;
    if (slot + span >= ring) {
        if (span >= ring) {
            return NULL;
        }
        *wrap = (ring - slot + p->dilation_h - 1) / p->dilation_h;
    } else {
        *wrap = p->k_h;
    }
    return rows + ((size_t)slot * p->in_w + ix0) * p->in_c;
}

/* tinyml_fc_s8 for a convolution's pixels (rows of accum_depth values): the
 * same bytes and overlap contract; conv_pairs_s8 when `pairs` (conv_pair_ok,
 * decided once per call of the caller). */
static inline __attribute__((always_inline)) tinyml_status conv_gemm_s8(const tinyml_fc_layer *l, int pairs,
                                                                        int32_t pixels, const int8_t *input,
                                                                        const int8_t *packed_filter, int8_t *output)
{
    if (!pairs || (pixels < 2 && pairs != 3)) {
        return tinyml_fc_s8(l, pixels, input, packed_filter, output);
    }
    const int32_t even = pairs == 3 ? pixels : pixels & ~1;   /* conv_tiny_s8 takes any count */
    if (pairs == 1) {
        conv_pairs_s8(l, even, input, packed_filter, output);
    } else {
        const int32_t n = l->accum_depth;
        const pair_src src = {input, input + n, n, n, 0, CONV_NO_WRAP, 0};
        conv_chunks_s8(l, pairs, even, &src, packed_filter, output);
    }
    if (even == pixels) {
        return TINYML_OK;
    }
    /* An odd last pixel: tinyml_fc_s8's one-row loop (4 channels per pass)
     * costs less than a pair pass with a duplicated pixel. */
    return tinyml_fc_s8(l, 1, input + (size_t)even * l->accum_depth, packed_filter,
                        output + (size_t)even * l->output_depth);
}
#else
#define CONV_CHUNK_CHANNELS 32

static inline const int8_t *window_at(const tinyml_conv_packed_params *p, const int8_t *rows, int32_t ring,
                                      int32_t q, int32_t *wrap)
{
    (void)p;
    (void)rows;
    (void)ring;
    (void)q;
    (void)wrap;
    return NULL;
}

static inline void conv_window_s8(const tinyml_fc_layer *l, int kind, const int8_t *x0, const int8_t *x1,
                                  int32_t run, int32_t step, int32_t wrap, int32_t back,
                                  const int8_t *packed_filter, int8_t *y0)
{
    (void)l; (void)kind; (void)x0; (void)x1; (void)run; (void)step; (void)wrap; (void)back; (void)packed_filter;
    (void)y0;
}

static inline int conv_pair_ok(const tinyml_fc_layer *l, const int8_t *packed_filter, int windows)
{
    (void)l;
    (void)packed_filter;
    (void)windows;
    return 0;
}

static inline tinyml_status conv_gemm_s8(const tinyml_fc_layer *l, int pairs, int32_t pixels, const int8_t *input,
                                         const int8_t *packed_filter, int8_t *output)
{
    (void)pairs;
    return tinyml_fc_s8(l, pixels, input, packed_filter, output);
}
#endif

/* Output pixels first..first + pixels - 1 in pairs: each window copied
 * (im2col_pixel) into scratch, or with `direct` (chunked products, windows
 * that outputs never overlap when channels take several passes) a pair of
 * interior windows read straight from the input rows. */
static inline __attribute__((always_inline)) tinyml_status packed_windows(
    const tinyml_conv_packed_params *p, int32_t ring, const int8_t *rows, const int8_t *packed_filter, int32_t first,
    int32_t pixels, int8_t *output, int pairs, int8_t *scratch, const int direct)
{
    const int32_t k = p->layer.accum_depth, oc = p->layer.output_depth;
    for (int32_t px = 0; px < pixels; px += 2) {
        const int32_t n = pixels - px >= 2 ? 2 : 1;
        if (direct && n == 2) {
            int32_t w0 = 0, w1 = 0;
            const int8_t *x0 = window_at(p, rows, ring, first + px, &w0);
            const int8_t *x1 = x0 ? window_at(p, rows, ring, first + px + 1, &w1) : NULL;
            if (x1 && w0 == w1) {   /* both windows' rows wrap alike (one output row) */
                conv_window_s8(&p->layer, pairs, x0, x1, p->k_w * p->in_c, p->dilation_h * p->in_w * p->in_c, w0,
                               ring * p->in_w * p->in_c, packed_filter, output + (size_t)px * oc);
                continue;
            }
        }
        for (int32_t u = 0; u < n; ++u) {
            const int32_t q = first + px + u;
            im2col_pixel(p, rows, ring, q / p->out_w, q % p->out_w, scratch + u * k);
        }
        /* Both windows are copied (or widened) before any output byte is
         * written, so the output may overlap the input as the planner's row
         * rule allows. */
        const tinyml_status st = conv_gemm_s8(&p->layer, pairs, n, scratch, packed_filter, output + (size_t)px * oc);
        if (st != TINYML_OK) {
            return st;
        }
    }
    return TINYML_OK;
}

/* The direct 1x1 product's kind: conv_pair_ok's, or the chunked product with
 * several channel passes (K > 128, more than CONV_CHUNK_CHANNELS channels)
 * when no pixel pair's outputs reach its own or later input pixels (the
 * passes write a pair's first channels before they read its inputs again):
 * the output lies outside the input, or starts at least two output pixels
 * before it and an output pixel is no longer than an input pixel (output
 * pair b then ends before input pixel b). */
static inline int direct_passes(const tinyml_fc_layer *l, int pairs, const int8_t *packed_filter, int32_t pixels,
                                const int8_t *x, const int8_t *y)
{
    if (pairs != 0 || l->accum_depth <= 128 /* CONV_PAIR_DEPTH */ || l->output_depth <= CONV_CHUNK_CHANNELS) {
        return pairs;
    }
    const uintptr_t xs = (uintptr_t)x, ys = (uintptr_t)y;
    const uintptr_t xe = xs + (size_t)pixels * l->accum_depth, ye = ys + (size_t)pixels * l->output_depth;
    const int apart = ye <= xs || ys >= xe ||
                      (ys < xs && l->output_depth <= l->accum_depth && xs - ys >= 2 * (uintptr_t)l->output_depth);
    return apart ? conv_pair_ok(l, packed_filter, 1) : 0;
}

int32_t tinyml_conv2d_packed_s8_scratch_size(const tinyml_conv_packed_params *p)
{
    const int direct = p->k_h == 1 && p->k_w == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                       p->pad_h == 0 && p->pad_w == 0;
    return direct ? 0 : tinyml_pad4(2 * p->layer.accum_depth);
}

tinyml_status tinyml_conv2d_packed_rows_s8(const tinyml_ctx *ctx, const tinyml_conv_packed_params *p,
                                           int32_t ring, const int8_t *rows, const int8_t *packed_filter,
                                           int32_t oy0, int32_t oy1, int8_t *output)
{
    const int32_t k = p->layer.accum_depth, oc = p->layer.output_depth;
    if (k != p->k_h * p->k_w * p->in_c || p->stride_h <= 0 || p->stride_w <= 0 || p->dilation_h <= 0 ||
        p->dilation_w <= 0 || ring <= 0 || oy0 < 0 || oy1 > p->out_h || oy0 > oy1) {
        return TINYML_ERROR_ARG;
    }
    const int32_t need = tinyml_conv2d_packed_s8_scratch_size(p);
    TINYML_SCRATCH_CHECK(ctx, need);
    const int pairs = conv_pair_ok(&p->layer, packed_filter, need != 0);
    if (need == 0) {
        /* 1x1, stride 1, no padding: each output row is a matrix product over its pixels. */
        if (ring >= p->in_h) {
            const int32_t px = (oy1 - oy0) * p->out_w;
            const int8_t *x = input_row(p, rows, ring, oy0);
            return conv_gemm_s8(&p->layer, direct_passes(&p->layer, pairs, packed_filter, px, x, output), px, x,
                                packed_filter, output);
        }
        for (int32_t oy = oy0; oy < oy1; ++oy) {
            const int8_t *x = input_row(p, rows, ring, oy);
            int8_t *y = output + (size_t)(oy - oy0) * p->out_w * oc;
            const tinyml_status st = conv_gemm_s8(&p->layer, direct_passes(&p->layer, pairs, packed_filter, p->out_w,
                                                                           x, y),
                                                  p->out_w, x, packed_filter, y);
            if (st != TINYML_OK) {
                return st;
            }
        }
        return TINYML_OK;
    }
    int8_t *scratch = ctx ? (int8_t *)ctx->buf : NULL;
    if (!scratch) {
        return TINYML_ERROR_ARG;
    }
    const int32_t first = oy0 * p->out_w, pixels = (oy1 - oy0) * p->out_w;
    const int32_t run = p->k_w * p->in_c;
    int direct = pairs == 2 && p->dilation_w == 1 && (run & 3) == 0;
    if (direct && oc > CONV_CHUNK_CHANNELS) {
        /* Several channel passes re-read the windows after writing outputs:
         * only when the outputs lie outside the input rows. */
        const int8_t *in_end = rows + (size_t)ring * p->in_w * p->in_c;
        const int8_t *out_end = output + (size_t)pixels * oc;
        direct = out_end <= rows || output >= in_end;
    }
    if (direct) {
        return packed_windows(p, ring, rows, packed_filter, first, pixels, output, pairs, scratch, 1);
    }
    return packed_windows(p, ring, rows, packed_filter, first, pixels, output, pairs, scratch, 0);
}

tinyml_status tinyml_conv2d_packed_s8(const tinyml_ctx *ctx, const tinyml_conv_packed_params *p, int32_t batches,
                                      const int8_t *input, const int8_t *packed_filter, int8_t *output)
{
    if (batches < 0) {
        return TINYML_ERROR_ARG;
    }
    const size_t in_size = (size_t)p->in_h * p->in_w * p->in_c;
    const size_t out_size = (size_t)p->out_h * p->out_w * p->layer.output_depth;
    for (int32_t b = 0; b < batches; ++b) {
        const tinyml_status st = tinyml_conv2d_packed_rows_s8(ctx, p, p->in_h, input + b * in_size, packed_filter,
                                                              0, p->out_h, output + b * out_size);
        if (st != TINYML_OK) {
            return st;
        }
    }
    return TINYML_OK;
}
