/* tinyml kernels: FC -> activation -> FC chains per token row (see tinyml/fused.h). */
#include "fused_common.h"
#include "tinyml/fc.h"

static void fc_row(const tinyml_fused_fc_layer *l, const int8_t *w, const int8_t *x, int8_t *y)
{
    const int32_t n = l->accum_depth;
    const int32_t x_term = l->filter_offset ? l->filter_offset * tinyml_sum_s8(x, n) : 0;
    for (int32_t o = 0; o < l->output_depth; ++o) {
        int32_t acc = tinyml_dot_s8(w + o * n, x, n) + l->bias[o] + x_term;
        acc = tinyml_requantize(acc, l->multiplier[o], l->shift[o]) + l->output_offset;
        acc = TINYML_CLAMP(acc, l->activation.min, l->activation.max);
        y[o] = (int8_t)(l->table ? l->table[acc + 128] : acc);
    }
}

tinyml_status tinyml_fused_mlp_s8(const tinyml_mlp_params *params, const int8_t *input, int8_t *output,
                                  int8_t *scratch, const int8_t *w0, const int8_t *w1, const int8_t *w2,
                                  const int8_t *w3)
{
    const int8_t *w[TINYML_MLP_MAX_LAYERS] = {w0, w1, w2, w3};
    const int32_t nl = params->layers;
    if (nl < 1 || nl > TINYML_MLP_MAX_LAYERS || params->rows < 0 || !input || !output || (nl > 1 && !scratch)) {
        return TINYML_ERROR_ARG;
    }
    for (int32_t k = 0; k < nl; ++k) {
        if (!w[k] || !params->layer[k].bias || params->layer[k].accum_depth <= 0) {
            return TINYML_ERROR_ARG;
        }
    }
    const int32_t in_depth = params->layer[0].accum_depth;
    const int32_t out_depth = params->layer[nl - 1].output_depth;
    for (int32_t r = 0; r < params->rows; ++r) {
        const int8_t *x = input + r * in_depth;
        for (int32_t k = 0; k < nl; ++k) {
            int8_t *y = k == nl - 1 ? output + r * out_depth : scratch + (k & 1) * params->hidden_stride;
            fc_row(&params->layer[k], w[k], x, y);
            x = y;
        }
    }
    return TINYML_OK;
}
