/*
 * tinyml kernels: shared types and fixed-point helpers.
 *
 * Arithmetic contract: every helper reproduces TensorFlow Lite's reference
 * integer arithmetic bit for bit. Requantization (MultiplyByQuantizedMultiplier)
 * exists in two flavours and TFLite builds pick one:
 *   TINYML_SINGLE_ROUNDING=1: (x * m + 2^(30-shift)) >> (31 - shift), one
 *     rounding (TFLite built with TFLITE_SINGLE_ROUNDING, as the TensorFlow
 *     2.21 pip package is);
 *   TINYML_SINGLE_ROUNDING=0: rounding doubling high multiply, then a rounding
 *     shift right with ties away from zero (gemmlowp double rounding).
 * tinyml/config.h (written by the generator) selects the one the reference
 * runtime of the model uses for FULLY_CONNECTED (tinyml_requantize); ops whose
 * reference rounds twice in both runtimes call tinyml_requantize_double (or its
 * fast form) directly. The gemmlowp helpers below are used as such by softmax.
 * All helpers are pure functions of their arguments; no state, no malloc.
 */
#ifndef TINYML_COMMON_H
#define TINYML_COMMON_H

#include <stdint.h>
#include <stddef.h>

#include "tinyml/config.h"

#ifndef TINYML_SINGLE_ROUNDING
#define TINYML_SINGLE_ROUNDING 1
#endif

#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1) && !defined(TINYML_PORTABLE)
#include <arm_acle.h>
#define TINYML_DSP 1
#else
#define TINYML_DSP 0
#endif

/* Rotate right; compilers turn this idiom into one ROR instruction. (Not
 * ACLE's __ror, which arm-none-eabi-gcc 12's arm_acle.h lacks.) */
static inline uint32_t tinyml_ror(uint32_t x, uint32_t n)
{
    n &= 31u;
    return n ? (x >> n) | (x << (32u - n)) : x;
}

#define TINYML_MAX(a, b) ((a) > (b) ? (a) : (b))
#define TINYML_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TINYML_CLAMP(x, lo, hi) TINYML_MIN(TINYML_MAX((x), (lo)), (hi))

/* Status returned by every kernel. */
typedef enum {
    TINYML_OK = 0,
    TINYML_ERROR_ARG = -1,
    TINYML_ERROR_SCRATCH = -2   /* ctx->size below the kernel's *_scratch_size() (TINYML_CHECK_SCRATCH) */
} tinyml_status;

/* Scratch memory of one kernel call: `size` bytes at `buf` (4-byte aligned;
 * buf may be NULL when size is 0). Every kernel that needs scratch takes one
 * as its first argument and has a `<kernel>_scratch_size(...)` function, in its
 * header, computing the bytes it needs from the same params it receives. */
typedef struct {
    void *buf;
    int32_t size;
} tinyml_ctx;

/* With -DTINYML_CHECK_SCRATCH (host and debug builds) a kernel given less
 * scratch than its *_scratch_size() returns TINYML_ERROR_SCRATCH before it
 * touches memory; otherwise the check compiles to nothing. */
#ifdef TINYML_CHECK_SCRATCH
#define TINYML_SCRATCH_CHECK(ctx, need)                                  \
    do {                                                                 \
        if ((ctx) == NULL || (ctx)->size < (need)) {                     \
            return TINYML_ERROR_SCRATCH;                                 \
        }                                                                \
    } while (0)
#else
#define TINYML_SCRATCH_CHECK(ctx, need) ((void)0)
#endif

/* NHWC tensor extent (unused leading dims are 1). */
typedef struct {
    int32_t n, h, w, c;
} tinyml_dims;

/* One requantization: real_multiplier ~= multiplier * 2^(shift - 31). */
typedef struct {
    int32_t multiplier;
    int32_t shift;
} tinyml_quant;

/* Per-output-channel requantization (arrays of length output channels). The
 * shifts are int8 (TFLite's per-channel shifts are in -31..30; one byte a
 * channel instead of four in flash, the same one load per read). */
typedef struct {
    const int32_t *multiplier;
    const int8_t *shift;
} tinyml_per_channel_quant;

/* Clamp range of a fused activation, in the output's quantized domain
 * (int8, uint8 or int16 outputs: int16 holds every bound). */
typedef struct {
    int16_t min, max;
} tinyml_activation;

