"""MAXIMUM, MINIMUM, EQUAL, NOT_EQUAL, LESS, LESS_EQUAL, GREATER, GREATER_EQUAL, SELECT_V2, PRELU and ADD_N (int8;
MAXIMUM, MINIMUM and SELECT_V2 also on int16 activations, the 16x8 registry).

MAXIMUM / MINIMUM compare raw int8 values (TFLite's maximum_minimum.cc
rescales nothing). Comparisons rescale each input as comparisons.cc's
ComparisonQuantized prepares it: offset -zero_point, left shift 8, the
input's own scale as a QuantizeMultiplierSmallerThanOneExp multiplier, then
compare; the output is bool bytes. SELECT_V2 copies raw bytes of x or y by a
bool condition, broadcasting all three (select.cc). All kernels are in
firmware/kernels/src/compare.c; each reads an element before writing the
output element at the same index, so inputs of the output's shape may share
its bytes.
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.codegen.lowering import activations, lowering, require
from tinyml.codegen.ops.elementwise import _inplace, _quant, broadcast_geometry, quantize_multiplier
from tinyml.steps import Call, Step, TRef

CMP_OPS = {"EQUAL": 0, "NOT_EQUAL": 1, "LESS": 2, "LESS_EQUAL": 3, "GREATER": 4, "GREATER_EQUAL": 5}


def _geometry(op, graph, x1, x2, y):
    geo = broadcast_geometry(x1.shape, x2.shape, y.shape)
    require(geo is not None, op, graph, f"broadcast {list(x1.shape)} x {list(x2.shape)} -> {list(y.shape)}")
    return geo


_SUFFIX = {"int8": "s8", "int16": "s16"}     # int16: the 16x8 variants (raw values, as in int8)


@lowering("MAXIMUM", "MINIMUM")
@lowering("MAXIMUM", "MINIMUM", int16=True)
def lower_max_min(op, graph, ctx) -> Step:
    x1, x2, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    require(x1.dtype == x2.dtype == y.dtype and y.dtype in _SUFFIX, op, graph, f"{x1.dtype}/{x2.dtype} -> {y.dtype}")
    geo = _geometry(op, graph, x1, x2, y)
    p = ctx.name(f"op{op.index}")
    decl = cdecl.struct("tinyml_broadcast", f"{p}_shape", **geo.c())
    func = f"tinyml_{'maximum' if op.kind == 'MAXIMUM' else 'minimum'}_{_SUFFIX[y.dtype]}"
    ins, outs = activations(graph, op)
    call = Call(func, [f"&{p}_shape", TRef(x1.index), TRef(x2.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                inplace_ok=_inplace(op, graph, y), comment=f"{list(x1.shape)}, {list(x2.shape)}")


def _smaller_than_one(op, graph, scale: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp of a float32 scale (TFLite requires 0 < scale < 1)."""
    require(0.0 < float(np.float32(scale)) < 1.0, op, graph, f"an input scale of {scale} (must be below 1)")
    return quantize_multiplier(float(np.float32(scale)))


@lowering(*CMP_OPS)
def lower_compare(op, graph, ctx) -> Step:
    x1, x2, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    require(x1.dtype == x2.dtype == "int8" and y.dtype == "bool", op, graph, f"{x1.dtype}/{x2.dtype} -> {y.dtype}")
    for t in (x1, x2):
        require(t.quant is not None and not t.quant.per_channel, op, graph,
                f"tensor {t.index} without per-tensor quantization")
    geo = _geometry(op, graph, x1, x2, y)
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_compare_params", f"{p}_params", op=CMP_OPS[op.kind], input1_offset=-x1.quant.zp,
                     input2_offset=-x2.quant.zp, left_shift=8, input1=_quant(_smaller_than_one(op, graph, x1.quant.s)),
                     input2=_quant(_smaller_than_one(op, graph, x2.quant.s))),
        cdecl.struct("tinyml_broadcast", f"{p}_shape", **geo.c()),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_compare_s8", [f"&{p}_params", f"&{p}_shape", TRef(x1.index), TRef(x2.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                inplace_ok=_inplace(op, graph, y), comment=f"{list(x1.shape)} vs {list(x2.shape)}")


