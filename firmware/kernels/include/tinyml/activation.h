/* tinyml kernels: activation group and type conversions.
 *
 * int8 unary activations (RELU, RELU6, RELU_N1_TO_1, LEAKY_RELU, HARD_SWISH,
 * LOGISTIC, TANH, GELU) and 8-bit requantization all run as one 256-entry
 * table lookup: the generator evaluates the reference's own arithmetic
 * (fixed point or float, as TFLite does for that op) for every possible input
 * byte and places the table in flash. Float kernels here exist for the float
 * islands the TFLite converter leaves in int8 graphs (DEQUANTIZE -> NEG -> QUANTIZE).
 */
#ifndef TINYML_ACTIVATION_H
#define TINYML_ACTIVATION_H

#include "tinyml/common.h"

/* output[i] = table[(uint8_t)input[i]] for i < n; bytes are int8 or uint8.
 * Reads each element before writing it, so output may equal input. The table
 * holds the TFLite op's own result for each input byte (reference Relu, Relu6,
 * LeakyRelu, HardSwish, Logistic, Tanh, Gelu, Requantize). */
tinyml_status tinyml_lut_8(const uint8_t *table, int32_t n, const void *input, void *output);

/* output[i] = -input[i] (float32). TFLite: Negate. output may equal input. */
tinyml_status tinyml_neg_f32(int32_t n, const float *input, float *output);

/* output[i] = (float)(scale * (input[i] - zero_point)), exact like TFLite's
 * reference Dequantize (the double product of a float and a 9-bit integer
 * rounds to the same float as the float product). scale / zero_point: the input's. */
tinyml_status tinyml_dequantize_s8_f32(float scale, int32_t zero_point, int32_t n, const int8_t *input,
                                       float *output);

/* output[i] = clamp(round_half_away(input[i] / scale) + zero_point, qmin, qmax)
 * with a float32 division, as TFLite's reference AffineQuantize. Quotients
 * outside int32 saturate (the reference leaves them undefined); NaN gives qmin.
 * The _s8 form clamps to [-128, 127], the _u8 form to [0, 255]. */
/* scale / zero_point: the output's. */
tinyml_status tinyml_quantize_f32_s8(float scale, int32_t zero_point, int32_t n, const float *input,
                                     int8_t *output);
tinyml_status tinyml_quantize_f32_u8(float scale, int32_t zero_point, int32_t n, const float *input,
                                     uint8_t *output);

#endif /* TINYML_ACTIVATION_H */
