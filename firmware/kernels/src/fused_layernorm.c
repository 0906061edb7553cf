/* tinyml kernels: Keras LayerNormalization rows as one pass (see tinyml/fused.h). */
#include "fused_common.h"

tinyml_status tinyml_fused_layernorm_s8(const tinyml_layernorm_params *params, const int8_t *gamma,
                                        const int8_t *beta, const int8_t *input, int8_t *output)
{
    const int32_t rows = params->rows, depth = params->depth;
    if (rows < 0 || depth <= 0 || !gamma || !beta || !input || !output) {
        return TINYML_ERROR_ARG;
    }
    /* A local copy: the int8 stores below cannot alias it, so its fields stay
     * in registers or on the stack instead of being reloaded after every store. */
    const tinyml_layernorm_params P = *params;
    params = &P;
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = input + r * depth;
        int8_t *y = output + r * depth;
        /* m = MEAN(x), nm = -m requantized. */
        int32_t sum = 0;
        for (int32_t c = 0; c < depth; ++c) {
            sum += x[c];
        }
        const int32_t m = fused_mean_finish(&params->mean, sum);
        const int32_t nm = params->neg_table[m + 128];
        /* v = MEAN((x - m)^2): the squared differences are summed, never stored. */
        int32_t sq_sum = 0;
        for (int32_t c = 0; c < depth; ++c) {
            sq_sum += fused_sqdiff(&params->sqdiff, x[c], m);
        }
        const int32_t v = fused_mean_finish(&params->variance, sq_sum);
        const int32_t rs = params->rsqrt_table[v + 128];
        /* y = x * g + (beta + nm * g), g = gamma * rsqrt(v + eps); x[c] is read before y[c] is written. */
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t xc = x[c];
            const int32_t g = fused_mul(&params->mul_gamma, rs, gamma[c]);
            const int32_t t1 = fused_mul(&params->mul_center, nm, g);
            const int32_t t2 = fused_add(&params->add_beta, t1, beta[c]);
            const int32_t t3 = fused_mul(&params->mul_x, xc, g);
            y[c] = (int8_t)fused_add(&params->add_out, t3, t2);
        }
    }
    return TINYML_OK;
}
