/* tinyml kernels: fully connected (int8) with a build-time packed filter. */
#include "tinyml/fc.h"


int32_t tinyml_sum_s8(const int8_t *a, int32_t n)
{
    int32_t s = 0;
    int32_t i = 0;
#if TINYML_DSP
    /* XOR 0x80 maps each int8 v to the uint8 v + 128; USADA8 against 0 adds the
     * four; the 128 per value comes off at the end (exact: |sum| < 2^31). */
    const int32_t n4 = n & ~3;
    uint32_t u = 0;
    for (; i + 8 <= n4; i += 8) {
        u = __usada8((uint32_t)tinyml_read_s8x4(a + i) ^ 0x80808080u, 0u, u);
        u = __usada8((uint32_t)tinyml_read_s8x4(a + i + 4) ^ 0x80808080u, 0u, u);
    }
    if (i < n4) {
        u = __usada8((uint32_t)tinyml_read_s8x4(a + i) ^ 0x80808080u, 0u, u);
        i += 4;
    }
    s = (int32_t)(u - 128u * (uint32_t)n4);
#endif
    for (; i < n; ++i) {
        s += a[i];
    }
    return s;
}

int32_t tinyml_dot_s8(const int8_t *a, const int8_t *b, int32_t n)
{
    int32_t acc = 0;
    int32_t i = 0;
#if TINYML_DSP
    for (; i + 4 <= n; i += 4) {
        const int32_t va = tinyml_read_s8x4(a + i);
        const int32_t vb = tinyml_read_s8x4(b + i);
        /* bytes 0,2 and bytes 1,3 sign-extended to halfwords, then two
         * 16x16 multiply-accumulates each. */
        acc = __smlad(__sxtb16(va), __sxtb16(vb), acc);
        acc = __smlad(tinyml_sxtb16_ror8(va), tinyml_sxtb16_ror8(vb), acc);
    }
#endif
    for (; i < n; ++i) {
        acc += (int32_t)a[i] * (int32_t)b[i];
    }
    return acc;
}

/* The per-output epilogue, with the layer's constants held in locals. */
typedef struct {
    const int32_t *bias, *mult, *shift;
    const int8_t *table;
    int32_t out_off, lo, hi, dr, fast;
    int32_t qm;   /* index mask of mult/shift: -1 per channel, 0 per tensor */
    const int8_t *shift8;
    int32_t zp21; /* 2 * out_off + 1 */
} fc_finish;

/* tinyml_requantize(acc, m, shift) + zp for -24 <= shift <= -1 (FULLY_CONNECTED's
 * int8 shifts), zp21 = 2 zp + 1. Single rounding (TFLite's FULLY_CONNECTED in the
 * TensorFlow 2.21 wheel): floor((acc m + 2^(t-1)) / 2^t) + zp with t = 31 - shift is
 * floor((acc m + (2 zp + 1) 2^(t-1)) / 2^t); with e = t - 32 = -1 - shift >= 0 the
 * constant is k 2^31, k = (2 zp + 1) 2^e (|k| < 2^31), so one SMLAL onto the word
 * pair (k >> 1, (k & 1) << 31) and the high word shifted right by e. Double
 * rounding (tflite_micro): tinyml_requantize_double_fast (m >= 0) plus zp. */
static inline int32_t fc_requant_s8(int32_t acc, int32_t m, int32_t shift, int32_t zp21)
{
#if TINYML_SINGLE_ROUNDING
    const int32_t e = -1 - shift;
    const int32_t k = (int32_t)((uint32_t)zp21 << e);
    const int64_t r = (int64_t)(((uint64_t)(uint32_t)(k >> 1) << 32) | ((uint32_t)k << 31)) + (int64_t)acc * m;
    return (int32_t)(r >> 32) >> e;
#else
    return tinyml_requantize_double_fast(acc, m, shift) + (zp21 >> 1);
#endif
}

static inline int8_t finish(const fc_finish *f, int32_t acc, int32_t o)
{
#if !TINYML_DSP
    /* The portable build has no pair loop: the fast epilogue runs (and is
     * checked against TFLite by the host tests) here. With DSP the rows the
     * pair loop leaves use tinyml_requantize_double_fast, the same integers. */
    if (f->fast) {
        acc = tinyml_requantize_bounded(acc, f->mult[o & f->qm], f->shift[o & f->qm], f->out_off);
        return (int8_t)tinyml_clamp(acc, f->lo, f->hi);
    }
#endif
    const int32_t q = o & f->qm;
    acc = (f->dr ? tinyml_requantize_double_fast(acc, f->mult[q], f->shift[q])
                 : tinyml_requantize(acc, f->mult[q], f->shift8 ? f->shift8[q] : f->shift[q])) + f->out_off;
    acc = TINYML_CLAMP(acc, f->lo, f->hi);
    return f->table ? f->table[acc + 128] : (int8_t)acc;
}

/* finish() with the epilogue branches fixed at compile time when mode >= 1
 * (double rounding, no table: the convolutions; mode 2: clamp range -128..127;
 * mode 3: FULLY_CONNECTED's int8 shifts (fc_requant_s8), no table, clamp range
 * -128..127; mode 4: fast_requant, tinyml_requantize_bounded; mode 5: that and the
 * range -128..127; mode 6: as mode 3 with any clamp range). */
static inline int8_t finish_m(const fc_finish *f, int32_t acc, int32_t o, const int mode)
{
    if (mode == 4 || mode == 5) {
        acc = tinyml_requantize_bounded(acc, f->mult[o & f->qm], f->shift[o & f->qm], f->out_off);
#if TINYML_DSP
        if (mode == 5) {
            return (int8_t)__ssat(acc, 8);   /* the clamp range is all of int8 */
        }
#endif
        return (int8_t)tinyml_clamp(acc, f->lo, f->hi);
    }
    if (mode == 3 || mode == 6) {
        acc = fc_requant_s8(acc, f->mult[o & f->qm], f->shift8[o & f->qm], f->zp21);
        if (mode == 6) {
            return (int8_t)tinyml_clamp(acc, f->lo, f->hi);
        }
#if TINYML_DSP
        return (int8_t)__ssat(acc, 8);
#else
        return (int8_t)TINYML_CLAMP(acc, -128, 127);
#endif
    }
    if (mode >= 1) {
        acc = tinyml_requantize_double_fast(acc, f->mult[o & f->qm], f->shift[o & f->qm]) + f->out_off;
#if TINYML_DSP
        if (mode == 2) {
            return (int8_t)__ssat(acc, 8);   /* the clamp range is all of int8 */
        }
#endif
        return (int8_t)TINYML_CLAMP(acc, f->lo, f->hi);
    }
    return finish(f, acc, o);
}

