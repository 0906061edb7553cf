"""UNIDIRECTIONAL_SEQUENCE_LSTM, integer 8x8->16 (int8 input/weights/output state, int16
cell state, five intermediates carrying the gate and hidden scales), as TFLite's
unidirectional_sequence_lstm.cc Prepare (PopulateQuantizedLstmParams8x8_16,
PopulatePrecomputedZPTimesWeightsWithBias) and lstm_eval.cc EvalInteger8x8_16; the kernel
contract is in firmware/kernels/include/tinyml/lstm.h.

With or without CIFG, peephole and projection (a Keras LSTM converts without any of them);
layer norm, a cell activation other than tanh, float and hybrid LSTMs are refused by name.

The output state (int8) and cell state (int16) are TFLite variable tensors: they persist
between invocations, as `StateRef`s in the model's state block (outside the arena, zeroed at
start-up and by <prefix>_reset()), like SVDF's state.

Scales as TFLite's Prepare: float32 products/quotients of the float32 tensor scales (the gate
scale is 2^-12 without layer norm), the hidden scale 2^-30 / hidden intermediate scale in
double rounded to float32, then QuantizeMultiplier in double. The zero points are folded
into per-gate int32 biases: bias - input_zp * row sum (input weights), -output_state_zp *
row sum (recurrent weights).

Planner: scratch of four int16 gate rows per batch; no in-place or overlap facts (every step
reads its input time slice after earlier output rows are written).
"""
from __future__ import annotations

import math

import numpy as np

from tinyml.codegen import cdecl
from tinyml.codegen.lowering import activations, lowering, require
from tinyml.codegen.quant import quantize_multiplier
from tinyml.steps import Call, ScratchRef, StateRef, Step, TRef

# TFLite's input positions (lstm_shared.h)
INPUT, OUTPUT_STATE, CELL_STATE = 0, 18, 19
INPUT_WEIGHTS = (1, 2, 3, 4)          # input, forget, cell, output gate
RECURRENT_WEIGHTS = (5, 6, 7, 8)
PEEPHOLE = (9, 10, 11)
BIASES = (12, 13, 14, 15)
PROJECTION = (16, 17)
LAYER_NORM = (20, 21, 22, 23)
GATE_SCALE = 2.0 ** -12               # Q3.12 gates without layer norm
# The sign with which the hidden requantization (tensor_utils::CwiseMul) applies the hidden
# intermediate's zero point, measured against TensorFlow 2.21's reference interpreter: added
# without a projection (-1 differs in 77 of 80 bytes of a Keras LSTM(8); also with a hidden
# zero point unlike the output state's), subtracted before a projection, whose bias then gets
# +hidden_zp * row sums (Prepare); the other three sign pairs differ by 1-6 LSB.
HIDDEN_ZP_SIGN = 1
HIDDEN_ZP_SIGN_PROJECTION = -1


def _f32(x: float) -> float:
    return float(np.float32(x))


def effective_scale(weight_scale: float, act_scale: float, gate_scale: float) -> float:
    """float32(float32(w * a) / g), as Prepare computes it with float tensor scales."""
    return _f32(np.float32(np.float32(weight_scale) * np.float32(act_scale)) / np.float32(gate_scale))


def checked_log2(scale: float) -> int | None:
    """TFLite's CheckedLog2: the rounded log2 when the scale is a power of two (within 1e-3)."""
    x = np.float32(math.log(np.float32(scale))) * (np.float32(1.0) / np.float32(math.log(np.float32(2.0))))
    r = np.float32(np.round(x))
    return int(r) if abs(np.float32(x - r)) < np.float32(1e-3) else None


def folded_bias(weights: np.ndarray, zp: int, bias: np.ndarray | None) -> np.ndarray:
    """bias + zp * row sums (int32 wrap, as MatrixScalarMultiplyAccumulate)."""
    rows = weights.astype(np.int64).sum(axis=1)
    b = np.zeros(weights.shape[0], np.int64) if bias is None else bias.astype(np.int64)
    v = (b + zp * rows) & 0xFFFFFFFF
    return np.where(v >= 1 << 31, v - (1 << 32), v).astype(np.int32)


def _int8_rows(t, rows: int, cols: int) -> bool:
    return t is not None and t.is_const and t.dtype == "int8" and tuple(t.shape) == (rows, cols)


