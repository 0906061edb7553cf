/* tinyml kernels: CONV_2D (int8, per-channel requantization). See conv.h. */
#include "tinyml/conv.h"
#include "tinyml/fc.h"

/* *s0 += sum x[i] * w0[i], *s1 += sum x[i] * w1[i] for i < n: two output
 * channels share each input load (and, with DSP, its sign extension). */
static inline void dot_s8_x2(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t n,
                             int32_t *s0, int32_t *s1)
{
    int32_t a0 = *s0, a1 = *s1;
    int32_t i = 0;
#if TINYML_DSP
    for (; i + 4 <= n; i += 4) {
        const int32_t xv = tinyml_read_s8x4(x + i);
        const int32_t x02 = (int32_t)__sxtb16(xv);
        const int32_t x13 = (int32_t)__sxtb16((int32_t)tinyml_ror((uint32_t)xv, 8));
        const int32_t v0 = tinyml_read_s8x4(w0 + i);
        const int32_t v1 = tinyml_read_s8x4(w1 + i);
        a0 = __smlad(x02, (int32_t)__sxtb16(v0), a0);
        a0 = __smlad(x13, (int32_t)__sxtb16((int32_t)tinyml_ror((uint32_t)v0, 8)), a0);
        a1 = __smlad(x02, (int32_t)__sxtb16(v1), a1);
        a1 = __smlad(x13, (int32_t)__sxtb16((int32_t)tinyml_ror((uint32_t)v1, 8)), a1);
    }
#endif
    for (; i < n; ++i) {
        a0 += (int32_t)x[i] * (int32_t)w0[i];
        a1 += (int32_t)x[i] * (int32_t)w1[i];
    }
    *s0 = a0;
    *s1 = a1;
}

/* Geometry of one output pixel: the in-image taps and where they start. */
typedef struct {
    int32_t iy0, ky0, ky1;
    int32_t ix0, kx0, kx1;
} pixel_window;

/* Raw sums sum w*x (acc) and sum w (wsum, only if need_wsum) over the
 * in-image taps of output channels o and o + 1 (o1 == o when pairs == 0). */
static void conv_pixel_sums(const tinyml_conv_params *p, const pixel_window *pw,
                            const int8_t *in_b, int32_t in_w, int32_t in_c,
                            const int8_t *w_o0, const int8_t *w_o1, int32_t k_w, int32_t f_c,
                            int32_t group_off, int rows_contiguous, int need_wsum,
                            int32_t acc[2], int32_t wsum[2])
{
    if (rows_contiguous) {
        const int32_t run = (pw->kx1 - pw->kx0) * f_c;
        if (run <= 0) {
            return;
        }
        for (int32_t ky = pw->ky0; ky < pw->ky1; ++ky) {
            const int32_t iy = pw->iy0 + ky * p->dilation_h;
            const int8_t *xr = in_b + ((size_t)iy * in_w + (pw->ix0 + pw->kx0)) * in_c;
            const size_t wo = ((size_t)ky * k_w + pw->kx0) * f_c;
            dot_s8_x2(xr, w_o0 + wo, w_o1 + wo, run, &acc[0], &acc[1]);
            if (need_wsum) {
                wsum[0] += tinyml_sum_s8(w_o0 + wo, run);
                wsum[1] += tinyml_sum_s8(w_o1 + wo, run);
            }
        }
        return;
    }
    for (int32_t ky = pw->ky0; ky < pw->ky1; ++ky) {
        const int32_t iy = pw->iy0 + ky * p->dilation_h;
        for (int32_t kx = pw->kx0; kx < pw->kx1; ++kx) {
            const int32_t ix = pw->ix0 + kx * p->dilation_w;
            const int8_t *xt = in_b + ((size_t)iy * in_w + ix) * in_c + group_off;
            const size_t wo = ((size_t)ky * k_w + kx) * f_c;
            dot_s8_x2(xt, w_o0 + wo, w_o1 + wo, f_c, &acc[0], &acc[1]);
            if (need_wsum) {
                wsum[0] += tinyml_sum_s8(w_o0 + wo, f_c);
                wsum[1] += tinyml_sum_s8(w_o1 + wo, f_c);
            }
        }
    }
}