#if TINYML_DSP
/* Modes 4 and 5 for the same channel o of two inputs: the channel's multiplier
 * and shift are loaded once, both results computed before either is stored
 * (an int8 store may alias the constant arrays, which would force reloads). */
static inline __attribute__((always_inline)) void finish2_m(const fc_finish *f, int32_t o, int32_t acc0,
                                                            int32_t acc1, int8_t *d0, int8_t *d1, const int mode)
{
    const int32_t m = f->mult[o & f->qm], s = f->shift[o & f->qm];
    int32_t v0 = tinyml_requantize_bounded(acc0, m, s, f->out_off);
    int32_t v1 = tinyml_requantize_bounded(acc1, m, s, f->out_off);
    if (mode == 5) {
        v0 = __ssat(v0, 8);
        v1 = __ssat(v1, 8);
    } else {
        v0 = tinyml_clamp(v0, f->lo, f->hi);
        v1 = tinyml_clamp(v1, f->lo, f->hi);
    }
    *d0 = (int8_t)v0;
    *d1 = (int8_t)v1;
}
#endif

#if !TINYML_DSP
/* dot(row r of a packed 4-row group, x): blocks of 4 depth values are 16 bytes apart. */
static int32_t group_row_dot(const int8_t *g, int32_t r, int32_t n4, int32_t nt, const int8_t *x)
{
    int32_t acc = 0;
    for (int32_t k = 0; k < n4; k += 4) {
        const int8_t *w = g + 4 * k + 4 * r;
        acc += w[0] * x[k] + w[1] * x[k + 1] + w[2] * x[k + 2] + w[3] * x[k + 3];
    }
    const int8_t *t = g + 4 * n4 + r * nt;
    for (int32_t j = 0; j < nt; ++j) {
        acc += t[j] * x[n4 + j];
    }
    return acc;
}
#endif

#if TINYML_DSP
/* acc[r] += dot(row r of the group, x) for the 4 rows of a packed group. */
static inline __attribute__((always_inline)) void group_4x1(const int8_t *g, int32_t n4, int32_t nt, const int8_t *x, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *w = g;
    const int8_t *xp = x;
#define TINYML_4X1_STEP                                                          \
    do {                                                                         \
        const int32_t xv = tinyml_read_s8x4(xp);                                 \
        xp += 4;                                                                 \
        const int32_t xe = __sxtb16(xv), xo = tinyml_sxtb16_ror8(xv);            \
        int32_t wv = tinyml_read_s8x4(w);                                        \
        a0 = __smlad(__sxtb16(wv), xe, a0);                                      \
        a0 = __smlad(tinyml_sxtb16_ror8(wv), xo, a0);                            \
        wv = tinyml_read_s8x4(w + 4);                                            \
        a1 = __smlad(__sxtb16(wv), xe, a1);                                      \
        a1 = __smlad(tinyml_sxtb16_ror8(wv), xo, a1);                            \
        wv = tinyml_read_s8x4(w + 8);                                            \
        a2 = __smlad(__sxtb16(wv), xe, a2);                                      \
        a2 = __smlad(tinyml_sxtb16_ror8(wv), xo, a2);                            \
        wv = tinyml_read_s8x4(w + 12);                                           \
        a3 = __smlad(__sxtb16(wv), xe, a3);                                      \
        a3 = __smlad(tinyml_sxtb16_ror8(wv), xo, a3);                            \
        w += 16;                                                                 \
    } while (0)
    int32_t k = n4 >> 2;
    for (; k >= 2; k -= 2) {   /* two depth blocks per trip: half the loop overhead */
        TINYML_4X1_STEP;
        TINYML_4X1_STEP;
    }
    if (k) {
        TINYML_4X1_STEP;
    }
#undef TINYML_4X1_STEP
    for (int32_t j = 0; j < nt; ++j) {
        const int32_t xj = x[n4 + j];
        a0 += w[j] * xj;
        a1 += w[nt + j] * xj;
        a2 += w[2 * nt + j] * xj;
        a3 += w[3 * nt + j] * xj;
    }
    acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
}

/* acc[0..3] += rows r, r+1 of the group against inputs x0, x1:
 * acc = {row r . x0, row r . x1, row r+1 . x0, row r+1 . x1}. */
static inline __attribute__((always_inline)) void group_2x2(const int8_t *g, int32_t r, int32_t n4, int32_t nt, const int8_t *x0,
                      const int8_t *x1, int32_t *acc)
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    const int8_t *w = g + 4 * r;
    const int8_t *p0 = x0, *p1 = x1;
#define TINYML_2X2_STEP                                                          \
    do {                                                                         \
        const int32_t v0 = tinyml_read_s8x4(p0), v1 = tinyml_read_s8x4(p1);      \
        p0 += 4;                                                                 \
        p1 += 4;                                                                 \
        const int32_t x0e = __sxtb16(v0), x0o = tinyml_sxtb16_ror8(v0);          \
        const int32_t x1e = __sxtb16(v1), x1o = tinyml_sxtb16_ror8(v1);          \
        TINYML_MAC_2X2(w, x0e, x0o, x1e, x1o, a00, a01, a10, a11);              \
        w += 16;                                                                 \
    } while (0)
    int32_t k = n4 >> 2;
    for (; k >= 2; k -= 2) {   /* two depth blocks per trip: half the loop overhead */
        TINYML_2X2_STEP;
        TINYML_2X2_STEP;
    }
    if (k) {
        TINYML_2X2_STEP;
    }
#undef TINYML_2X2_STEP
    const int8_t *t0 = g + 4 * n4 + r * nt, *t1 = t0 + nt;
    for (int32_t j = 0; j < nt; ++j) {
        const int32_t u0 = x0[n4 + j], u1 = x1[n4 + j];
        a00 += t0[j] * u0;
        a01 += t0[j] * u1;
        a10 += t1[j] * u0;
        a11 += t1[j] * u1;
    }
    acc[0] = a00; acc[1] = a01; acc[2] = a10; acc[3] = a11;
}

/* Output rows longer than this are not staged: unless output and input are
 * disjoint, their inputs go one at a time. */
#define FC_STAGE_BYTES 512
#endif

#if TINYML_DSP
/* Whether output rows b and b + 1 may be written while input rows b and b + 1
 * are still read (the caller's overlap contract already keeps output row b
 * off input row b + 1 and later): output row b + 1 ends at or before input
 * row b, or the whole output starts at or after the input's end. */
