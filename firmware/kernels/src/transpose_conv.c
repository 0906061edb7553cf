/* tinyml kernels: TRANSPOSE_CONV (int8 and 16x8, per-channel). See conv.h and s16.h. */
#include "tinyml/conv.h"
#include "tinyml/s16.h"

/* First tap k (0 <= k < kk) with (o + pad - k) divisible by stride and the
 * quotient inside [0, in); the taps then step by `stride`. Returns kk if none. */
static int32_t first_tap(int32_t o, int32_t pad, int32_t stride, int32_t in, int32_t kk)
{
    const int32_t t = o + pad;                  /* o + pad - k = i * stride */
    /* smallest k >= 0 with t - k a multiple of stride, then skip i >= in */
    int32_t k = t >= 0 ? t % stride : (stride - (-t % stride)) % stride;
    while (k < kk && (t - k) / stride >= in) {
        k += stride;
    }
    return k;
}

/* One gather body for both types: int8 (int32 sums, tinyml_conv_requantize) and 16x8 (int16
   input, int64 sums and bias, tinyml_requantize_s64; offsets 0). */
#define TINYML_TRANSPOSE_CONV(name, in_t, bias_t, acc_t, requant)                                      \
    tinyml_status tinyml_##name(const tinyml_conv_params *params, const tinyml_per_channel_quant *quant, \
                                const tinyml_dims *input_dims, const in_t *input,                      \
                                const tinyml_dims *filter_dims, const int8_t *filter, const bias_t *bias, \
                                const tinyml_dims *output_dims, in_t *output)                          \
    {                                                                                                  \
        if (!params || !quant || !input_dims || !input || !filter_dims || !filter || !output_dims ||   \
            !output || params->stride_h < 1 || params->stride_w < 1 ||                                 \
            filter_dims->n != output_dims->c || filter_dims->c != input_dims->c ||                     \
            input_dims->n != output_dims->n) {                                                         \
            return TINYML_ERROR_ARG;                                                                   \
        }                                                                                              \
        const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;                \
        const int32_t kh = filter_dims->h, kw = filter_dims->w;                                        \
        const int32_t out_h = output_dims->h, out_w = output_dims->w, out_c = output_dims->c;          \
        const int32_t sh = params->stride_h, sw = params->stride_w;                                    \
        const int32_t in_off = params->input_offset;                                                   \
        in_t *dst = output;                                                                            \
        for (int32_t b = 0; b < input_dims->n; ++b) {                                                  \
            const in_t *image = input + (size_t)b * (size_t)in_h * (size_t)in_w * (size_t)in_c;        \
            for (int32_t oy = 0; oy < out_h; ++oy) {                                                   \
                const int32_t ky0 = first_tap(oy, params->pad_h, sh, in_h, kh);                        \
                for (int32_t ox = 0; ox < out_w; ++ox) {                                               \
                    const int32_t kx0 = first_tap(ox, params->pad_w, sw, in_w, kw);                    \
                    for (int32_t o = 0; o < out_c; ++o) {                                              \
                        acc_t acc = 0;                                                                 \
                        for (int32_t ky = ky0; ky < kh; ky += sh) {                                    \
                            const int32_t iy = (oy + params->pad_h - ky) / sh;                         \
                            if (iy < 0) {                                                              \
                                break;                  /* larger ky only lowers iy */                 \
                            }                                                                          \
                            for (int32_t kx = kx0; kx < kw; kx += sw) {                                \
                                const int32_t ix = (ox + params->pad_w - kx) / sw;                     \
                                if (ix < 0) {                                                          \
                                    break;                                                             \
                                }                                                                      \
                                const in_t *px = image + ((size_t)iy * (size_t)in_w + (size_t)ix)      \
                                                             * (size_t)in_c;                           \
                                const int8_t *w = filter + (((size_t)o * (size_t)kh + (size_t)ky)      \
                                                            * (size_t)kw + (size_t)kx) * (size_t)in_c; \
                                for (int32_t i = 0; i < in_c; ++i) {                                   \
                                    acc += ((int32_t)px[i] + in_off) * (int32_t)w[i];                  \
                                }                                                                      \
                            }                                                                          \
                        }                                                                              \
                        if (bias) {                                                                    \
                            acc += bias[o];                                                            \
                        }                                                                              \
                        int32_t v = requant(acc, quant->multiplier[o], quant->shift[o]);               \
                        v += params->output_offset;                                                    \
                        v = TINYML_CLAMP(v, params->activation.min, params->activation.max);           \
                        *dst++ = (in_t)v;                                                              \
                    }                                                                                  \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
        return TINYML_OK;                                                                              \
    }

TINYML_TRANSPOSE_CONV(transpose_conv_s8, int8_t, int32_t, int32_t, tinyml_conv_requantize)

TINYML_TRANSPOSE_CONV(transpose_conv_s16, int16_t, int64_t, int64_t, tinyml_requantize_s64)
