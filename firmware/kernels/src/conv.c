/* tinyml kernels: CONV_2D (int8, per-channel requantization). See conv.h. */
#include "tinyml/conv.h"
#include "tinyml/fc.h"

tinyml_status tinyml_conv2d_s8(const tinyml_conv_params *params, const tinyml_per_channel_quant *quant,
                               const tinyml_dims *input_dims, const int8_t *input,
                               const tinyml_dims *filter_dims, const int8_t *filter,
                               const int32_t *bias, const int32_t *kernel_sums,
                               const tinyml_dims *output_dims, int8_t *output)
{
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w, f_c = filter_dims->c;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, out_c = output_dims->c;
    if (f_c <= 0 || in_c % f_c != 0 || filter_dims->n != out_c || input_dims->n != output_dims->n ||
        params->stride_h <= 0 || params->stride_w <= 0 ||
        params->dilation_h <= 0 || params->dilation_w <= 0) {
        return TINYML_ERROR_ARG;
    }
    const int32_t groups = in_c / f_c;
    if (out_c % groups != 0) {
        return TINYML_ERROR_ARG;
    }
    const int32_t per_group = out_c / groups;
    const int32_t io = params->input_offset;
    const int32_t dh = params->dilation_h, dw = params->dilation_w;
    /* With unit column dilation and one group, the in-image taps of one
     * filter row are a single contiguous run of both input and filter
     * bytes: one dot product of (kx_end - kx_begin) * in_c per row. */
    const int rows_contiguous = (dw == 1 && groups == 1);
    const int32_t filter_size = k_h * k_w * f_c;

    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *in_b = input + (size_t)b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * params->stride_h - params->pad_h;
            int32_t ky0, ky1;
            tinyml_tap_range(iy0, dh, k_h, in_h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out_w; ++ox) {
                const int32_t ix0 = ox * params->stride_w - params->pad_w;
                int32_t kx0, kx1;
                tinyml_tap_range(ix0, dw, k_w, in_w, &kx0, &kx1);
                const int full = (ky0 == 0 && ky1 == k_h && kx0 == 0 && kx1 == k_w);
                const int need_wsum = (io != 0) && !(full && kernel_sums != NULL);
                int8_t *out_px = output + (((size_t)b * out_h + oy) * out_w + ox) * out_c;
                for (int32_t o = 0; o < out_c; ++o) {
                    const int8_t *w_o = filter + (size_t)o * filter_size;
                    const int32_t g = o / per_group;
                    /* sum w (x + io) = sum w x + io sum w, exact in int32. */
                    int32_t acc = 0;
                    int32_t wsum = 0;
                    if (rows_contiguous) {
                        const int32_t run = (kx1 - kx0) * f_c;
                        for (int32_t ky = ky0; ky < ky1 && run > 0; ++ky) {
                            const int32_t iy = iy0 + ky * dh;
                            const int8_t *xr = in_b + ((size_t)iy * in_w + (ix0 + kx0)) * in_c;
                            const int8_t *wr = w_o + ((size_t)ky * k_w + kx0) * f_c;
                            acc += tinyml_dot_s8(wr, xr, run);
                            if (need_wsum) {
                                wsum += tinyml_sum_s8(wr, run);
                            }
                        }
                    } else {
                        for (int32_t ky = ky0; ky < ky1; ++ky) {
                            const int32_t iy = iy0 + ky * dh;
                            for (int32_t kx = kx0; kx < kx1; ++kx) {
                                const int32_t ix = ix0 + kx * dw;
                                const int8_t *xt = in_b + ((size_t)iy * in_w + ix) * in_c + (size_t)g * f_c;
                                const int8_t *wt = w_o + ((size_t)ky * k_w + kx) * f_c;
                                acc += tinyml_dot_s8(wt, xt, f_c);
                                if (need_wsum) {
                                    wsum += tinyml_sum_s8(wt, f_c);
                                }
                            }
                        }
                    }
                    if (io != 0) {
                        acc += io * (need_wsum ? wsum : kernel_sums[o]);
                    }
                    if (bias) {
                        acc += bias[o];
                    }
                    acc = tinyml_conv_requantize(acc, quant->multiplier[o], quant->shift[o]);
                    acc += params->output_offset;
                    acc = TINYML_CLAMP(acc, params->activation.min, params->activation.max);
                    out_px[o] = (int8_t)acc;
                }
            }
        }
    }
    return TINYML_OK;
}