static inline int pair_direct(const int8_t *input, int32_t batches, int32_t n, const int8_t *output, int32_t od,
                              int32_t b)
{
    return (uintptr_t)(output + (size_t)(b + 2) * od) <= (uintptr_t)(input + (size_t)b * n) ||
           (uintptr_t)output >= (uintptr_t)(input + (size_t)batches * n);
}

/* Output rows in pairs (2x2 blocking); returns the number of rows done.
 * mode 1: double rounding and no table (CONV_2D), 2: also a full int8 clamp
 * range, 3: fc_requant_s8 (int8 shifts), no table, full range (plain FC), 0: as `f` says. */
static inline __attribute__((always_inline)) int32_t fc_pairs(const fc_finish *fp, int32_t batches,
                                                              const int8_t *input, const int8_t *packed_filter,
                                                              int8_t *output, int32_t n, int32_t od, int32_t fo,
                                                              const int mode)
{
    const fc_finish f = *fp;
    const int32_t n4 = n & ~3, nt = n & 3;
    const int32_t groups = od >> 2;
    const int8_t *rest = packed_filter + groups * 4 * n;
    int8_t stage[FC_STAGE_BYTES];
    int32_t b = 0;
    for (; b + 2 <= batches; b += 2) {
        const int8_t *x0 = input + b * n, *x1 = x0 + n;
        int8_t *y0 = output + b * od;
        /* Output row b + 1 is written in place when it ends before input row b
         * or all output lies after the input (pair_direct); otherwise it is
         * staged until both input rows are read. */
        const int direct = pair_direct(input, batches, n, output, od, b);
        int8_t *y1 = direct ? y0 + od : stage;
        const int32_t t0 = fo ? fo * tinyml_sum_s8(x0, n) : 0;
        const int32_t t1 = fo ? fo * tinyml_sum_s8(x1, n) : 0;
        for (int32_t gi = 0; gi < groups; ++gi) {
            const int8_t *g = packed_filter + gi * 4 * n;
            for (int32_t r = 0; r < 4; r += 2) {
                const int32_t o = 4 * gi + r;
                int32_t acc[4] = {f.bias[o] + t0, f.bias[o] + t1, f.bias[o + 1] + t0, f.bias[o + 1] + t1};
                group_2x2(g, r, n4, nt, x0, x1, acc);
                if (mode == 4 || mode == 5) {
                    finish2_m(&f, o, acc[0], acc[1], &y0[o], &y1[o], mode);
                    finish2_m(&f, o + 1, acc[2], acc[3], &y0[o + 1], &y1[o + 1], mode);
                    continue;
                }
                y0[o] = finish_m(&f, acc[0], o, mode);
                y1[o] = finish_m(&f, acc[1], o, mode);
                y0[o + 1] = finish_m(&f, acc[2], o + 1, mode);
                y1[o + 1] = finish_m(&f, acc[3], o + 1, mode);
            }
        }
        for (int32_t o = 4 * groups; o < od; ++o) {
            const int8_t *w = rest + (o - 4 * groups) * n;
            y0[o] = finish_m(&f, f.bias[o] + t0 + tinyml_dot_s8(w, x0, n), o, mode);
            y1[o] = finish_m(&f, f.bias[o] + t1 + tinyml_dot_s8(w, x1, n), o, mode);
        }
        if (!direct) {
            /* Both input rows are read: output row b + 1 may now overwrite them. */
            tinyml_copy_s8(y0 + od, stage, od);
        }
    }
    return b;
}
#endif

#if TINYML_DSP
/* Depth limit of the widened pair path: its two int16 input rows (4 bytes per
 * depth value) take the stack bytes of the FC_STAGE_BYTES stage. */
#define FC_X16_DEPTH (FC_STAGE_BYTES / 4)

/* Input rows x0, x1 widened to int16 halfword pairs in the order fc_block_x16
 * reads them: per block of 4 depth values k..k+3 four words
 *   (x0[k], x0[k+2]), (x0[k+1], x0[k+3]), (x1[k], x1[k+2]), (x1[k+1], x1[k+3])
 * (SXTB16 and SXTB16 ROR 8 of each row's word), then the n % 4 tail values of
 * x0 and of x1 as int16. */
static inline __attribute__((always_inline)) void widen_pair(const int8_t *x0, const int8_t *x1, int32_t n4,
                                                             int32_t nt, int32_t *dst)
{
    dst = tinyml_widen_pair_s8(x0, x1, n4, dst);
    int16_t *t = (int16_t *)(void *)dst;
    for (int32_t j = 0; j < nt; ++j) {
        t[j] = x0[n4 + j];
        t[nt + j] = x1[n4 + j];
    }
}

/* Rows r, r + 1 of a packed group against the two widened input rows xw:
 * acc = {row r . x0, row r . x1, row r+1 . x0, row r+1 . x1}. Per block of 4
 * depth values: 4 input words (already widened), 2 weight words, 4 SXTB16,
 * 8 SMLAD for 16 multiply-accumulates. */
static inline __attribute__((always_inline)) void block_x16(const int8_t *g, int32_t r, int32_t n4, int32_t nt,
                                                            const int32_t *xw, int32_t *acc)
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    const int8_t *w = g + 4 * r;
    const int32_t *xp = xw;
    /* Step i of a trip: depth block i after the trip's start (LDRD needs word
     * alignment: xw is an int32 array, the packed filter word aligned, checked
     * by the caller). */
#define TINYML_X16_STEP(i)                                                       \
    do {                                                                         \
        int32_t x0e, x0o, x1e, x1o, w0, w1;                                      \
        TINYML_LDRD(xp, 16 * (i), x0e, x0o);                                   \
        TINYML_LDRD(xp, 16 * (i) + 8, x1e, x1o);                               \
        TINYML_LDRD(w, 16 * (i), w0, w1);                                      \
        TINYML_MAC_1X2(w0, x0e, x0o, x1e, x1o, a00, a01);                       \
        TINYML_MAC_1X2(w1, x0e, x0o, x1e, x1o, a10, a11);                       \
    } while (0)
    int32_t k = n4 >> 2;
    for (; k >= 4; k -= 4) {   /* four depth blocks per trip */
        TINYML_X16_STEP(0);
        TINYML_X16_STEP(1);
        TINYML_X16_STEP(2);
        TINYML_X16_STEP(3);
        xp += 16;
        w += 64;
    }
    for (; k > 0; --k) {
        TINYML_X16_STEP(0);
        xp += 4;
        w += 16;
    }
