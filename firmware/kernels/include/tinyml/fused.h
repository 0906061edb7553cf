/* tinyml kernels: fused transformer kernels (LayerNorm rows, attention one
 * query row at a time, FC -> activation -> FC per token).
 *
 * Contract: each fused kernel writes exactly the bytes the chain of TFLite
 * reference ops it replaces would write to the chain's external outputs. It
 * reproduces every member op's integer arithmetic (requantizations, clamps,
 * tables), only skipping the materialisation of intermediate tensors. Unary
 * parts are 256-entry tables computed by the generator with the same Python
 * arithmetic as the unfused lowerings. No malloc; scratch is passed in.
 */
#ifndef TINYML_FUSED_H
#define TINYML_FUSED_H

#include "tinyml/common.h"
#include "tinyml/elementwise.h"
#include "tinyml/reduce.h"
#include "tinyml/matmul.h"
#include "tinyml/fc.h"
#include "tinyml/conv.h"

/* One input rescaling of the 8-bit ADD / SQUARED_DIFFERENCE "general" path,
 * computed instead of tabulated: requant_dr((x + offset) << ls, quant), ls = 20
 * (ADD) or 7 (SQUARED_DIFFERENCE), i.e. TFLite's
 * MultiplyByQuantizedMultiplierSmallerThanOneExp of the shifted input. The
 * generator guarantees tinyml_requantize_bounded's preconditions (quant.shift in
 * -22..-1; it re-expresses multiplier 2^30, shift 0 as 2^31 - 1, -1, the same
 * integers on even inputs) and checks all 256 inputs against the reference
 * arithmetic (codegen/ops/fused_common.py rescale_fields). */
typedef struct {
    int32_t offset;                   /* -input zero point */
    tinyml_quant quant;
} tinyml_rescale;

/* One ADD / SQUARED_DIFFERENCE ("general rescaling" path):
 * a = rescale(x1, input1), b = rescale(x2, input2), then
 *   ADD:     y = clamp(requant_dr(a + b, output) + output_offset)
 *   SQ_DIFF: y = clamp(requant_dr((a - b)^2, output) + output_offset). */
typedef struct {
    tinyml_rescale input1;
    tinyml_rescale input2;
    tinyml_quant output;
    int32_t output_offset;
    tinyml_activation activation;
} tinyml_fused_add;

/* y[i] = ADD(x1[i], x2[i]) for i < n with the rescalings above; y may
 * be x1 or x2 (element i is read before it is written). */
tinyml_status tinyml_fused_add_s8(const tinyml_fused_add *params, int32_t n, const int8_t *input1,
                                  const int8_t *input2, int8_t *output);

/* r = RSQRT(ADD(v, eps)) of one LayerNorm row, computed (TFLite's reference arithmetic):
 *   av = clamp(requant_dr(rescale(v, v_rescale) + eps, add_output) + add_offset, add_activation)
 *   r  = 127 if av == input_zp, else clamp(requant_dr(requant_dr(1, inv_sqrt(av - input_zp) << 20),
 *        output) + output_zp) with inv_sqrt = tinyml_inv_sqrt_multiplier (RsqrtEvalQuantizedInt8;
 *        output.shift is the op's shift - 20). eps is the constant operand already rescaled. */
typedef struct {
    tinyml_rescale v_rescale;
    int32_t eps;
    tinyml_quant add_output;
    int32_t add_offset;
    tinyml_activation add_activation;
    int32_t input_zp;
    tinyml_quant output;
    int32_t output_zp;
} tinyml_ln_rsqrt;

/* Keras LayerNormalization as the TFLite converter emits it, per row of
 * `depth` int8 values (rows = numel / depth):
 *   m  = MEAN(x)                       nm = neg_table[m]   (DEQUANTIZE, NEG, QUANTIZE)
 *   v  = MEAN(SQUARED_DIFFERENCE(x, m))  r = RSQRT(ADD(v, eps))  (computed per row)
 *   g[c]  = MUL(r, gamma[c])           t1 = MUL(nm, g)     t2 = ADD(t1, beta[c])
 *   t3 = MUL(x[c], g)                  y[c] = ADD(t3, t2)
 * Operand order of each op is input1, input2 as written above. y may be x
 * (each row is read before it is written). No scratch. */
typedef struct {
    int32_t rows;
    int32_t depth;
    tinyml_mean_params mean;          /* x -> m */
    const int8_t *neg_table;          /* m -> nm, indexed m + 128 */
    tinyml_fused_add sqdiff;          /* (x, m) -> sd */
    tinyml_mean_params variance;      /* sd -> v */
    tinyml_ln_rsqrt rsqrt;            /* v -> r */
    tinyml_mul_params mul_gamma;      /* (r, gamma) -> g */
    tinyml_mul_params mul_center;     /* (nm, g) -> t1 */
    tinyml_fused_add add_beta;        /* (t1, beta) -> t2 */
    tinyml_mul_params mul_x;          /* (x, g) -> t3 */
    tinyml_fused_add add_out;         /* (t3, t2) -> y */
} tinyml_layernorm_params;

