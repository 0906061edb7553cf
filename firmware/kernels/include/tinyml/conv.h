/* tinyml kernels: convolution group (int8).
 *
 * CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, AVERAGE_POOL_2D, MAX_POOL_2D, PAD / PADV2,
 * MIRROR_PAD, SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND,
 * all NHWC. Every kernel reproduces TensorFlow Lite's reference integer
 * kernel of the same name byte for byte; no kernel allocates memory.
 */
#ifndef TINYML_CONV_H
#define TINYML_CONV_H

#include "tinyml/common.h"
#include "tinyml/fc.h"

/* Geometry and zero points of a (depthwise) convolution.
 * pad_h / pad_w are the top / left padding TFLite computes for the op
 * (ComputePaddingHeightWidth); taps outside the input contribute nothing. */
typedef struct {
    int16_t input_offset;      /* -(input zero point) */
    int16_t output_offset;     /* output zero point */
    int16_t stride_h, stride_w;
    int16_t dilation_h, dilation_w;
    int16_t pad_h, pad_w;
    int16_t depth_multiplier;  /* depthwise only: output channels per input channel */
    tinyml_activation activation;
    uint8_t fast_requant;      /* depthwise only: 1 when the generator proved
                                * tinyml_requantize_bounded's preconditions for every
                                * output (same bytes, fewer instructions) */
    uint8_t weights_grouped;   /* depthwise with multiplier 1 only: 1 when the filter is
                                * in the grouped layout (tinyml_depthwise_conv2d_s8) */
} tinyml_conv_params;

/* Requantization of the convolution kernels: x * multiplier * 2^(shift-31).
 *
 * TensorFlow Lite's convolution reference kernels round twice (gemmlowp:
 * rounding doubling high multiply, then rounding shift right with ties away
 * from zero) in both the TensorFlow 2.21 pip TFLite (measured: its
 * CONV_2D/DEPTHWISE_CONV_2D outputs match double and not single rounding,
 * while its FULLY_CONNECTED matches single rounding) and the tflite_micro
 * package: tinyml_requantize_double_fast (tinyml/common.h). Define
 * TINYML_CONV_SINGLE_ROUNDING=1 to follow tinyml_requantize (tinyml/config.h's
 * flavour) instead. */
#ifndef TINYML_CONV_SINGLE_ROUNDING
#define TINYML_CONV_SINGLE_ROUNDING 0
#endif

static inline int32_t tinyml_conv_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
#if TINYML_CONV_SINGLE_ROUNDING
    return tinyml_requantize(x, multiplier, shift);
#else
    return tinyml_requantize_double_fast(x, multiplier, shift);
#endif
}

/* Taps t in [*begin, *end) of a k-tap window starting at input coordinate
 * origin with dilation dil land inside [0, size): 0 <= origin + t*dil < size.
 * Shared by the kernels of this group; *begin == *end when none do. */
static inline void tinyml_tap_range(int32_t origin, int32_t dil, int32_t k, int32_t size,
                                    int32_t *begin, int32_t *end)
{
    const int32_t b = origin >= 0 ? 0 : (-origin + dil - 1) / dil;
    const int32_t last = size - 1 - origin;     /* largest t*dil still inside */
    int32_t e = last < 0 ? 0 : TINYML_MIN(k, last / dil + 1);
    if (e < b) {
        e = b;
    }
    *begin = b;
    *end = e;
}

/* CONV_2D (also grouped: groups = input.c / filter.c).
 *
 * output[b][y][x][o] = clamp(requant(bias[o] + sum_{ky,kx,i valid}
 *     filter[o][ky][kx][i] * (input[b][y*sh - ph + ky*dh][x*sw - pw + kx*dw][g*filter.c + i]
 *                             + input_offset), o) + output_offset)
 * with g = o / (output.c / groups); "valid" means the input row and column
 * are inside the image. filter dims are (output.c, kh, kw, filter.c).
 * bias may be NULL. kernel_sums, if not NULL, holds per output channel the
 * sum of all filter weights (lets interior pixels skip recomputing it); it
 * never changes the result. Matches TFLite reference ConvPerChannel (int8
 * weights with zero point 0; per-tensor models repeat one quant pair). */
tinyml_status tinyml_conv2d_s8(const tinyml_conv_params *params, const tinyml_per_channel_quant *quant,
                               const tinyml_dims *input_dims, const int8_t *input,
                               const tinyml_dims *filter_dims, const int8_t *filter,
                               const int32_t *bias, const int32_t *kernel_sums,
                               const tinyml_dims *output_dims, int8_t *output);

