/* tinyml kernels: static helpers shared by the fused_*.c kernels (private). */
#ifndef TINYML_FUSED_COMMON_H
#define TINYML_FUSED_COMMON_H

#include "tinyml/fused.h"
#include "tinyml/fc.h"

/* MEAN of one row: clamp(requant_dr(S - n * input_zp, quant) + output_zp). */
static inline int32_t fused_mean_finish(const tinyml_mean_params *p, int32_t sum)
{
    const int32_t y = tinyml_requantize_double_fast(sum - p->count * p->input_zp, p->quant.multiplier, p->quant.shift);
    return TINYML_CLAMP(y + p->output_zp, -128, 127);
}

/* MUL: clamp(requant_dr((x1 + off1) * (x2 + off2), output) + output_offset). */
static inline int32_t fused_mul(const tinyml_mul_params *p, int32_t x1, int32_t x2)
{
    const int32_t prod = (x1 + p->input1_offset) * (x2 + p->input2_offset);
    const int32_t y = tinyml_requantize_double_fast(prod, p->output.multiplier, p->output.shift) + p->output_offset;
    return TINYML_CLAMP(y, p->activation.min, p->activation.max);
}

/* One input rescaling (tinyml_rescale): requant_dr((x + offset) << ls, quant). */
static inline int32_t fused_rescale(const tinyml_rescale *r, int32_t x, const int32_t ls)
{
    return tinyml_requantize_bounded((int32_t)((uint32_t)(x + r->offset) << ls), r->quant.multiplier,
                                     r->quant.shift, 0);
}

/* ADD with computed input rescalings (tinyml_fused_add). */
static inline int32_t fused_add(const tinyml_fused_add *p, int32_t x1, int32_t x2)
{
    const int32_t s = fused_rescale(&p->input1, x1, 20) + fused_rescale(&p->input2, x2, 20);
    const int32_t y = tinyml_requantize_double_fast(s, p->output.multiplier, p->output.shift) + p->output_offset;
    return TINYML_CLAMP(y, p->activation.min, p->activation.max);
}

/* SQUARED_DIFFERENCE of x1 and an already rescaled second operand b; |a - b| <= 255 * 2^7. */
static inline int32_t fused_sqdiff_b(const tinyml_fused_add *p, int32_t x1, int32_t b)
{
    const int32_t d = fused_rescale(&p->input1, x1, 7) - b;
    const int32_t y = tinyml_requantize_double_fast(d * d, p->output.multiplier, p->output.shift) + p->output_offset;
    return TINYML_CLAMP(y, p->activation.min, p->activation.max);
}

/* clamp(y) to an activation range; with `full` (the range is -128..127, known
 * at the call site) one SSAT on DSP cores instead of two compares with loads. */
static inline int32_t fused_clamp(const tinyml_activation *a, int32_t y, const int full)
{
#if TINYML_DSP
    if (full) {
        return __ssat(y, 8);
    }
#endif
    return full ? TINYML_CLAMP(y, -128, 127) : TINYML_CLAMP(y, a->min, a->max);
}

static inline int fused_full_range(const tinyml_activation *a)
{
    return a->min == -128 && a->max == 127;
}

/* fused_mul / fused_add with the clamp as fused_clamp(.., full). */
static inline int32_t fused_mul_f(const tinyml_mul_params *p, int32_t x1, int32_t x2, const int full)
{
    const int32_t prod = (x1 + p->input1_offset) * (x2 + p->input2_offset);
    const int32_t y = tinyml_requantize_double_fast(prod, p->output.multiplier, p->output.shift) + p->output_offset;
    return fused_clamp(&p->activation, y, full);
}

static inline int32_t fused_add_f(const tinyml_fused_add *p, int32_t x1, int32_t x2, const int full)
{
    const int32_t s = fused_rescale(&p->input1, x1, 20) + fused_rescale(&p->input2, x2, 20);
    const int32_t y = tinyml_requantize_double_fast(s, p->output.multiplier, p->output.shift) + p->output_offset;
    return fused_clamp(&p->activation, y, full);
}

/* fused_add_f with the second operand already rescaled (b = fused_rescale(&p->input2, x2, 20)). */
static inline int32_t fused_add_b_f(const tinyml_fused_add *p, int32_t x1, int32_t b, const int full)
{
    const int32_t s = fused_rescale(&p->input1, x1, 20) + b;
    const int32_t y = tinyml_requantize_double_fast(s, p->output.multiplier, p->output.shift) + p->output_offset;
    return fused_clamp(&p->activation, y, full);
}

/* ---- `fast` variants: with fast (a compile-time constant at each call site,
 * chosen once per call by fused_quant_fast), the requantizations use
 * tinyml_requantize_bounded (SMMULR, the output offset folded in) instead of
 * tinyml_requantize_double_fast: the same integers when its preconditions hold
 * (|x| < 2^30, -22 <= shift <= -1, |offset| <= 128; tests/test_speed_requant.py).
 * The accumulators here are below 2^30 by construction: a MUL of two offset
 * int8 values |p| <= 255^2, an ADD of two rescalings |a + b| < 2^29 (each
 * below 255 * 2^20 * 2^-1), a SQUARED_DIFFERENCE |d|^2 <= (255 * 2^7)^2 < 2^30. */

static inline int fused_quant_fast(const tinyml_quant *q, int32_t offset)
{
    return q->multiplier >= 0 && q->shift >= -22 && q->shift <= -1 && offset >= -128 && offset <= 128;
}