tinyml_status tinyml_fused_layernorm_s8(const tinyml_layernorm_params *params, const int8_t *input,
                                        const int8_t *gamma, const int8_t *beta, int8_t *output);

/* Attention of `heads` heads, one query row at a time:
 *   s[j]  = requant(sum_k (q[i][k] + qk.lhs_offset) * (k[j][k] + qk.rhs_offset))   (BATCH_MATMUL adj_y)
 *   s[j]  = score_table[s[j] + 128]                  (MUL by a constant; skipped if NULL)
 *   p     = SOFTMAX(s) over the `keys` scores          (exp_table as tinyml_softmax_s8)
 *   o[i][d] = requant(sum_j (p[j] + pv.lhs_offset) * (v[j][d] + pv.rhs_offset))    (BATCH_MATMUL)
 * Element (token t, head h, index d) of q/k/v/output lives at
 * t * token_stride + h * head_stride + d, so TRANSPOSE/RESHAPE around the heads
 * need no copies. Only one row of `keys` scores exists. The output may share
 * q's bytes when both have the same layout (query row i of head h is read
 * before output row i of head h is written). Scratch: ctx holds
 * tinyml_fused_attention_s8_scratch_size(params) bytes, 4-byte aligned. */
typedef struct {
    int32_t heads, queries, keys, depth, value_depth;
    int32_t q_token_stride, q_head_stride;
    int32_t k_token_stride, k_head_stride;
    int32_t v_token_stride, v_head_stride;
    int32_t o_token_stride, o_head_stride;
    tinyml_matmul_params qk;
    const int8_t *score_table;
    const int32_t *exp_table;
    tinyml_matmul_params pv;
} tinyml_attention_params;

/* The offset query row as int16, one row of scores, the offset scores as int16. */
int32_t tinyml_fused_attention_s8_scratch_size(const tinyml_attention_params *params);

tinyml_status tinyml_fused_attention_s8(const tinyml_ctx *ctx, const tinyml_attention_params *params,
                                        const int8_t *q, const int8_t *k, const int8_t *v, int8_t *output);

/* One FULLY_CONNECTED layer of a fused chain: tinyml_fc_layer (tinyml/fc.h),
 * folded bias, packed filter, optional activation table. */
typedef tinyml_fc_layer tinyml_fused_fc_layer;

#define TINYML_MLP_MAX_LAYERS 4

/* FULLY_CONNECTED [-> activation] -> FULLY_CONNECTED ... (2..4 layers) per
 * pair of token rows: the intermediate rows live in scratch (two buffers of
 * 2 * `hidden_stride` bytes, only one for 2 layers), never as matrices. The
 * output may share the input's bytes when its rows are not longer than the
 * input's (rows r, r + 1 are fully read before they are written). w0..w3 are
 * the layers' packed filters (tinyml/fc.h; NULL past `layers`). Scratch: ctx
 * holds tinyml_fused_mlp_s8_scratch_size(params) bytes. */
typedef struct {
    int32_t rows;
    int32_t layers;
    int32_t hidden_stride;
    const tinyml_fused_fc_layer *layer;   /* `layers` entries (at most TINYML_MLP_MAX_LAYERS) */
} tinyml_mlp_params;

/* Two rows of the widest hidden layer (hidden_stride bytes each) per buffer;
 * one buffer for 2 layers, two (ping-pong) for 3 or 4. */
int32_t tinyml_fused_mlp_s8_scratch_size(const tinyml_mlp_params *params);

tinyml_status tinyml_fused_mlp_s8(const tinyml_ctx *ctx, const tinyml_mlp_params *params, const int8_t *input,
                                  const int8_t *w0, const int8_t *w1, const int8_t *w2, const int8_t *w3,
                                  int8_t *output);

/* A residual block as one row pipeline (ResNet basic block):
 *   y = CONV_2D(x, conv1)          (any window and stride; fused activation)
 *   z = CONV_2D(y, conv2)          (stride 1)
 *   c = CONV_2D(x, shortcut)       (when has_shortcut; else c = x)
 *   out = ADD(z, c) or ADD(c, z)   (operand order of the TFLite ADD: z_first)
 * Output rows are produced top to bottom; y exists only as a ring of the
 * conv2_rows rows the next output row reads, z and c as one row each. Every
 * value is the member ops' own arithmetic (tinyml_conv2d_packed_rows_s8,
 * tinyml_fused_add_s8), so the bytes equal the unfused chain's. The output may
 * share the input's bytes when the generator proved that no input row is
 * read after the output row covering it is written (it checks the geometry).
 * Scratch: ctx holds tinyml_fused_resblock_s8_scratch_size(params) bytes. */