/* CONV_2D with one group, the generator's form: the filter packed as a
 * [out_c][k_h * k_w * in_c] FULLY_CONNECTED filter (tinyml/fc.h), the input
 * offset folded into the bias (bias + input_offset * sum of the channel's
 * weights), requantization with double rounding (layer.double_rounding = 1, as
 * tinyml_conv_requantize). Output pixels run in raster order two at a time:
 * 1x1 / stride 1 / unpadded convolutions are one matrix product over the
 * pixels; others copy the two pixels' windows into `scratch` (out-of-image taps
 * hold pad_value = the input zero point, so they add 0) and run the same product.
 * Same bytes as tinyml_conv2d_s8. Scratch: ctx holds
 * tinyml_conv2d_packed_s8_scratch_size(params) bytes (0 for the direct form). */
typedef struct {
    int16_t in_h, in_w, in_c;  /* int16 (flash): the generator checks every field fits */
    int16_t out_h, out_w;
    int16_t k_h, k_w;
    int16_t stride_h, stride_w;
    int16_t dilation_h, dilation_w;
    int16_t pad_h, pad_w;
    int16_t pad_value;         /* input zero point */
    tinyml_fc_layer layer;     /* accum_depth = k_h * k_w * in_c, output_depth = out_c */
} tinyml_conv_packed_params;

/* Scratch bytes of tinyml_conv2d_packed_s8 / _rows_s8: two im2col windows
 * (2 * k_h * k_w * in_c, rounded up to 4), or 0 for 1x1 / stride 1 / unpadded. */
int32_t tinyml_conv2d_packed_s8_scratch_size(const tinyml_conv_packed_params *params);

tinyml_status tinyml_conv2d_packed_s8(const tinyml_ctx *ctx, const tinyml_conv_packed_params *params,
                                      int32_t batches, const int8_t *input, const int8_t *packed_filter,
                                      int8_t *output);

/* Output rows [oy0, oy1) of one image of tinyml_conv2d_packed_s8, for kernels
 * that stream rows: input row iy lives at rows + (iy % ring) * in_w * in_c (ring
 * = in_h: a whole image; a smaller ring: a rolling buffer that must hold every
 * row the requested output rows read), output row oy is written at output +
 * (oy - oy0) * out_w * out_c. Same bytes as the whole-image call; same scratch. */
tinyml_status tinyml_conv2d_packed_rows_s8(const tinyml_ctx *ctx, const tinyml_conv_packed_params *params,
                                           int32_t ring, const int8_t *rows, const int8_t *packed_filter,
                                           int32_t oy0, int32_t oy1, int8_t *output);

/* DEPTHWISE_CONV_2D, any depth multiplier M = output.c / input.c.
 *
 * output[b][y][x][c*M + m] = clamp(requant(bias[c*M+m] + sum_{ky,kx valid}
 *     filter[0][ky][kx][c*M + m] * (input[b][iy][ix][c] + input_offset), c*M+m)
 *     + output_offset), iy/ix as for CONV_2D.
 * filter dims are (1, kh, kw, output.c). bias may be NULL.
 * Matches TFLite reference DepthwiseConvPerChannel.
 * Filter layout: TFLite's [kh][kw][output.c], or, when params->weights_grouped
 * (multiplier 1; the generator re-lays the bytes at build time), the same bytes
 * grouped by four channels so that one group's taps are contiguous: with
 * K = kh * kw and C4 = output.c rounded down to a multiple of 4, tap t of
 * channel c < C4 is at (c / 4) * 4K + 4t + c % 4, and of channel c >= C4 at
 * C4 * K + t * (output.c - C4) + (c - C4). */
tinyml_status tinyml_depthwise_conv2d_s8(const tinyml_conv_params *params,
                                         const tinyml_per_channel_quant *quant,
                                         const tinyml_dims *input_dims, const int8_t *input,
                                         const tinyml_dims *filter_dims, const int8_t *filter,
                                         const int32_t *bias,
                                         const tinyml_dims *output_dims, int8_t *output);

/* TRANSPOSE_CONV (int8 activations, int8 per-channel weights, optional int32 bias).
 *
 * output[b][oy][ox][o] = clamp(requant(bias[o] + sum_{ky,kx,i}
 *     filter[o][ky][kx][i] * (input[b][iy][ix][i] + input_offset), o) + output_offset)
 * over the taps with iy * stride_h - pad_h + ky == oy and ix * stride_w - pad_w
 * + kx == ox, 0 <= iy < input.h, 0 <= ix < input.w (the inputs whose scatter
 * reaches the output pixel). filter dims are (output.c, kh, kw, input.c);
 * bias may be NULL; dilation and depth_multiplier are unused (1).
 * requant is tinyml_conv_requantize (double rounding, as measured against the
 * reference). Matches TFLite reference_integer_ops::TransposeConv, which
 * scatters every input pixel into an int32 buffer of the whole output and then
 * requantizes; this kernel gathers each output pixel's taps instead (the same
 * int32 sums in another order), so it needs no scratch and writes the output
 * rows top to bottom: output row oy reads only input rows
 * >= ceil((oy + pad_h - kh + 1) / stride_h) (the planner's Overlap fact). */