#undef TINYML_X16_STEP
    if (nt) {
        const int8_t *t0 = g + 4 * n4 + r * nt, *t1 = t0 + nt;
        const int16_t *u = (const int16_t *)(const void *)xp;
        for (int32_t j = 0; j < nt; ++j) {
            const int32_t u0 = u[j], u1 = u[nt + j];
            a00 += t0[j] * u0;
            a01 += t0[j] * u1;
            a10 += t1[j] * u0;
            a11 += t1[j] * u1;
        }
    }
    acc[0] = a00; acc[1] = a01; acc[2] = a10; acc[3] = a11;
}

/* Output rows in pairs with the pair's input rows widened first (depth <=
 * FC_X16_DEPTH): once widened, the input rows are no longer read, so both
 * output rows are written in place whatever the overlap. Returns the rows done. */
static inline __attribute__((always_inline)) int32_t fc_pairs_x16(const fc_finish *fp, int32_t batches,
                                                                  const int8_t *input, const int8_t *packed_filter,
                                                                  int8_t *output, int32_t n, int32_t od,
                                                                  int32_t fo, const int mode)
{
    const fc_finish f = *fp;
    const int32_t n4 = n & ~3, nt = n & 3;
    const int32_t groups = od >> 2;
    const int8_t *rest = packed_filter + groups * 4 * n;
    int32_t xw[FC_X16_DEPTH];   /* two rows of int16: 4 bytes per depth value */
    int32_t b = 0;
    for (; b + 2 <= batches; b += 2) {
        const int8_t *x0 = input + b * n, *x1 = x0 + n;
        int8_t *y0 = output + b * od, *y1 = y0 + od;
        const int32_t t0 = fo ? fo * tinyml_sum_s8(x0, n) : 0;
        const int32_t t1 = fo ? fo * tinyml_sum_s8(x1, n) : 0;
        widen_pair(x0, x1, n4, nt, xw);
        for (int32_t gi = 0; gi < groups; ++gi) {
            const int8_t *g = packed_filter + gi * 4 * n;
            for (int32_t r = 0; r < 4; r += 2) {
                const int32_t o = 4 * gi + r;
                int32_t acc[4] = {f.bias[o] + t0, f.bias[o] + t1, f.bias[o + 1] + t0, f.bias[o + 1] + t1};
                block_x16(g, r, n4, nt, xw, acc);
                if (mode == 4 || mode == 5) {
                    finish2_m(&f, o, acc[0], acc[1], &y0[o], &y1[o], mode);
                    finish2_m(&f, o + 1, acc[2], acc[3], &y0[o + 1], &y1[o + 1], mode);
                    continue;
                }
                const int8_t v00 = finish_m(&f, acc[0], o, mode), v01 = finish_m(&f, acc[1], o, mode);
                const int8_t v10 = finish_m(&f, acc[2], o + 1, mode), v11 = finish_m(&f, acc[3], o + 1, mode);
                y0[o] = v00;
                y1[o] = v01;
                y0[o + 1] = v10;
                y1[o + 1] = v11;
            }
        }
        if (groups * 4 < od) {
            /* The output_depth % 4 plain rows, also from the widened copy. */
            for (int32_t o = 4 * groups; o < od; ++o) {
                const int8_t *w = rest + (o - 4 * groups) * n;
                int32_t a0 = f.bias[o] + t0, a1 = f.bias[o] + t1;
                for (int32_t k = 0; k < n4; k += 4) {
                    const int32_t *xp = xw + k;
                    const int32_t wv = tinyml_read_s8x4(w + k);
                    const int32_t we = __sxtb16(wv), wo = tinyml_sxtb16_ror8(wv);
                    a0 = __smlad(we, xp[0], a0);
                    a0 = __smlad(wo, xp[1], a0);
                    a1 = __smlad(we, xp[2], a1);
                    a1 = __smlad(wo, xp[3], a1);
                }
                const int16_t *u = (const int16_t *)(const void *)(xw + n4);
                for (int32_t j = 0; j < nt; ++j) {
                    a0 += w[n4 + j] * u[j];
                    a1 += w[n4 + j] * u[nt + j];
                }
                const int8_t v0 = finish_m(&f, a0, o, mode), v1 = finish_m(&f, a1, o, mode);
                y0[o] = v0;
                y1[o] = v1;
            }
        }
    }
    return b;
}
#endif

#if TINYML_DSP
/* Rows b.. of a call one at a time (4x1 blocking); mode as in finish_m. */
static inline __attribute__((always_inline)) void fc_singles(const fc_finish *fp, int32_t b, int32_t batches,
                                                             const int8_t *input, const int8_t *packed_filter,
                                                             int8_t *output, int32_t n, int32_t od, int32_t fo,
                                                             const int mode)
{
    const fc_finish f = *fp;
    const int32_t n4 = n & ~3, nt = n & 3;
    const int32_t groups = od >> 2;
    const int8_t *rest = packed_filter + groups * 4 * n;
    for (; b < batches; ++b) {
        const int8_t *x = input + b * n;
        int8_t *y = output + b * od;
        const int32_t t = fo ? fo * tinyml_sum_s8(x, n) : 0;
        for (int32_t gi = 0; gi < groups; ++gi) {
            const int8_t *g = packed_filter + gi * 4 * n;
            const int32_t o = 4 * gi;
            int32_t acc[4] = {f.bias[o] + t, f.bias[o + 1] + t, f.bias[o + 2] + t, f.bias[o + 3] + t};
            group_4x1(g, n4, nt, x, acc);
            y[o] = finish_m(&f, acc[0], o, mode);
            y[o + 1] = finish_m(&f, acc[1], o + 1, mode);
            y[o + 2] = finish_m(&f, acc[2], o + 2, mode);
            y[o + 3] = finish_m(&f, acc[3], o + 3, mode);
        }
        for (int32_t o = 4 * groups; o < od; ++o) {
            y[o] = finish_m(&f, f.bias[o] + t + tinyml_dot_s8(rest + (o - 4 * groups) * n, x, n), o, mode);
        }
    }
}


/* All rows of a call: in pairs (fc_pairs) where the stage or pair_direct
 * allows, the rest one at a time (fc_singles); mode as in finish_m. */
static inline __attribute__((always_inline)) void fc_rows(const fc_finish *f, int32_t batches, const int8_t *input,
                                                          const int8_t *packed_filter, int8_t *output, int32_t n,
                                                          int32_t od, int32_t fo, const int mode)
{
    int32_t b = 0;
    if (batches >= 2 && n <= FC_X16_DEPTH && ((uintptr_t)packed_filter & 3) == 0) {
        b = fc_pairs_x16(f, batches, input, packed_filter, output, n, od, fo, mode);
    }
    /* Longer output rows than the stage go in pairs only when every pair is
     * direct: pair_direct's condition is linear in b, so the first and the
     * last pair decide. */
    else if (batches >= 2 && (od <= FC_STAGE_BYTES ||
                         (pair_direct(input, batches, n, output, od, 0) &&
                          pair_direct(input, batches, n, output, od, (batches - 2) & ~1)))) {
        b = fc_pairs(f, batches, input, packed_filter, output, n, od, fo, mode);
    }
    fc_singles(f, b, batches, input, packed_filter, output, n, od, fo, mode);
}
#endif

