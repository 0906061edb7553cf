/* tinyml kernels: fully connected (int8) and the int8 dot-product helpers. */
#ifndef TINYML_FC_H
#define TINYML_FC_H

#include "tinyml/common.h"

/* One FULLY_CONNECTED layer with its build-time constants:
 *   y[b][o] = clamp(requant(dot(w[o], x[b]) + bias[o] + filter_offset * sum(x[b]), o)
 *                   + output_offset)
 * where the generator folded the input offset into the bias,
 *   bias[o] = b[o] + input_offset * sum_d w[o][d] + accum_depth * input_offset * filter_offset,
 * which equals TFLite's sum_d (w + filter_offset)(x + input_offset) + b exactly (int32
 * wraps alike). requant is tinyml_requantize with (multiplier[o], shift[o] or shift8[o]) (index 0 for
 * every o when per_tensor is set), or
 * tinyml_requantize_double_fast when double_rounding is set (convolutions). If `table`
 * is not NULL, y is then mapped through it (table[y + 128]; the activation op a fused
 * chain absorbed). bias is never NULL. */
typedef struct {
    int32_t accum_depth, output_depth;
    int32_t filter_offset;    /* -(filter zero point); 0 for symmetric int8 weights */
    int32_t output_offset;    /* output zero point */
    tinyml_activation activation;
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
    const int8_t *table;
    uint8_t double_rounding;  /* 1: gemmlowp double rounding (CONV_2D's), 0: tinyml_requantize */
    uint8_t fast_requant;     /* 1 (with double_rounding, no table): the generator proved
                               * tinyml_requantize_bounded's preconditions for every output
                               * (|acc| < 2^30, -22 <= shift <= -1): same bytes, fewer
                               * instructions; 0 when not set (other generators) */
    uint8_t per_tensor;       /* 1: multiplier[0] and shift[0] (shift8[0]) apply to every output
                               * (one-element arrays; TFLite's per-tensor FULLY_CONNECTED), 0: one per output */
    const int8_t *shift8;     /* FULLY_CONNECTED (double_rounding = 0, no table): the shifts as int8,
                               * each in -24..-1 (checked by the generator), `shift` then NULL; the
                               * requantization plus output offset is then one SMLAL (fc_requant_s8).
                               * NULL: `shift` holds int32 shifts (the convolutions) */
} tinyml_fc_layer;

/* Packed filter layout (written by the generator, codegen/ops/fully_connected.py
 * pack_filter): output rows in groups of 4; per group, for each block of 4 depth
 * values, 16 bytes = rows 0..3 x those 4 values, then the depth % 4 tail values of
 * rows 0..3 (row after row). The output_depth % 4 remaining rows follow as plain
 * rows. Same byte count as the [output_depth][accum_depth] TFLite filter. */

/* Rows of TFLite FULLY_CONNECTED (batches x accum_depth input, row-major) with
 * a packed filter. Finishes output row b before it writes anything of row b + 2,
 * and writes output row b + 1 only after input rows b and b + 1 are read, so the
 * output may start (out_depth - in_depth) * b + out_depth bytes before the input
 * (the planner's FC overlap rule). Uses the Cortex-M DSP extension (SXTB16,
 * SMLAD; 4 rows x 1 input or 2 rows x 2 inputs per pass) when available,
 * portable C otherwise; identical results. */
tinyml_status tinyml_fc_s8(const tinyml_fc_layer *layer, int32_t batches, const int8_t *input,
                           const int8_t *packed_filter, int8_t *output);

/* Row-pair filter layout (codegen/ops/fully_connected.py pack_filter_pairs):
 * output rows in groups of 4 (pairs r, r + 1 and r + 2, r + 3); per group, for each
 * block of 4 depth values k..k+3, four words (16 bytes, word aligned):
 *   (w[r][k]+128, w[r+1][k], w[r][k+2]+128, w[r+1][k+2]),
 *   (w[r][k+1]+128, w[r+1][k+1], w[r][k+3]+128, w[r+1][k+3]), the same two for rows r+2, r+3
 * (+128: the byte XOR 0x80); then the depth % 4 tail values of rows r..r+3 (row after
 * row, plain). The output_depth % 4 remaining rows follow as plain rows. Same byte
 * count as the TFLite filter. The bias of the first row of each pair holds
 * b[r] + 256 b[r + 1] (wrapped to int32) on top of the input-offset fold of
 * tinyml_fc_layer; the other rows' biases are as there.
 *
 * tinyml_fc_s8 on that layout (the filter word aligned, else TINYML_ERROR_ARG), one
 * input row at a time, 4 output rows per pass; each weight word feeds two SMLADs
 * after one SXTB16 (fc.c states the arithmetic). Same results as tinyml_fc_s8 and
 * the same overlap rule (output row b is written after input rows < b are read and
 * while input row b is read, so it must not overlap input row b: the planner's FC
 * rule). */
tinyml_status tinyml_fc_s8_pairs(const tinyml_fc_layer *layer, int32_t batches, const int8_t *input,
                                 const int8_t *filter, int8_t *output);

/* Pack a rows x depth int8 matrix whose element (r, k) is src[r * row_stride +
 * k * col_stride] into the packed filter layout above (rows play output rows),
 * so activations (attention keys, transposed values) can use the same inner
 * loops; row_sums[r] = sum_k element (r, k) if row_sums is not NULL. */
void tinyml_pack_s8(const int8_t *src, int32_t rows, int32_t depth, int32_t row_stride, int32_t col_stride,
                    int8_t *dst, int32_t *row_sums);

