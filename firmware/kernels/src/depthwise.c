/* tinyml kernels: DEPTHWISE_CONV_2D (int8, per-channel requantization). See conv.h. */
#include "tinyml/conv.h"
#include "tinyml/fc.h"
#include "depthwise_grouped.h"


/* Constants of one depthwise call, copied to the stack so the int8 output
 * stores cannot force reloads through the parameter pointers. */
typedef struct {
    int32_t ch, io, out_off, lo, hi;
    int32_t full;              /* clamp range is all of int8: one SSAT */
    int32_t fast;              /* params->fast_requant: tinyml_requantize_bounded */
    size_t x_tap, x_row;
    const int32_t *bias, *mult;
    const int8_t *shift;
    int32_t grouped;           /* params->weights_grouped (multiplier 1) */
    int32_t k_w, taps;         /* filter width, k_h * k_w */
} dw_consts;

/* Where the weights of channels c..c+3 (or of tail channel c) start for the
 * window tap t0 = ky * k_w + kx, and how far apart their taps and rows are,
 * in either filter layout (conv.h). */
typedef struct {
    const int8_t *w;
    size_t tap, row;
} dw_wwalk;

static inline dw_wwalk dw_weights_at(const dw_consts *k, const int8_t *filter, int32_t t0, int32_t c)
{
    dw_wwalk r;
    const int32_t c4 = k->ch & ~3;
    if (!k->grouped) {
        r.w = filter + (size_t)t0 * k->ch + c;
        r.tap = (size_t)k->ch;
    } else if (c < c4) {
        r.w = filter + (size_t)c * k->taps + 4 * t0;
        r.tap = 4;
    } else {
        r.w = filter + (size_t)c4 * k->taps + (size_t)t0 * (k->ch - c4) + (c - c4);
        r.tap = (size_t)(k->ch - c4);
    }
    r.row = r.tap * k->k_w;
    return r;
}

static inline int8_t dw_finish(const dw_consts *k, int32_t acc, int32_t c)
{
    if (k->fast) {
        acc = tinyml_requantize_bounded(acc, k->mult[c], k->shift[c], k->out_off);
    } else {
        acc = tinyml_conv_requantize(acc, k->mult[c], k->shift[c]) + k->out_off;
    }
#if TINYML_DSP
    if (k->full) {
        return (int8_t)__ssat(acc, 8);
    }
#endif
    return (int8_t)tinyml_clamp(acc, k->lo, k->hi);
}

/* dw_finish with the requantization flavour fixed at compile time. */
static inline __attribute__((always_inline)) int8_t dw_finish_m(const dw_consts *k, int32_t acc, int32_t c,
                                                                const int fast)
{
    if (fast) {
        acc = tinyml_requantize_bounded(acc, k->mult[c], k->shift[c], k->out_off);
    } else {
        acc = tinyml_conv_requantize(acc, k->mult[c], k->shift[c]) + k->out_off;
    }
#if TINYML_DSP
    if (k->full) {
        return (int8_t)__ssat(acc, 8);
    }
#endif
    return (int8_t)tinyml_clamp(acc, k->lo, k->hi);
}

#if TINYML_DSP
/* SXTAB16 of x rotated right by 8 (bytes 1 and 3) plus a, in one instruction. */
static inline int32_t sxtab16_ror8(int32_t a, int32_t x)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/* One tap of four channels: a[c] += w[c] * (x[c] + io). */
#define DW_TAP(xp, wp)                                                                  \
    do {                                                                                \
        const int32_t xv_ = tinyml_read_s8x4(xp);                                              \
        const int32_t wv_ = tinyml_read_s8x4(wp);                                              \
        const int32_t x02_ = (int32_t)__sxtab16(io2, xv_);                              \
        const int32_t x13_ = sxtab16_ror8(io2, xv_);                                    \
        const int32_t w02_ = (int32_t)__sxtb16(wv_);                                    \
        const int32_t w13_ = tinyml_sxtb16_ror8(wv_);                                   \
        a0 = __smlabb(w02_, x02_, a0);                                                  \
        a2 = __smlatt(w02_, x02_, a2);                                                  \
        a1 = __smlabb(w13_, x13_, a1);                                                  \
        a3 = __smlatt(w13_, x13_, a3);                                                  \
    } while (0)


#endif

/* Depth multiplier 1: channels are independent, so four neighbouring channels
 * are accumulated together over the in-image taps (nky x nkx of them, the
 * first at x00 / w00); with DSP, SXTAB16 adds the input offset to two bytes at
 * once and SMLABB/SMLATT multiply-accumulate each halfword. */
