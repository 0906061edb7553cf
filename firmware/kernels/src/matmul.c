/* tinyml kernels: batched matrix multiply (int8). */
#include "tinyml/matmul.h"
#include "tinyml/fc.h"

/* Round up to a multiple of 4 so the int32 column sums that follow are aligned. */
int32_t tinyml_batch_matmul_s8_scratch_size(const tinyml_matmul_dims *dims)
{
    int32_t bytes = 0;
    if (dims->adj_x) {
        bytes += tinyml_pad4(dims->rows * dims->depth);
    }
    if (!dims->adj_y) {
        bytes += tinyml_pad4(dims->depth * dims->cols);
    }
    return bytes + 4 * dims->cols;
}

/* dst[c][r] = src[r][c] for an r x c matrix. */
static void transpose_s8(const int8_t *src, int32_t r, int32_t c, int8_t *dst)
{
    for (int32_t i = 0; i < r; ++i) {
        for (int32_t j = 0; j < c; ++j) {
            dst[j * r + i] = src[i * c + j];
        }
    }
}

tinyml_status tinyml_batch_matmul_s8(const tinyml_ctx *ctx, const tinyml_matmul_params *params,
                                     const tinyml_matmul_dims *dims, const int8_t *lhs, const int8_t *rhs,
                                     int8_t *output)
{
    if (!ctx || !ctx->buf || !dims || !params || !lhs || !rhs || !output || dims->rows <= 0 ||
        dims->depth <= 0 || dims->cols <= 0) {
        return TINYML_ERROR_ARG;
    }
    TINYML_SCRATCH_CHECK(ctx, tinyml_batch_matmul_s8_scratch_size(dims));
    void *scratch = ctx->buf;
    const int32_t rows = dims->rows, depth = dims->depth, cols = dims->cols;
    uint8_t *sp = (uint8_t *)scratch;
    int8_t *lhs_t = 0;
    int8_t *rhs_t = 0;
    if (dims->adj_x) {
        lhs_t = (int8_t *)sp;
        sp += tinyml_pad4(rows * depth);
    }
    if (!dims->adj_y) {
        rhs_t = (int8_t *)sp;
        sp += tinyml_pad4(depth * cols);
    }
    int32_t *col_sum = (int32_t *)(void *)sp;
    const int32_t lo = params->lhs_offset;
    const int32_t ro = params->rhs_offset;
    for (int32_t b0 = 0; b0 < dims->batches[0]; ++b0) {
        for (int32_t b1 = 0; b1 < dims->batches[1]; ++b1) {
            const int8_t *a = lhs + b0 * dims->lhs_stride[0] + b1 * dims->lhs_stride[1];
            const int8_t *bm = rhs + b0 * dims->rhs_stride[0] + b1 * dims->rhs_stride[1];
            /* a: [rows][depth]; bt: [cols][depth] (rhs transposed). */
            if (lhs_t) {
                transpose_s8(a, depth, rows, lhs_t);
                a = lhs_t;
            }
            const int8_t *bt = bm;
            if (rhs_t) {
                transpose_s8(bm, depth, cols, rhs_t);
                bt = rhs_t;
            }
            for (int32_t j = 0; j < cols; ++j) {
                col_sum[j] = tinyml_sum_s8(bt + j * depth, depth);
            }
            int8_t *out = output + (b0 * dims->batches[1] + b1) * rows * cols;
            for (int32_t i = 0; i < rows; ++i) {
                const int8_t *ai = a + i * depth;
                /* sum (a + lo)(b + ro) = sum ab + ro sum a + lo sum b + depth lo ro */
                const int32_t row_term = ro * tinyml_sum_s8(ai, depth) + depth * lo * ro;
                for (int32_t j = 0; j < cols; ++j) {
                    int32_t acc = tinyml_dot_s8(ai, bt + j * depth, depth);
                    acc += row_term + lo * col_sum[j];
                    acc = params->double_rounding
                              ? tinyml_requantize_double(acc, params->quant.multiplier, params->quant.shift)
                              : tinyml_requantize(acc, params->quant.multiplier, params->quant.shift);
                    acc += params->output_offset;
                    out[i * cols + j] = (int8_t)TINYML_CLAMP(acc, params->activation.min,
                                                             params->activation.max);
                }
            }
        }
    }
    return TINYML_OK;
}