/* acc0[r] = dot(packed row r, x0) for r < rows, and acc1[r] = dot(packed row r, x1)
 * when x1 is not NULL (both inputs share each weight load: 2 x 2 blocking on DSP). */
void tinyml_packed_dots_s8(const int8_t *packed, int32_t rows, int32_t depth, const int8_t *x0,
                           const int8_t *x1, int32_t *acc0, int32_t *acc1);

/* acc[r] = dot(rows + r * row_stride, x) over depth values, r < nrows (unpacked
 * rows, e.g. attention keys in place; 4 rows per pass on DSP). */
void tinyml_strided_dots_s8(const int8_t *rows, int32_t nrows, int32_t row_stride, int32_t depth,
                            const int8_t *x, int32_t *acc);

/* Sum of a[i] * b[i] for i < n (int8 x int8 -> int32). Uses the Cortex-M DSP
 * extension (SXTB16 + SMLAD) when available; identical result either way. */
int32_t tinyml_dot_s8(const int8_t *a, const int8_t *b, int32_t n);

/* Sum of a[i] for i < n. */
int32_t tinyml_sum_s8(const int8_t *a, int32_t n);

#if TINYML_DSP
/* SXTB16 of x rotated right by 8: bytes 1 and 3 sign-extended to halfwords, in
 * one instruction (GCC does not fold the rotate into SXTB16 by itself). */
static inline int32_t tinyml_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* lo, hi = the two words at (const uint8_t *)p + off in one LDRD (GCC does not
 * pair the two loads by itself). off: an integer constant expression, a multiple
 * of 4 below 1024 (a macro, so it stays an immediate at any optimisation level);
 * p + off must be word aligned (LDRD does not take unaligned addresses). */
#define TINYML_LDRD(p, off, lo, hi)                                                                  \
    __asm__("ldrd %0, %1, [%2, %3]"                                                                  \
            : "=r"(lo), "=r"(hi)                                                                     \
            : "r"(p), "i"(off), "m"(*(const int32_t(*)[2])(const void *)((const uint8_t *)(p) + (off))))

/* Four int8 values from a possibly unaligned address (one LDR on Cortex-M4/M7). */
static inline int32_t tinyml_read_s8x4(const int8_t *p)
{
    int32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

/* Rows x0, x1 widened to int16 halfword pairs, per block of 4 depth values (k < n4,
 * n4 a multiple of 4) four words: SXTB16 and SXTB16 ROR 8 of x0's word, then of x1's,
 * the order TINYML_MAC_1X2/2X2 take them. Returns the word after the last written. */
static inline __attribute__((always_inline)) int32_t *tinyml_widen_pair_s8(const int8_t *x0, const int8_t *x1,
                                                                         int32_t n4, int32_t *dst)
{
    for (int32_t k = 0; k < n4; k += 4) {
        const int32_t v0 = tinyml_read_s8x4(x0 + k), v1 = tinyml_read_s8x4(x1 + k);
        dst[0] = __sxtb16(v0);
        dst[1] = tinyml_sxtb16_ror8(v0);
        dst[2] = __sxtb16(v1);
        dst[3] = tinyml_sxtb16_ror8(v1);
        dst += 4;
    }
    return dst;
}

/* One packed weight word wv (4 int8 of one filter row) against two inputs already in
 * SXTB16 order (x0e/x0o: input 0's even/odd bytes as halfword pairs, x1e/x1o: input 1's):
 * a0 += the 4-term dot with input 0, a1 += with input 1. 4 SMLADs, 2 SXTB16. */
#define TINYML_MAC_1X2(wv, x0e, x0o, x1e, x1o, a0, a1)                            \
    do {                                                                         \
        const int32_t we_ = __sxtb16(wv), wo_ = tinyml_sxtb16_ror8(wv);          \
        a0 = __smlad(we_, x0e, a0);                                              \
        a0 = __smlad(wo_, x0o, a0);                                              \
        a1 = __smlad(we_, x1e, a1);                                              \
        a1 = __smlad(wo_, x1o, a1);                                              \
    } while (0)

/* One depth block of a 2x2 output block: the packed filter's two rows at w (row r:
 * 4 int8 at w, row r + 1: 4 int8 at w + 4) against two widened inputs;
 * a<row><input> += the 4-term dot. Macros, so the accumulators stay in registers at
 * the call (fc.c's pair loops and conv.c's pixel pairs). */
#define TINYML_MAC_2X2(w, x0e, x0o, x1e, x1o, a00, a01, a10, a11)                  \
    do {                                                                         \
        const int32_t w0_ = tinyml_read_s8x4(w);                                 \
        TINYML_MAC_1X2(w0_, x0e, x0o, x1e, x1o, a00, a01);                       \
        const int32_t w1_ = tinyml_read_s8x4((w) + 4);                           \
        TINYML_MAC_1X2(w1_, x0e, x0o, x1e, x1o, a10, a11);                       \
    } while (0)
#endif

/* dst[i] = src[i] for i < n, four bytes per step (unaligned word accesses are
 * fine on Cortex-M3/M4/M7 and on hosts; memcpy keeps it defined C). */
static inline void tinyml_copy_s8(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        int32_t v;
        __builtin_memcpy(&v, src + i, 4);
        __builtin_memcpy(dst + i, &v, 4);
    }
    for (; i < n; ++i) {
        dst[i] = src[i];
    }
}

#endif /* TINYML_FC_H */