static inline __attribute__((always_inline)) void dw_pixel_m1(const dw_consts *k, const int8_t *x00,
                                                              const int8_t *filter, int32_t t0,
                                                              int32_t nky, int32_t nkx, int8_t *out_px)
{
    const int32_t ch = k->ch, io = k->io;
    int32_t c = 0;
#if TINYML_DSP
    /* input_offset in both halfwords: |io| <= 128, and x + io in [-255, 255]
     * fits a halfword, so SXTAB16's per-halfword add is exact. */
    const int32_t io2 = (int32_t)(((uint32_t)io & 0xffffu) | ((uint32_t)io << 16));
#endif
    for (; c + 4 <= ch; c += 4) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        TINYML_BIAS4(k->bias, c, a0, a1, a2, a3);
        const dw_wwalk ww = dw_weights_at(k, filter, t0, c);
        const int8_t *xr = x00 + c, *wr = ww.w;
        for (int32_t ky = 0; ky < nky; ++ky) {
            const int8_t *x = xr, *w = wr;
#if TINYML_DSP
            /* Border windows are 2 or 3 taps wide: unrolled, no per-tap loop. */
            if (nkx == 3) {
                DW_TAP(x, w);
                DW_TAP(x + k->x_tap, w + ww.tap);
                DW_TAP(x + 2 * k->x_tap, w + 2 * ww.tap);
                xr += k->x_row;
                wr += ww.row;
                continue;
            }
            if (nkx == 2) {
                DW_TAP(x, w);
                DW_TAP(x + k->x_tap, w + ww.tap);
                xr += k->x_row;
                wr += ww.row;
                continue;
            }
#endif
            for (int32_t kx = 0; kx < nkx; ++kx) {
#if TINYML_DSP
                DW_TAP(x, w);
#else
                a0 += w[0] * (x[0] + io);
                a1 += w[1] * (x[1] + io);
                a2 += w[2] * (x[2] + io);
                a3 += w[3] * (x[3] + io);
#endif
                x += k->x_tap;
                w += ww.tap;
            }
            xr += k->x_row;
            wr += ww.row;
        }
        out_px[c] = dw_finish(k, a0, c);
        out_px[c + 1] = dw_finish(k, a1, c + 1);
        out_px[c + 2] = dw_finish(k, a2, c + 2);
        out_px[c + 3] = dw_finish(k, a3, c + 3);
    }
    for (; c < ch; ++c) {
        int32_t acc = k->bias ? k->bias[c] : 0;
        const dw_wwalk ww = dw_weights_at(k, filter, t0, c);
        const int8_t *xr = x00 + c, *wr = ww.w;
        for (int32_t ky = 0; ky < nky; ++ky) {
            for (int32_t kx = 0; kx < nkx; ++kx) {
                acc += wr[kx * ww.tap] * (xr[kx * k->x_tap] + io);
            }
            xr += k->x_row;
            wr += ww.row;
        }
        out_px[c] = dw_finish(k, acc, c);
    }
}

#if TINYML_DSP
/* The full 3x3 window (interior pixels), taps unrolled. */
static inline __attribute__((always_inline)) void dw_pixel_m1_3x3_m(const dw_consts *k, const int8_t *x00,
                                                                    const int8_t *w00, int8_t *out_px, const int fast)
{
    const int32_t ch = k->ch;
    const int32_t io2 = (int32_t)(((uint32_t)k->io & 0xffffu) | ((uint32_t)k->io << 16));
    const size_t xt = k->x_tap, xr = k->x_row;
    int32_t c = 0;
    for (; c + 4 <= ch; c += 4) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        TINYML_BIAS4(k->bias, c, a0, a1, a2, a3);
        const int8_t *x = x00 + c, *w = w00 + c;
        if (xt == (size_t)ch) {
            /* Unit column dilation: input and filter taps are both ch bytes
             * apart, one stride register for both, rows unrolled. */
            const size_t s1 = xt, s2 = 2 * xt;
#define DW_ROW3()                                                                       \
            do {                                                                        \
                DW_TAP(x, w);                                                           \
                DW_TAP(x + s1, w + s1);                                                 \
                DW_TAP(x + s2, w + s2);                                                 \
            } while (0)
            DW_ROW3();
            x += xr;
            w += s2 + s1;
            DW_ROW3();
            x += xr;
            w += s2 + s1;
            DW_ROW3();
#undef DW_ROW3
        } else {
            for (int32_t ky = 0; ky < 3; ++ky) {
                DW_TAP(x, w);
                DW_TAP(x + xt, w + ch);
                DW_TAP(x + 2 * xt, w + 2 * ch);
                x += xr;
                w += 3 * ch;
            }
        }
        out_px[c] = dw_finish_m(k, a0, c, fast);
        out_px[c + 1] = dw_finish_m(k, a1, c + 1, fast);
        out_px[c + 2] = dw_finish_m(k, a2, c + 2, fast);
        out_px[c + 3] = dw_finish_m(k, a3, c + 3, fast);
    }
    for (; c < ch; ++c) {
        int32_t acc = k->bias ? k->bias[c] : 0;
        for (int32_t ky = 0; ky < 3; ++ky) {
            for (int32_t kx = 0; kx < 3; ++kx) {
                acc += w00[(ky * 3 + kx) * ch + c] * (x00[ky * xr + kx * xt + c] + k->io);
            }
        }
        out_px[c] = dw_finish_m(k, acc, c, fast);
    }
}

