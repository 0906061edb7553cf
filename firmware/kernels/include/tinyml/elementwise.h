/* tinyml kernels: elementwise group (int8 binary ops with broadcasting,
 * table-driven unary ops, softmax). */
#ifndef TINYML_ELEMENTWISE_H
#define TINYML_ELEMENTWISE_H

#include "tinyml/common.h"

/* ADD, SUB, MUL, SQUARED_DIFFERENCE and SOFTMAX round twice in TensorFlow 2.21's
 * desktop reference kernels and in TFLM alike (only its ruy-backed matrix
 * products round once): they use tinyml_requantize_double (tinyml/common.h),
 * written requant_dr below. */

/* Broadcast geometry of a binary op, at most 4-D after the generator merged
 * contiguous dimensions. Output element (i0,i1,i2,i3) (row-major over dims)
 * reads input1[sum_k i_k * stride1[k]] and input2[sum_k i_k * stride2[k]];
 * a stride of 0 broadcasts that input along the dimension. */
typedef struct {
    int32_t dims[4];
    int32_t stride1[4];
    int32_t stride2[4];
} tinyml_broadcast;

/* Quantization of ADD / SUB / SQUARED_DIFFERENCE (TFLite's "general
 * rescaling" path): both inputs are shifted left by left_shift, rescaled to a
 * common scale (input1, input2), combined, then rescaled to the output. */
typedef struct {
    int32_t input1_offset;   /* -(input1 zero point) */
    int32_t input2_offset;   /* -(input2 zero point) */
    int32_t output_offset;   /* output zero point */
    int32_t left_shift;      /* 20 for ADD/SUB, 7 for SQUARED_DIFFERENCE */
    tinyml_quant input1;
    tinyml_quant input2;
    tinyml_quant output;
    tinyml_activation activation;
} tinyml_add_params;

/* Quantization of MUL: one requantization of the product. */
typedef struct {
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    tinyml_quant output;
    tinyml_activation activation;
} tinyml_mul_params;

/* a = requant_dr((x1 + off1) << left_shift, input1)
 * b = requant_dr((x2 + off2) << left_shift, input2)
 * y = clamp(requant_dr(a + b, output) + output_offset)
 * Matches TFLite reference_integer_ops::Add / BroadcastAdd6DSlow (int8).
 * SUB is this kernel with input2.multiplier negated (TFLite's op_sign). */
tinyml_status tinyml_add_s8(const tinyml_add_params *params, const tinyml_broadcast *shape,
                            const int8_t *input1, const int8_t *input2, int8_t *output);

/* a, b as in tinyml_add_s8 (left_shift 7); y = clamp(requant_dr((a - b)^2, output)
 * + output_offset). Matches TFLite SquaredDifference (int8). */
tinyml_status tinyml_squared_difference_s8(const tinyml_add_params *params, const tinyml_broadcast *shape,
                                           const int8_t *input1, const int8_t *input2, int8_t *output);

/* y = clamp(requant_dr((x1 + off1) * (x2 + off2), output) + output_offset).
 * Matches TFLite reference_integer_ops::Mul / BroadcastMul6DSlow (int8). */
tinyml_status tinyml_mul_s8(const tinyml_mul_params *params, const tinyml_broadcast *shape,
                            const int8_t *input1, const int8_t *input2, int8_t *output);

/* y[i] = table[x[i] + 128] for i < size: any int8 -> int8 function of one
 * element (RSQRT), with the table computed by the generator. In-place safe. */
tinyml_status tinyml_lut_s8(const int8_t *table, int32_t size, const int8_t *input, int8_t *output);

/* Softmax over rows of `depth` int8 values, int8 output (scale 1/256, zero
 * point -128). exp_table[k] is gemmlowp's exp_on_negative_values of the
 * rescaled difference -k (Q0.31), 0 where -k < diff_min; the rest is
 * TFLite reference_ops::Softmax's fixed-point reciprocal and rounding. */
tinyml_status tinyml_softmax_s8(const int32_t *exp_table, int32_t rows, int32_t depth,
                                const int8_t *input, int8_t *output);

/* One row of tinyml_softmax_s8 (also used by the fused attention kernel); y may
 * be x (the row is fully read before the first write). */
tinyml_status tinyml_softmax_row_s8(const int32_t *exp_table, int32_t depth, const int8_t *x, int8_t *y);

