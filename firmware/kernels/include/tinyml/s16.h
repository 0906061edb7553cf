/* tinyml kernels: 16x8 group (int16 activations with zero point 0, int8
 * weights, int64 bias), as TensorFlow Lite's converter writes them with
 * OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8.
 *
 * One function per op, named tinyml_<op>_s16, with the argument order of the
 * int8 kernels (tinyml/kernels.h) and their parameter structs where the
 * arithmetic is the same. Every kernel reproduces TensorFlow Lite's reference
 * int16 kernel of the same op byte for byte (tests/test_ops_16x8.py).
 */
#ifndef TINYML_S16_H
#define TINYML_S16_H

#include "tinyml/common.h"
#include "tinyml/conv.h"
#include "tinyml/elementwise.h"
#include "tinyml/matmul.h"
#include "tinyml/reduce.h"

/* x * multiplier * 2^(shift - 31) for a 64-bit accumulator: the multiplier is
 * rounded to 16 bits ((m + 2^15) >> 16, 0x7FFF from 0x7FFF0000 up), then one
 * rounding shift: (x * m16 + 2^(14 - shift)) >> (15 - shift). -31 <= shift <= 7,
 * |x| < 2^47. TFLite: MultiplyByQuantizedMultiplier(int64_t x, int32_t, int)
 * (the same in single- and double-rounding builds). */
static inline int32_t tinyml_requantize_s64(int64_t x, int32_t multiplier, int32_t shift)
{
    const int64_t reduced = multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF;
    const int32_t total = 15 - shift;
    return (int32_t)((x * reduced + ((int64_t)1 << (total - 1))) >> total);
}

/* CONV_2D 16x8 (one group): output[b][y][x][o] = clamp(requant_s64(bias[o] +
 * sum_{ky,kx,i valid} filter[o][ky][kx][i] * input[b][y*sh - ph + ky*dh][x*sw -
 * pw + kx*dw][i], o)), accumulated in int64. params: input/output offsets must be
 * 0 (16x8 zero points), depth_multiplier unused. bias (int64) may be NULL.
 * Matches TFLite reference_integer_ops::ConvPerChannel (int16 input, int64 bias). */
tinyml_status tinyml_conv2d_s16(const tinyml_conv_params *params, const tinyml_per_channel_quant *quant,
                                const tinyml_dims *input_dims, const int16_t *input,
                                const tinyml_dims *filter_dims, const int8_t *filter,
                                const int64_t *bias, const tinyml_dims *output_dims, int16_t *output);

/* TRANSPOSE_CONV 16x8: tinyml_transpose_conv_s8's gather (conv.h) on an int16 input, int8
 * per-channel weights and int64 bias (may be NULL), int64 sums, requant_s64, offsets 0, clamp to
 * the activation range. Matches TFLite reference_integer_ops::TransposeConv (int16 input, int64
 * bias; it scatters into an int64 buffer of the output, the same sums in another order) and
 * tflite_micro's transpose_conv.cc int16 path; no scratch; in transpose_conv.c. */
tinyml_status tinyml_transpose_conv_s16(const tinyml_conv_params *params, const tinyml_per_channel_quant *quant,
                                        const tinyml_dims *input_dims, const int16_t *input,
                                        const tinyml_dims *filter_dims, const int8_t *filter,
                                        const int64_t *bias, const tinyml_dims *output_dims, int16_t *output);

/* DEPTHWISE_CONV_2D 16x8: output channel o = i * depth_multiplier + m reads
 * input channel i; filter dims (1, kh, kw, output.c); int64 accumulation and
 * requant_s64 as tinyml_conv2d_s16. Matches TFLite
 * reference_integer_ops::DepthwiseConvPerChannel (int16 input, int64 bias). */
tinyml_status tinyml_depthwise_conv2d_s16(const tinyml_conv_params *params,
                                          const tinyml_per_channel_quant *quant,
                                          const tinyml_dims *input_dims, const int16_t *input,
                                          const tinyml_dims *filter_dims, const int8_t *filter,
                                          const int64_t *bias, const tinyml_dims *output_dims,
                                          int16_t *output);

/* FULLY_CONNECTED 16x8: for each of `batches` rows of accum_depth inputs,
 * acc = bias[o] + sum_d filter[o][d] * x[d] in int64, filter row-major
 * [output_depth][accum_depth] (not packed); y[o] = clamp(requant(acc, o)) with
 * TINYML_SINGLE_ROUNDING=1: tinyml_requantize_single(sat32(acc)) (TensorFlow
 * 2.21's reference, measured), =0: tinyml_requantize_s64(acc) (tflite_micro);
 * per-tensor models repeat one (multiplier, shift). bias may be NULL.
 * Matches TFLite reference_integer_ops::FullyConnected (int16 input, int64 bias). */