@lowering("UNIDIRECTIONAL_SEQUENCE_LSTM")
def lower_lstm(op, graph, ctx) -> Step:
    require(len(op.inputs) == 24 and len(op.outputs) == 1, op, graph,
            f"{len(op.inputs)} inputs (the 24-input integer form expected)")
    ins_t = [graph.t(i) if i >= 0 else None for i in op.inputs]
    x, y = ins_t[INPUT], graph.t(op.outputs[0])
    require(x is not None and x.dtype == "int8" and y.dtype == "int8", op, graph,
            f"{x.dtype if x else None} -> {y.dtype} (the integer 8x8->16 LSTM only: float and hybrid LSTMs "
            "are not supported)")
    require(all(ins_t[i] is None for i in LAYER_NORM), op, graph, "layer normalization")
    opts = op.options
    require(str(opts.activation) == "TANH", op, graph, f"cell activation {opts.activation} (TANH expected)")
    require(not opts.diagonal_recurrent_tensors, op, graph, "diagonal recurrent tensors")
    h, c = ins_t[OUTPUT_STATE], ins_t[CELL_STATE]
    require(h is not None and c is not None and h.variable and c.variable and not h.is_const
            and not c.is_const and h.dtype == "int8" and c.dtype == "int16", op, graph,
            "output/cell states that are not int8/int16 variable tensors")
    cifg = ins_t[INPUT_WEIGHTS[0]] is None
    gate_ids = (1, 2, 3) if cifg else (0, 1, 2, 3)
    require(not cifg or (ins_t[RECURRENT_WEIGHTS[0]] is None and ins_t[BIASES[0]] is None
                         and ins_t[PEEPHOLE[0]] is None), op, graph,
            "an input gate with some of its tensors missing")
    peep = ins_t[PEEPHOLE[2]] is not None
    require(all((ins_t[PEEPHOLE[g]] is not None) == peep for g in ((1, 2) if cifg else (0, 1, 2))), op, graph,
            "some peephole weights missing")
    proj_w, proj_b = ins_t[PROJECTION[0]], ins_t[PROJECTION[1]]
    require(proj_w is not None or proj_b is None, op, graph, "a projection bias without projection weights")
    ref_x, ref_h = ins_t[INPUT_WEIGHTS[1]], ins_t[RECURRENT_WEIGHTS[1]]
    require(ref_x is not None and ref_h is not None and len(ref_x.shape) == 2 and len(ref_h.shape) == 2,
            op, graph, "missing or non-2-D forget gate weights")
    n_cell, n_input, n_output = int(ref_x.shape[0]), int(ref_x.shape[1]), int(ref_h.shape[1])
    wx = [ins_t[INPUT_WEIGHTS[g]] for g in range(4)]
    wh = [ins_t[RECURRENT_WEIGHTS[g]] for g in range(4)]
    bs = [ins_t[BIASES[g]] for g in range(4)]
    require(all(_int8_rows(wx[g], n_cell, n_input) and _int8_rows(wh[g], n_cell, n_output) for g in gate_ids),
            op, graph, "non-constant, non-int8 or misshapen gate weights")
    require(all(bs[g] is not None and bs[g].is_const and bs[g].dtype == "int32" and bs[g].numel == n_cell
                for g in gate_ids), op, graph, "non-constant, non-int32 or misshapen gate biases")
    peeps = [None, ins_t[PEEPHOLE[1]], None, ins_t[PEEPHOLE[2]]]
    if not cifg:
        peeps[0] = ins_t[PEEPHOLE[0]]
    require(all(t is None or (t.is_const and t.dtype == "int16" and t.numel == n_cell) for t in peeps), op, graph,
            "non-constant, non-int16 or misshapen peephole weights")
    require(proj_w is None or _int8_rows(proj_w, n_output, n_cell), op, graph,
            "non-constant, non-int8 or misshapen projection weights")
    require(proj_b is None or (proj_b.is_const and proj_b.dtype == "int32" and proj_b.numel == n_output), op, graph,
            "a non-constant, non-int32 or misshapen projection bias")
    require(proj_w is not None or n_output == n_cell, op, graph,
            f"output size {n_output} != cell count {n_cell} without a projection")
    consts = [t for t in wx + wh + peeps + [proj_w] if t is not None]
    for t in consts + [x, y, h, c]:
        require(t.quant is not None and not t.quant.per_channel, op, graph,
                f"tensor {t.index} without per-tensor quantization")
    require(len(op.intermediates) == 5, op, graph, f"{len(op.intermediates)} intermediates (5 expected)")
    hidden = graph.t(op.intermediates[4])
    require(hidden.quant is not None, op, graph, "a hidden intermediate without quantization")
    require(c.quant.zp == 0 and all(t.quant.zp == 0 for t in consts), op, graph,
            "non-zero cell state or weight zero points")
    require(y.quant.s == h.quant.s and y.quant.zp == h.quant.zp, op, graph,
            "an output quantized unlike the output state")
    require(len(x.shape) == 3 and len(y.shape) == 3, op, graph, "input/output that are not 3-D")
    if opts.time_major:
        steps, batches, x_depth = (int(d) for d in x.shape)
    else:
        batches, steps, x_depth = (int(d) for d in x.shape)
    require(x_depth == n_input, op, graph, f"input depth {x_depth} for weights of depth {n_input}")
    require(h.numel == batches * n_output and c.numel == batches * n_cell, op, graph, "state sizes")
    require(y.numel == batches * steps * n_output, op, graph, f"output of {y.numel} values")
    cell_scale = checked_log2(c.quant.s)
    require(cell_scale is not None and -30 <= cell_scale <= 1, op, graph,
            f"cell state scale {c.quant.s!r} (a power of two in 2^-30..2 expected)")
    # outside 0..6 tanh bits TFLite uses the input gate's buffer in place of tanh(c); CIFG has none
    require(not cifg or 0 <= 15 + cell_scale <= 6, op, graph,
            f"CIFG with a 2^{cell_scale} cell scale (TFLite's tanh needs 2^-15..2^-9)")
    cell_clip = 0
    if opts.cell_clip > 0:
        cell_clip = int(min(max(np.float32(opts.cell_clip) / np.float32(c.quant.s), -32768.0), 32767.0))
    proj_clip = 0
    if opts.proj_clip > 0:
        proj_clip = int(min(max(np.float32(opts.proj_clip) / np.float32(y.quant.s), -128.0), 127.0))

    def mq(real: float) -> dict:
        m, s = quantize_multiplier(real)
        require(-31 <= s <= 30, op, graph, f"an effective scale {real!r} outside 2^-31..2^30")
        return {"multiplier": m, "shift": s}

    p = ctx.name(f"op{op.index}")
    none = {"multiplier": 0, "shift": 0}
    gates = []
    for g, name in enumerate(("input", "forget", "cell", "output")):
        if g not in gate_ids:
            gates.append({"input_weights": "NULL", "recurrent_weights": "NULL", "input_bias": "NULL",
                          "recurrent_bias": "NULL", "input_quant": none, "recurrent_quant": none,
                          "peephole": "NULL", "peephole_quant": none})
            continue
        pw = peeps[g]
        gates.append({
            "input_weights": ctx.const_array(f"{p}_{name}_wx", "int8_t", wx[g].data, role="parameter"),
            "recurrent_weights": ctx.const_array(f"{p}_{name}_wh", "int8_t", wh[g].data, role="parameter"),
            "input_bias": ctx.const_array(f"{p}_{name}_x_bias", "int32_t",
                                          folded_bias(wx[g].data, -x.quant.zp, bs[g].data.reshape(-1))),
            "recurrent_bias": ctx.const_array(f"{p}_{name}_h_bias", "int32_t",
                                              folded_bias(wh[g].data, -h.quant.zp, None)),
            "input_quant": mq(effective_scale(wx[g].quant.s, x.quant.s, GATE_SCALE)),
            "recurrent_quant": mq(effective_scale(wh[g].quant.s, h.quant.s, GATE_SCALE)),
            "peephole": "NULL" if pw is None else ctx.const_array(f"{p}_{name}_peephole", "int16_t", pw.data,
                                                                  role="parameter"),
            # float32(2^cell_scale * w / 2^-12), computed in double as Prepare does
            "peephole_quant": none if pw is None else
            mq(_f32(2.0 ** cell_scale * float(np.float32(pw.quant.s)) / GATE_SCALE)),
        })
    hidden_scale = _f32(2.0 ** -15 / float(np.float32(hidden.quant.s)) * 2.0 ** -15)
    projection = {"projection_weights": "NULL", "projection_bias": "NULL", "projection_quant": none}
    if proj_w is not None:
        projection = {
            "projection_weights": ctx.const_array(f"{p}_proj_w", "int8_t", proj_w.data, role="parameter"),
            # Prepare folds +hidden_zp * row sums (PrecomputeZeroPointTimesWeightWithBias(hidden_zp, ..))
            "projection_bias": ctx.const_array(f"{p}_proj_bias", "int32_t", folded_bias(
                proj_w.data, hidden.quant.zp, None if proj_b is None else proj_b.data.reshape(-1))),
            "projection_quant": mq(effective_scale(proj_w.quant.s, hidden.quant.s, h.quant.s)),
        }
    decl = cdecl.struct("tinyml_lstm_params", f"{p}_params", batches=batches, steps=steps, n_input=n_input,
                        n_cell=n_cell, n_output=n_output, time_major=bool(opts.time_major), cell_scale=cell_scale,
                        cell_clip=cell_clip,
                        hidden_offset=(HIDDEN_ZP_SIGN_PROJECTION if proj_w is not None else HIDDEN_ZP_SIGN)
                        * hidden.quant.zp,
                        hidden_quant=mq(hidden_scale), cifg=cifg, **projection, output_state_zp=h.quant.zp,
                        proj_clip=proj_clip, gates=gates)
    ins, outs = activations(graph, op)
    ins = [i for i in ins if i not in (h.index, c.index)]
    call = Call("tinyml_lstm_s8", [ScratchRef(f"tinyml_lstm_s8_scratch_size(&{p}_params)"), f"&{p}_params",
                                   TRef(x.index), StateRef(h.index), StateRef(c.index), TRef(y.index)])
    n = batches * n_cell
    variant = ", ".join(k for k, on in (("CIFG", cifg), ("peephole", peep), ("projection", proj_w is not None)) if on)
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                scratch_bytes=4 * n * 2 + (-(-n // 4) * 4 if proj_w is not None else 0), state=[h.index, c.index],
                comment=f"{n_cell} cells over {steps} steps of {n_input}, batch {batches}"
                        f"{' (' + variant + ')' if variant else ''}; state t{h.index} "
                        f"({h.nbytes} B) + t{c.index} ({c.nbytes} B), kept between inferences")