/* tinyml_softmax_s8 without the 1 KB table: each exp is computed as the
 * generator computes the table entry (the difference -k rescaled by
 * input_quant with double rounding into Q5.26, gemmlowp exp_on_negative_values;
 * 0 below diff_min), about 60 instructions per exp and two exps per element.
 * The generator picks it for short softmaxes (a classifier's output), where
 * the table costs more flash than the code. Same bytes as the table form. */
typedef struct {
    tinyml_quant input_quant;     /* beta * input_scale * 2^26, left shift >= 0 */
    int32_t diff_min;
} tinyml_softmax_params;

tinyml_status tinyml_softmax_exp_s8(const tinyml_softmax_params *params, int32_t rows, int32_t depth,
                                    const int8_t *input, int8_t *output);

/* LOG_SOFTMAX over rows of `depth` int8 values, int8 output (scale 16/256,
 * zero point 127), TFLite / TFLM reference_ops::LogSoftmax (int8). Per row,
 * with d = x - max(row):
 *   S = sum exp12[-d]          (Q12.19; exp12[k] = RoundingDivideByPOT(
 *                               exp_on_negative_values(MBQM(-k, input_quant)), 12),
 *                               0 where -k < diff_min: generator tables)
 *   L = ln(S) in Q5.26         (gemmlowp log_x_for_x_greater_than_or_equal_to_1)
 *   a = max(diff_min - 1, MBQM(L + INT32_MIN, reverse_quant))
 *   y = d > a ? clamp(RoundingDivideByPOT(MBQM(d, input_quant) - L, 22) + 127)
 *             : -128
 * MBQM is MultiplyByQuantizedMultiplier in the flavour TINYML_SINGLE_ROUNDING
 * selects (tinyml_requantize), and so is the table: exp12_single / exp12_double.
 * Each row is read in full before written: in place. */
typedef struct {
    tinyml_quant input_quant;     /* beta * input_scale * 2^26, left shift > 0 */
    tinyml_quant reverse_quant;   /* its inverse, shift <= 0 */
    int32_t diff_min;
    const int32_t *exp12_single;  /* 256 entries, for TINYML_SINGLE_ROUNDING 1 */
    const int32_t *exp12_double;  /* 256 entries, for TINYML_SINGLE_ROUNDING 0 */
} tinyml_log_softmax_params;

tinyml_status tinyml_log_softmax_s8(const tinyml_log_softmax_params *params, int32_t rows, int32_t depth,
                                    const int8_t *input, int8_t *output);

/* MAXIMUM / MINIMUM (int8, broadcasting): y = max(x1, x2) / min(x1, x2) on the
 * raw int8 values (input and output quantization are the same, nothing is
 * rescaled). Matches TFLite reference_ops::MaximumMinimumBroadcastSlow. */
tinyml_status tinyml_maximum_s8(const tinyml_broadcast *shape, const int8_t *input1, const int8_t *input2,
                                int8_t *output);
tinyml_status tinyml_minimum_s8(const tinyml_broadcast *shape, const int8_t *input1, const int8_t *input2,
                                int8_t *output);

/* Comparison of two int8 tensors with their own quantization, written as
 * bool bytes (0 or 1). Each input is rescaled as TFLite's ComparisonQuantized
 * does: v = requant_dr((x + offset) << left_shift, quant) with left_shift 8 and
 * quant = QuantizeMultiplierSmallerThanOneExp(the input's scale); then
 * y = v1 OP v2. Matches TFLite reference_ops::BroadcastComparison4DSlowWithScaling
 * (EQUAL, NOT_EQUAL, LESS, LESS_EQUAL, GREATER, GREATER_EQUAL). */
typedef enum {
    TINYML_CMP_EQUAL = 0,
    TINYML_CMP_NOT_EQUAL = 1,
    TINYML_CMP_LESS = 2,
    TINYML_CMP_LESS_EQUAL = 3,
    TINYML_CMP_GREATER = 4,
    TINYML_CMP_GREATER_EQUAL = 5
} tinyml_cmp_op;

typedef struct {
    int32_t op;              /* tinyml_cmp_op */
    int32_t input1_offset;   /* -(input1 zero point) */
    int32_t input2_offset;
    int32_t left_shift;      /* 8 */
    tinyml_quant input1;
    tinyml_quant input2;
} tinyml_compare_params;

tinyml_status tinyml_compare_s8(const tinyml_compare_params *params, const tinyml_broadcast *shape,
                                const int8_t *input1, const int8_t *input2, uint8_t *output);