typedef struct {
    int32_t accum_depth;
    int32_t output_depth;
    const int32_t *multiplier;     /* [output_depth] */
    const int32_t *shift;          /* [output_depth] */
    tinyml_activation activation;
} tinyml_fc_s16_params;

tinyml_status tinyml_fc_s16(const tinyml_fc_s16_params *params, int32_t batches, const int16_t *input,
                            const int8_t *filter, const int64_t *bias, int16_t *output);

/* BATCH_MATMUL 16x8 (int16 x int16 -> int16, both operands activations or constants):
 * out[b][i][j] = clamp(requant_s64(sum_k (L[b][i][k] + lhs_offset) * (R[b][k][j] + rhs_offset))
 * + output_offset), the sum in int64 (offsets 0 in 16x8 models; depth < 2^17 keeps |sum| < 2^47),
 * dims and operand layouts as tinyml_batch_matmul_s8 (adj_x / adj_y, broadcast batch strides);
 * params->double_rounding is unused. No scratch; output must not overlap either operand.
 * Matches TFLite reference_ops::BatchMatMul<int16_t, int64_t> (batch_matmul.cc EvalInt16; the
 * same in tflite_micro). */
tinyml_status tinyml_batch_matmul_s16(const tinyml_matmul_params *params, const tinyml_matmul_dims *dims,
                                      const int16_t *lhs, const int16_t *rhs, int16_t *output);

/* AVERAGE_POOL_2D 16x8: y = clamp(round_half_away(sum / count)) over the
 * window taps inside the input (count = their number), int32 sum. Matches TFLite
 * reference_integer_ops::AveragePool (int16). */
tinyml_status tinyml_avg_pool_s16(const tinyml_pool_params *params, const tinyml_dims *input_dims,
                                  const int16_t *input, const tinyml_dims *output_dims, int16_t *output);

/* MAX_POOL_2D 16x8: y = clamp(max of the window taps inside the input).
 * Matches TFLite reference_integer_ops::MaxPool (int16). */
tinyml_status tinyml_max_pool_s16(const tinyml_pool_params *params, const tinyml_dims *input_dims,
                                  const int16_t *input, const tinyml_dims *output_dims, int16_t *output);

/* PAD / PADV2 16x8 (up to 4-D, input as n,h,w,c): output element = the input
 * element it maps to, else pad_value (0: the int16 zero point). The output does
 * not overlap the input. Matches TFLite reference_ops::Pad (int16). */
tinyml_status tinyml_pad_s16(const tinyml_pad_params *params, const tinyml_dims *input_dims,
                             const int16_t *input, int16_t *output);

/* ADD / SUB 16x8, general (non power-of-two) scales: tinyml_add_s8's arithmetic
 * on int16 operands (left_shift 15, double rounding), clamp to the activation.
 * Matches TFLite add.cc / sub.cc for int16 with pot_scale_int16 = false. */
tinyml_status tinyml_add_s16(const tinyml_add_params *params, const tinyml_broadcast *shape,
                             const int16_t *input1, const int16_t *input2, int16_t *output);

/* SQUARED_DIFFERENCE 16x8: tinyml_squared_difference_s8's arithmetic on int16 operands with
 * left_shift 0 (a = requant_dr(x1, input1), b = requant_dr(x2, input2), y = clamp(requant_dr(
 * (a - b)^2, output))), zero points 0, int16 clamp. Matches tflite_micro's squared_difference.cc
 * int16 path (TensorFlow 2.21's TFLite has no int16 SQUARED_DIFFERENCE). */
tinyml_status tinyml_squared_difference_s16(const tinyml_add_params *params, const tinyml_broadcast *shape,
                                            const int16_t *input1, const int16_t *input2, int16_t *output);

/* MAXIMUM / MINIMUM 16x8: the larger / smaller raw int16 value per element, broadcasting (no
 * rescale). SELECT_V2 16x8: cond ? x : y on int16 values, broadcasting all three. Each element is
 * read before the output element at its index is written (inputs of the output's shape may share
 * its bytes). Match TFLite maximum_minimum.cc and reference_ops::BroadcastSelect5DSlow (int16);
 * in compare.c beside the int8 variants. */