static void dw_pixel_m1_3x3(const dw_consts *k, const int8_t *x00, const int8_t *w00, int8_t *out_px)
{
    dw_pixel_m1_3x3_m(k, x00, w00, out_px, 0);
}

static void dw_pixel_m1_3x3_fast(const dw_consts *k, const int8_t *x00, const int8_t *w00, int8_t *out_px)
{
    dw_pixel_m1_3x3_m(k, x00, w00, out_px, 1);
}



#endif

#if TINYML_DSP
/* ---- 3x3 multiplier-1 rows on grouped weights, fast requantization (DSP) ----
 *
 * One output row at a time, channel groups outside, pixels inside: per group of
 * four channels the nine weight words are sign-extended once into halfword pairs
 * (wx) and the epilogue constants are computed once (mk, e), then every pixel of
 * the row runs its in-image taps (8 instructions per tap of four channels: LDR,
 * LDRD of the widened weights, two SXTAB16, four SMLAxy) and an 8-instruction
 * epilogue per channel.
 *
 * Arithmetic contract (TFLite reference DepthwiseConvPerChannel, multiplier 1,
 * fast_requant set by the generator, multipliers >= 0):
 *   acc = bias[c] + sum_{in-image taps} w[tap][c] * (x[tap][c] + io)
 *   out = clamp(tinyml_requantize_bounded(acc, m[c], shift[c], out_off), lo, hi)
 * The epilogue computes tinyml_requantize_bounded as
 *   t = SMMLAR(2 acc, m, kh) = SMMULR(2 acc, m) + kh,  kh = (2 out_off + 1) 2^(e-1),
 *   out = (t + (2 acc >> 31)) >> e,  e = -shift in 1..22:
 * the rounding correction takes the sign of 2 acc instead of the sign of
 * h = SMMULR(2 acc, m). They differ only when acc < 0 and h = 0 (m >= 0), and then
 * (kh - 1) >> e == kh >> e because kh mod 2^e = 2^(e-1): the same integers. */
typedef struct {
    int32_t wx[18];     /* tap t: wx[2t] = (w_c0, w_c2), wx[2t+1] = (w_c1, w_c3) as halfwords */
    int32_t mk[8];      /* channel j: mk[2j] = multiplier, mk[2j+1] = kh */
    int32_t e[4];       /* right shift, -shift */
    int32_t b[4];       /* bias (0 without one) */
    /* The row's geometry, the same for every group: window rows d1 bytes apart, taps xt,
     * pixels x_step (input) and out_step (output) bytes apart, nky window rows, input
     * offset in both halfwords, clamp range. */
    ptrdiff_t d1;
    size_t xt, x_step, out_step;
    int32_t nky, io2, lo, hi;
} dwx_group;

/* The constants of the group of channels c..c+3 (grouped filter layout, conv.h). */
static void dwx_group_setup(dwx_group *g, const dw_consts *k, const int8_t *filter, int32_t c)
{
    const int8_t *w = filter + (size_t)c * 9;
#pragma GCC unroll 9
    for (int32_t t = 0; t < 9; ++t) {
        const int32_t v = tinyml_read_s8x4(w + 4 * t);
        g->wx[2 * t] = (int32_t)__sxtb16(v);
        g->wx[2 * t + 1] = tinyml_sxtb16_ror8(v);
    }
    const int32_t zp21 = 2 * k->out_off + 1;
    const int32_t *m = k->mult + c;
    const int8_t *sh = k->shift + c;
#pragma GCC unroll 4
    for (int32_t j = 0; j < 4; ++j) {
        const int32_t s = sh[j];
        g->mk[2 * j] = m[j];
        g->mk[2 * j + 1] = (int32_t)((uint32_t)zp21 << (-s - 1));
        g->e[j] = -s;
    }
    if (k->bias) {
        __builtin_memcpy(g->b, k->bias + c, sizeof g->b);
    } else {
        __builtin_memset(g->b, 0, sizeof g->b);
    }
}

static inline __attribute__((always_inline)) int8_t dwx_finish(const dwx_group *g, int32_t acc, int32_t j,
                                                               int32_t lo, int32_t hi, const int full)
{
    const int32_t x2 = (int32_t)((uint32_t)acc << 1);
    int32_t t;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(t) : "r"(x2), "r"(g->mk[2 * j]), "r"(g->mk[2 * j + 1]));
    t = (t + (x2 >> 31)) >> g->e[j];
    if (full) {
        return (int8_t)__ssat(t, 8);
    }
    return (int8_t)tinyml_clamp(t, lo, hi);
}

/* One tap of four channels on widened weights: the input word at xaddr, the
 * weight pairs at byte offset woff from wp. */
#define DWX_TAP(xaddr, woff)                                                            \
    "ldr %[t0], " xaddr "\n\t"                                                          \
    "ldrd %[t2], %[t3], [%[wp], #" woff "]\n\t"                                         \
    "sxtab16 %[t1], %[io], %[t0], ror #8\n\t"                                           \
    "sxtab16 %[t0], %[io], %[t0]\n\t"                                                   \
    "smlabb %[a0], %[t2], %[t0], %[a0]\n\t"                                             \
    "smlatt %[a2], %[t2], %[t0], %[a2]\n\t"                                             \
    "smlabb %[a1], %[t3], %[t1], %[a1]\n\t"                                             \
    "smlatt %[a3], %[t3], %[t1], %[a3]\n\t"