static inline int8_t conv_finish(int32_t acc, int32_t wsum, int need_wsum, int32_t o,
                                 const tinyml_conv_params *p, const tinyml_per_channel_quant *q,
                                 const int32_t *bias, const int32_t *kernel_sums)
{
    /* sum w (x + io) = sum w x + io sum w, exact in int32. */
    if (p->input_offset != 0) {
        acc += p->input_offset * (need_wsum ? wsum : kernel_sums[o]);
    }
    if (bias) {
        acc += bias[o];
    }
    acc = tinyml_conv_requantize(acc, q->multiplier[o], q->shift[o]);
    acc += p->output_offset;
    return (int8_t)TINYML_CLAMP(acc, p->activation.min, p->activation.max);
}

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
    /* With unit column dilation and one group, the in-image taps of one
     * filter row are a single contiguous run of both input and filter
     * bytes: one dot product of (kx_end - kx_begin) * in_c per row. */
    const int rows_contiguous = (params->dilation_w == 1 && groups == 1);
    const size_t filter_size = (size_t)k_h * k_w * f_c;

    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *in_b = input + (size_t)b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < out_h; ++oy) {
            pixel_window pw;
            pw.iy0 = oy * params->stride_h - params->pad_h;
            tinyml_tap_range(pw.iy0, params->dilation_h, k_h, in_h, &pw.ky0, &pw.ky1);
            for (int32_t ox = 0; ox < out_w; ++ox) {
                pw.ix0 = ox * params->stride_w - params->pad_w;
                tinyml_tap_range(pw.ix0, params->dilation_w, k_w, in_w, &pw.kx0, &pw.kx1);
                const int full = (pw.ky0 == 0 && pw.ky1 == k_h && pw.kx0 == 0 && pw.kx1 == k_w);
                const int need_wsum = (params->input_offset != 0) && !(full && kernel_sums != NULL);
                int8_t *out_px = output + (((size_t)b * out_h + oy) * out_w + ox) * out_c;
                int32_t o = 0;
                while (o < out_c) {
                    const int32_t g = o / per_group;
                    /* Pair o with o + 1 when both read the same input group. */
                    const int pair = (o + 1 < out_c) && ((o + 1) / per_group == g);
                    const int8_t *w0 = filter + (size_t)o * filter_size;
                    const int8_t *w1 = pair ? w0 + filter_size : w0;
                    int32_t acc[2] = {0, 0};
                    int32_t wsum[2] = {0, 0};
                    conv_pixel_sums(params, &pw, in_b, in_w, in_c, w0, w1, k_w, f_c, g * f_c,
                                    rows_contiguous, need_wsum, acc, wsum);
                    out_px[o] = conv_finish(acc[0], wsum[0], need_wsum, o, params, quant, bias, kernel_sums);
                    if (pair) {
                        out_px[o + 1] = conv_finish(acc[1], wsum[1], need_wsum, o + 1, params, quant, bias,
                                                    kernel_sums);
                    }
                    o += pair ? 2 : 1;
                }
            }
        }
    }
    return TINYML_OK;
}

/* ---- packed-filter CONV_2D (groups == 1): 1x1 as a matrix product, KxK through
 * a two-pixel im2col buffer, both on tinyml_fc_s8's inner loops. ---------------- */

static inline void fill_bytes(int8_t *dst, int8_t value, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        dst[i] = value;
    }
}

/* Where input row iy (0 <= iy < in_h) of a packed convolution lives: row
 * iy % ring of `rows` (ring == in_h: the whole image, rows stored in order). */
static inline const int8_t *input_row(const tinyml_conv_packed_params *p, const int8_t *rows, int32_t ring,
                                      int32_t iy)
{
    const int32_t slot = iy < ring ? iy : iy % ring;
    return rows + (size_t)slot * p->in_w * p->in_c;
}

/* The k_h * k_w * in_c window of output pixel (oy, ox) in filter order; taps
 * outside the image hold the input zero point (x + input_offset = 0 there). */
