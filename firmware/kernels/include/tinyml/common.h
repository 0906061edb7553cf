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
 * runtime of the model uses. The gemmlowp helpers below are used as such by
 * softmax/logistic/tanh in both flavours.
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

/* Per-output-channel requantization (arrays of length output channels). */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
} tinyml_per_channel_quant;

/* Clamp range of a fused activation, in the output's quantized domain. */
typedef struct {
    int32_t min, max;
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

#if TINYML_SINGLE_ROUNDING
/* x * multiplier * 2^(shift - 31), rounded once (half up), -31 <= shift <= 30.
 * TFLite: MultiplyByQuantizedMultiplier(int32 x, int32 m, int shift), single rounding. */
static inline int32_t tinyml_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t total_shift = 31 - shift;
    const int64_t round = (int64_t)1 << (total_shift - 1);
    return (int32_t)(((int64_t)x * (int64_t)multiplier + round) >> total_shift);
}

/* In single-rounding builds both specialised forms are the general one. */
static inline int32_t tinyml_requantize_le1(int32_t x, int32_t multiplier, int32_t shift)
{
    return tinyml_requantize(x, multiplier, shift);
}

static inline int32_t tinyml_requantize_ge1(int32_t x, int32_t multiplier, int32_t shift)
{
    return tinyml_requantize(x, multiplier, shift);
}
#else
/* x * multiplier * 2^(shift - 31), double rounding.
 * TFLite: MultiplyByQuantizedMultiplier(int32 x, int32 m, int shift). */
static inline int32_t tinyml_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    /* The left shift wraps like the reference's int32 multiply; do it in
     * unsigned arithmetic so it is defined behaviour in C. */
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return tinyml_rounding_divide_by_pot(tinyml_doubling_high_mul(shifted, multiplier), right);
}

/* TFLite: MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0). */
static inline int32_t tinyml_requantize_le1(int32_t x, int32_t multiplier, int32_t shift)
{
    return tinyml_rounding_divide_by_pot(tinyml_doubling_high_mul(x, multiplier), -shift);
}

/* TFLite: MultiplyByQuantizedMultiplierGreaterThanOne (shift >= 0). */
static inline int32_t tinyml_requantize_ge1(int32_t x, int32_t multiplier, int32_t shift)
{
    return tinyml_doubling_high_mul((int32_t)((uint32_t)x << shift), multiplier);
}
#endif

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