/* A window row of 3, 2 or 1 taps at xp, xp + xs, xp + 2 xs; weights at wp + o, + 8, + 16. */
#define DWX_R3(o) DWX_TAP("[%[xp]]", #o) DWX_TAP("[%[xp], %[xs]]", #o " + 8")           \
                  DWX_TAP("[%[xp], %[xs], lsl #1]", #o " + 16")
#define DWX_R2(o) DWX_TAP("[%[xp]]", #o) DWX_TAP("[%[xp], %[xs]]", #o " + 8")
#define DWX_R1(o) DWX_TAP("[%[xp]]", #o)
/* The next window row: xr bytes further. */
#define DWX_NEXT "add %[xp], %[xp], %[xr]\n\t"
/* The whole in-image window as one asm block (no register shuffles between rows). */
#define DWX_WIN(body)                                                                   \
    do {                                                                                \
        const int8_t *xq_ = x;                                                          \
        int32_t t0, t1, t2, t3;                                                         \
        __asm__(body                                                                    \
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),           \
                  [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3),       \
                  [xp] "+r"(xq_)                                                        \
                : [xs] "r"(xt), [xr] "r"(d1), [wp] "r"(wq), [io] "r"(io2),              \
                  "m"(*(const int8_t(*)[])(x)), "m"(*(const int32_t(*)[18])(wq)));      \
    } while (0)

/* The window of nky (3, 2 or 1) in-image rows of R (DWX_R3/R2/R1) taps each. */
#define DWX_ROWS(R)                                                                     \
    do {                                                                                \
        if (nky == 3) {                                                                 \
            DWX_WIN(R(0) DWX_NEXT R(24) DWX_NEXT R(48));                                \
        } else if (nky == 2) {                                                          \
            DWX_WIN(R(0) DWX_NEXT R(24));                                               \
        } else {                                                                        \
            DWX_WIN(R(0));                                                              \
        }                                                                               \
    } while (0)

/* n pixels of one group whose windows have nkx in-image columns and nky in-image
 * rows (both fixed per compiled loop; rows d1 bytes apart): pixel p's first visited
 * tap at x + p * x_step, window tap tap0 first; outputs at out + p * out_step. */
static inline __attribute__((always_inline)) void dwx_loop(const dwx_group *gp, const int8_t *x, int32_t tap0,
                                                            int32_t n, int8_t *out, const int nkx, const int nky,
                                                            const int full)
{
    const int32_t *wq = gp->wx + 2 * tap0;
    const ptrdiff_t d1 = gp->d1;
    const size_t xt = gp->xt, x_step = gp->x_step, out_step = gp->out_step;
    const int32_t io2 = gp->io2, lo = gp->lo, hi = gp->hi;
    for (const int8_t *x_end = x + (size_t)n * x_step; x != x_end; x += x_step, out += out_step) {
        int32_t a0 = gp->b[0], a1 = gp->b[1], a2 = gp->b[2], a3 = gp->b[3];
        if (nkx == 3) {
            DWX_ROWS(DWX_R3);
        } else if (nkx == 2) {
            DWX_ROWS(DWX_R2);
        } else {
            DWX_ROWS(DWX_R1);
        }
        out[0] = dwx_finish(gp, a0, 0, lo, hi, full);
        out[1] = dwx_finish(gp, a1, 1, lo, hi, full);
        out[2] = dwx_finish(gp, a2, 2, lo, hi, full);
        out[3] = dwx_finish(gp, a3, 3, lo, hi, full);
    }
}

/* dwx_loop with the window height gp->nky chosen once per run. */
static inline __attribute__((always_inline)) void dwx_span(const dwx_group *gp, const int8_t *x, int32_t tap0,
                                                            int32_t n, int8_t *out, const int nkx, const int full)
{
    if (gp->nky == 3) {
        dwx_loop(gp, x, tap0, n, out, nkx, 3, full);
    } else if (gp->nky == 2) {
        dwx_loop(gp, x, tap0, n, out, nkx, 2, full);
    } else {
        dwx_loop(gp, x, tap0, n, out, nkx, 1, full);
    }
}


/* Pixels ox, ox + 1, ... of a row whose windows have the same in-image columns. */
typedef struct {
    int16_t ox, n;      /* first pixel, pixel count */
    int8_t kx0, nkx;    /* first in-image window column, in-image column count (0: none) */
    int32_t x_off;      /* bytes from an input row's start to pixel ox's first visited tap */
} dwx_run;

enum { DWX_MAX_RUNS = 6, DWX_MIN_WIDTH = 8, DWX_MIN_PIXELS = 16 };

/* The runs of one output row (the same for every row); 0 when there are more than
 * DWX_MAX_RUNS. */