def broadcast3(shapes, out_shape) -> tuple[list[int], list[list[int]]] | None:
    """Dims and per-operand strides (0 where broadcast) of three operands over the output,
    size-1 output dims dropped, contiguous runs merged, padded to 4-D; None beyond 4-D."""
    rank = len(out_shape)
    if any(len(s) > rank for s in shapes):
        return None
    full = [[1] * (rank - len(s)) + list(s) for s in shapes]
    strides = []
    for s in full:
        if any(a not in (1, o) for a, o in zip(s, out_shape)):
            return None
        st, acc = [0] * rank, 1
        for k in range(rank - 1, -1, -1):
            st[k] = acc if s[k] > 1 else 0
            acc *= s[k]
        strides.append(st)
    merged: list[list[int]] = []
    for k in range(rank):
        d = out_shape[k]
        if d == 1:
            continue
        ss = [st[k] for st in strides]
        if merged and all(merged[-1][1 + j] == ss[j] * d for j in range(3)):
            merged[-1] = [merged[-1][0] * d] + ss
            continue
        merged.append([d] + ss)
    if len(merged) > 4:
        return None
    while len(merged) < 4:
        merged.insert(0, [1, 0, 0, 0])
    return [m[0] for m in merged], [[m[1 + j] for m in merged] for j in range(3)]


