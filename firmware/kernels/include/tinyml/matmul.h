/* tinyml kernels: batched matrix multiply (int8). */
#ifndef TINYML_MATMUL_H
#define TINYML_MATMUL_H

#include "tinyml/common.h"

/* Shapes of out[b] = op(lhs[b]) x op(rhs[b]) over up to two batch axes.
 * op(lhs) is rows x depth (stored depth x rows when adj_x), op(rhs) is
 * depth x cols (stored cols x depth when adj_y). A broadcast batch axis has
 * stride 0 on the side where it is 1. */
typedef struct {
    int32_t batches[2];       /* output batch extents (outer, inner) */
    int32_t lhs_stride[2];    /* lhs elements per batch step; 0 = broadcast */
    int32_t rhs_stride[2];    /* rhs elements per batch step; 0 = broadcast */
    int32_t rows, depth, cols;
    int32_t adj_x, adj_y;     /* 1: that operand is stored transposed */
} tinyml_matmul_dims;

/* Zero points, requantization and clamp of a quantized matrix product. */
typedef struct {
    int32_t lhs_offset;       /* -(lhs zero point) */
    int32_t rhs_offset;       /* -(rhs zero point) */
    int32_t output_offset;    /* output zero point */
    tinyml_quant quant;       /* real multiplier lhs_scale * rhs_scale / out_scale */
    int32_t double_rounding;  /* 1: gemmlowp double rounding whatever TINYML_SINGLE_ROUNDING
                               * says (TFLite 2.21's BATCH_MATMUL rounds so, measured);
                               * 0: tinyml_requantize */
    tinyml_activation activation;
} tinyml_matmul_params;

/* Scratch bytes tinyml_batch_matmul_s8 needs for these dims: transposed
 * copies of operands not stored in dot-product order, plus int32 column sums. */
int32_t tinyml_batch_matmul_s8_scratch_size(const tinyml_matmul_dims *dims);

/* out[b][i][j] = clamp(requant(sum_k (L[b][i][k] + lhs_offset) * (R[b][k][j] + rhs_offset))
 *                      + output_offset), out row-major [rows][cols] per batch.
 * Inner products run as tinyml_dot_s8 over contiguous rows (lhs rows and
 * transposed rhs columns), so the Cortex-M DSP path applies. Matches TFLite
 * reference BatchMatMul (int8, per-tensor). ctx holds
 * tinyml_batch_matmul_s8_scratch_size(dims) bytes, 4-byte aligned. */
tinyml_status tinyml_batch_matmul_s8(const tinyml_ctx *ctx, const tinyml_matmul_params *params,
                                     const tinyml_matmul_dims *dims, const int8_t *lhs, const int8_t *rhs,
                                     int8_t *output);

#endif /* TINYML_MATMUL_H */