tinyml_status tinyml_fc_s8(const tinyml_fc_layer *layer, int32_t batches, const int8_t *input,
                           const int8_t *packed_filter, int8_t *output)
{
    if (!layer || !input || !packed_filter || !output || !layer->bias || (!layer->shift && !layer->shift8) ||
        batches < 0 ||
        layer->accum_depth <= 0 || layer->output_depth <= 0) {
        return TINYML_ERROR_ARG;
    }
    const int32_t n = layer->accum_depth, od = layer->output_depth;
    const int32_t fo = layer->filter_offset;
    const fc_finish f = {layer->bias, layer->multiplier, layer->shift, layer->table,
                         layer->output_offset, layer->activation.min, layer->activation.max,
                         layer->double_rounding, layer->fast_requant && layer->double_rounding && !layer->table,
                         layer->per_tensor ? 0 : -1, layer->shift8, 2 * layer->output_offset + 1};
#if TINYML_DSP
    /* Each epilogue flavour gets its own copy of the row loops with the
     * branches resolved at compile time (finish_m's modes). */
    const int full = f.lo == -128 && f.hi == 127;
    const int mode = f.fast ? (full ? 5 : 4)
                   : (f.dr && !f.table) ? (full ? 2 : 1)
                   : (!f.dr && !f.table && f.shift8) ? (full ? 3 : 6) : 0;
    switch (mode) {
    case 1: fc_rows(&f, batches, input, packed_filter, output, n, od, fo, 1); break;
    case 2: fc_rows(&f, batches, input, packed_filter, output, n, od, fo, 2); break;
    case 3: fc_rows(&f, batches, input, packed_filter, output, n, od, fo, 3); break;
    case 4: fc_rows(&f, batches, input, packed_filter, output, n, od, fo, 4); break;
    case 5: fc_rows(&f, batches, input, packed_filter, output, n, od, fo, 5); break;
    case 6: fc_rows(&f, batches, input, packed_filter, output, n, od, fo, 6); break;
    default: fc_rows(&f, batches, input, packed_filter, output, n, od, fo, 0); break;
    }
#else
    const int32_t n4 = n & ~3, nt = n & 3;
    const int32_t groups = od >> 2;
    const int8_t *rest = packed_filter + groups * 4 * n;   /* plain rows after the groups */
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *x = input + b * n;
        int8_t *y = output + b * od;
        const int32_t t = fo ? fo * tinyml_sum_s8(x, n) : 0;
        for (int32_t gi = 0; gi < groups; ++gi) {
            const int8_t *g = packed_filter + gi * 4 * n;
            const int32_t o = 4 * gi;
            for (int32_t r = 0; r < 4; ++r) {
                y[o + r] = finish(&f, f.bias[o + r] + t + group_row_dot(g, r, n4, nt, x), o + r);
            }
        }
        for (int32_t o = 4 * groups; o < od; ++o) {
            y[o] = finish(&f, f.bias[o] + t + tinyml_dot_s8(rest + (o - 4 * groups) * n, x, n), o);
        }
    }
#endif
    return TINYML_OK;
}

/* ---- FULLY_CONNECTED one input row at a time on the row-pair filter layout
 * (tinyml_fc_s8_pairs, tinyml/fc.h). ----
 *
 * Arithmetic contract: the same integers as tinyml_fc_s8 (TFLite's
 * FullyConnected int8: sum_d (w + filter_offset)(x + input_offset) + b, then
 * MultiplyByQuantizedMultiplier, output offset, activation clamp). The layout
 * saves one SXTB16 per weight word: a word holds, for two output rows r and
 * r + 1 and depth values k, k + 2 (or k + 1, k + 3), the bytes
 *   (w[r][k] + 128, w[r + 1][k], w[r][k + 2] + 128, w[r + 1][k + 2]),
 * so each of its halfwords read as int16 is h = (w[r][k] + 128) + 256 w[r + 1][k]
 * (exactly in -32768..32767). SMLAD of the input pair (x[k], x[k + 2]) with the
 * raw word accumulates A = sum x (w[r] + 128) + 256 sum x w[r + 1] (modulo 2^32),
 * SMLAD with SXTB16 ROR 8 of the word accumulates B = sum x w[r + 1]; then
 *   dot(w[r], x) = A - 256 B - 128 sum x   (exact: the true value fits int32,
 * and every step wraps modulo 2^32 alike). Per block of 4 depth values and 4
 * rows: 1 input load + 2 SXTB16, 2 LDRD, 4 SXTB16 ROR 8, 8 SMLAD. The generator
 * folds 256 b[r + 1] into the bias of row r (bias[r] = b[r] + 256 b[r + 1],
 * wrapped), so A starts at bias[r] + (257 filter_offset - 128) sum x and B at
 * bias[r + 1] + filter_offset sum x. */

#if TINYML_DSP
#define FCP_SMLAD(a, b, acc) __smlad((a), (b), (acc))
#define FCP_SXTB16(v) __sxtb16(v)
#define FCP_SXTB16_ROR8(v) tinyml_sxtb16_ror8(v)
#define FCP_READ4(p) tinyml_read_s8x4(p)
#else
/* Portable SMLAD / SXTB16 with the DSP instructions' results (the sum wraps). */
static inline int32_t fcp_smlad(int32_t a, int32_t b, int32_t acc)
{
    const int32_t p0 = (int32_t)(int16_t)(uint16_t)(uint32_t)a * (int16_t)(uint16_t)(uint32_t)b;
    const int32_t p1 = (int32_t)(int16_t)(uint16_t)((uint32_t)a >> 16) * (int16_t)(uint16_t)((uint32_t)b >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)p0 + (uint32_t)p1);
}
static inline int32_t fcp_sxtb16(int32_t v)
{
    const uint32_t u = (uint32_t)v;
    const int32_t lo = (int8_t)(uint8_t)u, hi = (int8_t)(uint8_t)(u >> 16);
    return (int32_t)((uint32_t)(uint16_t)(int16_t)lo | ((uint32_t)(uint16_t)(int16_t)hi << 16));
}
static inline int32_t fcp_read4(const int8_t *p)
{
    int32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}