tinyml_status tinyml_transpose_conv_s8(const tinyml_conv_params *params,
                                       const tinyml_per_channel_quant *quant,
                                       const tinyml_dims *input_dims, const int8_t *input,
                                       const tinyml_dims *filter_dims, const int8_t *filter,
                                       const int32_t *bias,
                                       const tinyml_dims *output_dims, int8_t *output);

/* Window geometry of a pooling op (no dilation). */
typedef struct {
    int32_t filter_h, filter_w;
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w;
    tinyml_activation activation;
} tinyml_pool_params;

/* AVERAGE_POOL_2D: per channel, s = sum of the n in-image window values,
 * out = clamp(s > 0 ? (s + n/2) / n : (s - n/2) / n) with C division
 * (truncation). Input and output share scale and zero point. Returns
 * TINYML_ERROR_ARG if a window holds no input pixel (TFLite fails too).
 * Matches TFLite reference_integer_ops::AveragePool. */
tinyml_status tinyml_avg_pool_s8(const tinyml_pool_params *params,
                                 const tinyml_dims *input_dims, const int8_t *input,
                                 const tinyml_dims *output_dims, int8_t *output);

/* MAX_POOL_2D: out = clamp(max(-128, max of the in-image window values)).
 * Matches TFLite reference_integer_ops::MaxPool. */
tinyml_status tinyml_max_pool_s8(const tinyml_pool_params *params,
                                 const tinyml_dims *input_dims, const int8_t *input,
                                 const tinyml_dims *output_dims, int8_t *output);

/* PAD / PADV2 on up to 4-D NHWC tensors: output = input surrounded by
 * pad_before[d] / pad_after[d] elements of pad_value along each dimension d
 * (n, h, w, c). output dims = input dims + before + after.
 * Matches TFLite reference Pad (int8). */
typedef struct {
    int32_t before[4];
    int32_t after[4];
    int8_t pad_value;
} tinyml_pad_params;

tinyml_status tinyml_pad_s8(const tinyml_pad_params *params,
                            const tinyml_dims *input_dims, const int8_t *input,
                            int8_t *output);

/* MIRROR_PAD on up to 4-D tensors of elem_bytes-wide elements: output element
 * (o0, o1, o2, o3) is input element offset[0][o0] + offset[1][o1] +
 * offset[2][o2] + offset[3][o3] (element offsets), the generator's tables
 * holding, per axis, the mirrored source index times the input stride
 * (REFLECT: -1 -> 1; SYMMETRIC: -1 -> 0; likewise past the end). Matches
 * TFLite reference MirrorPad (mirror_pad.cc, any type). Output must not
 * overlap input. */
typedef struct {
    int32_t dims[4];             /* output extent */
    const int32_t *offset[4];    /* dims[k] input element offsets per axis */
} tinyml_mirror_pad_params;

tinyml_status tinyml_mirror_pad(const tinyml_mirror_pad_params *params, int32_t elem_bytes,
                                const void *input, void *output);

/* SPACE_TO_BATCH_ND (int8, NHWC, block [bh, bw]):
 *   output[(i * bw + j) * N + b][h][w][c] = input[b][h * bh + i - pad_top][w * bw + j - pad_left][c]
 * or pad_value (the output zero point) where that is outside the input.
 * Matches TFLite reference_ops::SpaceToBatchND. */
typedef struct {
    int32_t block_h, block_w;
    int32_t pad_top, pad_left;
    int8_t pad_value;
} tinyml_space_to_batch_params;

tinyml_status tinyml_space_to_batch_s8(const tinyml_space_to_batch_params *params,
                                       const tinyml_dims *input_dims, const int8_t *input,
                                       const tinyml_dims *output_dims, int8_t *output);

/* BATCH_TO_SPACE_ND (int8, NHWC, block [bh, bw]):
 *   output[b][h][w][c] = input[(((h + crop_top) % bh) * bw + (w + crop_left) % bw) * N_out + b]
 *                             [(h + crop_top) / bh][(w + crop_left) / bw][c]
 * Matches TFLite reference_ops::BatchToSpaceND. */
typedef struct {
    int32_t block_h, block_w;
    int32_t crop_top, crop_left;
} tinyml_batch_to_space_params;

tinyml_status tinyml_batch_to_space_s8(const tinyml_batch_to_space_params *params,
                                       const tinyml_dims *input_dims, const int8_t *input,
                                       const tinyml_dims *output_dims, int8_t *output);

/* a0..a3 = bias[c..c+3], or 0 when the layer has no bias (four channels' accumulators
 * at the start of a depthwise window). A macro: the accumulators stay in registers. */
#define TINYML_BIAS4(bias, c, a0, a1, a2, a3)                                    \
    do {                                                                         \
        if (bias) {                                                              \
            a0 = (bias)[(c)];                                                    \
            a1 = (bias)[(c) + 1];                                                \
            a2 = (bias)[(c) + 2];                                                \
            a3 = (bias)[(c) + 3];                                                \
        }                                                                        \
    } while (0)

#endif /* TINYML_CONV_H */
