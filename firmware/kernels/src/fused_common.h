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

/* ADD with tabulated input rescalings (tinyml_fused_add). */
static inline int32_t fused_add(const tinyml_fused_add *p, int32_t x1, int32_t x2)
{
    const int32_t s = p->shift1[x1 + 128] + p->shift2[x2 + 128];
    const int32_t y = tinyml_requantize_double_fast(s, p->output.multiplier, p->output.shift) + p->output_offset;
    return TINYML_CLAMP(y, p->activation.min, p->activation.max);
}

/* SQUARED_DIFFERENCE with tabulated input rescalings; |a - b| <= 255 * 2^7. */
static inline int32_t fused_sqdiff(const tinyml_fused_add *p, int32_t x1, int32_t x2)
{
    const int32_t d = p->shift1[x1 + 128] - p->shift2[x2 + 128];
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
    const int32_t s = p->shift1[x1 + 128] + p->shift2[x2 + 128];
    const int32_t y = tinyml_requantize_double_fast(s, p->output.multiplier, p->output.shift) + p->output_offset;
    return fused_clamp(&p->activation, y, full);
}

#endif /* TINYML_FUSED_COMMON_H */