static int32_t dwx_runs(const tinyml_conv_params *p, int32_t in_w, int32_t out_w, int32_t ch, dwx_run *runs)
{
    int32_t nr = 0;
    for (int32_t ox = 0; ox < out_w;) {
        int32_t kx0, kx1, n = 1;
        tinyml_tap_range(ox * p->stride_w - p->pad_w, p->dilation_w, 3, in_w, &kx0, &kx1);
        for (; ox + n < out_w; ++n) {
            int32_t a, e;
            tinyml_tap_range((ox + n) * p->stride_w - p->pad_w, p->dilation_w, 3, in_w, &a, &e);
            if (a != kx0 || e != kx1) {
                break;
            }
        }
        if (nr == DWX_MAX_RUNS || n > INT16_MAX) {
            return 0;
        }
        runs[nr].ox = (int16_t)ox;
        runs[nr].n = (int16_t)n;
        runs[nr].kx0 = (int8_t)kx0;
        runs[nr].nkx = (int8_t)(kx1 > kx0 ? kx1 - kx0 : 0);
        runs[nr].x_off = (ox * p->stride_w - p->pad_w + kx0 * p->dilation_w) * ch;
        ++nr;
        ox += n;
    }
    return nr;
}

/* All runs of one output row for one group (nkx chosen per run, the loops inlined):
 * row0 is the first in-image window row at column 0 plus the group's channel offset,
 * o_row the output row plus the same; window tap rows from ky0. */
static inline __attribute__((always_inline)) void dwx_row_runs(const dwx_group *g, const dwx_run *runs, int32_t nr,
                                                                const int8_t *row0, int8_t *o_row, int32_t ky0,
                                                                const int full)
{
    const size_t ch = g->out_step;
    for (int32_t r = 0; r < nr; ++r) {
        const dwx_run *u = &runs[r];
        int8_t *o = o_row + (size_t)u->ox * ch;
        const int8_t *x = row0 + u->x_off;
        const int32_t tap0 = ky0 * 3 + u->kx0;
        if (u->nkx == 3) {
            dwx_span(g, x, tap0, u->n, o, 3, full);
        } else if (u->nkx == 2) {
            dwx_span(g, x, tap0, u->n, o, 2, full);
        } else if (u->nkx == 1) {
            dwx_span(g, x, tap0, u->n, o, 1, full);
        } else {
            for (int32_t i = 0; i < u->n; ++i) {
                for (int32_t j = 0; j < 4; ++j) {
                    o[(size_t)i * ch + j] = dwx_finish(g, g->b[j], j, g->lo, g->hi, 0);
                }
            }
        }
    }
}

static __attribute__((noinline)) void dwx_row_runs_full(const dwx_group *g, const dwx_run *runs, int32_t nr,
                                                         const int8_t *row0, int8_t *o_row, int32_t ky0)
{
    dwx_row_runs(g, runs, nr, row0, o_row, ky0, 1);
}

static __attribute__((noinline)) void dwx_row_runs_clamp(const dwx_group *g, const dwx_run *runs, int32_t nr,
                                                          const int8_t *row0, int8_t *o_row, int32_t ky0)
{
    dwx_row_runs(g, runs, nr, row0, o_row, ky0, 0);
}

/* Output rows of one image in the row-order contract's order (oy = y_first,
 * y_first + y_dir, ..., count of them), channel groups outermost: each group's
 * set-up runs once for all these rows. One row at a time is always allowed; more
 * rows only when no group's output bytes can land on another group's input bytes
 * (tinyml_depthwise_conv2d_s8 checks it): a group then writes its rows in the
 * contract's order over input bytes of its own channels that it has read for the
 * last time. */
