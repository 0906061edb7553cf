/* 16x8 convolution group: CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D,
 * MAX_POOL_2D on int16 activations (tinyml/s16.h states each contract). */
#include "tinyml/s16.h"

static int dims_ok(const tinyml_dims *d)
{
    return d && d->n > 0 && d->h > 0 && d->w > 0 && d->c > 0;
}

tinyml_status tinyml_conv2d_s16(const tinyml_conv_params *params, const tinyml_per_channel_quant *quant,
                                const tinyml_dims *input_dims, const int16_t *input,
                                const tinyml_dims *filter_dims, const int8_t *filter,
                                const int64_t *bias, const tinyml_dims *output_dims, int16_t *output)
{
    if (!params || !quant || !input || !filter || !output || !dims_ok(input_dims) || !dims_ok(filter_dims)
        || !dims_ok(output_dims) || input_dims->c != filter_dims->c || output_dims->c != filter_dims->n) {
        return TINYML_ERROR_ARG;
    }
    const int32_t ih = input_dims->h, iw = input_dims->w, ic = input_dims->c;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    const int32_t oh = output_dims->h, ow = output_dims->w, oc = output_dims->c;
    const int narrow = (int64_t)kh * kw * ic <= 512;
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int16_t *in_b = input + (size_t)b * ih * iw * ic;
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * params->stride_h - params->pad_h;
            int32_t ky0, ky1;
            tinyml_tap_range(iy0, params->dilation_h, kh, ih, &ky0, &ky1);
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t ix0 = ox * params->stride_w - params->pad_w;
                int32_t kx0, kx1;
                tinyml_tap_range(ix0, params->dilation_w, kw, iw, &kx0, &kx1);
                int16_t *out_px = output + (((size_t)b * oh + oy) * ow + ox) * oc;
                for (int32_t o = 0; o < oc; ++o) {
                    const int8_t *f_o = filter + (size_t)o * kh * kw * ic;
                    int64_t acc = 0;
                    if (narrow) {
                        /* <= 512 products of |w x| <= 127 * 32768 < 2^22: the int32 sum cannot overflow */
                        int32_t acc32 = 0;
                        for (int32_t ky = ky0; ky < ky1; ++ky) {
                            const int32_t iy = iy0 + ky * params->dilation_h;
                            for (int32_t kx = kx0; kx < kx1; ++kx) {
                                const int32_t ix = ix0 + kx * params->dilation_w;
                                const int16_t *px = in_b + ((size_t)iy * iw + ix) * ic;
                                const int8_t *f = f_o + ((size_t)ky * kw + kx) * ic;
                                for (int32_t i = 0; i < ic; ++i) {
                                    acc32 += (int32_t)f[i] * px[i];
                                }
                            }
                        }
                        acc = acc32;
                    } else {
                        for (int32_t ky = ky0; ky < ky1; ++ky) {
                            const int32_t iy = iy0 + ky * params->dilation_h;
                            for (int32_t kx = kx0; kx < kx1; ++kx) {
                                const int32_t ix = ix0 + kx * params->dilation_w;
                                const int16_t *px = in_b + ((size_t)iy * iw + ix) * ic;
                                const int8_t *f = f_o + ((size_t)ky * kw + kx) * ic;
                                int32_t part = 0;      /* 256 products < 2^30 */
                                for (int32_t i = 0; i < ic; ++i) {
                                    part += (int32_t)f[i] * px[i];
                                    if ((i & 255) == 255) {
                                        acc += part;
                                        part = 0;
                                    }
                                }
                                acc += part;
                            }
                        }
                    }
                    if (bias) {
                        acc += bias[o];
                    }
                    int32_t v = tinyml_requantize_s64(acc, quant->multiplier[o], quant->shift[o]);
                    out_px[o] = (int16_t)TINYML_CLAMP(v, params->activation.min, params->activation.max);
                }
            }
        }
    }
    return TINYML_OK;
}

tinyml_status tinyml_depthwise_conv2d_s16(const tinyml_conv_params *params,
                                          const tinyml_per_channel_quant *quant,
                                          const tinyml_dims *input_dims, const int16_t *input,
                                          const tinyml_dims *filter_dims, const int8_t *filter,
                                          const int64_t *bias, const tinyml_dims *output_dims,
                                          int16_t *output)
{
    if (!params || !quant || !input || !filter || !output || !dims_ok(input_dims) || !dims_ok(filter_dims)
        || !dims_ok(output_dims) || params->depth_multiplier <= 0
        || output_dims->c != input_dims->c * params->depth_multiplier || filter_dims->c != output_dims->c) {
        return TINYML_ERROR_ARG;
    }
    const int32_t ih = input_dims->h, iw = input_dims->w, ic = input_dims->c;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    const int32_t oh = output_dims->h, ow = output_dims->w, oc = output_dims->c;
    const int32_t dm = params->depth_multiplier;
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int16_t *in_b = input + (size_t)b * ih * iw * ic;
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * params->stride_h - params->pad_h;
            int32_t ky0, ky1;
            tinyml_tap_range(iy0, params->dilation_h, kh, ih, &ky0, &ky1);
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t ix0 = ox * params->stride_w - params->pad_w;
                int32_t kx0, kx1;
                tinyml_tap_range(ix0, params->dilation_w, kw, iw, &kx0, &kx1);
                int16_t *out_px = output + (((size_t)b * oh + oy) * ow + ox) * oc;
                for (int32_t o = 0; o < oc; ++o) {
                    const int32_t c = o / dm;
                    int64_t acc = 0;
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        const int32_t iy = iy0 + ky * params->dilation_h;
                        for (int32_t kx = kx0; kx < kx1; ++kx) {
                            const int32_t ix = ix0 + kx * params->dilation_w;
                            acc += (int32_t)filter[((size_t)ky * kw + kx) * oc + o]
                                   * in_b[((size_t)iy * iw + ix) * ic + c];
                        }
                    }
                    if (bias) {
                        acc += bias[o];
                    }
                    int32_t v = tinyml_requantize_s64(acc, quant->multiplier[o], quant->shift[o]);
                    out_px[o] = (int16_t)TINYML_CLAMP(v, params->activation.min, params->activation.max);
                }
            }
        }
    }
    return TINYML_OK;
}

