/* tinyml kernels: Keras LayerNormalization rows as one pass (see tinyml/fused.h). */
#include "fused_common.h"

/* The rows; `full`: every member MUL/ADD clamps to -128..127 (fixed at compile
 * time in each of the two copies the dispatcher below instantiates). */
static inline __attribute__((always_inline)) void layernorm_rows(const tinyml_layernorm_params *params,
                                                                 const int8_t *gamma, const int8_t *beta,
                                                                 const int8_t *input, int8_t *output,
                                                                 const int full)
{
    /* A local copy: the int8 stores below cannot alias it, so its fields stay
     * in registers or on the stack instead of being reloaded after every store. */
    const tinyml_layernorm_params P = *params;
    const int32_t rows = P.rows, depth = P.depth;
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = input + r * depth;
        int8_t *y = output + r * depth;
        /* m = MEAN(x), nm = -m requantized. */
        int32_t sum = 0;
        for (int32_t c = 0; c < depth; ++c) {
            sum += x[c];
        }
        const int32_t m = fused_mean_finish(&P.mean, sum);
        const int32_t nm = P.neg_table[m + 128];
        /* v = MEAN((x - m)^2): the squared differences are summed, never stored. */
        int32_t sq_sum = 0;
        for (int32_t c = 0; c < depth; ++c) {
            sq_sum += fused_sqdiff(&P.sqdiff, x[c], m);
        }
        const int32_t v = fused_mean_finish(&P.variance, sq_sum);
        const int32_t rs = P.rsqrt_table[v + 128];
        /* y = x * g + (beta + nm * g), g = gamma * rsqrt(v + eps); x[c] is read before y[c] is written. */
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t xc = x[c];
            const int32_t g = fused_mul_f(&P.mul_gamma, rs, gamma[c], full);
            const int32_t t1 = fused_mul_f(&P.mul_center, nm, g, full);
            const int32_t t2 = fused_add_f(&P.add_beta, t1, beta[c], full);
            const int32_t t3 = fused_mul_f(&P.mul_x, xc, g, full);
            y[c] = (int8_t)fused_add_f(&P.add_out, t3, t2, full);
        }
    }
}

tinyml_status tinyml_fused_layernorm_s8(const tinyml_layernorm_params *params, const int8_t *input,
                                        const int8_t *gamma, const int8_t *beta, int8_t *output)
{
    if (params->rows < 0 || params->depth <= 0 || !gamma || !beta || !input || !output) {
        return TINYML_ERROR_ARG;
    }
    if (fused_full_range(&params->mul_gamma.activation) && fused_full_range(&params->mul_center.activation) &&
        fused_full_range(&params->add_beta.activation) && fused_full_range(&params->mul_x.activation) &&
        fused_full_range(&params->add_out.activation)) {
        layernorm_rows(params, gamma, beta, input, output, 1);
    } else {
        layernorm_rows(params, gamma, beta, input, output, 0);
    }
    return TINYML_OK;
}
