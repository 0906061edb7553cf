/* tinyml kernels: same-shape int8 ADD with tabulated input rescalings (see tinyml/fused.h). */
#include "fused_common.h"

/* The fast full-range ADD when one input's rescaling is the unit one (2^31 - 1,
 * shift -1: 2 rescale(x) = (x + offset) << 20, fused_common.h): the doubled sum
 * is one shifted add of the other input's rescaling, then fused_rq. */
static __attribute__((noinline)) void fused_add_unit(const tinyml_fused_add *p, int32_t n, const int8_t *input1,
                                                     const int8_t *input2, int8_t *output)
{
    const int first = fused_rescale_unit(&p->input1);
    const int8_t *u = first ? input1 : input2;
    const int8_t *o = first ? input2 : input1;
    const int32_t u_off20 = (int32_t)((uint32_t)(first ? p->input1.offset : p->input2.offset) << 20);
    const fused_rq_rescale r = fused_rq_rescale_make(first ? &p->input2 : &p->input1, 20);
    const fused_rq q = fused_rq_make(&p->output, p->output_offset);
    for (int32_t i = 0; i < n; ++i) {
        const int32_t b = fused_rq_apply(r.q, r.c + (int32_t)((uint32_t)o[i] << 21));
        const int32_t a2 = u_off20 + (int32_t)((uint32_t)u[i] << 20);
        output[i] = (int8_t)fused_sat8(fused_rq_apply(q, a2 + 2 * b));
    }
}

tinyml_status tinyml_fused_add_s8(const tinyml_fused_add *params, int32_t n, const int8_t *input1,
                                  const int8_t *input2, int8_t *output)
{
    if (!params || !input1 || !input2 || !output || n < 0) {
        return TINYML_ERROR_ARG;
    }
    const tinyml_fused_add p = *params;   /* local: the int8 stores cannot alias it */
    if (fused_full_range(&p.activation) && fused_quant_fast(&p.output, p.output_offset)) {
        if (fused_rescale_unit(&p.input1) || fused_rescale_unit(&p.input2)) {
            fused_add_unit(&p, n, input1, input2, output);
        } else {
            for (int32_t i = 0; i < n; ++i) {
                output[i] = (int8_t)fused_add_ff(&p, input1[i], input2[i], 1, 1);
            }
        }
    } else {
        for (int32_t i = 0; i < n; ++i) {
            output[i] = (int8_t)fused_add(&p, input1[i], input2[i]);
        }
    }
    return TINYML_OK;
}
