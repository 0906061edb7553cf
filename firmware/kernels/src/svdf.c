/* tinyml kernels: SVDF (integer). See svdf.h for the arithmetic contract. */
#include <string.h>

#include "tinyml/svdf.h"

int32_t tinyml_svdf_s8_scratch_size(const tinyml_svdf_params *params)
{
    return params ? 4 * params->filters : 0;
}

tinyml_status tinyml_svdf_s8(const tinyml_ctx *ctx, const tinyml_svdf_params *p, const int8_t *input,
                             const int8_t *weights_feature, const int16_t *weights_time, const int32_t *bias,
                             int16_t *state, int8_t *output)
{
    if (!ctx || !ctx->buf || !p || !input || !weights_feature || !weights_time || !state || !output ||
        p->batches <= 0 || p->input_size <= 0 || p->rank <= 0 || p->filters <= 0 || p->filters % p->rank != 0 ||
        p->memory <= 0) {
        return TINYML_ERROR_ARG;
    }
    TINYML_SCRATCH_CHECK(ctx, tinyml_svdf_s8_scratch_size(p));
    int32_t *filter_sum = (int32_t *)ctx->buf;
    const int32_t units = p->filters / p->rank, mem = p->memory;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *x = input + b * p->input_size;
        int16_t *st = state + b * p->filters * mem;
        for (int32_t f = 0; f < p->filters; ++f) {
            const int8_t *w = weights_feature + f * p->input_size;
            int32_t acc = 0;
            for (int32_t i = 0; i < p->input_size; ++i) {
                acc += (int32_t)w[i] * ((int32_t)x[i] - p->input_zp);
            }
            acc = tinyml_requantize_double(acc, p->quant1.multiplier, p->quant1.shift);
            st[f * mem + mem - 1] = (int16_t)tinyml_clamp(acc, -32768, 32767);
        }
        for (int32_t f = 0; f < p->filters; ++f) {
            const int16_t *wt = weights_time + f * mem, *s = st + f * mem;
            uint32_t acc = 0;   /* the reference's int32 sum wraps; unsigned keeps that defined */
            for (int32_t m = 0; m < mem; ++m) {
                acc += (uint32_t)((int32_t)wt[m] * (int32_t)s[m]);
            }
            filter_sum[f] = (int32_t)acc;
        }
        for (int32_t u = 0; u < units; ++u) {
            uint32_t acc = bias ? (uint32_t)bias[u] : 0u;
            for (int32_t r = 0; r < p->rank; ++r) {
                acc += (uint32_t)filter_sum[u * p->rank + r];
            }
            const int32_t y = tinyml_requantize_double((int32_t)acc, p->quant2.multiplier, p->quant2.shift) + p->output_zp;
            output[b * units + u] = (int8_t)tinyml_clamp(y, -128, 127);
        }
        for (int32_t f = 0; f < p->filters; ++f) {
            int16_t *s = st + f * mem;
            memmove(s, s + 1, (size_t)(mem - 1) * sizeof(int16_t));
            s[mem - 1] = 0;
        }
    }
    return TINYML_OK;
}
