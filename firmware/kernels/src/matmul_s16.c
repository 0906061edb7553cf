/* BATCH_MATMUL 16x8 (tinyml/s16.h). */
#include "tinyml/s16.h"

tinyml_status tinyml_batch_matmul_s16(const tinyml_matmul_params *params, const tinyml_matmul_dims *dims,
                                      const int16_t *lhs, const int16_t *rhs, int16_t *output)
{
    if (!params || !dims || !lhs || !rhs || !output || dims->rows < 0 || dims->depth < 0 || dims->cols < 0
        || dims->batches[0] < 0 || dims->batches[1] < 0) {
        return TINYML_ERROR_ARG;
    }
    const int32_t rows = dims->rows, depth = dims->depth, cols = dims->cols;
    /* element steps of op(lhs)[i][k] and op(rhs)[k][j] along i / k and k / j */
    const int32_t li = dims->adj_x ? 1 : depth, lk = dims->adj_x ? rows : 1;
    const int32_t rk = dims->adj_y ? 1 : cols, rj = dims->adj_y ? depth : 1;
    int16_t *out = output;
    for (int32_t b0 = 0; b0 < dims->batches[0]; ++b0) {
        for (int32_t b1 = 0; b1 < dims->batches[1]; ++b1) {
            const int16_t *l = lhs + (size_t)b0 * dims->lhs_stride[0] + (size_t)b1 * dims->lhs_stride[1];
            const int16_t *r = rhs + (size_t)b0 * dims->rhs_stride[0] + (size_t)b1 * dims->rhs_stride[1];
            for (int32_t i = 0; i < rows; ++i) {
                for (int32_t j = 0; j < cols; ++j) {
                    int64_t acc = 0;
                    for (int32_t k = 0; k < depth; ++k) {
                        acc += (int64_t)((int32_t)(l[i * li + k * lk] + params->lhs_offset)
                                         * (int32_t)(r[k * rk + j * rj] + params->rhs_offset));
                    }
                    const int32_t v = tinyml_requantize_s64(acc, params->quant.multiplier, params->quant.shift)
                                      + params->output_offset;
                    *out++ = (int16_t)TINYML_CLAMP(v, params->activation.min, params->activation.max);
                }
            }
        }
    }
    return TINYML_OK;
}
