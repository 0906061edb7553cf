/* tinyml kernels: FC -> activation -> FC chains, two token rows at a time (see tinyml/fused.h). */
#include "fused_common.h"
#include "tinyml/fc.h"

int32_t tinyml_fused_mlp_s8_scratch_size(const tinyml_mlp_params *params)
{
    /* Layer k < layers - 1 writes buffer k & 1. */
    const int32_t buffers = TINYML_MIN(TINYML_MAX(params->layers - 1, 0), 2);
    return buffers * 2 * params->hidden_stride;
}

tinyml_status tinyml_fused_mlp_s8(const tinyml_ctx *ctx, const tinyml_mlp_params *params, const int8_t *input,
                                  const int8_t *w0, const int8_t *w1, const int8_t *w2, const int8_t *w3,
                                  int8_t *output)
{
    const int8_t *w[TINYML_MLP_MAX_LAYERS] = {w0, w1, w2, w3};
    const int32_t nl = params->layers;
    int8_t *scratch = ctx ? (int8_t *)ctx->buf : NULL;
    if (nl < 1 || nl > TINYML_MLP_MAX_LAYERS || params->rows < 0 || !input || !output || (nl > 1 && !scratch)) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t k = 0; k < nl; ++k) {
        if (!w[k] || !params->layer[k].bias || params->layer[k].accum_depth <= 0 ||
            (k < nl - 1 && params->layer[k].output_depth > params->hidden_stride)) {
            return TINYML_ERROR_ARG;
        }
    }
    TINYML_SCRATCH_CHECK(ctx, tinyml_fused_mlp_s8_scratch_size(params));
    const int32_t in_depth = params->layer[0].accum_depth;
    const int32_t out_depth = params->layer[nl - 1].output_depth;
    const int32_t hs = 2 * params->hidden_stride;
    for (int32_t r = 0; r < params->rows; r += 2) {
        const int32_t n = params->rows - r >= 2 ? 2 : 1;
        const int8_t *x = input + r * in_depth;
        for (int32_t k = 0; k < nl; ++k) {
            int8_t *y = k == nl - 1 ? output + r * out_depth : scratch + (k & 1) * hs;
            (void)tinyml_fc_s8(&params->layer[k], n, x, w[k], y);
            x = y;
        }
    }
    return TINYML_OK;
}
