/* tinyml kernels: Keras LayerNormalization rows as one pass (see tinyml/fused.h). */
#include "fused_common.h"

/* r = RSQRT(ADD(v, eps)), once per row (tinyml_ln_rsqrt). */
static int32_t ln_rsqrt(const tinyml_ln_rsqrt *p, int32_t v)
{
    const int32_t s = fused_rescale(&p->v_rescale, v, 20) + p->eps;
    const int32_t av = TINYML_CLAMP(tinyml_requantize_double(s, p->add_output.multiplier, p->add_output.shift) +
                                    p->add_offset, p->add_activation.min, p->add_activation.max);
    const int32_t value = av - p->input_zp;
    if (value == 0) {
        return 127;
    }
    int32_t m, sh;
    tinyml_inv_sqrt_multiplier(value, &m, &sh);
    const int32_t data = tinyml_requantize_double(1, m, sh + 20);
    const int32_t out = tinyml_requantize_double(data, p->output.multiplier, p->output.shift) + p->output_zp;
    return TINYML_CLAMP(out, -128, 127);
}

/* The rows; `full`: every member MUL/ADD clamps to -128..127; `fast`: every
 * member MUL/ADD/SQUARED_DIFFERENCE requantization meets tinyml_requantize_bounded's
 * preconditions (fused_common.h). Both are fixed at compile time in each of the
 * two copies the dispatcher below instantiates. */
static inline __attribute__((always_inline)) void layernorm_rows(const tinyml_layernorm_params *params,
                                                                 const int8_t *gamma, const int8_t *beta,
                                                                 const int8_t *input, int8_t *output,
                                                                 const int full, const int fast)
{
    /* A local copy: the int8 stores below cannot alias it, so its fields stay
     * in registers or on the stack instead of being reloaded after every store. */
    const tinyml_layernorm_params P = *params;
    const int32_t rows = P.rows, depth = P.depth;
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = input + r * depth;
        int8_t *y = output + r * depth;
        /* m = MEAN(x), nm = -m requantized. */
        const int32_t m = fused_mean_finish(&P.mean, tinyml_sum_s8(x, depth));   /* SMLAD, 4 per step */
        const int32_t nm = P.neg_table[m + 128];
        /* v = MEAN((x - m)^2): the squared differences are summed, never stored. */
        const int32_t mb = fused_rescale(&P.sqdiff.input2, m, 7);
        int32_t sq_sum = 0;
        for (int32_t c = 0; c < depth; ++c) {
            sq_sum += fused_sqdiff_b_ff(&P.sqdiff, x[c], mb, fast);
        }
        const int32_t v = fused_mean_finish(&P.variance, sq_sum);
        const int32_t rs = ln_rsqrt(&P.rsqrt, v);
        /* y = x * g + (beta + nm * g), g = gamma * rsqrt(v + eps); x[c] is read before y[c] is written. */
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t xc = x[c];
            const int32_t g = fused_mul_ff(&P.mul_gamma, rs, gamma[c], full, fast);
            const int32_t t1 = fused_mul_ff(&P.mul_center, nm, g, full, fast);
            const int32_t t2 = fused_add_ff(&P.add_beta, t1, beta[c], full, fast);
            const int32_t t3 = fused_mul_ff(&P.mul_x, xc, g, full, fast);
            y[c] = (int8_t)fused_add_ff(&P.add_out, t3, t2, full, fast);
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
        fused_full_range(&params->add_out.activation) &&
        fused_quant_fast(&params->sqdiff.output, params->sqdiff.output_offset) &&
        fused_quant_fast(&params->mul_gamma.output, params->mul_gamma.output_offset) &&
        fused_quant_fast(&params->mul_center.output, params->mul_center.output_offset) &&
        fused_quant_fast(&params->add_beta.output, params->add_beta.output_offset) &&
        fused_quant_fast(&params->mul_x.output, params->mul_x.output_offset) &&
        fused_quant_fast(&params->add_out.output, params->add_out.output_offset)) {
        layernorm_rows(params, gamma, beta, input, output, 1, 1);
    } else {
        layernorm_rows(params, gamma, beta, input, output, 0, 0);
    }
    return TINYML_OK;
}