typedef struct {
    tinyml_conv_packed_params conv1;
    tinyml_conv_packed_params conv2;
    tinyml_conv_packed_params shortcut;
    int32_t has_shortcut;
    int32_t conv2_rows;               /* rows of y in the ring: conv2's window height */
    int32_t z_first;
    tinyml_fused_add add;
} tinyml_resblock_params;

/* The y ring, the z row (and the c row), one im2col buffer for the largest
 * of the convolutions' tinyml_conv2d_packed_s8_scratch_size(). */
int32_t tinyml_fused_resblock_s8_scratch_size(const tinyml_resblock_params *params);

tinyml_status tinyml_fused_resblock_s8(const tinyml_ctx *ctx, const tinyml_resblock_params *params,
                                       const int8_t *input, const int8_t *filter1, const int8_t *filter2,
                                       const int8_t *filter_shortcut, int8_t *output);

/* A MobileNetV2 inverted-residual block as one row pipeline:
 *   e = CONV_2D(x, expand)        (one group, any window: 1x1 in MobileNetV2 blocks, the 3x3/2
 *                                  stem before the first one; fused activation; absent when has_expand = 0)
 *   d = DEPTHWISE_CONV_2D(e, dw)  (k_h x k_w, any stride/dilation/top-left padding, multiplier 1)
 *   p = CONV_2D(d, project)       (1x1, stride 1)
 *   out = ADD(p, x) or ADD(x, p)  (when has_add; operand order of the TFLite ADD: p_first)
 * Output rows are produced top to bottom. e exists only as a ring of dw_rows
 * rows (the depthwise window's height), d as one row and p as one row (only
 * with the ADD); nothing is computed twice. The depthwise arithmetic is
 * TFLite's reference DepthwiseConvPerChannel (multiplier 1): per channel c,
 *   d = clamp(requant(bias[c] + sum_{in-image taps} w[ky][kx][c] * (e + input_offset), c)
 *             + output_offset)
 * with tinyml_conv_requantize (tinyml/conv.h), or tinyml_requantize_bounded
 * (tinyml/common.h) where the generator proved it equal (dw.fast_requant); the convolutions are
 * tinyml_conv2d_packed_rows_s8 and the ADD tinyml_fused_add_s8, so the bytes
 * equal the unfused chain's. A PAD feeding the depthwise (Keras' ZeroPadding2D
 * before a VALID stride-2 depthwise) is folded into pad_h / pad_w: padded taps
 * hold the zero point, which adds nothing. The output may start before or at
 * the input (not after) by the distance the generator's replay of this
 * schedule allows. Scratch: ctx holds tinyml_fused_invres_s8_scratch_size(params). */
#define TINYML_INVRES_MAX_K 16        /* largest depthwise window height */

typedef struct {
    int16_t in_h, in_w, channels;     /* e: rows, columns, channels (int16: the generator checks) */
    int16_t out_h, out_w;             /* d */
    int16_t k_h, k_w;
    int16_t stride_h, stride_w;
    int16_t dilation_h, dilation_w;
    int16_t pad_h, pad_w;             /* top / left */
    int16_t input_offset;             /* -(e zero point) */
    int16_t output_offset;            /* d zero point */
    tinyml_activation activation;
    const int32_t *bias;              /* may be NULL */
    const int32_t *multiplier;
    const int8_t *shift;              /* int8: one byte a channel */
    uint8_t fast_requant;             /* 1 when the generator proved tinyml_requantize_bounded exact
                                         (codegen/ops/conv.py: fast_requant_ok, |e + io| <= 255) */
    uint8_t weights_grouped;          /* 1: dw_filter in the grouped layout of tinyml/conv.h
                                         (tinyml_depthwise_conv2d_s8, weights_grouped) */
} tinyml_invres_dw;

typedef struct {
    tinyml_conv_packed_params expand;
    tinyml_invres_dw dw;
    tinyml_conv_packed_params project;
    int32_t has_expand;
    int32_t dw_rows;                  /* rows of e in the ring: (k_h - 1) * dilation_h + 1 */
    int32_t has_add;
    int32_t p_first;
    tinyml_fused_add add;
} tinyml_invres_params;

/* The e ring, the d row, the p row (with the ADD; each 4-byte aligned), then
 * the larger of the convolutions' tinyml_conv2d_packed_s8_scratch_size(). */
int32_t tinyml_fused_invres_s8_scratch_size(const tinyml_invres_params *params);

tinyml_status tinyml_fused_invres_s8(const tinyml_ctx *ctx, const tinyml_invres_params *params,
                                     const int8_t *input, const int8_t *expand_filter, const int8_t *dw_filter,
                                     const int8_t *project_filter, int8_t *output);

#endif /* TINYML_FUSED_H */