#define FCP_READ4(p) fcp_read4(p)
#define FCP_SMLAD(a, b, acc) fcp_smlad((a), (b), (acc))
#define FCP_SXTB16(v) fcp_sxtb16(v)
#define FCP_SXTB16_ROR8(v) fcp_sxtb16((int32_t)((uint32_t)(v) >> 8))
#endif

/* The per-tensor epilogue of fc_requant_s8 with its constants in registers:
 * floor((acc m + k 2^31) / 2^32) >> e, k = (2 zp + 1) 2^e. For e >= 1 the
 * constant is (k / 2) 2^32: SMMLA with accumulator k >> 1; for e = 0 it is
 * (k >> 1) 2^32 + 2^31: SMMLAR (rnd). Then the clamp (SSAT when full). */
typedef struct {
    int32_t m, e, kh, lo, hi;
} fcp_pt;

static inline __attribute__((always_inline)) int8_t fcp_finish_pt(const fcp_pt *q, int32_t acc, const int rnd,
                                                                  const int full)
{
    int32_t h;
#if TINYML_DSP
    if (rnd) {
        __asm__("smmlar %0, %1, %2, %3" : "=r"(h) : "r"(acc), "r"(q->m), "r"(q->kh));
    } else {
        __asm__("smmla %0, %1, %2, %3" : "=r"(h) : "r"(acc), "r"(q->m), "r"(q->kh));
    }
    h >>= q->e;
    if (full) {
        return (int8_t)__ssat(h, 8);
    }
#else
    const int64_t r = (int64_t)q->kh * 4294967296ll + (int64_t)acc * q->m + (rnd ? 0x80000000ll : 0);
    h = (int32_t)(r >> 32) >> q->e;
    (void)full;
#endif
    return (int8_t)tinyml_clamp(h, q->lo, q->hi);
}

/* Output rows o of one input row: the per-tensor epilogue (mode 7: SMMLA, 8:
 * SMMLAR, each with SSAT when full) or finish_m's (modes 0, 3). */
static inline __attribute__((always_inline)) int8_t fcp_finish(const fc_finish *f, const fcp_pt *q, int32_t acc,
                                                               int32_t o, const int mode, const int full)
{
    if (mode == 7 || mode == 8) {
        return fcp_finish_pt(q, acc, mode == 8, full);
    }
    return finish_m(f, acc, o, mode);
}

/* One group of 4 rows against x over n4 depth values (n4 / 4 blocks of 16
 * filter bytes at w, word aligned); a0/b0 and a1/b1 are the A/B accumulators
 * of the group's two row pairs. */
#define FCP_BLOCK(wp, xp, i)                                                                     \
    do {                                                                                         \
        const int32_t xv_ = FCP_READ4((xp) + 4 * (i));                                    \
        const int32_t xe_ = FCP_SXTB16(xv_), xo_ = FCP_SXTB16_ROR8(xv_);                         \
        int32_t w0_, w1_, w2_, w3_;                                                              \
        FCP_LOAD2(wp, 16 * (i), w0_, w1_);                                                       \
        FCP_LOAD2(wp, 16 * (i) + 8, w2_, w3_);                                                   \
        a0 = FCP_SMLAD(xe_, w0_, a0);                                                            \
        b0 = FCP_SMLAD(xe_, FCP_SXTB16_ROR8(w0_), b0);                                           \
        a0 = FCP_SMLAD(xo_, w1_, a0);                                                            \
        b0 = FCP_SMLAD(xo_, FCP_SXTB16_ROR8(w1_), b0);                                           \
        a1 = FCP_SMLAD(xe_, w2_, a1);                                                            \
        b1 = FCP_SMLAD(xe_, FCP_SXTB16_ROR8(w2_), b1);                                           \
        a1 = FCP_SMLAD(xo_, w3_, a1);                                                            \
        b1 = FCP_SMLAD(xo_, FCP_SXTB16_ROR8(w3_), b1);                                           \
    } while (0)
#if TINYML_DSP
#define FCP_LOAD2(p, off, lo, hi) TINYML_LDRD(p, off, lo, hi)
#else
#define FCP_LOAD2(p, off, lo, hi)                                                                \
    do {                                                                                         \
        __builtin_memcpy(&(lo), (const uint8_t *)(p) + (off), 4);                                \
        __builtin_memcpy(&(hi), (const uint8_t *)(p) + (off) + 4, 4);                            \
    } while (0)
#endif

#if TINYML_DSP
/* One depth block of a 4-row group in assembly (GCC spills the unrolled C
 * form): the input word (post-incremented), its SXTB16 pair, the group's four
 * weight words in one LDM (r8-r11, post-incremented), each raw word into A and
 * after SXTB16 ROR 8 (in place) into B: 16 instructions for 16 MACs. */
#define FCP_ASM_BLOCK                                                                            \
    "ldr    %[xo], [%[xp]], #4\n\t"                                                               \
    "sxtb16 %[xe], %[xo]\n\t"                                                                     \
    "sxtb16 %[xo], %[xo], ror #8\n\t"                                                             \
    "ldmia  %[wp]!, {r8, r9, r10, r11}\n\t"                                                       \
    "smlad  %[a0], %[xe], r8, %[a0]\n\t"                                                          \
    "sxtb16 r8, r8, ror #8\n\t"                                                                   \
    "smlad  %[b0], %[xe], r8, %[b0]\n\t"                                                          \
    "smlad  %[a0], %[xo], r9, %[a0]\n\t"                                                          \
    "sxtb16 r9, r9, ror #8\n\t"                                                                   \
    "smlad  %[b0], %[xo], r9, %[b0]\n\t"                                                          \
    "smlad  %[a1], %[xe], r10, %[a1]\n\t"                                                         \
    "sxtb16 r10, r10, ror #8\n\t"                                                                 \
    "smlad  %[b1], %[xe], r10, %[b1]\n\t"                                                         \
    "smlad  %[a1], %[xo], r11, %[a1]\n\t"                                                         \
    "sxtb16 r11, r11, ror #8\n\t"                                                                 \
    "smlad  %[b1], %[xo], r11, %[b1]\n\t"

/* a0/b0, a1/b1 += the blocks of one group: nb depth blocks from *wp (word
 * aligned) and *xp, both pointers advanced past them. Four blocks per trip. */
