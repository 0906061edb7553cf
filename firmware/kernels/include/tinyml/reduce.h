/* tinyml kernels: reduce group (MEAN, SUM, REDUCE_MAX, REDUCE_MIN, ARG_MAX, ARG_MIN,
 * L2_NORMALIZATION, CUMSUM). */
#ifndef TINYML_REDUCE_H
#define TINYML_REDUCE_H

#include "tinyml/common.h"

/* Requantization of an int8 mean. TensorFlow 2.21's reference MEAN
 * (reference_ops::QuantizedMeanOrSum) folds 1/count into the multiplier of
 * input_scale/output_scale at prepare time; the generator does the same. */
typedef struct {
    int32_t input_zp;
    int32_t output_zp;
    int32_t count;           /* n: elements reduced into each output */
    tinyml_quant quant;      /* ~ input_scale / (output_scale * n) */
} tinyml_mean_params;

/* Row-major dims[0] x dims[1] x dims[2] x dims[3] int8 input; reduce[k] != 0
 * marks a reduced dimension. The output holds the kept dimensions in order
 * (keep_dims only changes the shape, not the bytes). */
typedef struct {
    int32_t dims[4];
    int32_t reduce[4];
} tinyml_reduce_shape;

/* y = clamp(requant_dr(S - n * input_zp, quant) + output_zp, -128, 127) where S is
 * the int32 sum of the n reduced inputs and requant_dr is tinyml_requantize_double
 * (gemmlowp double rounding). count must be the product of the reduced extents. */
tinyml_status tinyml_mean_s8(const tinyml_mean_params *params, const tinyml_reduce_shape *shape,
                             const int8_t *input, int8_t *output);

/* SUM (int8) is tinyml_mean_s8 with quant = QuantizeMultiplier(input_scale /
 * output_scale), 1/n not folded in: TensorFlow 2.21's reference SUM runs the
 * same QuantizedMeanOrSum with compute_sum = true. */

/* REDUCE_MAX / REDUCE_MIN: y = the max / min of the reduced raw int8 values
 * (TFLite requires equal input and output quantization and rescales nothing).
 * Matches TFLite reduce.cc EvalType (kReference, kMax / kMin). Each output is
 * written after its inputs were read, in the traversal of tinyml_mean_s8. */
tinyml_status tinyml_reduce_max_s8(const tinyml_reduce_shape *shape, const int8_t *input, int8_t *output);
tinyml_status tinyml_reduce_min_s8(const tinyml_reduce_shape *shape, const int8_t *input, int8_t *output);

/* ARG_MAX / ARG_MIN over one axis of an int8 tensor viewed as
 * [outer][axis_size][inner]: output[o][i] = the first k whose value is the
 * largest (smallest) raw int8 of input[o][.][i]; written as int32 or int64
 * (index_bytes 4 / 8). Ties keep the lowest index, as TFLite's reference
 * ArgMinMax (strict comparison from k = 0). */
typedef struct {
    int32_t outer;
    int32_t axis_size;
    int32_t inner;
    int32_t is_min;        /* 0: ARG_MAX, 1: ARG_MIN */
    int32_t index_bytes;   /* 4 (int32 output) or 8 (int64) */
} tinyml_arg_params;

tinyml_status tinyml_arg_max_min_s8(const tinyml_arg_params *params, const int8_t *input, void *output);

/* GetInvSqrtQuantizedMultiplierExp(input, reverse_shift = -1): 1/sqrt(input)
 * as a Q0.31 multiplier and shift (gemmlowp Newton-Raphson in Q3.28). */
void tinyml_inv_sqrt_multiplier(int32_t input, int32_t *multiplier, int32_t *shift);

/* L2_NORMALIZATION over rows of `depth` int8 values (output scale 1/128, zero
 * point 0): S = sum (x - input_zp)^2 per row; (m, s) = inv-sqrt multiplier of S;
 * y = clamp(requant_dr(x - input_zp, m, s + 7), -128, 127). Rows are read in
 * full before written (in-place safe). Matches TFLite
 * reference_integer_ops::L2Normalization. */
tinyml_status tinyml_l2_normalization_s8(int32_t input_zp, int32_t rows, int32_t depth,
                                         const int8_t *input, int8_t *output);

/* CUMSUM (int8), tflite_micro's cumsum.cc (reference_ops::CumSum, quantized;
 * TFLite has no int8 CUMSUM). The tensor is viewed as [outer][depth][inner]
 * (depth = the axis). Per (outer, inner) line, in axis order (reversed with
 * reverse != 0):
 *   acc = -input_zp * 2^19               (TFLM starts from the scaled input
 *                                         offset, not 0: reproduced)
 *   s   = (x - input_zp) * 2^19          (left shift 20, then the fixed input
 *                                         multiplier 1/2, exact)
 *   inclusive: acc += s, out = acc;  exclusive: out = acc, acc += s
 *   y   = clamp(requant_dr(out, quant) + output_zp, -128, 127)
 * with int32 wrap-around like the reference on long axes, requant_dr
 * tinyml_requantize_double (the TFLM wheel's rounding) and quant ~
 * 2 * input_scale / (2^20 * output_scale). Lines are read before written in
 * order, so output may be the input's buffer. */
typedef struct {
    int32_t outer;
    int32_t depth;
    int32_t inner;
    int32_t exclusive;
    int32_t reverse;
    int32_t input_zp;
    int32_t output_zp;
    tinyml_quant quant;
} tinyml_cumsum_params;

tinyml_status tinyml_cumsum_s8(const tinyml_cumsum_params *params, const int8_t *input, int8_t *output);

#endif /* TINYML_REDUCE_H */
