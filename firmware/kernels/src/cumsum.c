/* tinyml kernels: CUMSUM (int8, tflite_micro's arithmetic). See reduce.h. */
#include "tinyml/reduce.h"

tinyml_status tinyml_cumsum_s8(const tinyml_cumsum_params *params, const int8_t *input, int8_t *output)
{
    if (!params || !input || !output || params->outer < 0 || params->depth < 0 || params->inner < 0) {
        return TINYML_ERROR_ARG;
    }
    const int32_t depth = params->depth, inner = params->inner;
    const int32_t zp = params->input_zp;
    for (int32_t o = 0; o < params->outer; ++o) {
        for (int32_t i = 0; i < inner; ++i) {
            /* the reference's int32 sum wraps; unsigned arithmetic keeps that defined */
            uint32_t acc = (uint32_t)(-zp) << 19;
            for (int32_t d = 0; d < depth; ++d) {
                const int32_t dd = params->reverse ? depth - 1 - d : d;
                const int32_t idx = (o * depth + dd) * inner + i;
                const uint32_t s = (uint32_t)((int32_t)input[idx] - zp) << 19;
                uint32_t out;
                if (params->exclusive) {
                    out = acc;
                    acc += s;
                } else {
                    acc += s;
                    out = acc;
                }
                const int32_t y = tinyml_requantize_double((int32_t)out, params->quant.multiplier,
                                                           params->quant.shift) + params->output_zp;
                output[idx] = (int8_t)TINYML_CLAMP(y, -128, 127);
            }
        }
    }
    return TINYML_OK;
}