tinyml_status tinyml_maximum_s16(const tinyml_broadcast *shape, const int16_t *input1, const int16_t *input2,
                                 int16_t *output);
tinyml_status tinyml_minimum_s16(const tinyml_broadcast *shape, const int16_t *input1, const int16_t *input2,
                                 int16_t *output);
tinyml_status tinyml_select_s16(const tinyml_broadcast3 *shape, const uint8_t *condition,
                                const int16_t *input_x, const int16_t *input_y, int16_t *output);

/* PRELU 16x8: tinyml_prelu_s8's arithmetic on an int16 input (zero point 0) and an int8 alpha
 * (any zero point), int16 clamp; multipliers from double scale quotients. Matches tflite_micro's
 * prelu.cc int16 path (reference_ops::BroadcastPrelu4DSlow with int16 input, int8 alpha; its
 * PreluPrepare requires int8 alpha for int16 output); in compare.c. */
tinyml_status tinyml_prelu_s16(const tinyml_prelu_params *params, const tinyml_broadcast *shape,
                               const int16_t *input, const int8_t *alpha, int16_t *output);

/* MUL 16x8: y = clamp(requant((x1 + off1) * (x2 + off2), output) + output_offset),
 * tinyml_requantize (config.h's rounding). Matches TFLite reference_integer_ops::Mul (int16). */
tinyml_status tinyml_mul_s16(const tinyml_mul_params *params, const tinyml_broadcast *shape,
                             const int16_t *input1, const int16_t *input2, int16_t *output);

/* MEAN 16x8: tinyml_mean_s8's arithmetic on int16 inputs, clamp to int16.
 * Matches TFLite reference_ops::QuantizedMeanOrSum (int16). */
tinyml_status tinyml_mean_s16(const tinyml_mean_params *params, const tinyml_reduce_shape *shape,
                              const int16_t *input, int16_t *output);

/* Requantization int16 -> int8 / int16 (QUANTIZE with an integer input):
 * y = clamp(requant((x - input_zp), quant) + output_zp) with the output type's range.
 * Matches TFLite reference_ops::Requantize. Double rounding (quantize.cc's
 * MultiplyByQuantizedMultiplier in the TensorFlow 2.21 build) when double_rounding,
 * else tinyml_requantize. */
typedef struct {
    int32_t input_zp;
    int32_t output_zp;
    tinyml_quant quant;
    int32_t double_rounding;
} tinyml_requant_params;

tinyml_status tinyml_requant_s16_s8(const tinyml_requant_params *params, int32_t size, const int16_t *input,
                                    int8_t *output);
tinyml_status tinyml_requant_s16_s16(const tinyml_requant_params *params, int32_t size, const int16_t *input,
                                     int16_t *output);

/* QUANTIZE float -> int16: y = clamp(round_half_away(x / scale) + zero_point)
 * in float32, as TFLite reference_ops::AffineQuantize. */
tinyml_status tinyml_quantize_f32_s16(float scale, int32_t zero_point, int32_t size, const float *input,
                                      int16_t *output);

/* DEQUANTIZE int16 -> float: y = scale * (x - zero_point) in float32, as TFLite
 * reference_ops::Dequantize. */
tinyml_status tinyml_dequantize_s16_f32(float scale, int32_t zero_point, int32_t size, const int16_t *input,
                                        float *output);

/* RELU / RELU6 / RELU_N1_TO_1 16x8:
 * y = clamp(output_offset + requant_dr(x + input_offset, quant), activation).
 * Matches TFLite ReluX for int16 (activations.cc QuantizedReluX). */
typedef struct {
    int32_t input_offset;      /* -(input zero point) */
    int32_t output_offset;     /* output zero point */
    tinyml_quant quant;        /* input_scale / output_scale */
    tinyml_activation activation;
} tinyml_relu_params;

tinyml_status tinyml_relu_s16(const tinyml_relu_params *params, int32_t size, const int16_t *input,
                              int16_t *output);

/* LOGISTIC / TANH 16x8 (output scale 1/32768, zero points 0). v = (x * input_multiplier
 * + round) >> input_shift (round = half of 2^input_shift) puts x on the table's 1/(3*4096)
 * scale; |v| is split into a table index and a fraction, table[i] and table[i+1] (uint16,
 * 65536 * sigmoid(i/24)) are interpolated linearly in uint32, beyond the table the result
 * saturates; negative inputs use the symmetry sigmoid(-x) = 1 - sigmoid(x). LOGISTIC: 9
 * fraction bits, result >> 10. TANH (tanh(x) = 2 sigmoid(2x) - 1): 8 fraction bits, the
 * table recentred by 2^23, result >> 8. Matches TFLite reference_integer_ops::Logistic and
 * reference_integer_ops::Tanh (int16 overloads) with activations.cc's int16 Prepare. */
