/* tinyml kernels: SVDF (int8 input/output, int16 time weights and state).
 *
 * Arithmetic contract: TensorFlow Lite's integer SVDF
 * (reference_ops::EvalIntegerSVDF, tensorflow/lite/kernels/internal/reference/svdf.h),
 * which tflite_micro's reference kernel repeats:
 *   feature: for each filter f, sum_i w_feature[f][i] * (x[i] - input_zp), requantized
 *     by quant1 (MultiplyByQuantizedMultiplier with double rounding: measured, the
 *     TensorFlow 2.21 and tflite_micro builds both round twice here), clamped to
 *     int16, written as the newest (last) entry of the filter's `memory` entries;
 *   time: for each filter, sum_m w_time[f][m] * state[f][m] in int32 (wrapping, as
 *     TFLite's build does; tflite_micro's build differs once the sum overflows);
 *   output unit u = bias[u] + sum over its `rank` filters, requantized by quant2,
 *     plus output_zp, clamped to int8 (no fused activation: TFLite's integer path
 *     applies none);
 *   then every filter's state moves one entry towards the oldest and the newest
 *     becomes 0 (the state is symmetric: zero point 0).
 * The state persists between calls (the model's state block, outside the arena,
 * zeroed at start-up and by <prefix>_reset()); TFLite's interpreter keeps its
 * variable tensor the same way between invocations. */
#ifndef TINYML_SVDF_H
#define TINYML_SVDF_H

#include "tinyml/common.h"

typedef struct {
    int32_t batches;
    int32_t input_size;
    int32_t filters;     /* units * rank */
    int32_t rank;
    int32_t memory;
    int32_t input_zp;
    int32_t output_zp;
    tinyml_quant quant1;   /* input * feature weights -> state */
    tinyml_quant quant2;   /* state * time weights -> output */
} tinyml_svdf_params;

int32_t tinyml_svdf_s8_scratch_size(const tinyml_svdf_params *params);

/* input [batches, input_size], weights_feature [filters, input_size], weights_time
 * [filters, memory] (int16), bias [filters / rank] (int32, may be NULL), state
 * [batches, filters * memory] (int16, read and written), output [batches, filters / rank].
 * Scratch: tinyml_svdf_s8_scratch_size (one int32 per filter). */
tinyml_status tinyml_svdf_s8(const tinyml_ctx *ctx, const tinyml_svdf_params *params, const int8_t *input,
                             const int8_t *weights_feature, const int16_t *weights_time, const int32_t *bias,
                             int16_t *state, int8_t *output);

#endif /* TINYML_SVDF_H */