static void im2col_pixel(const tinyml_conv_packed_params *p, const int8_t *rows, int32_t ring, int32_t oy,
                         int32_t ox, int8_t *col)
{
    const int32_t ic = p->in_c, kw = p->k_w;
    const int8_t pad = (int8_t)p->pad_value;
    const int32_t iy0 = oy * p->stride_h - p->pad_h, ix0 = ox * p->stride_w - p->pad_w;
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        int8_t *c = col + ky * kw * ic;
        if (iy < 0 || iy >= p->in_h) {
            fill_bytes(c, pad, kw * ic);
            continue;
        }
        const int8_t *row = input_row(p, rows, ring, iy);
        if (p->dilation_w == 1 && ix0 >= 0 && ix0 + kw <= p->in_w) {
            tinyml_copy_s8(c, row + (size_t)ix0 * ic, kw * ic);
            continue;
        }
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t ix = ix0 + kx * p->dilation_w;
            if (ix < 0 || ix >= p->in_w) {
                fill_bytes(c + kx * ic, pad, ic);
            } else {
                tinyml_copy_s8(c + kx * ic, row + (size_t)ix * ic, ic);
            }
        }
    }
}

int32_t tinyml_conv2d_packed_s8_scratch_size(const tinyml_conv_packed_params *p)
{
    const int direct = p->k_h == 1 && p->k_w == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                       p->pad_h == 0 && p->pad_w == 0;
    return direct ? 0 : tinyml_pad4(2 * p->layer.accum_depth);
}

tinyml_status tinyml_conv2d_packed_rows_s8(const tinyml_ctx *ctx, const tinyml_conv_packed_params *p,
                                           int32_t ring, const int8_t *rows, const int8_t *packed_filter,
                                           int32_t oy0, int32_t oy1, int8_t *output)
{
    const int32_t k = p->layer.accum_depth, oc = p->layer.output_depth;
    if (k != p->k_h * p->k_w * p->in_c || p->stride_h <= 0 || p->stride_w <= 0 || p->dilation_h <= 0 ||
        p->dilation_w <= 0 || ring <= 0 || oy0 < 0 || oy1 > p->out_h || oy0 > oy1) {
        return TINYML_ERROR_ARG;
    }
    const int32_t need = tinyml_conv2d_packed_s8_scratch_size(p);
    TINYML_SCRATCH_CHECK(ctx, need);
    if (need == 0) {
        /* 1x1, stride 1, no padding: each output row is a matrix product over its pixels. */
        if (ring >= p->in_h) {
            return tinyml_fc_s8(&p->layer, (oy1 - oy0) * p->out_w, input_row(p, rows, ring, oy0), packed_filter,
                                output);
        }
        for (int32_t oy = oy0; oy < oy1; ++oy) {
            const tinyml_status st = tinyml_fc_s8(&p->layer, p->out_w, input_row(p, rows, ring, oy), packed_filter,
                                                  output + (size_t)(oy - oy0) * p->out_w * oc);
            if (st != TINYML_OK) {
                return st;
            }
        }
        return TINYML_OK;
    }
    int8_t *scratch = ctx ? (int8_t *)ctx->buf : NULL;
    if (!scratch) {
        return TINYML_ERROR_ARG;
    }
    const int32_t first = oy0 * p->out_w, pixels = (oy1 - oy0) * p->out_w;
    for (int32_t px = 0; px < pixels; px += 2) {
        const int32_t n = pixels - px >= 2 ? 2 : 1;
        for (int32_t u = 0; u < n; ++u) {
            const int32_t q = first + px + u;
            im2col_pixel(p, rows, ring, q / p->out_w, q % p->out_w, scratch + u * k);
        }
        /* Both windows are copied before any output byte is written, so the
         * output may overlap the input as the planner's row rule allows. */
        const tinyml_status st = tinyml_fc_s8(&p->layer, n, scratch, packed_filter, output + (size_t)px * oc);
        if (st != TINYML_OK) {
            return st;
        }
    }
    return TINYML_OK;
}

tinyml_status tinyml_conv2d_packed_s8(const tinyml_ctx *ctx, const tinyml_conv_packed_params *p, int32_t batches,
                                      const int8_t *input, const int8_t *packed_filter, int8_t *output)
{
    if (batches < 0) {
        return TINYML_ERROR_ARG;
    }
    const size_t in_size = (size_t)p->in_h * p->in_w * p->in_c;
    const size_t out_size = (size_t)p->out_h * p->out_w * p->layer.output_depth;
    for (int32_t b = 0; b < batches; ++b) {
        const tinyml_status st = tinyml_conv2d_packed_rows_s8(ctx, p, p->in_h, input + b * in_size, packed_filter,
                                                              0, p->out_h, output + b * out_size);
        if (st != TINYML_OK) {
            return st;
        }
    }
    return TINYML_OK;
}
