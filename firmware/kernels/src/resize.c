/* tinyml kernels: RESIZE_NEAREST_NEIGHBOR (int8, int16), RESIZE_BILINEAR (int8). See shape.h. */
#include "tinyml/shape.h"

#include <string.h>

/* Nearest-neighbour resize of elements of `elem` bytes (int8: 1, int16: 2). */
static tinyml_status resize_nearest(const tinyml_resize_nearest_params *params, const tinyml_dims *input_dims,
                                    const void *input, void *output, size_t elem)
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
    const size_t pixel = (size_t)ch * elem;
    const size_t in_row = (size_t)in_w * pixel;
    uint8_t *dst = (uint8_t *)output;
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const uint8_t *image = (const uint8_t *)input + (size_t)b * (size_t)in_h * in_row;
        for (int32_t y = 0; y < params->out_h; ++y) {
            const uint8_t *src_row = image + (size_t)params->src_y[y] * in_row;
            for (int32_t x = 0; x < params->out_w; ++x) {
                memcpy(dst, src_row + (size_t)params->src_x[x] * pixel, pixel);
                dst += pixel;
            }
        }
    }
    return TINYML_OK;
}

tinyml_status tinyml_resize_nearest_s8(const tinyml_resize_nearest_params *params,
                                       const tinyml_dims *input_dims, const int8_t *input,
                                       int8_t *output)
{
    return resize_nearest(params, input_dims, input, output, 1);
}

tinyml_status tinyml_resize_nearest_s16(const tinyml_resize_nearest_params *params,
                                        const tinyml_dims *input_dims, const int16_t *input,
                                        int16_t *output)
{
    return resize_nearest(params, input_dims, input, output, 2);
}

static void interpolation_values(int32_t value, int32_t scale_10, int32_t half_pixel, int32_t size,
                                 int32_t *scaled, int32_t *lo, int32_t *hi)
{
    *scaled = half_pixel ? value * scale_10 + scale_10 / 2 - (1 << 9) : value * scale_10;
    const int32_t l = *scaled / (1 << 10);                      /* C division truncates */
    const int32_t h = (*scaled + (1 << 10) - 1) / (1 << 10);
    *lo = l > 0 ? l : 0;
    *hi = h < size - 1 ? h : size - 1;
}

tinyml_status tinyml_resize_bilinear_s8(const tinyml_resize_bilinear_params *params,
                                        const tinyml_dims *input_dims, const int8_t *input,
                                        int8_t *output)
{
    if (!params || !input_dims || !input || !output || input_dims->h <= 0 || input_dims->w <= 0) {
        return TINYML_ERROR_ARG;
    }
    const int32_t in_h = input_dims->h, in_w = input_dims->w, ch = input_dims->c;
    const int32_t one = 1 << 10;
    int8_t *dst = output;
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *image = input + (size_t)b * (size_t)in_h * (size_t)in_w * (size_t)ch;
        for (int32_t y = 0; y < params->out_h; ++y) {
            int32_t vy, y0, y1;
            interpolation_values(y, params->scale_h_10, params->half_pixel_centers, in_h, &vy, &y0, &y1);
            const int64_t dy = vy - one * y0;
            const int8_t *r0 = image + (size_t)y0 * (size_t)in_w * (size_t)ch;
            const int8_t *r1 = image + (size_t)y1 * (size_t)in_w * (size_t)ch;
            for (int32_t x = 0; x < params->out_w; ++x) {
                int32_t vx, x0, x1;
                interpolation_values(x, params->scale_w_10, params->half_pixel_centers, in_w, &vx, &x0, &x1);
                const int64_t dx = vx - one * x0;
                const int8_t *p00 = r0 + (size_t)x0 * (size_t)ch, *p01 = r0 + (size_t)x1 * (size_t)ch;
                const int8_t *p10 = r1 + (size_t)x0 * (size_t)ch, *p11 = r1 + (size_t)x1 * (size_t)ch;
                for (int32_t c = 0; c < ch; ++c) {
                    const int64_t s = (int64_t)p00[c] * (one - dy) * (one - dx) + (int64_t)p10[c] * dy * (one - dx) +
                                      (int64_t)p01[c] * (one - dy) * dx + (int64_t)p11[c] * dy * dx;
                    *dst++ = (int8_t)((s + (s > 0 ? (1 << 19) : -(1 << 19))) / (1 << 20));
                }
            }
        }
    }
    return TINYML_OK;
}
