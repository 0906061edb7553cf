"""int8/uint8 unary activations as 256-entry tables (tinyml_lut_8).

RELU / RELU6 / RELU_N1_TO_1 / LEAKY_RELU / HARD_SWISH follow TFLite's
fixed-point kernels; LOGISTIC / TANH / GELU follow the float32 table TFLite
itself builds in Prepare. codegen/luts.py states each formula.
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import luts
from tinyml.steps import Call, Step, TRef
from tinyml.codegen.lowering import activations, lowering, require


def _check_8bit(op, graph):
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.dtype in ("int8", "uint8") and x.dtype == y.dtype, op, graph,
            f"{x.dtype} -> {y.dtype} (only int8/uint8 in and out)")
    require(x.quant is not None and y.quant is not None and not x.quant.per_channel
            and not y.quant.per_channel, op, graph, "missing or per-channel quantization")
    require(x.numel == y.numel, op, graph, "input and output of different sizes")
    return x, y


def lut_step(op, graph, ctx, table: np.ndarray, what: str) -> Step:
    """A Step applying `table` (uint8[256], indexed by the input byte) elementwise."""
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    sym = ctx.const_array(f"op{op.index}_lut", "uint8_t", np.asarray(table, dtype=np.uint8), share=True)
    ins, outs = activations(graph, op)
    call = Call("tinyml_lut_8", [sym, x.numel, TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call],
                inplace_ok=[(x.index, y.index)], comment=f"{what}, 256-entry table")


_RELU_BOUNDS = {"RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}


@lowering("RELU", "RELU6", "RELU_N1_TO_1")
def lower_relu(op, graph, ctx) -> Step:
    x, y = _check_8bit(op, graph)
    lo, hi = _RELU_BOUNDS[op.kind]
    t = luts.relu_lut(lo, hi, x.quant.s, x.quant.zp, y.quant.s, y.quant.zp, x.dtype)
    return lut_step(op, graph, ctx, t, op.kind.lower())


@lowering("LEAKY_RELU")
def lower_leaky_relu(op, graph, ctx) -> Step:
    x, y = _check_8bit(op, graph)
    alpha = float(op.options.alpha)
    t = luts.leaky_relu_lut(alpha, x.quant.s, x.quant.zp, y.quant.s, y.quant.zp, x.dtype)
    return lut_step(op, graph, ctx, t, f"leaky relu alpha={alpha!r}")


@lowering("HARD_SWISH")
def lower_hard_swish(op, graph, ctx) -> Step:
    x, y = _check_8bit(op, graph)
    try:
        t = luts.hard_swish_lut(x.quant.s, x.quant.zp, y.quant.s, y.quant.zp, x.dtype)
    except ValueError as e:
        require(False, op, graph, str(e).replace("HARD_SWISH ", "an "))
    return lut_step(op, graph, ctx, t, "hard swish")


@lowering("LOGISTIC")
def lower_logistic(op, graph, ctx) -> Step:
    x, y = _check_8bit(op, graph)
    t = luts.float_lut(luts.logistic_f32, x.quant.s, x.quant.zp, y.quant.s, y.quant.zp, x.dtype)
    return lut_step(op, graph, ctx, t, "logistic")


@lowering("TANH")
def lower_tanh(op, graph, ctx) -> Step:
    x, y = _check_8bit(op, graph)
    t = luts.float_lut(luts.tanh_f32, x.quant.s, x.quant.zp, y.quant.s, y.quant.zp, x.dtype)
    return lut_step(op, graph, ctx, t, "tanh")


@lowering("GELU")
def lower_gelu(op, graph, ctx) -> Step:
    x, y = _check_8bit(op, graph)
    approx = op.options.approximate
    fn = luts.gelu_approx_f32 if approx else luts.gelu_f32
    t = luts.float_lut(fn, x.quant.s, x.quant.zp, y.quant.s, y.quant.zp, x.dtype)
    return lut_step(op, graph, ctx, t, "gelu (tanh approximation)" if approx else "gelu")
