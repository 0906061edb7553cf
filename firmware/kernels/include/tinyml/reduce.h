/* tinyml kernels: reduce group (MEAN). */
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

#endif /* TINYML_REDUCE_H */
