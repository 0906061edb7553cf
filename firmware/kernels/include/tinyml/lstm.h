/* tinyml kernels: UNIDIRECTIONAL_SEQUENCE_LSTM, integer 8x8->16 (int8 input, weights,
 * hidden/output state; int16 gates and cell state).
 *
 * Arithmetic contract: TensorFlow Lite's integer LSTM (lstm_eval.cc
 * EvalInteger8x8_16 / LstmStepInteger8x8_16 with the portable tensor_utils),
 * without layer norm, with or without CIFG, peephole and projection (a Keras
 * LSTM has none of the three). Per time step and batch row:
 *   gate g in (input, forget, cell, output), each int16:
 *     a = clamp16(MBQM(sum_i x[i] w_g[c][i] + bias_x_g[c], quant_x_g))      (gate starts at 0)
 *     a = clamp16(MBQM(sum_j h[j] r_g[c][j] + bias_h_g[c], quant_h_g) + a)
 *     (tensor_utils::MatrixBatchVectorMultiplyAccumulate; bias_x_g = bias - input_zp *
 *     row sum of w_g, bias_h_g = -output_state_zp * row sum of r_g, folded at generate
 *     time as TFLite's Prepare folds them), the gates in Q3.12; with peephole
 *     weights p_g (int16; input, forget, output gates) a = clamp16(MBQM(p_g[c] *
 *     cell[c], quant_p_g) + a) before the activation (VectorBatchVectorCwise-
 *     ProductAccumulate; the output gate sees the new cell);
 *     input, forget, output: gemmlowp logistic on int16 Q3.12 -> Q0.15
 *     (tensor_utils::ApplySigmoid); cell: gemmlowp tanh Q3.12 -> Q0.15 (ApplyTanh(3));
 *     the output gate is computed after the cell update (TFLite's order);
 *   cell (int16, scale 2^cell_scale): c = (int16)RoundingDivideByPOT(f * c, 15)
 *     + (int16)RoundingDivideByPOT(i * g, 30 + cell_scale), saturated to int16,
 *     then clipped to +-cell_clip when cell_clip > 0 (UpdateLstmCellInteger); CIFG (no
 *     input gate): i = 32767 - f (Sub1Vector);
 *   hidden: gemmlowp tanh of the cell with 15 + cell_scale integer bits (TFLite's
 *     ApplyTanh does nothing outside 0..6 bits, e.g. for the 2^-16 cell scale the
 *     converter writes for some models: its buffer still holds the input gate, which
 *     is then used in place of tanh(c); reproduced here), then
 *     clamp8(MBQM(o * tanh(c), hidden_quant) + hidden_offset) (CwiseMul), which is
 *     the new output state and the step's output row; with a projection the output
 *     state is clamp8(MBQM(sum_c hidden[c] w_p[j][c] + projection_bias[j],
 *     projection_quant) + output_state_zp) (projection_bias: bias + hidden_zp * row
 *     sum, as Prepare folds it), clipped to +-proj_clip when proj_clip > 0.
 * MBQM is MultiplyByQuantizedMultiplier with double rounding
 * (tinyml_requantize_double): measured, TensorFlow 2.21's LSTM rounds twice
 * (single rounding differs in 3 of 80 bytes on a Keras LSTM(8)). int16 gemmlowp arithmetic wraps and
 * saturates as the reference's FixedPoint<int16_t> does.
 * The output and cell state persist between calls (the model's state block,
 * outside the arena, zeroed at start-up and by <prefix>_reset()), as TFLite keeps
 * its variable tensors between invocations. */
#ifndef TINYML_LSTM_H
#define TINYML_LSTM_H

#include "tinyml/common.h"

typedef struct {
    const int8_t *input_weights;      /* [n_cell][n_input] */
    const int8_t *recurrent_weights;  /* [n_cell][n_output] */
    const int32_t *input_bias;        /* [n_cell], zero points folded in */
    const int32_t *recurrent_bias;    /* [n_cell], zero points folded in */
    tinyml_quant input_quant;         /* input x weights -> Q3.12 gate */
    tinyml_quant recurrent_quant;     /* output state x recurrent weights -> Q3.12 gate */
    const int16_t *peephole;          /* [n_cell] or NULL */
    tinyml_quant peephole_quant;      /* cell x peephole weights -> Q3.12 gate */
} tinyml_lstm_gate;

typedef struct {
    int32_t batches;
    int32_t steps;
    int32_t n_input;
    int32_t n_cell;
    int32_t n_output;      /* = n_cell without a projection */
    int32_t time_major;    /* input/output [steps][batches][.] instead of [batches][steps][.] */
    int32_t cell_scale;    /* log2 of the cell state's scale (-30 .. 1) */
    int32_t cell_clip;     /* 0: none */
    int32_t hidden_offset; /* added after the hidden requantization: +hidden_zp, or -hidden_zp
                            * with a projection (measured against TensorFlow 2.21) */
    tinyml_quant hidden_quant;
    int32_t cifg;          /* no input gate: gates[0] unused */
    const int8_t *projection_weights;   /* [n_output][n_cell] or NULL */
    const int32_t *projection_bias;     /* [n_output], hidden zero point folded in */
    tinyml_quant projection_quant;
    int32_t output_state_zp;
    int32_t proj_clip;     /* 0: none */
    tinyml_lstm_gate gates[4];   /* input, forget, cell, output */
} tinyml_lstm_params;

int32_t tinyml_lstm_s8_scratch_size(const tinyml_lstm_params *params);

/* input [batches][steps][n_input] (or time major), output_state [batches][n_output]
 * (int8 variable), cell_state [batches][n_cell] (int16 variable), output like the
 * input with n_output per row. Scratch: tinyml_lstm_s8_scratch_size (four int16
 * gate rows per batch, and an int8 hidden row per batch with a projection). */
tinyml_status tinyml_lstm_s8(const tinyml_ctx *ctx, const tinyml_lstm_params *params, const int8_t *input,
                             int8_t *output_state, int16_t *cell_state, int8_t *output);

/* gemmlowp's logistic / tanh on an int16 fixed-point value with `integer_bits`
 * integer bits (0..6; 3 for the gates), result Q0.15. Exposed for the tests. */
int16_t tinyml_logistic_q15(int16_t x, int32_t integer_bits);
int16_t tinyml_tanh_q15(int16_t x, int32_t integer_bits);

#endif /* TINYML_LSTM_H */
