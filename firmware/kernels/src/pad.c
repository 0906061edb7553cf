/* tinyml kernels: PAD / PADV2 (int8, constant padding). See conv.h. */
#include "tinyml/conv.h"

#include <string.h>

tinyml_status tinyml_pad_s8(const tinyml_pad_params *params,
                            const tinyml_dims *input_dims, const int8_t *input,
                            int8_t *output)
{
    const int32_t in[4] = {input_dims->n, input_dims->h, input_dims->w, input_dims->c};
    int32_t out[4];
    for (int d = 0; d < 4; ++d) {
        if (params->before[d] < 0 || params->after[d] < 0 || in[d] < 0) {
            return TINYML_ERROR_ARG;
        }
        out[d] = in[d] + params->before[d] + params->after[d];
    }
    const int8_t v = params->pad_value;
    const size_t row = (size_t)out[3];                 /* one output pixel's channels */
    const size_t plane_w = (size_t)out[2] * row;       /* one output image row */
    const size_t image = (size_t)out[1] * plane_w;     /* one output image */
    const int8_t *src = input;
    int8_t *dst = output;
    for (int32_t n = 0; n < out[0]; ++n) {
        if (n < params->before[0] || n >= params->before[0] + in[0]) {
            memset(dst, v, image);
            dst += image;
            continue;
        }
        for (int32_t h = 0; h < out[1]; ++h) {
            if (h < params->before[1] || h >= params->before[1] + in[1]) {
                memset(dst, v, plane_w);
                dst += plane_w;
                continue;
            }
            memset(dst, v, (size_t)params->before[2] * row);
            dst += (size_t)params->before[2] * row;
            for (int32_t w = 0; w < in[2]; ++w) {
                memset(dst, v, (size_t)params->before[3]);
                dst += params->before[3];
                memcpy(dst, src, (size_t)in[3]);
                dst += in[3];
                src += in[3];
                memset(dst, v, (size_t)params->after[3]);
                dst += params->after[3];
            }
            memset(dst, v, (size_t)params->after[2] * row);
            dst += (size_t)params->after[2] * row;
        }
    }
    return TINYML_OK;
}
