/* tinyml kernels: MIRROR_PAD, SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND. See conv.h. */
#include "tinyml/conv.h"

#include <string.h>

tinyml_status tinyml_mirror_pad(const tinyml_mirror_pad_params *params, int32_t elem_bytes,
                                const void *input, void *output)
{
    if (!params || !input || !output || elem_bytes <= 0) {
        return TINYML_ERROR_ARG;
    }
    const int32_t *d = params->dims;
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    const size_t eb = (size_t)elem_bytes;
    for (int32_t a = 0; a < d[0]; ++a) {
        for (int32_t b = 0; b < d[1]; ++b) {
            for (int32_t c = 0; c < d[2]; ++c) {
                const int32_t base = params->offset[0][a] + params->offset[1][b] + params->offset[2][c];
                for (int32_t e = 0; e < d[3]; ++e) {
                    memcpy(out, in + (size_t)(base + params->offset[3][e]) * eb, eb);
                    out += eb;
                }
            }
        }
    }
    return TINYML_OK;
}

tinyml_status tinyml_space_to_batch_s8(const tinyml_space_to_batch_params *params,
                                       const tinyml_dims *input_dims, const int8_t *input,
                                       const tinyml_dims *output_dims, int8_t *output)
{
    if (!params || !input_dims || !output_dims || !input || !output || params->block_h < 1 ||
        params->block_w < 1 || output_dims->c != input_dims->c ||
        output_dims->n != input_dims->n * params->block_h * params->block_w) {
        return TINYML_ERROR_ARG;
    }
    const int32_t n_in = input_dims->n, ih = input_dims->h, iw = input_dims->w, ch = input_dims->c;
    const size_t pixel = (size_t)ch;
    int8_t *dst = output;
    for (int32_t ob = 0; ob < output_dims->n; ++ob) {
        const int32_t b = ob % n_in;
        const int32_t blk = ob / n_in;
        const int32_t i = blk / params->block_w, j = blk % params->block_w;
        for (int32_t h = 0; h < output_dims->h; ++h) {
            const int32_t y = h * params->block_h + i - params->pad_top;
            for (int32_t w = 0; w < output_dims->w; ++w) {
                const int32_t x = w * params->block_w + j - params->pad_left;
                if (y < 0 || y >= ih || x < 0 || x >= iw) {
                    memset(dst, params->pad_value, pixel);
                } else {
                    memcpy(dst, input + (((size_t)b * (size_t)ih + (size_t)y) * (size_t)iw + (size_t)x) * pixel,
                           pixel);
                }
                dst += pixel;
            }
        }
    }
    return TINYML_OK;
}

tinyml_status tinyml_batch_to_space_s8(const tinyml_batch_to_space_params *params,
                                       const tinyml_dims *input_dims, const int8_t *input,
                                       const tinyml_dims *output_dims, int8_t *output)
{
    if (!params || !input_dims || !output_dims || !input || !output || params->block_h < 1 ||
        params->block_w < 1 || output_dims->c != input_dims->c ||
        input_dims->n != output_dims->n * params->block_h * params->block_w) {
        return TINYML_ERROR_ARG;
    }
    const int32_t n_out = output_dims->n, ih = input_dims->h, iw = input_dims->w;
    const size_t pixel = (size_t)input_dims->c;
    int8_t *dst = output;
    for (int32_t b = 0; b < n_out; ++b) {
        for (int32_t h = 0; h < output_dims->h; ++h) {
            const int32_t y = h + params->crop_top;
            const int32_t iy = y / params->block_h, i = y % params->block_h;
            for (int32_t w = 0; w < output_dims->w; ++w) {
                const int32_t x = w + params->crop_left;
                const int32_t ix = x / params->block_w, j = x % params->block_w;
                const int32_t ib = (i * params->block_w + j) * n_out + b;
                if (iy >= ih || ix >= iw) {
                    return TINYML_ERROR_ARG;
                }
                memcpy(dst, input + (((size_t)ib * (size_t)ih + (size_t)iy) * (size_t)iw + (size_t)ix) * pixel, pixel);
                dst += pixel;
            }
        }
    }
    return TINYML_OK;
}