/* (a * b * 2) >> 31 with round-half-away-from-zero, saturating the one
 * overflow case (INT32_MIN * INT32_MIN). TFLite: SaturatingRoundingDoublingHighMul. */
static inline int32_t tinyml_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (1ll << 30) : (1 - (1ll << 30));
    /* C division truncates toward zero, as the reference does. */
    return (int32_t)((ab + nudge) / (1ll << 31));
}

/* x / 2^exponent rounded to nearest, ties away from zero. 0 <= exponent <= 31.
 * TFLite: RoundingDivideByPOT. */
static inline int32_t tinyml_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1ll << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * 2^exponent, saturated to int32, for 0 < exponent < 31.
 * gemmlowp: SaturatingRoundingMultiplyByPOT<exponent> (exponent > 0). */
static inline int32_t tinyml_sat_shift_left(int32_t x, int32_t exponent)
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

/* Leading zero bits of x (32 for 0). */
static inline int32_t tinyml_clz32(uint32_t x)
{
    return x ? (int32_t)__builtin_clz(x) : 32;
}

/* 1 / (1 + a) for a in [0, 1), both Q0.31: three Newton-Raphson steps in Q2.29
 * from 48/17 - 32/17 * d. gemmlowp: one_over_one_plus_x_for_x_in_0_1 (TFLite's
 * GetReciprocal, used by softmax, DIV and friends). */
static inline int32_t tinyml_one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + (int64_t)INT32_MAX;      /* RoundingHalfSum(a, One) */
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t c48_17 = 1515870810, cm32_17 = -1010580540;  /* Q2.29 */
    int32_t x = (int32_t)((uint32_t)c48_17 + (uint32_t)tinyml_doubling_high_mul(half_denominator, cm32_17));
    for (int i = 0; i < 3; ++i) {
        const int32_t hdx = tinyml_doubling_high_mul(half_denominator, x);
        const int32_t one_minus = (int32_t)((uint32_t)(1 << 29) - (uint32_t)hdx);
        x = (int32_t)((uint32_t)x + (uint32_t)tinyml_sat_shift_left(tinyml_doubling_high_mul(x, one_minus), 2));
    }
    return tinyml_sat_shift_left(x, 1);                        /* ExactMulByPot<-1>, Rescale<0> */
}

/* ---- Requantization: x * multiplier * 2^(shift - 31), the one implementation
 * of each rounding flavour. Every kernel calls these (or the selectors
 * tinyml_requantize / tinyml_conv_requantize that pick one of them). ---- */

/* Double rounding (gemmlowp), any multiplier sign, -31 <= shift <= 30:
 * SaturatingRoundingDoublingHighMul(x << max(shift, 0), multiplier), then
 * RoundingDivideByPOT(.., max(-shift, 0)). TFLite: MultiplyByQuantizedMultiplier
 * (int32 x, int32 m, int shift) as built without TFLITE_SINGLE_ROUNDING. */
static inline int32_t tinyml_requantize_double(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    /* The left shift wraps like the reference's int32 multiply; do it in
     * unsigned arithmetic so it is defined behaviour in C. */
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return tinyml_rounding_divide_by_pot(tinyml_doubling_high_mul(shifted, multiplier), right);
}

/* Single rounding, -31 <= shift <= 30: floor((x * multiplier + 2^(t-1)) / 2^t)
 * with t = 31 - shift. TFLite: MultiplyByQuantizedMultiplier(int32 x, int32 m,
 * int shift) built with TFLITE_SINGLE_ROUNDING (the TensorFlow 2.21 pip
 * package). When t >= 32 (real multiplier < 0.5, the common case) the
 * rounding constant and the product are summed as one 64-bit multiply-
 * accumulate (SMLAL) and only the high word is shifted: the same number. */
static inline int32_t tinyml_requantize_single(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t t = 31 - shift;
    if (t >= 32) {
        const uint32_t round_lo = t == 32 ? 0x80000000u : 0u;
        const uint32_t round_hi = t == 32 ? 0u : (1u << (t - 33));
        const int64_t r = (int64_t)(((uint64_t)round_hi << 32) | round_lo) + (int64_t)x * multiplier;
        return (int32_t)(r >> 32) >> (t - 32);
    }
    const int64_t round = (int64_t)1 << (t - 1);
    return (int32_t)(((int64_t)x * (int64_t)multiplier + round) >> t);
}

