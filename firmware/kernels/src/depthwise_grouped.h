/* tinyml kernels, private: runs of output pixels of a multiplier-1 3x3
 * DEPTHWISE_CONV_2D on grouped weights (tinyml/conv.h: weights_grouped), shared
 * by depthwise.c and fused_invres.c.
 *
 * Arithmetic contract (TFLite reference DepthwiseConvPerChannel, multiplier 1):
 *   out[c] = clamp(requant(bias[c] + sum_{in-image taps} w[tap][c] * (x[tap][c] + io), c)
 *                  + out_off, lo, hi)
 * with requant = tinyml_requantize_bounded (fast: the generator proved it equal,
 * codegen/ops/conv.py fast_requant_ok) or tinyml_conv_requantize. Only the
 * in-image taps are visited: rows x[0..nky) (the window's in-image rows, each
 * pointing at the window's first in-image column) and nkx (1 to 3) columns
 * starting at window tap tap0 = ky0 * 3 + kx0. Grouped weights put a group's 9
 * taps in 36 contiguous bytes, so one weight pointer serves the group and the
 * window row ky of the visited taps starts 12 bytes after row ky - 1. */
#ifndef TINYML_DEPTHWISE_GROUPED_H
#define TINYML_DEPTHWISE_GROUPED_H

#include "tinyml/conv.h"

typedef struct {
    int32_t ch;                 /* channels */
    int32_t io;                 /* input offset, -(input zero point) */
    int32_t out_off, lo, hi;    /* output zero point, clamp range */
    size_t x_tap;               /* bytes between horizontally adjacent taps: dilation_w * ch */
    const int32_t *bias;        /* may be NULL */
    const int32_t *mult;
    const int8_t *shift;        /* int8 shifts (tinyml_per_channel_quant, tinyml_invres_dw) */
} dw3_consts;

/* The epilogue of one channel; k is a local copy (int8 stores cannot alias it). */
static inline __attribute__((always_inline)) int8_t dw3_finish(const dw3_consts *k, int32_t acc, int32_t c,
                                                               const int fast, const int full)
{
    if (fast) {
        acc = tinyml_requantize_bounded(acc, k->mult[c], k->shift[c], k->out_off);
    } else {
        acc = tinyml_conv_requantize(acc, k->mult[c], k->shift[c]) + k->out_off;
    }
#if TINYML_DSP
    if (full) {
        return (int8_t)__ssat(acc, 8);
    }
#else
    (void)full;
#endif
    return (int8_t)tinyml_clamp(acc, k->lo, k->hi);
}

#if TINYML_DSP
/* Window rows of four channels as asm blocks, so that the taps share the base
 * pointers (GCC 12 otherwise keeps one pointer per tap and spills them). Each
 * tap: a_c += w_c * (x_c + io) for c = 0..3, SXTAB16 adding io (in both
 * halfwords of io2) to two bytes at once (|x + io| <= 255 fits a halfword),
 * SMLABB/SMLATT per halfword. DW3_TAP's operands: the input word's address and
 * the weight word's byte offset from w. */
#define DW3_TAP(xaddr, woff)                                                            \
    "ldr %[t0], " xaddr "\n\t"                                                          \
    "ldr %[t2], [%[wp], #" woff "]\n\t"                                                 \
    "sxtab16 %[t1], %[io], %[t0], ror #8\n\t"                                           \
    "sxtab16 %[t0], %[io], %[t0]\n\t"                                                   \
    "sxtb16 %[t3], %[t2], ror #8\n\t"                                                   \
    "sxtb16 %[t2], %[t2]\n\t"                                                           \
    "smlabb %[a0], %[t2], %[t0], %[a0]\n\t"                                             \
    "smlatt %[a2], %[t2], %[t0], %[a2]\n\t"                                             \
    "smlabb %[a1], %[t3], %[t1], %[a1]\n\t"                                             \
    "smlatt %[a3], %[t3], %[t1], %[a3]\n\t"
#define DW3_OPERANDS(x, xt, w)                                                          \
    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),                       \
      [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3)                    \
    : [xp] "r"(x), [xs] "r"(xt), [wp] "r"(w), [io] "r"(io2),                            \
      "m"(*(const int8_t(*)[])(x)), "m"(*(const int8_t(*)[])(w))