static inline __attribute__((always_inline)) void fcp_group_dsp(const int8_t **wp, const int8_t **xp, int32_t nb,
                                                                int32_t *a0, int32_t *b0, int32_t *a1, int32_t *b1)
{
    const int8_t *w = *wp, *x = *xp;
    int32_t A0 = *a0, B0 = *b0, A1 = *a1, B1 = *b1;
    int32_t xe, xo;
    int32_t trips = nb >> 2, left = nb & 3;
    if (trips > 0) {
        __asm__ volatile("1:\n\t" FCP_ASM_BLOCK FCP_ASM_BLOCK FCP_ASM_BLOCK FCP_ASM_BLOCK
                         "subs   %[k], %[k], #1\n\t"
                         "bne    1b\n\t"
                         : [a0] "+r"(A0), [b0] "+r"(B0), [a1] "+r"(A1), [b1] "+r"(B1), [xp] "+r"(x), [wp] "+r"(w),
                           [k] "+r"(trips), [xe] "=&r"(xe), [xo] "=&r"(xo)
                         :
                         : "r8", "r9", "r10", "r11", "cc", "memory");
    }
    if (left > 0) {
        __asm__ volatile("1:\n\t" FCP_ASM_BLOCK
                         "subs   %[k], %[k], #1\n\t"
                         "bne    1b\n\t"
                         : [a0] "+r"(A0), [b0] "+r"(B0), [a1] "+r"(A1), [b1] "+r"(B1), [xp] "+r"(x), [wp] "+r"(w),
                           [k] "+r"(left), [xe] "=&r"(xe), [xo] "=&r"(xo)
                         :
                         : "r8", "r9", "r10", "r11", "cc", "memory");
    }
    *wp = w;
    *xp = x;
    *a0 = A0; *b0 = B0; *a1 = A1; *b1 = B1;
}
#undef FCP_ASM_BLOCK
#endif

#if TINYML_DSP
/* y[k] = v, k a constant 0..3: one STRB */
#define FCP_STORE8(y, k, v) __asm__("strb %1, [%0, %2]" : : "r"(y), "r"(v), "i"(k) : "memory")
#else
#define FCP_STORE8(y, k, v) ((y)[k] = (v))
#endif

static inline __attribute__((always_inline)) void fcp_rows(const fc_finish *fp, const fcp_pt *qp, int32_t batches,
                                                           const int8_t *input, const int8_t *filter,
                                                           int8_t *output, int32_t n, int32_t od, int32_t fo,
                                                           const int mode, const int full)
{
    const fc_finish f = *fp;
    const fcp_pt q = *qp;
    const int32_t n4 = n & ~3, nt = n & 3, groups = od >> 2;
    const int8_t *rest = filter + groups * 4 * n;   /* plain rows after the groups */
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *x = input + b * n;
        int8_t *y = output + b * od;
        const int32_t s4 = tinyml_sum_s8(x, n4);
        int32_t s = s4;
        for (int32_t j = n4; j < n; ++j) {
            s += x[j];
        }
        /* wrapping products: only their sum modulo 2^32 matters */
        const int32_t t1 = (int32_t)((uint32_t)fo * (uint32_t)s);
        const int32_t t0 = (int32_t)((uint32_t)t1 * 257u - (uint32_t)s4 * 128u);
        const int8_t *w = filter;
        for (int32_t gi = 0; gi < groups; ++gi) {
            const int32_t o = 4 * gi;
            int32_t a0 = (int32_t)((uint32_t)f.bias[o] + (uint32_t)t0);
            int32_t b0 = (int32_t)((uint32_t)f.bias[o + 1] + (uint32_t)t1);
            int32_t a1 = (int32_t)((uint32_t)f.bias[o + 2] + (uint32_t)t0);
            int32_t b1 = (int32_t)((uint32_t)f.bias[o + 3] + (uint32_t)t1);
            const int8_t *xp = x;
#if TINYML_DSP
            fcp_group_dsp(&w, &xp, n4 >> 2, &a0, &b0, &a1, &b1);
#else
            for (int32_t k = n4 >> 2; k > 0; --k) {
                FCP_BLOCK(w, xp, 0);
                w += 16;
                xp += 4;
            }
#endif
            int32_t d0 = (int32_t)((uint32_t)a0 - ((uint32_t)b0 << 8)), d1 = b0;
            int32_t d2 = (int32_t)((uint32_t)a1 - ((uint32_t)b1 << 8)), d3 = b1;
            if (nt) {   /* the depth tail: plain signed bytes, row after row */
                for (int32_t j = 0; j < nt; ++j) {
                    const int32_t xj = x[n4 + j];
                    d0 += w[j] * xj;
                    d1 += w[nt + j] * xj;
                    d2 += w[2 * nt + j] * xj;
                    d3 += w[3 * nt + j] * xj;
                }
                w += 4 * nt;
            }
            const int8_t v0 = fcp_finish(&f, &q, d0, o, mode, full), v1 = fcp_finish(&f, &q, d1, o + 1, mode, full);
            const int8_t v2 = fcp_finish(&f, &q, d2, o + 2, mode, full), v3 = fcp_finish(&f, &q, d3, o + 3, mode, full);
            /* four STRB (GCC would merge them into one STR after a BFI per byte) */
            int8_t *yo = y + o;
            FCP_STORE8(yo, 0, v0);
            FCP_STORE8(yo, 1, v1);
            FCP_STORE8(yo, 2, v2);
            FCP_STORE8(yo, 3, v3);
        }
        for (int32_t o = 4 * groups; o < od; ++o) {
            const int32_t acc = f.bias[o] + t1 + tinyml_dot_s8(rest + (o - 4 * groups) * n, x, n);
            y[o] = fcp_finish(&f, &q, acc, o, mode, full);
        }
    }
}
#undef FCP_BLOCK
#undef FCP_LOAD2

tinyml_status tinyml_fc_s8_pairs(const tinyml_fc_layer *layer, int32_t batches, const int8_t *input,
                                 const int8_t *filter, int8_t *output)
{
    if (!layer || !input || !filter || !output || !layer->bias || (!layer->shift && !layer->shift8) ||
        batches < 0 || layer->accum_depth <= 0 || layer->output_depth <= 0 || ((uintptr_t)filter & 3) != 0) {
        return TINYML_ERROR_ARG;
    }
    const int32_t n = layer->accum_depth, od = layer->output_depth;
    const fc_finish f = {layer->bias, layer->multiplier, layer->shift, layer->table,
                         layer->output_offset, layer->activation.min, layer->activation.max,
                         layer->double_rounding, 0,
                         layer->per_tensor ? 0 : -1, layer->shift8, 2 * layer->output_offset + 1};
    const int full = f.lo == -128 && f.hi == 127;
    fcp_pt q = {0, 0, 0, f.lo, f.hi};
    int mode = 0;
#if TINYML_SINGLE_ROUNDING
    if (layer->per_tensor && f.shift8 && !f.dr && !f.table) {
        q.m = f.mult[0];
        q.e = -1 - f.shift8[0];
        q.kh = (int32_t)((uint32_t)f.zp21 << q.e) >> 1;
        mode = q.e == 0 ? 8 : 7;
    }
#endif
    const int32_t fo = layer->filter_offset;
    /* Each epilogue gets its own copy of the row loop, branches resolved at compile time. */
    if (mode == 7 && full) {
        fcp_rows(&f, &q, batches, input, filter, output, n, od, fo, 7, 1);
    } else if (mode == 7) {
        fcp_rows(&f, &q, batches, input, filter, output, n, od, fo, 7, 0);
    } else if (mode == 8 && full) {
        fcp_rows(&f, &q, batches, input, filter, output, n, od, fo, 8, 1);
    } else if (mode == 8) {
        fcp_rows(&f, &q, batches, input, filter, output, n, od, fo, 8, 0);
    } else if (!f.dr && !f.table && f.shift8 && full) {
        /* per-channel int8 shifts (finish_m's mode 3); other epilogues: the generic one */
        fcp_rows(&f, &q, batches, input, filter, output, n, od, fo, 3, 0);
    } else {
        fcp_rows(&f, &q, batches, input, filter, output, n, od, fo, 0, 0);
    }
    return TINYML_OK;
}