/* tinyml_requantize_double for multiplier >= 0 (as every quantized multiplier
 * from the generator is; not SUB's negated one), in one 64-bit multiply-
 * accumulate: the doubling high multiply with its sign-dependent nudge equals
 * floor((a * m + 2^30) / 2^31) for both signs of a * m, and composes with the
 * rounding divide into one floor division. Bit-identical (tests/test_speed_requant.py);
 * used in the hot loops of the convolutions, FC (double_rounding) and fused kernels. */
static inline int32_t tinyml_requantize_double_fast(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift >= 0) {
        const int32_t a = (int32_t)((uint32_t)x << shift);
        return (int32_t)(((int64_t)a * multiplier + (1ll << 30)) >> 31);
    }
    /* RoundingDivideByPOT(h, e) = floor((h + 2^(e-1) - [h < 0]) / 2^e) and
     * h = floor((x m + 2^30) / 2^31) compose into one floor division of the
     * 64-bit x m + 2^30 + (2^(e-1) - [x < 0]) 2^31 by 2^(31+e). ([h < 0] may be
     * taken as [x < 0]: when they differ h = 0, and both give 0.) */
    const int32_t e = -shift;
    const int32_t c = (int32_t)(1u << (e - 1)) - (x < 0 ? 1 : 0);
    /* 2^30 + c 2^31 as a (hi, lo) word pair; no carry between the two terms. */
    const uint32_t lo = ((uint32_t)c << 31) | 0x40000000u;
    const int32_t hi = c >> 1;
    const int64_t t = (int64_t)(((uint64_t)(uint32_t)hi << 32) | lo) + (int64_t)x * multiplier;
    return (int32_t)(t >> 32) >> (e - 1);
}

/* tinyml_requantize_double_fast(x, multiplier, shift) + zp for a bounded
 * accumulator, the convolutions' per-output epilogue in fewer instructions.
 * Preconditions, proved per layer by the generator before it sets a kernel's
 * fast_requant flag (codegen/ops/conv.py: fast_requant_ok): |x| < 2^30,
 * -22 <= shift <= -1, |zp| <= 128. Then 2x fits int32 and
 * SaturatingRoundingDoublingHighMul(x, m) = floor((2x m + 2^31) / 2^32), one
 * SMMULR of 2x; RoundingDivideByPOT(h, e) + zp = floor((h - [h < 0] + (2 zp + 1)
 * 2^(e-1)) / 2^e) with e = -shift (the zero point added inside the floor as
 * zp 2^e), no term beyond 2^30 + 2^29. TFLite: MultiplyByQuantizedMultiplier
 * (double rounding) followed by the output offset. */
static inline int32_t tinyml_requantize_bounded(int32_t x, int32_t multiplier, int32_t shift, int32_t zp)
{
    const int32_t e = -shift;
    const int32_t x2 = (int32_t)((uint32_t)x << 1);
    int32_t h;
#if TINYML_DSP
    __asm__("smmulr %0, %1, %2" : "=r"(h) : "r"(x2), "r"(multiplier));
#else
    h = (int32_t)(((int64_t)x2 * multiplier + 0x80000000ll) >> 32);
#endif
    const int32_t k = (int32_t)((uint32_t)(2 * zp + 1) << e);   /* (2 zp + 1) 2^e, even */
    return (h + (h >> 31) + (k >> 1)) >> e;
}

/* The flavour tinyml/config.h selects for the model's reference runtime
 * (TINYML_SINGLE_ROUNDING): FULLY_CONNECTED's requantization. */
static inline int32_t tinyml_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
#if TINYML_SINGLE_ROUNDING
    return tinyml_requantize_single(x, multiplier, shift);
#else
    return tinyml_requantize_double(x, multiplier, shift);
#endif
}

/* x clamped to [lo, hi] (lo <= hi), each bound compared once: two
 * compare-and-select pairs (TINYML_CLAMP's nested macro evaluates MAX twice). */
static inline int32_t tinyml_clamp(int32_t x, int32_t lo, int32_t hi)
{
    x = x < lo ? lo : x;
    return x > hi ? hi : x;
}

static inline int8_t tinyml_sat_s8(int32_t x)
{
    return (int8_t)TINYML_CLAMP(x, -128, 127);
}

/* n rounded up to a multiple of 4 (scratch sub-buffers stay word aligned). */
static inline int32_t tinyml_pad4(int32_t n)
{
    return (n + 3) & ~3;
}

#endif /* TINYML_COMMON_H */