static inline int32_t fused_requant(int32_t x, const tinyml_quant *q, int32_t offset, const int fast)
{
    return fast ? tinyml_requantize_bounded(x, q->multiplier, q->shift, offset)
                : tinyml_requantize_double_fast(x, q->multiplier, q->shift) + offset;
}

static inline int32_t fused_mul_ff(const tinyml_mul_params *p, int32_t x1, int32_t x2, const int full,
                                   const int fast)
{
    const int32_t prod = (x1 + p->input1_offset) * (x2 + p->input2_offset);
    return fused_clamp(&p->activation, fused_requant(prod, &p->output, p->output_offset, fast), full);
}

static inline int32_t fused_add_ff(const tinyml_fused_add *p, int32_t x1, int32_t x2, const int full,
                                   const int fast)
{
    const int32_t s = fused_rescale(&p->input1, x1, 20) + fused_rescale(&p->input2, x2, 20);
    return fused_clamp(&p->activation, fused_requant(s, &p->output, p->output_offset, fast), full);
}

static inline int32_t fused_add_b_ff(const tinyml_fused_add *p, int32_t x1, int32_t b, const int full,
                                     const int fast)
{
    const int32_t s = fused_rescale(&p->input1, x1, 20) + b;
    return fused_clamp(&p->activation, fused_requant(s, &p->output, p->output_offset, fast), full);
}

/* SQUARED_DIFFERENCE's output range is always -128..127. */
static inline int32_t fused_sqdiff_b_ff(const tinyml_fused_add *p, int32_t x1, int32_t b, const int fast)
{
    const int32_t d = fused_rescale(&p->input1, x1, 7) - b;
    return fused_clamp(&p->activation, fused_requant(d * d, &p->output, p->output_offset, fast), 1);
}

/* ---- Requantization on a doubled accumulator (the LayerNorm fast rows and
 * the fast ADD). Each tinyml_requantize_bounded(x, m, -e, zp) is taken on the
 * doubled accumulator x2 = 2x the code already has:
 *   h = SMMULR(x2, m), y = (h + (h >> 31) + k) >> e, k = (2 zp + 1) 2^(e-1).
 * A MUL with one operand fixed per row, (a + o1)(x + o2), doubles to
 * A x + A o2 with A = 2 (a + o1): one MLA. An ADD input rescaling with
 * multiplier 2^31 - 1, shift -1 (the "unit" rescaling the generator emits for
 * the larger-scale input) is exactly (x + offset) << (ls - 1) for |x + offset|
 * <= 255 (the SMMULR's error term stays below 2^31 / 2^32 and the final shift
 * by 1 drops only the sign nudge), so it costs one ADD with a shifted operand. */
typedef struct {
    int32_t m, k, e;
} fused_rq;

static inline fused_rq fused_rq_make(const tinyml_quant *q, int32_t zp)
{
    const int32_t e = -q->shift;
    const fused_rq r = {q->multiplier, (int32_t)((uint32_t)(2 * zp + 1) << (e - 1)), e};
    return r;
}

static inline int32_t fused_smmulr(int32_t a, int32_t b)
{
#if TINYML_DSP
    int32_t h;
    __asm__("smmulr %0, %1, %2" : "=r"(h) : "r"(a), "r"(b));
    return h;
#else
    return (int32_t)(((int64_t)a * b + 0x80000000ll) >> 32);
#endif
}

/* k + SMMULR(a, b): one SMMLAR on DSP cores. */
static inline int32_t fused_smmlar(int32_t a, int32_t b, int32_t k)
{
#if TINYML_DSP
    int32_t h;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(h) : "r"(a), "r"(b), "r"(k));
    return h;
#else
    return k + (int32_t)(((int64_t)a * b + 0x80000000ll) >> 32);
#endif
}

/* tinyml_requantize_bounded(x2 / 2, m, -e, zp), unclamped, for m >= 0 (as
 * fused_quant_fast requires): the sign nudge [h < 0] is taken as [x2 < 0]
 * (where they differ h = 0, and (k - 1) >> e = k >> e = zp for e >= 1), so the
 * rounding constant rides in the multiply: (SMMLAR(x2, m, k) + (x2 >> 31)) >> e. */
static inline int32_t fused_rq_apply(fused_rq q, int32_t x2)
{
    return (fused_smmlar(x2, q.m, q.k) + (x2 >> 31)) >> q.e;
}

static inline int32_t fused_sat8(int32_t y)
{
#if TINYML_DSP
    return __ssat(y, 8);
#else
    return TINYML_CLAMP(y, -128, 127);
#endif
}

/* fused_rescale(r, x, ls) for |x + offset| <= 255 as c + (x << (ls + 1)) into
 * the bounded requantization, c = offset << (ls + 1). */
typedef struct {
    int32_t c;
    fused_rq q;
} fused_rq_rescale;

static inline fused_rq_rescale fused_rq_rescale_make(const tinyml_rescale *r, int32_t ls)
{
    const fused_rq_rescale out = {(int32_t)((uint32_t)r->offset << (ls + 1)), fused_rq_make(&r->quant, 0)};
    return out;
}

static inline int fused_rescale_unit(const tinyml_rescale *r)
{
    return r->quant.multiplier == 0x7fffffff && r->quant.shift == -1;
}

#endif /* TINYML_FUSED_COMMON_H */