/* Three taps at x, x + xt, x + 2 xt with the weight words at w + o, w + o + 4, w + o + 8. */
#define DW3_ROW3(x, xt, w, o)                                                           \
    __asm__(DW3_TAP("[%[xp]]", #o)                                                      \
            DW3_TAP("[%[xp], %[xs]]", #o " + 4")                                        \
            DW3_TAP("[%[xp], %[xs], lsl #1]", #o " + 8")                                \
            DW3_OPERANDS(x, xt, w))

/* Two taps at x, x + xt with the weight words at w + o, w + o + 4 (a border window row). */
#define DW3_ROW2(x, xt, w, o)                                                           \
    __asm__(DW3_TAP("[%[xp]]", #o)                                                      \
            DW3_TAP("[%[xp], %[xs]]", #o " + 4")                                        \
            DW3_OPERANDS(x, xt, w))

/* One tap at x with the weight word at w + o. */
#define DW3_ROW1(x, xt, w, o)                                                           \
    __asm__(DW3_TAP("[%[xp]]", #o)                                                      \
            DW3_OPERANDS(x, xt, w))
#endif

/* A run of n output pixels with the same window shape: pixel p's rows are
 * x[j] + p * x_step (j < nky, 1 <= nky <= 3), 1 <= nkx <= 3 columns, filter in
 * the grouped layout with window tap tap0 the first visited one; its outputs
 * at out + p * ch. fast / full are fixed per compiled copy. */
static inline __attribute__((always_inline)) void dw3_run(const dw3_consts *kp, const int8_t *const *xp,
                                                           int32_t nky, int32_t nkx, const int8_t *filter,
                                                           int32_t tap0, int32_t n, size_t x_step, int8_t *out,
                                                           const int fast, const int full)
{
    /* Local copies: the int8 output stores may alias anything reached through a pointer. */
    const dw3_consts kc = *kp, *k = &kc;
    /* One running input pointer; the window's other rows at fixed distances from it. */
    const ptrdiff_t d1 = xp[1] - xp[0], d2 = xp[2] - xp[0];
    const int32_t ch = k->ch, c4 = ch & ~3, tail = ch - c4;
    const size_t xt = k->x_tap;
#if TINYML_DSP
    const int32_t io2 = (int32_t)(((uint32_t)k->io & 0xffffu) | ((uint32_t)k->io << 16));
#endif
    const int8_t *xpix = xp[0];
    for (int32_t p = 0; p < n; ++p, xpix += x_step, out += ch) {
        const int8_t *xg = xpix;
        const int8_t *w = filter + 4 * tap0;
        int32_t c = 0;
        for (; c < c4; c += 4, w += 36, xg += 4) {
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            TINYML_BIAS4(k->bias, c, a0, a1, a2, a3);
#if TINYML_DSP
            int32_t t0, t1, t2, t3;
            if (nkx == 3) {
                DW3_ROW3(xg, xt, w, 0);
                if (nky > 1) {
                    DW3_ROW3(xg + d1, xt, w, 12);
                    if (nky > 2) {
                        DW3_ROW3(xg + d2, xt, w, 24);
                    }
                }
            } else if (nkx == 2) {
                DW3_ROW2(xg, xt, w, 0);
                if (nky > 1) {
                    DW3_ROW2(xg + d1, xt, w, 12);
                    if (nky > 2) {
                        DW3_ROW2(xg + d2, xt, w, 24);
                    }
                }
            } else {
                DW3_ROW1(xg, xt, w, 0);
                if (nky > 1) {
                    DW3_ROW1(xg + d1, xt, w, 12);
                    if (nky > 2) {
                        DW3_ROW1(xg + d2, xt, w, 24);
                    }
                }
            }
#else
            for (int32_t j = 0; j < nky; ++j) {
                for (int32_t i = 0; i < nkx; ++i) {
                    const int8_t *xq = xg + (j == 0 ? 0 : j == 1 ? d1 : d2) + (size_t)i * xt;
                    const int8_t *wq = w + 12 * j + 4 * i;
                    a0 += wq[0] * (xq[0] + k->io);
                    a1 += wq[1] * (xq[1] + k->io);
                    a2 += wq[2] * (xq[2] + k->io);
                    a3 += wq[3] * (xq[3] + k->io);
                }
            }
#endif
            out[c] = dw3_finish(k, a0, c, fast, full);
            out[c + 1] = dw3_finish(k, a1, c + 1, fast, full);
            out[c + 2] = dw3_finish(k, a2, c + 2, fast, full);
            out[c + 3] = dw3_finish(k, a3, c + 3, fast, full);
        }
        /* Tail channels: after the groups, tap-major, ch - c4 bytes a tap. */
        for (; c < ch; ++c) {
            int32_t acc = k->bias ? k->bias[c] : 0;
            const int8_t *wt = filter + (size_t)c4 * 9 + (size_t)tap0 * tail + (c - c4);
            for (int32_t j = 0; j < nky; ++j) {
                const int8_t *xr = xpix + (j == 0 ? 0 : j == 1 ? d1 : d2) + c;
                for (int32_t i = 0; i < nkx; ++i) {
                    acc += wt[(3 * j + i) * tail] * (xr[(size_t)i * xt] + k->io);
                }
            }
            out[c] = dw3_finish(k, acc, c, fast, full);
        }
    }
}

/* dw3_run with the epilogue flavour chosen once per call (four compiled copies). */
static inline void dw3_run_any(const dw3_consts *k, const int8_t *const *x, int32_t nky, int32_t nkx,
                               const int8_t *filter, int32_t tap0, int32_t n, size_t x_step, int8_t *out,
                               int fast, int full)
{
    if (fast) {
        if (full) {
            dw3_run(k, x, nky, nkx, filter, tap0, n, x_step, out, 1, 1);
        } else {
            dw3_run(k, x, nky, nkx, filter, tap0, n, x_step, out, 1, 0);
        }
    } else if (full) {
        dw3_run(k, x, nky, nkx, filter, tap0, n, x_step, out, 0, 1);
    } else {
        dw3_run(k, x, nky, nkx, filter, tap0, n, x_step, out, 0, 0);
    }
}

#endif /* TINYML_DEPTHWISE_GROUPED_H */