typedef struct {
    int32_t input_multiplier;  /* <= 32767 */
    int32_t input_shift;       /* 0..31, right shift */
    const uint16_t *table;     /* 256 entries */
} tinyml_sigmoid_s16_params;

tinyml_status tinyml_logistic_s16(const tinyml_sigmoid_s16_params *params, int32_t size, const int16_t *input,
                                  int16_t *output);
tinyml_status tinyml_tanh_s16(const tinyml_sigmoid_s16_params *params, int32_t size, const int16_t *input,
                              int16_t *output);

/* SOFTMAX 16x8 (output scale 1/32768, zero points 0), per row of `depth`:
 * d = requant_dr(x - row max, input_multiplier, input_shift) + 32767, clamped to int16;
 * e = lut16(d, exp_lut) (exp over [-10, 0]); sum = sum of e (int32); h = clz(sum);
 * s = ((sum << (h - 1)) + 2^13) >> 14 (64-bit); r = lut16(clamp(s - 3 * 2^15),
 * one_over_one_plus_x_lut); y = clamp((e * r + 2^(30 - h)) >> (31 - h), 0, 32767).
 * lut16(v, t) = t[256 + (v >> 7)] + ((slope * (v & 127) + 64) >> 7) with slope the int16
 * difference of the next entry (LUTLookup). The exps are cached in the output row; each
 * element is read before its slot is written, so output may be input itself (no other
 * overlap). depth * 32767 < 2^31 (checked by the generator).
 * Matches TFLite reference_ops::SoftmaxInt16 with activations.cc's int16 Prepare
 * (QuantizeMultiplier(input_scale * beta / (10 / 65535)), LUTPopulate<int16_t> tables). */
typedef struct {
    int32_t input_multiplier;
    int32_t input_shift;                 /* QuantizeMultiplier exponent (left when > 0) */
    const int16_t *exp_lut;              /* 513 entries */
    const int16_t *one_over_one_plus_x_lut; /* 513 entries, float32 LUTPopulate (tflite_micro) */
    const int16_t *one_over_one_plus_x_lut_tflite; /* the same computed in double: TensorFlow 2.21's
                                                    * reference, read when TINYML_SINGLE_ROUNDING */
} tinyml_softmax_s16_params;

tinyml_status tinyml_softmax_s16(const tinyml_softmax_s16_params *params, int32_t rows, int32_t depth,
                                 const int16_t *input, int16_t *output);

/* LEAKY_RELU 16x8: x >= 0: y = requant_dr(x, identity); x < 0: y = +-requant_dr(x, alpha)
 * (negated when alpha_negative), clamped to int16; zero points 0. Matches TFLite
 * reference_ops::QuantizeLeakyRelu (int16) with LeakyReluPrepare's float32 multipliers.
 * In-place safe. */
typedef struct {
    tinyml_quant identity;      /* input_scale / output_scale */
    tinyml_quant alpha;         /* |input_scale * alpha / output_scale| */
    int32_t alpha_negative;     /* 1 when alpha < 0 */
} tinyml_leaky_relu_s16_params;

tinyml_status tinyml_leaky_relu_s16(const tinyml_leaky_relu_s16_params *params, int32_t size,
                                    const int16_t *input, int16_t *output);

/* ABS 16x8: y = clamp(|x|) without a rescale (quant NULL: equal scales), else
 * clamp(requant_dr(|x|, *quant)); zero points 0. Matches TFLite elementwise.cc
 * AbsEvalQuantized<int16_t> (and tflite_micro's). In-place safe. */
tinyml_status tinyml_abs_s16(const tinyml_quant *quant, int32_t size, const int16_t *input, int16_t *output);

/* Any int16 -> int16 function of one element given as TFLite's 513-entry int16 table
 * (LUTPopulate<int16_t>, computed by the generator: codegen.luts.lut_int16):
 * y = table[256 + (x >> 7)] + ((slope * (x & 127) + 64) >> 7), slope the int16 difference
 * of the next entry. Matches TFLite reference_integer_ops::LookupTable (int16, LUTLookup),
 * which the int16 RSQRT (elementwise.cc) and GELU (gelu.cc) kernels run. In-place safe. */
tinyml_status tinyml_lut16_s16(const int16_t *table, int32_t size, const int16_t *input, int16_t *output);

#endif