/* Broadcast geometry of a three-operand op (SELECT_V2): like tinyml_broadcast,
 * one stride per operand (0 broadcasts it along that dimension). */
typedef struct {
    int32_t dims[4];
    int32_t stride_cond[4];
    int32_t stride_x[4];
    int32_t stride_y[4];
} tinyml_broadcast3;

/* SELECT_V2 (int8 values, bool condition, broadcasting): y = cond ? x : y_in,
 * raw bytes copied. Matches TFLite reference_ops::BroadcastSelect5DSlow. */
tinyml_status tinyml_select_s8(const tinyml_broadcast3 *shape, const uint8_t *condition,
                               const int8_t *input_x, const int8_t *input_y, int8_t *output);

/* PRELU (int8, alpha broadcast against the input):
 *   v = x + input_offset
 *   y = clamp(requant_dr(v, positive) + output_offset)                        if v >= 0
 *       clamp(requant_dr(v * (alpha + alpha_offset), negative) + output_offset) otherwise
 * with positive ~ input_scale / output_scale and negative ~ input_scale *
 * alpha_scale / output_scale (float32 products, as TFLite's PreluPrepare).
 * Matches TFLite reference_ops::BroadcastPrelu4DSlow (int8). */
typedef struct {
    int32_t input_offset;    /* -(input zero point) */
    int32_t alpha_offset;    /* -(alpha zero point) */
    int32_t output_offset;
    tinyml_quant positive;
    tinyml_quant negative;
} tinyml_prelu_params;

tinyml_status tinyml_prelu_s8(const tinyml_prelu_params *params, const tinyml_broadcast *shape,
                              const int8_t *input, const int8_t *alpha, int8_t *output);

/* ADD_N (int8, 2 to 4 inputs of one shape and quantization), TFLM's
 * reference_ops::AddN (TFLite's ADD_N has no int8 kernel):
 *   s(v) = requant_dr((v + input_offset) << left_shift, input)      (left_shift 20)
 *   y = clamp(requant_dr(s(0) + sum_j s(x_j), output) + output_offset)
 * s(0) (the reference's x = input_offset start value) included as TFLM does.
 * Unused input pointers (count < 4) may be NULL. */
typedef struct {
    int32_t count;           /* inputs, 2..4 */
    int32_t input_offset;    /* -(input zero point) */
    int32_t output_offset;
    int32_t left_shift;
    tinyml_quant input;      /* QuantizeMultiplierSmallerThanOneExp(0.5) */
    tinyml_quant output;     /* 2 * input_scale / (2^left_shift * output_scale) */
    tinyml_activation activation;
} tinyml_add_n_params;

tinyml_status tinyml_add_n_s8(const tinyml_add_n_params *params, int32_t size, const int8_t *input0,
                              const int8_t *input1, const int8_t *input2, const int8_t *input3,
                              int8_t *output);

/* DIV (int8, broadcasting), TFLite reference_ops::DivElementwise's integer path:
 * a = x1 + input1_offset, b = x2 + input2_offset (b != 0; if b < 0 both negate);
 * r = GetReciprocal(b) (gemmlowp one_over_one_plus_x, Q0.31, shift rs);
 * h = leading sign bits of a; q = SRDHM(a << h, r);
 * y = clamp(requant_dr(q, output.multiplier, output.shift - rs - h) + output_offset)
 * with output ~ input1_scale / (input2_scale * output_scale). A zero divisor
 * returns TINYML_ERROR_ARG (TFLite's reference asserts it away). The two
 * runtimes differ only in the output multiplier: TensorFlow 2.21's reference
 * quantizes the float32 quotient of the scales (`output`), the tflite_micro
 * wheel the double-precision one (`output_tflm`), which moves exact .5 ties by
 * 1 LSB. TINYML_SINGLE_ROUNDING (the --rounding tflite|tflm switch in config.h)
 * picks one; each setting is bit-exact with its runtime (tests/test_ops_unary.py). */
typedef struct {
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    tinyml_quant output;
    tinyml_quant output_tflm;
    tinyml_activation activation;
} tinyml_div_params;

tinyml_status tinyml_div_s8(const tinyml_div_params *params, const tinyml_broadcast *shape,
                            const int8_t *input1, const int8_t *input2, int8_t *output);

#endif /* TINYML_ELEMENTWISE_H */
