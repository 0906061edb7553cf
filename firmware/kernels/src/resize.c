/* tinyml kernels: RESIZE_NEAREST_NEIGHBOR (int8). See shape.h. */
#include "tinyml/shape.h"

#include <string.h>

tinyml_status tinyml_resize_nearest_s8(const tinyml_resize_nearest_params *params,
                                       const tinyml_dims *input_dims, const int8_t *input,
                                       int8_t *output)
{
    if (!params || !input_dims || !input || !output || !params->src_y || !params->src_x) {
        return TINYML_ERROR_ARG;
    }
    const int32_t in_h = input_dims->h, in_w = input_dims->w, ch = input_dims->c;
    for (int32_t y = 0; y < params->out_h; ++y) {
        if (params->src_y[y] < 0 || params->src_y[y] >= in_h) {
            return TINYML_ERROR_ARG;
        }
    }
    for (int32_t x = 0; x < params->out_w; ++x) {
        if (params->src_x[x] < 0 || params->src_x[x] >= in_w) {
            return TINYML_ERROR_ARG;
        }
    }
    const size_t pixel = (size_t)ch;
    const size_t in_row = (size_t)in_w * pixel;
    int8_t *dst = output;
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *image = input + (size_t)b * (size_t)in_h * in_row;
        for (int32_t y = 0; y < params->out_h; ++y) {
            const int8_t *src_row = image + (size_t)params->src_y[y] * in_row;
            for (int32_t x = 0; x < params->out_w; ++x) {
                memcpy(dst, src_row + (size_t)params->src_x[x] * pixel, pixel);
                dst += pixel;
            }
        }
    }
    return TINYML_OK;
}