static int pool_ok(const tinyml_pool_params *p, const tinyml_dims *in, const tinyml_dims *out)
{
    return p && dims_ok(in) && dims_ok(out) && in->n == out->n && in->c == out->c && p->filter_h > 0
           && p->filter_w > 0 && p->stride_h > 0 && p->stride_w > 0;
}

/* mode 0: average, 1: max */
static tinyml_status pool_s16(const tinyml_pool_params *params, const tinyml_dims *input_dims,
                              const int16_t *input, const tinyml_dims *output_dims, int16_t *output, int max)
{
    if (!input || !output || !pool_ok(params, input_dims, output_dims)) {
        return TINYML_ERROR_ARG;
    }
    const int32_t ih = input_dims->h, iw = input_dims->w, ch = input_dims->c;
    const int32_t oh = output_dims->h, ow = output_dims->w;
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int16_t *in_b = input + (size_t)b * ih * iw * ch;
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * params->stride_h - params->pad_h;
            int32_t ky0, ky1;
            tinyml_tap_range(iy0, 1, params->filter_h, ih, &ky0, &ky1);
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t ix0 = ox * params->stride_w - params->pad_w;
                int32_t kx0, kx1;
                tinyml_tap_range(ix0, 1, params->filter_w, iw, &kx0, &kx1);
                const int32_t count = (ky1 - ky0) * (kx1 - kx0);
                if (count == 0) {
                    return TINYML_ERROR_ARG;
                }
                int16_t *out_px = output + (((size_t)b * oh + oy) * ow + ox) * ch;
                for (int32_t c = 0; c < ch; ++c) {
                    int32_t acc = max ? -32768 : 0;
                    for (int32_t y = iy0 + ky0; y < iy0 + ky1; ++y) {
                        const int16_t *row = in_b + (size_t)y * iw * ch + c;
                        for (int32_t x = ix0 + kx0; x < ix0 + kx1; ++x) {
                            const int32_t v = row[(size_t)x * ch];
                            if (max) {
                                acc = v > acc ? v : acc;
                            } else {
                                acc += v;
                            }
                        }
                    }
                    if (!max) {
                        acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    }
                    out_px[c] = (int16_t)TINYML_CLAMP(acc, params->activation.min, params->activation.max);
                }
            }
        }
    }
    return TINYML_OK;
}

tinyml_status tinyml_avg_pool_s16(const tinyml_pool_params *params, const tinyml_dims *input_dims,
                                  const int16_t *input, const tinyml_dims *output_dims, int16_t *output)
{
    return pool_s16(params, input_dims, input, output_dims, output, 0);
}

tinyml_status tinyml_max_pool_s16(const tinyml_pool_params *params, const tinyml_dims *input_dims,
                                  const int16_t *input, const tinyml_dims *output_dims, int16_t *output)
{
    return pool_s16(params, input_dims, input, output_dims, output, 1);
}

tinyml_status tinyml_pad_s16(const tinyml_pad_params *params, const tinyml_dims *input_dims,
                             const int16_t *input, int16_t *output)
{
    if (!params || !input || !output || !dims_ok(input_dims)) {
        return TINYML_ERROR_ARG;
    }
    const int32_t in[4] = {input_dims->n, input_dims->h, input_dims->w, input_dims->c};
    int32_t out[4];
    for (int k = 0; k < 4; ++k) {
        if (params->before[k] < 0 || params->after[k] < 0) {
            return TINYML_ERROR_ARG;
        }
        out[k] = in[k] + params->before[k] + params->after[k];
    }
    int16_t *y = output;
    for (int32_t a = 0; a < out[0]; ++a) {
        const int32_t ia = a - params->before[0];
        for (int32_t b = 0; b < out[1]; ++b) {
            const int32_t ib = b - params->before[1];
            for (int32_t c = 0; c < out[2]; ++c) {
                const int32_t ic = c - params->before[2];
                const int inside = ia >= 0 && ia < in[0] && ib >= 0 && ib < in[1] && ic >= 0 && ic < in[2];
                const int16_t *row = inside ? input + (((size_t)ia * in[1] + ib) * in[2] + ic) * in[3] : NULL;
                for (int32_t d = 0; d < out[3]; ++d) {
                    const int32_t id = d - params->before[3];
                    *y++ = (row && id >= 0 && id < in[3]) ? row[id] : (int16_t)params->pad_value;
                }
            }
        }
    }
    return TINYML_OK;
}
