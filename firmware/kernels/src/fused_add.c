/* tinyml kernels: same-shape int8 ADD with tabulated input rescalings (see tinyml/fused.h). */
#include "fused_common.h"

tinyml_status tinyml_fused_add_s8(const tinyml_fused_add *params, int32_t n, const int8_t *input1,
                                  const int8_t *input2, int8_t *output)
{
    if (!params || !input1 || !input2 || !output || n < 0) {
        return TINYML_ERROR_ARG;
    }
    const tinyml_fused_add p = *params;   /* local: the int8 stores cannot alias it */
    if (fused_full_range(&p.activation) && fused_quant_fast(&p.output, p.output_offset)) {
        for (int32_t i = 0; i < n; ++i) {
            output[i] = (int8_t)fused_add_ff(&p, input1[i], input2[i], 1, 1);
        }
    } else {
        for (int32_t i = 0; i < n; ++i) {
            output[i] = (int8_t)fused_add(&p, input1[i], input2[i]);
        }
    }
    return TINYML_OK;
}