void tinyml_pack_s8(const int8_t *src, int32_t rows, int32_t depth, int32_t row_stride, int32_t col_stride,
                    int8_t *dst, int32_t *row_sums)
{
    const int32_t n4 = depth & ~3, nt = depth & 3, groups = rows >> 2;
    int8_t *d = dst;
    for (int32_t g = 0; g < groups; ++g) {
        const int8_t *r0 = src + 4 * g * row_stride;
        for (int32_t k = 0; k < n4; k += 4) {
            for (int32_t r = 0; r < 4; ++r) {
                const int8_t *s = r0 + r * row_stride + k * col_stride;
                d[0] = s[0];
                d[1] = s[col_stride];
                d[2] = s[2 * col_stride];
                d[3] = s[3 * col_stride];
                d += 4;
            }
        }
        for (int32_t r = 0; r < 4; ++r) {
            for (int32_t k = n4; k < n4 + nt; ++k) {
                *d++ = r0[r * row_stride + k * col_stride];
            }
        }
    }
    for (int32_t r = 4 * groups; r < rows; ++r) {
        for (int32_t k = 0; k < depth; ++k) {
            *d++ = src[r * row_stride + k * col_stride];
        }
    }
    if (row_sums) {
        for (int32_t r = 0; r < rows; ++r) {
            int32_t sum = 0;
            for (int32_t k = 0; k < depth; ++k) {
                sum += src[r * row_stride + k * col_stride];
            }
            row_sums[r] = sum;
        }
    }
}

void tinyml_packed_dots_s8(const int8_t *packed, int32_t rows, int32_t depth, const int8_t *x0,
                           const int8_t *x1, int32_t *acc0, int32_t *acc1)
{
    const int32_t n4 = depth & ~3, nt = depth & 3, groups = rows >> 2;
    for (int32_t g = 0; g < groups; ++g) {
        const int8_t *gp = packed + 4 * g * depth;
        int32_t *a0 = acc0 + 4 * g;
#if TINYML_DSP
        if (x1) {
            int32_t *a1 = acc1 + 4 * g;
            for (int32_t r = 0; r < 4; r += 2) {
                int32_t acc[4] = {0, 0, 0, 0};
                group_2x2(gp, r, n4, nt, x0, x1, acc);
                a0[r] = acc[0];
                a1[r] = acc[1];
                a0[r + 1] = acc[2];
                a1[r + 1] = acc[3];
            }
            continue;
        }
        int32_t acc[4] = {0, 0, 0, 0};
        group_4x1(gp, n4, nt, x0, acc);
        a0[0] = acc[0]; a0[1] = acc[1]; a0[2] = acc[2]; a0[3] = acc[3];
#else
        for (int32_t r = 0; r < 4; ++r) {
            a0[r] = group_row_dot(gp, r, n4, nt, x0);
            if (x1) {
                acc1[4 * g + r] = group_row_dot(gp, r, n4, nt, x1);
            }
        }
#endif
    }
    const int8_t *rest = packed + 4 * groups * depth;
    for (int32_t r = 4 * groups; r < rows; ++r) {
        const int8_t *w = rest + (r - 4 * groups) * depth;
        acc0[r] = tinyml_dot_s8(w, x0, depth);
        if (x1) {
            acc1[r] = tinyml_dot_s8(w, x1, depth);
        }
    }
}

void tinyml_strided_dots_s8(const int8_t *rows, int32_t nrows, int32_t row_stride, int32_t depth,
                            const int8_t *x, int32_t *acc)
{
    int32_t r = 0;
#if TINYML_DSP
    const int32_t n4 = depth & ~3;
    for (; r + 4 <= nrows; r += 4) {
        const int8_t *w0 = rows + r * row_stride, *w1 = w0 + row_stride;
        const int8_t *w2 = w1 + row_stride, *w3 = w2 + row_stride;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        int32_t k = 0;
        for (; k < n4; k += 4) {
            const int32_t xv = tinyml_read_s8x4(x + k);
            const int32_t xe = __sxtb16(xv), xo = tinyml_sxtb16_ror8(xv);
            int32_t wv = tinyml_read_s8x4(w0 + k);
            a0 = __smlad(__sxtb16(wv), xe, a0);
            a0 = __smlad(tinyml_sxtb16_ror8(wv), xo, a0);
            wv = tinyml_read_s8x4(w1 + k);
            a1 = __smlad(__sxtb16(wv), xe, a1);
            a1 = __smlad(tinyml_sxtb16_ror8(wv), xo, a1);
            wv = tinyml_read_s8x4(w2 + k);
            a2 = __smlad(__sxtb16(wv), xe, a2);
            a2 = __smlad(tinyml_sxtb16_ror8(wv), xo, a2);
            wv = tinyml_read_s8x4(w3 + k);
            a3 = __smlad(__sxtb16(wv), xe, a3);
            a3 = __smlad(tinyml_sxtb16_ror8(wv), xo, a3);
        }
        for (; k < depth; ++k) {
            const int32_t xk = x[k];
            a0 += w0[k] * xk;
            a1 += w1[k] * xk;
            a2 += w2[k] * xk;
            a3 += w3[k] * xk;
        }
        acc[r] = a0; acc[r + 1] = a1; acc[r + 2] = a2; acc[r + 3] = a3;
    }
#endif
    for (; r < nrows; ++r) {
        acc[r] = tinyml_dot_s8(rows + r * row_stride, x, depth);
    }
}