static __attribute__((noinline)) void dwx_rows(const dw_consts *kc, const tinyml_conv_params *p, const dwx_run *runs,
                                               int32_t nr, const int8_t *in_b, int32_t in_h, int32_t in_w,
                                               int8_t *out_b, int32_t out_w, int32_t y_first, int32_t y_dir,
                                               int32_t count, const int8_t *filter)
{
    const int32_t ch = kc->ch, c4 = ch & ~3;
    const ptrdiff_t d1 = (ptrdiff_t)kc->x_row;
    const size_t x_col = (size_t)p->dilation_w * ch, in_row = (size_t)in_w * ch, out_row = (size_t)out_w * ch;
    dwx_group g;
    g.d1 = d1;
    g.xt = x_col;
    g.x_step = (size_t)p->stride_w * ch;
    g.out_step = (size_t)ch;
    g.io2 = (int32_t)(((uint32_t)kc->io & 0xffffu) | ((uint32_t)kc->io << 16));
    g.lo = kc->lo;
    g.hi = kc->hi;
    for (int32_t c = 0; c < c4; c += 4) {
        dwx_group_setup(&g, kc, filter, c);
        for (int32_t yi = 0, oy = y_first; yi < count; ++yi, oy += y_dir) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            tinyml_tap_range(iy0, p->dilation_h, 3, in_h, &ky0, &ky1);
            int8_t *o_row = out_b + (size_t)oy * out_row + c;
            if (ky1 <= ky0) {
                for (int32_t i = 0; i < out_w; ++i) {
                    for (int32_t j = 0; j < 4; ++j) {
                        o_row[(size_t)i * ch + j] = dwx_finish(&g, g.b[j], j, g.lo, g.hi, 0);
                    }
                }
                continue;
            }
            g.nky = ky1 - ky0;
            const int8_t *row0 = in_b + (size_t)(iy0 + ky0 * p->dilation_h) * in_row + c;
            if (kc->full) {
                dwx_row_runs_full(&g, runs, nr, row0, o_row, ky0);
            } else {
                dwx_row_runs_clamp(&g, runs, nr, row0, o_row, ky0);
            }
        }
    }
    if (c4 == ch) {
        return;
    }
    /* Tail channels (grouped layout: after the groups, tap-major, ch - c4 bytes a tap). */
    const int32_t tail = ch - c4;
    for (int32_t yi = 0, oy = y_first; yi < count; ++yi, oy += y_dir) {
        const int32_t iy0 = oy * p->stride_h - p->pad_h;
        int32_t ky0, ky1;
        tinyml_tap_range(iy0, p->dilation_h, 3, in_h, &ky0, &ky1);
        const int32_t nky = ky1 > ky0 ? ky1 - ky0 : 0;
        const int8_t *row0 = in_b + (size_t)(iy0 + ky0 * p->dilation_h) * in_row;
        for (int32_t r = 0; r < nr; ++r) {
            const dwx_run *u = &runs[r];
            for (int32_t i = 0; i < u->n; ++i) {
                const int32_t ox = u->ox + i;
                int8_t *o = out_b + (size_t)oy * out_row + (size_t)ox * ch;
                const int8_t *x = row0 + (ptrdiff_t)(ox * p->stride_w - p->pad_w) * ch + (size_t)u->kx0 * x_col;
                for (int32_t c = c4; c < ch; ++c) {
                    int32_t acc = kc->bias ? kc->bias[c] : 0;
                    const int8_t *wt = filter + (size_t)c4 * 9 + (size_t)(ky0 * 3 + u->kx0) * tail + (c - c4);
                    for (int32_t j = 0; j < nky; ++j) {
                        for (int32_t t = 0; t < u->nkx; ++t) {
                            acc += wt[(3 * j + t) * tail] * (x[j * d1 + (ptrdiff_t)(t * x_col) + c] + kc->io);
                        }
                    }
                    o[c] = dw_finish(kc, acc, c);
                }
            }
        }
    }
}
#endif

/* Any depth multiplier M: output channel o reads input channel o / M. */
static void dw_pixel_general(const tinyml_conv_params *p, const tinyml_per_channel_quant *q,
                             const int8_t *in_b, int32_t in_w, int32_t in_c, int32_t out_c,
                             const int8_t *filter, int32_t k_w, const int32_t *bias,
                             int32_t iy0, int32_t ky0, int32_t ky1,
                             int32_t ix0, int32_t kx0, int32_t kx1, int8_t *out_px)
{
    /* the fields in locals: the int8 output stores could alias the structs */
    const int32_t io = p->input_offset, m = p->depth_multiplier, dil_h = p->dilation_h, dil_w = p->dilation_w;
    const int32_t out_off = p->output_offset, lo = p->activation.min, hi = p->activation.max;
    const int32_t *mult = q->multiplier;
    const int8_t *shift = q->shift;
    for (int32_t c = 0; c < in_c; ++c) {
        for (int32_t j = 0; j < m; ++j) {
            const int32_t o = c * m + j;
            int32_t acc = bias ? bias[o] : 0;
            for (int32_t ky = ky0; ky < ky1; ++ky) {
                const int32_t iy = iy0 + ky * dil_h;
                for (int32_t kx = kx0; kx < kx1; ++kx) {
                    const int32_t ix = ix0 + kx * dil_w;
                    acc += filter[((size_t)ky * k_w + kx) * out_c + o] *
                           (in_b[((size_t)iy * in_w + ix) * in_c + c] + io);
                }
            }
            acc = tinyml_conv_requantize(acc, mult[o], shift[o]) + out_off;
            out_px[o] = (int8_t)TINYML_CLAMP(acc, lo, hi);
        }
    }
}

/* dw_consts of a call. */
static dw_consts dw_consts_of(const tinyml_conv_params *params, const tinyml_per_channel_quant *quant,
                              const tinyml_dims *input_dims, const tinyml_dims *filter_dims, const int32_t *bias)
{
    const int32_t in_w = input_dims->w, in_c = input_dims->c, k_h = filter_dims->h, k_w = filter_dims->w;
    const dw_consts kc = {in_c, params->input_offset, params->output_offset, params->activation.min,
                          params->activation.max,
                          params->activation.min == -128 && params->activation.max == 127,
                          params->fast_requant != 0,
                          (size_t)params->dilation_w * in_c,
                          (size_t)params->dilation_h * in_w * in_c, bias,
                          quant->multiplier, quant->shift,
                          params->weights_grouped != 0 && params->depth_multiplier == 1, k_w, k_h * k_w};
    return kc;
}

