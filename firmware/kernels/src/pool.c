/* tinyml kernels: AVERAGE_POOL_2D and MAX_POOL_2D (int8). See conv.h. */
#include "tinyml/conv.h"

static int pool_args_ok(const tinyml_pool_params *p, const tinyml_dims *in, const tinyml_dims *out)
{
    return p->stride_h > 0 && p->stride_w > 0 && p->filter_h > 0 && p->filter_w > 0 &&
           in->n == out->n && in->c == out->c;
}

tinyml_status tinyml_avg_pool_s8(const tinyml_pool_params *params,
                                 const tinyml_dims *input_dims, const int8_t *input,
                                 const tinyml_dims *output_dims, int8_t *output)
{
    if (!pool_args_ok(params, input_dims, output_dims)) {
        return TINYML_ERROR_ARG;
    }
    const int32_t in_h = input_dims->h, in_w = input_dims->w, ch = input_dims->c;
    const int32_t out_h = output_dims->h, out_w = output_dims->w;
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *in_b = input + (size_t)b * in_h * in_w * ch;
        for (int32_t oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * params->stride_h - params->pad_h;
            int32_t ky0, ky1;
            tinyml_tap_range(iy0, 1, params->filter_h, in_h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out_w; ++ox) {
                const int32_t ix0 = ox * params->stride_w - params->pad_w;
                int32_t kx0, kx1;
                tinyml_tap_range(ix0, 1, params->filter_w, in_w, &kx0, &kx1);
                const int32_t count = (ky1 - ky0) * (kx1 - kx0);
                if (count == 0) {
                    return TINYML_ERROR_ARG;
                }
                int8_t *out_px = output + (((size_t)b * out_h + oy) * out_w + ox) * ch;
                int32_t c = 0;
#if TINYML_DSP
                /* Four channels at a time in two halfword-pair sums (SXTAB16): exact
                 * while count * 128 fits a halfword. */
                if (count <= 255) {
                    const int8_t *px0 = in_b + ((size_t)(iy0 + ky0) * in_w + (ix0 + kx0)) * ch;
                    const size_t row_step = (size_t)in_w * ch;
                    for (; c + 4 <= ch; c += 4) {
                        int32_t s02 = 0, s13 = 0;
                        const int8_t *row = px0 + c;
                        for (int32_t y = ky0; y < ky1; ++y) {
                            const int8_t *q = row;
                            for (int32_t x = kx0; x < kx1; ++x) {
                                int32_t v;
                                __builtin_memcpy(&v, q, 4);
                                s02 = (int32_t)__sxtab16(s02, v);
                                s13 = (int32_t)__sxtab16(s13, (int32_t)tinyml_ror((uint32_t)v, 8));
                                q += ch;
                            }
                            row += row_step;
                        }
                        const int32_t sums[4] = {(int16_t)s02, (int16_t)s13, s02 >> 16, s13 >> 16};
                        for (int32_t u = 0; u < 4; ++u) {
                            int32_t acc = sums[u];
                            acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                            out_px[c + u] = (int8_t)TINYML_CLAMP(acc, params->activation.min, params->activation.max);
                        }
                    }
                }
#endif
                for (; c < ch; ++c) {
                    int32_t acc = 0;
                    for (int32_t y = iy0 + ky0; y < iy0 + ky1; ++y) {
                        const int8_t *row = in_b + (size_t)y * in_w * ch + c;
                        for (int32_t x = ix0 + kx0; x < ix0 + kx1; ++x) {
                            acc += row[(size_t)x * ch];
                        }
                    }
                    /* Round half away from zero; C division truncates. */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    out_px[c] = (int8_t)TINYML_CLAMP(acc, params->activation.min, params->activation.max);
                }
            }
        }
    }
    return TINYML_OK;
}

tinyml_status tinyml_max_pool_s8(const tinyml_pool_params *params,
                                 const tinyml_dims *input_dims, const int8_t *input,
                                 const tinyml_dims *output_dims, int8_t *output)
{
    if (!pool_args_ok(params, input_dims, output_dims)) {
        return TINYML_ERROR_ARG;
    }
    const int32_t in_h = input_dims->h, in_w = input_dims->w, ch = input_dims->c;
    const int32_t out_h = output_dims->h, out_w = output_dims->w;
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *in_b = input + (size_t)b * in_h * in_w * ch;
        for (int32_t oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * params->stride_h - params->pad_h;
            int32_t ky0, ky1;
            tinyml_tap_range(iy0, 1, params->filter_h, in_h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out_w; ++ox) {
                const int32_t ix0 = ox * params->stride_w - params->pad_w;
                int32_t kx0, kx1;
                tinyml_tap_range(ix0, 1, params->filter_w, in_w, &kx0, &kx1);
                int8_t *out_px = output + (((size_t)b * out_h + oy) * out_w + ox) * ch;
                for (int32_t c = 0; c < ch; ++c) {
                    int32_t m = -128;
                    for (int32_t y = iy0 + ky0; y < iy0 + ky1; ++y) {
                        const int8_t *row = in_b + (size_t)y * in_w * ch + c;
                        for (int32_t x = ix0 + kx0; x < ix0 + kx1; ++x) {
                            m = TINYML_MAX(m, (int32_t)row[(size_t)x * ch]);
                        }
                    }
                    out_px[c] = (int8_t)TINYML_CLAMP(m, params->activation.min, params->activation.max);
                }
            }
        }
    }
    return TINYML_OK;
}