@lowering("SELECT_V2", "SELECT")
@lowering("SELECT_V2", "SELECT", int16=True)
def lower_select(op, graph, ctx) -> Step:
    c, x, yv, out = (graph.t(i) for i in (*op.inputs[:3], op.outputs[0]))
    require(c.dtype == "bool" and x.dtype == yv.dtype == out.dtype and out.dtype in _SUFFIX, op, graph,
            f"{c.dtype} ? {x.dtype} : {yv.dtype} -> {out.dtype}")
    if op.kind == "SELECT":
        # SELECT (v1): same shapes, or a 1-D condition over the first dimension
        require(tuple(c.shape) == tuple(x.shape) == tuple(yv.shape) == tuple(out.shape), op, graph,
                "SELECT with differing shapes")
    geo = broadcast3([c.shape, x.shape, yv.shape], list(out.shape))
    require(geo is not None, op, graph,
            f"broadcast {list(c.shape)} ? {list(x.shape)} : {list(yv.shape)} -> {list(out.shape)}")
    dims, (sc, sx, sy) = geo
    p = ctx.name(f"op{op.index}")
    decl = cdecl.struct("tinyml_broadcast3", f"{p}_shape", dims=dims, stride_cond=sc, stride_x=sx, stride_y=sy)
    ins, outs = activations(graph, op)
    call = Call(f"tinyml_select_{_SUFFIX[out.dtype]}", [f"&{p}_shape", TRef(c.index), TRef(x.index), TRef(yv.index), TRef(out.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                inplace_ok=_inplace(op, graph, out), comment=f"{list(c.shape)} ? {list(x.shape)} : {list(yv.shape)}")


@lowering("PRELU")
@lowering("PRELU", int16=True)
def lower_prelu(op, graph, ctx) -> Step:
    """PRELU: TFLite's PreluPrepare multipliers (float32 scale products) and its
    BroadcastPrelu4DSlow arithmetic; alpha (usually a constant) broadcasts against the input.
    16x8: int16 input and output (zero point 0) with an int8 alpha, tflite_micro's PRELU
    (CalculatePreluParams: double scale quotients; its Prepare requires int8 alpha for int16).
    TensorFlow 2.21's converter refuses PRELU in 16x8, so such models come from other writers."""
    x, a, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    require(x.dtype == y.dtype and y.dtype in ("int8", "int16") and a.dtype == "int8", op, graph,
            f"{x.dtype}/{a.dtype} -> {y.dtype} (PRELU takes int8 or int16 input with int8 alpha)")
    for t in (x, a, y):
        require(t.quant is not None and not t.quant.per_channel, op, graph,
                f"tensor {t.index} without per-tensor quantization")
    for t in (x, y):
        require(t.dtype == "int8" or int(t.quant.zp) == 0, op, graph,
                f"int16 tensor {t.index} with zero point {int(t.quant.zp)} (16x8 activations are symmetric)")
    require(tuple(y.shape) == tuple(x.shape), op, graph, "an output shape differing from the input's")
    geo = _geometry(op, graph, x, a, y)
    f32 = np.float32
    if y.dtype == "int16":     # tflite_micro: double(input) / double(output), double(in) * double(alpha) / ...
        sx, sa, sy = (float(f32(t.quant.s)) for t in (x, a, y))
        pos, neg = quantize_multiplier(sx / sy), quantize_multiplier(sx * sa / sy)
    else:
        pos = quantize_multiplier(float(f32(f32(x.quant.s) / f32(y.quant.s))))
        neg = quantize_multiplier(float(f32(f32(f32(x.quant.s) * f32(a.quant.s)) / f32(y.quant.s))))
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_prelu_params", f"{p}_params", input_offset=-x.quant.zp, alpha_offset=-a.quant.zp,
                     output_offset=y.quant.zp, positive=_quant(pos), negative=_quant(neg)),
        cdecl.struct("tinyml_broadcast", f"{p}_shape", **geo.c()),
    ]
    ins, outs = activations(graph, op)
    call = Call(f"tinyml_prelu_{_SUFFIX[y.dtype]}", [f"&{p}_params", f"&{p}_shape", TRef(x.index), TRef(a.index),
                                                      TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                inplace_ok=[(x.index, y.index)] if not x.is_const else [],
                comment=f"{list(x.shape)} alpha {list(a.shape)}")


@lowering("ADD_N")
def lower_add_n(op, graph, ctx) -> Step:
    """ADD_N: TFLM's int8 AddN (CalculateOpData's multipliers, in double precision)."""
    xs = [graph.t(i) for i in op.inputs]
    y = graph.t(op.outputs[0])
    require(2 <= len(xs) <= 4, op, graph, f"{len(xs)} inputs (2 to 4 are supported)")
    require(all(t.dtype == "int8" for t in xs) and y.dtype == "int8", op, graph, "non-int8 tensors")
    x0 = xs[0]
    require(all(t.quant is not None and not t.quant.per_channel for t in xs + [y]), op, graph,
            "missing or per-channel quantization")
    require(all(tuple(t.shape) == tuple(y.shape) and t.quant.s == x0.quant.s and t.quant.zp == x0.quant.zp
                for t in xs), op, graph, "inputs of different shapes or quantizations")
    twice = 2 * float(np.float32(x0.quant.s))
    qin = quantize_multiplier(float(np.float32(x0.quant.s)) / twice)
    qout = quantize_multiplier(twice / ((1 << 20) * float(np.float32(y.quant.s))))
    p = ctx.name(f"op{op.index}")
    decl = cdecl.struct("tinyml_add_n_params", f"{p}_params", count=len(xs), input_offset=-x0.quant.zp,
                        output_offset=y.quant.zp, left_shift=20, input=_quant(qin), output=_quant(qout),
                        activation=cdecl.activation(-128, 127))
    args = [TRef(t.index) for t in xs] + ["NULL"] * (4 - len(xs))
    ins, outs = activations(graph, op)
    call = Call("tinyml_add_n_s8", [f"&{p}_params", y.numel, *args, TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                inplace_ok=_inplace(op, graph, y), comment=f"{len(xs)} inputs")
