/* tinyml kernels: fully connected and batched matrix multiply (int8). */
#ifndef TINYML_FC_H
#define TINYML_FC_H

#include "tinyml/common.h"

/* Zero points and clamp range of a quantized matrix product. */
typedef struct {
    int32_t input_offset;   /* -(input zero point) */
    int32_t filter_offset;  /* -(filter zero point); 0 for symmetric int8 weights */
    int32_t output_offset;  /* output zero point */
    tinyml_activation activation;
} tinyml_fc_params;

/* output[b][o] = clamp(requant(bias[o] + sum_d (filter[o][d] + filter_offset)
 *                                          * (input[b][d] + input_offset), o) + output_offset)
 * filter is [output_depth][accum_depth] row-major; bias may be NULL.
 * quant holds one (multiplier, shift) per output channel (per-tensor models
 * repeat the same pair). Matches TFLite reference FullyConnected(PerChannel). */
tinyml_status tinyml_fully_connected_s8(const tinyml_fc_params *params,
                                        const tinyml_per_channel_quant *quant,
                                        int32_t batches, int32_t accum_depth, int32_t output_depth,
                                        const int8_t *input, const int8_t *filter,
                                        const int32_t *bias, int8_t *output);

/* Sum of a[i] * b[i] for i < n (int8 x int8 -> int32). Uses the Cortex-M DSP
 * extension (SXTB16 + SMLAD) when available; identical result either way. */
int32_t tinyml_dot_s8(const int8_t *a, const int8_t *b, int32_t n);

/* Sum of a[i] for i < n. */
int32_t tinyml_sum_s8(const int8_t *a, int32_t n);

#endif /* TINYML_FC_H */