#if TINYML_DSP
/* The row form (dwx_rows) of a whole call when it applies (returns 1): grouped 3x3
 * weights, fast requantization, multipliers >= 0. Images of >= DWX_MIN_PIXELS pixels run
 * whole, group by group (each group's set-up once), when no group's output can land on
 * another group's input bytes: disjoint buffers, or the output shifted from the input by
 * a whole number of pixels (every output byte then lands on an input byte of its own
 * channel). Otherwise rows of >= DWX_MIN_WIDTH pixels run one at a time, in the row-order
 * contract's order (each group's set-up once per row). The rest (returns 0) take dw3_run,
 * where the set-up costs more than it saves (measured: VWW's 3x3 layers, KWS's 5-pixel rows
 * row by row). Its own function, so its frames do not add to the generic path's. */
static __attribute__((noinline)) int dwx_conv(const tinyml_conv_params *params, const tinyml_per_channel_quant *quant,
                                              const tinyml_dims *input_dims, const int8_t *input,
                                              const tinyml_dims *filter_dims, const int8_t *filter,
                                              const int32_t *bias, const tinyml_dims *output_dims, int8_t *output)
{
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, nb = input_dims->n;
    if (!(params->weights_grouped && params->depth_multiplier == 1 && params->fast_requant &&
          filter_dims->h == 3 && filter_dims->w == 3 &&
          (out_w >= DWX_MIN_WIDTH || out_h * out_w >= DWX_MIN_PIXELS))) {
        return 0;
    }
    for (int32_t c = 0; c < in_c; ++c) {
        if (quant->multiplier[c] < 0) {
            return 0;
        }
    }
    dwx_run runs[DWX_MAX_RUNS];
    const int32_t nruns = dwx_runs(params, in_w, out_w, in_c, runs);
    if (nruns == 0) {
        return 0;
    }
    const uintptr_t i0 = (uintptr_t)input, o0 = (uintptr_t)output;
    const size_t in_img = (size_t)in_h * in_w * in_c, out_img = (size_t)out_h * out_w * in_c;
    const int whole = out_h * out_w >= DWX_MIN_PIXELS &&
                      (o0 + nb * out_img <= i0 || i0 + nb * in_img <= o0 ||
                       (o0 > i0 ? o0 - i0 : i0 - o0) % (size_t)in_c == 0);
    if (!whole && out_w < DWX_MIN_WIDTH) {
        return 0;
    }
    const dw_consts kc = dw_consts_of(params, quant, input_dims, filter_dims, bias);
    const int descending = o0 > i0;     /* the generic path's order */
    for (int32_t bi = 0; bi < nb; ++bi) {
        const int32_t b = descending ? nb - 1 - bi : bi;
        const int8_t *in_b = input + (size_t)b * in_img;
        int8_t *out_b = output + (size_t)b * out_img;
        if (whole) {
            dwx_rows(&kc, params, runs, nruns, in_b, in_h, in_w, out_b, out_w, descending ? out_h - 1 : 0,
                     descending ? -1 : 1, out_h, filter);
            continue;
        }
        for (int32_t yi = 0; yi < out_h; ++yi) {
            dwx_rows(&kc, params, runs, nruns, in_b, in_h, in_w, out_b, out_w, descending ? out_h - 1 - yi : yi,
                     1, 1, filter);
        }
    }
    return 1;
}
#endif

