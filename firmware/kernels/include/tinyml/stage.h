/* tinyml kernels: a CNN's first stage as one row pipeline (int8, NHWC, batch 1). */
#ifndef TINYML_STAGE_H
#define TINYML_STAGE_H

#include "tinyml/common.h"
#include "tinyml/conv.h"

/* FUSED_STAGE: a chain of N layers, each a one-group CONV_2D (the packed form,
 * tinyml_conv2d_packed_rows_s8) or a DEPTHWISE_CONV_2D (any depth multiplier)
 * (tinyml_depthwise_conv2d_s8 called on one output row), layer i reading
 * layer i-1's output:  t_0 = input, t_{i+1} = layer_i(t_i), output = t_N.
 * Rows are pulled on demand, top to bottom: output row r of layer i reads its
 * input rows up to min(r*stride - pad_h + (k_h - 1)*dilation_h, in_h - 1),
 * which layer i-1 computes first, and so on down to the input. Each
 * intermediate t_i exists only as a ring of ring_rows rows (at least the
 * consumer's window height), each row computed exactly once (nothing is
 * recomputed), so every value is the member op's own arithmetic and the bytes
 * equal the unfused chain's. A ring read by a depthwise layer is mirrored
 * (row r stored at slots r % R and r % R + R) so that any R consecutive rows
 * are contiguous, the layout tinyml_depthwise_conv2d_s8 reads.
 *
 * Input: resident (`input`, the whole image; state may be NULL) or streamed
 * (in_rows > 0: `in_ring` holds in_rows row slots, 2 * in_rows when
 * in_mirror). Streamed, the call returns TINYML_OK with state->want >= 0
 * whenever it needs input row `want` (ascending, each row once, every row
 * of the image): the caller copies that row to state->want_dst and calls
 * again with the same state; state->want == -1 means done. No callback, so
 * the caller's (prefixed) tinyml_read_input_rows() is a direct call and the
 * static stack estimate stays exact. Zero-initialize the state before the
 * first call.
 * Output rows are written in ascending order; when output row r is written,
 * no input row above the first row of layer 0's next window is read again
 * (the generator's Overlap fact replays this schedule).
 * Scratch: ctx holds tinyml_fused_stage_s8_scratch_size(params) bytes: the
 * rings (each 4-byte aligned) then the largest convolution im2col buffer. */
#define TINYML_STAGE_MAX_LAYERS 12


typedef struct {
    const tinyml_conv_packed_params *conv;      /* CONV_2D: geometry, packed layer */
    const int8_t *conv_filter;                  /* CONV_2D: packed filter */
    const tinyml_conv_params *dw;               /* DEPTHWISE_CONV_2D */
    const tinyml_per_channel_quant *dw_quant;
    const tinyml_dims *dw_in, *dw_filter, *dw_out;
    const int8_t *dw_weights;
    const int32_t *dw_bias;                     /* may be NULL */
    int16_t ring_rows;                          /* rows of this layer's output ring (0: the last layer) */
    uint8_t ring_mirror;                        /* 1: the consumer is a depthwise (2 * ring_rows slots) */
    uint8_t depthwise;                          /* 0: CONV_2D, 1: DEPTHWISE_CONV_2D */
} tinyml_stage_layer;

typedef struct {
    int32_t layers;
    const tinyml_stage_layer *layer;            /* `layers` entries (at most TINYML_STAGE_MAX_LAYERS) */
    int32_t in_rows;                            /* streamed: row slots of in_ring; 0: resident input */
    int32_t in_mirror;                          /* streamed into a depthwise: in_ring mirrored */
} tinyml_stage_params;

/* Where a streamed call stands between two input rows (zero it before the first call). */
typedef struct {
    int32_t started;
    int32_t want;                               /* input row to deliver next, or -1: done */
    int8_t *want_dst;                           /* where that row goes (one row of in_w * in_c bytes) */
    int32_t fetched;                            /* input rows delivered */
    int32_t next[TINYML_STAGE_MAX_LAYERS];      /* next output row of each layer */
} tinyml_stage_state;

int32_t tinyml_fused_stage_s8_scratch_size(const tinyml_stage_params *params);

tinyml_status tinyml_fused_stage_s8(const tinyml_ctx *ctx, const tinyml_stage_params *params,
                                    tinyml_stage_state *state, const int8_t *input, int8_t *in_ring,
                                    int8_t *output);

#endif /* TINYML_STAGE_H */