/* Every other case (and the portable build), pixel by pixel or in dw3_run runs. */
static __attribute__((noinline)) tinyml_status dw_generic(const tinyml_conv_params *params,
                                                          const tinyml_per_channel_quant *quant,
                                                          const tinyml_dims *input_dims, const int8_t *input,
                                                          const tinyml_dims *filter_dims, const int8_t *filter,
                                                          const int32_t *bias,
                                                          const tinyml_dims *output_dims, int8_t *output)
{
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, out_c = output_dims->c;
    const dw_consts kc = dw_consts_of(params, quant, input_dims, filter_dims, bias);
    const dw3_consts k3 = {in_c, params->input_offset, params->output_offset, params->activation.min,
                           params->activation.max, kc.x_tap, bias, quant->multiplier, quant->shift};
    /* Traversal order (the planner's overlap contract, memory_planner/overlap.py):
     * output rows go top to bottom when the output starts at or below the input
     * (it may then begin `delta` bytes before the input: row oy is written only
     * after every input row above oy*stride - pad_h has been read for the last
     * time), and bottom to top when it starts above the input (it may then end
     * `delta_up` bytes after the input's end: row oy is written only after every
     * input row below its window's last row has been read for the last time).
     * A row's own pixels are computed in any order: the whole row is clear of
     * every input row still needed. Disjoint buffers: either order is exact. */
    const int descending = (uintptr_t)output > (uintptr_t)input;
    const int32_t nb = input_dims->n;
    for (int32_t bi = 0; bi < nb; ++bi) {
        const int32_t b = descending ? nb - 1 - bi : bi;
        const int8_t *in_b = input + (size_t)b * in_h * in_w * in_c;
        for (int32_t yi = 0; yi < out_h; ++yi) {
            const int32_t oy = descending ? out_h - 1 - yi : yi;
            const int32_t iy0 = oy * params->stride_h - params->pad_h;
            int32_t ky0, ky1;
            tinyml_tap_range(iy0, params->dilation_h, k_h, in_h, &ky0, &ky1);
            if (kc.grouped && k_h == 3 && k_w == 3 && ky1 > ky0) {
                /* Runs of pixels whose windows have the same in-image columns. */
                const size_t x_step = (size_t)params->stride_w * in_c;
                const int8_t *row0 = in_b + (size_t)(iy0 + ky0 * params->dilation_h) * in_w * in_c;
                for (int32_t ox = 0; ox < out_w;) {
                    const int32_t ix0 = ox * params->stride_w - params->pad_w;
                    int32_t kx0, kx1, n = 1;
                    tinyml_tap_range(ix0, params->dilation_w, 3, in_w, &kx0, &kx1);
                    for (; ox + n < out_w; ++n) {
                        int32_t a, e;
                        tinyml_tap_range(ix0 + n * params->stride_w, params->dilation_w, 3, in_w, &a, &e);
                        if (a != kx0 || e != kx1) {
                            break;
                        }
                    }
                    int8_t *out_px = output + (((size_t)b * out_h + oy) * out_w + ox) * out_c;
                    if (kx1 > kx0) {
                        const int8_t *x00 = row0 + (size_t)(ix0 + kx0 * params->dilation_w) * in_c;
                        const int8_t *rows[3] = {x00, x00 + kc.x_row, x00 + 2 * kc.x_row};
                        dw3_run_any(&k3, rows, ky1 - ky0, kx1 - kx0, filter, ky0 * 3 + kx0, n, x_step, out_px,
                                    kc.fast, kc.full);
                    } else {
                        for (int32_t i = 0; i < n; ++i) {
                            dw_pixel_m1(&kc, in_b, filter, 0, 0, 0, out_px + (size_t)i * out_c);   /* bias only */
                        }
                    }
                    ox += n;
                }
                continue;
            }
            for (int32_t ox = 0; ox < out_w; ++ox) {
                const int32_t ix0 = ox * params->stride_w - params->pad_w;
                int32_t kx0, kx1;
                tinyml_tap_range(ix0, params->dilation_w, k_w, in_w, &kx0, &kx1);
                int8_t *out_px = output + (((size_t)b * out_h + oy) * out_w + ox) * out_c;
                if (params->depth_multiplier == 1) {
                    const int32_t nky = ky1 - ky0, nkx = kx1 - kx0;
                    if (nky <= 0 || nkx <= 0) {
                        dw_pixel_m1(&kc, in_b, filter, 0, 0, 0, out_px);   /* bias only */
                    } else {
                        const int8_t *x00 = in_b + ((size_t)(iy0 + ky0 * params->dilation_h) * in_w +
                                                    (ix0 + kx0 * params->dilation_w)) * in_c;
                        const int32_t t0 = ky0 * k_w + kx0;
                        if (nky == 3 && nkx == 3 && k_h == 3 && k_w == 3) {
#if TINYML_DSP
                            if (kc.fast) {
                                dw_pixel_m1_3x3_fast(&kc, x00, filter + (size_t)t0 * in_c, out_px);
                            } else {
                                dw_pixel_m1_3x3(&kc, x00, filter + (size_t)t0 * in_c, out_px);
                            }
#else
                            dw_pixel_m1(&kc, x00, filter, t0, 3, 3, out_px);
#endif
                        } else {
                            dw_pixel_m1(&kc, x00, filter, t0, nky, nkx, out_px);
                        }
                    }
                } else {
                    dw_pixel_general(params, quant, in_b, in_w, in_c, out_c, filter, k_w, bias,
                                     iy0, ky0, ky1, ix0, kx0, kx1, out_px);
                }
            }
        }
    }
    return TINYML_OK;
}

tinyml_status tinyml_depthwise_conv2d_s8(const tinyml_conv_params *params,
                                         const tinyml_per_channel_quant *quant,
                                         const tinyml_dims *input_dims, const int8_t *input,
                                         const tinyml_dims *filter_dims, const int8_t *filter,
                                         const int32_t *bias,
                                         const tinyml_dims *output_dims, int8_t *output)
{
    const int32_t in_c = input_dims->c, out_c = output_dims->c;
    if (params->depth_multiplier <= 0 || out_c != in_c * params->depth_multiplier ||
        filter_dims->c != out_c || input_dims->n != output_dims->n ||
        params->stride_h <= 0 || params->stride_w <= 0 ||
        params->dilation_h <= 0 || params->dilation_w <= 0) {
        return TINYML_ERROR_ARG;
    }
#if TINYML_DSP
    if (dwx_conv(params, quant, input_dims, input, filter_dims, filter, bias, output_dims, output)) {
        return TINYML_OK;
    }
#endif
    return dw_generic(params, quant, input_dims, input, filter_dims, filter, bias, output_dims, output);
}
