"""MEAN and SUM (int8, any constant axes, keep_dims true or false); REDUCE_MAX,
REDUCE_MIN (raw int8 extremes); ARG_MAX, ARG_MIN (first index of the extreme);
L2_NORMALIZATION (per-row inverse square root, gemmlowp fixed point).

TensorFlow 2.21's reference MEAN for int8 (tensorflow/lite/kernels/reduce.cc
with kReference) reduces with reference_ops::QuantizedMeanOrSum whatever the
axes: the int32 sum S of n inputs becomes
    clamp(MultiplyByQuantizedMultiplier(S - n * input_zp, m', s') + output_zp)
where (m, s) = QuantizeMultiplier(input_scale / output_scale) and 1/n is folded
in: shift = min(floor(log2 n), 32, 31 + s), m' = (m << shift) / n, s' = s - shift.
(Older TFLite releases special-cased 4-D H,W means and equal input/output
quantization; the per-op tests against TF 2.21 pin the general path.)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyml.codegen import cdecl
from tinyml.steps import Call, Step, TRef
from tinyml.codegen.lowering import activations, lowering, require


@dataclass
class MeanPlan:
    count: int
    multiplier: int
    shift: int
    dims: list[int]
    reduce: list[int]


def reduce_geometry(shape, axes: set[int]) -> tuple[list[int], list[int]] | None:
    """Drop size-1 dims, merge neighbours that are both reduced or both kept; pad to 4-D."""
    runs: list[list[int]] = []
    for k, d in enumerate(shape):
        if d == 1:
            continue
        r = 1 if k in axes else 0
        if runs and runs[-1][1] == r:
            runs[-1][0] *= d
        else:
            runs.append([d, r])
    if len(runs) > 4:
        return None
    while len(runs) < 4:
        runs.insert(0, [1, 0])
    return [r[0] for r in runs], [r[1] for r in runs]


def mean_plan(in_shape, axis_values, keep_dims: bool, in_scale: float, in_zp: int,
              out_scale: float, out_zp: int, fold_count: bool = True) -> MeanPlan | None:
    ndim = len(in_shape)
    axes = {a + ndim if a < 0 else a for a in axis_values}
    if any(a < 0 or a >= ndim for a in axes):
        return None
    count = int(np.prod([in_shape[a] for a in axes])) if axes else 1
    geo = reduce_geometry(in_shape, axes)
    if geo is None or count <= 0:
        return None
    dims, red = geo
    from tinyml.codegen.ops.elementwise import quantize_multiplier
    # PrepareMeanOrSum: double(input_scale) / double(output_scale).
    real = float(np.float32(in_scale)) / float(np.float32(out_scale))
    m, s = quantize_multiplier(real)
    if not fold_count:                  # SUM: QuantizedMeanOrSum with compute_sum
        return MeanPlan(count, int(m), s, dims, red)
    shift = min(count.bit_length() - 1, 32, 31 + s)
    if shift < 0:                       # input_scale / output_scale below 2^-31
        return None
    m2 = (m << shift) // count
    return MeanPlan(count, int(m2), s - shift, dims, red)

@lowering("MEAN", "SUM")
def lower_mean(op, graph, ctx) -> Step:
    x, ax, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    require(x.dtype == y.dtype == "int8", op, graph, f"{x.dtype} -> {y.dtype} (only int8 is supported)")
    require(ax.is_const, op, graph, "a non-constant axis tensor")
    require(x.quant is not None and y.quant is not None, op, graph, "unquantized int8 tensors")
    plan = mean_plan(x.shape, [int(a) for a in np.asarray(ax.data).reshape(-1)],
                     op.options.keep_dims,
                     x.quant.s, x.quant.zp, y.quant.s, y.quant.zp, fold_count=op.kind == "MEAN")
    require(plan is not None, op, graph, f"axes {np.asarray(ax.data).tolist()} of a {list(x.shape)} input")
    require(plan.count * 255 < (1 << 31), op, graph, "a reduction this large")
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_mean_params", f"{p}_params", input_zp=x.quant.zp,
                     output_zp=y.quant.zp, count=plan.count,
                     quant={"multiplier": plan.multiplier, "shift": plan.shift}),
        cdecl.struct("tinyml_reduce_shape", f"{p}_shape", dims=plan.dims, reduce=plan.reduce),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_mean_s8", [f"&{p}_params", f"&{p}_shape", TRef(x.index), TRef(y.index)])
    # Output k is written after all its inputs were read, at byte k, which no
    # later output reads (their inputs all sit at or after their own index).
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                inplace_ok=[(x.index, y.index)] if not x.is_const else [],
                comment=f"{op.kind.lower()} over {plan.count}")


def _axes(op, graph, x, ax) -> set[int]:
    require(ax.is_const, op, graph, "a non-constant axis tensor")
    n = len(x.shape)
    axes = {int(a) + n if int(a) < 0 else int(a) for a in np.asarray(ax.data).reshape(-1)}
    require(all(0 <= a < n for a in axes), op, graph, f"axes {np.asarray(ax.data).tolist()} of a {n}-D input")
    return axes


@lowering("REDUCE_MAX", "REDUCE_MIN")
def lower_reduce_max_min(op, graph, ctx) -> Step:
    x, ax, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    require(x.dtype == y.dtype == "int8", op, graph, f"{x.dtype} -> {y.dtype} (only int8 is supported)")
    require(x.quant is not None and y.quant is not None and x.quant.s == y.quant.s and x.quant.zp == y.quant.zp,
            op, graph, "different input and output quantization")
    geo = reduce_geometry(x.shape, _axes(op, graph, x, ax))
    require(geo is not None and x.numel > 0, op, graph, f"a reduction of {list(x.shape)} needing > 4 axes")
    p = ctx.name(f"op{op.index}")
    decl = cdecl.struct("tinyml_reduce_shape", f"{p}_shape", dims=geo[0], reduce=geo[1])
    func = "tinyml_reduce_max_s8" if op.kind == "REDUCE_MAX" else "tinyml_reduce_min_s8"
    ins, outs = activations(graph, op)
    call = Call(func, [f"&{p}_shape", TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                inplace_ok=[(x.index, y.index)] if not x.is_const else [],
                comment=f"{op.kind.lower()} over dims {geo[0]} reduce {geo[1]}")


@lowering("ARG_MAX", "ARG_MIN")
def lower_arg_max_min(op, graph, ctx) -> Step:
    x, ax, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    require(x.dtype == "int8" and y.dtype in ("int32", "int64"), op, graph, f"{x.dtype} -> {y.dtype}")
    axes = _axes(op, graph, x, ax)
    require(len(axes) == 1, op, graph, f"{len(axes)} axes")
    a = axes.pop()
    want = tuple(x.shape[:a]) + tuple(x.shape[a + 1:])
    require(tuple(y.shape) == want, op, graph, f"output shape {list(y.shape)} (expected {list(want)})")
    p = ctx.name(f"op{op.index}")
    decl = cdecl.struct("tinyml_arg_params", f"{p}_params", outer=int(np.prod(x.shape[:a], dtype=np.int64)),
                        axis_size=int(x.shape[a]), inner=int(np.prod(x.shape[a + 1:], dtype=np.int64)),
                        is_min=int(op.kind == "ARG_MIN"), index_bytes=4 if y.dtype == "int32" else 8)
    ins, outs = activations(graph, op)
    call = Call("tinyml_arg_max_min_s8", [f"&{p}_params", TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                comment=f"axis {a}")


@lowering("L2_NORMALIZATION")
def lower_l2_normalization(op, graph, ctx) -> Step:
    """Over the last axis; the output is TFLite's fixed int8 quantization (1/128, 0)."""
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.dtype == y.dtype == "int8" and tuple(x.shape) == tuple(y.shape), op, graph,
            f"{x.dtype} -> {y.dtype}")
    require(x.quant is not None and y.quant is not None, op, graph, "unquantized tensors")
    require(float(np.float32(y.quant.s)) == float(np.float32(1.0 / 128)) and y.quant.zp == 0, op, graph,
            f"output quantization ({y.quant.s}, {y.quant.zp}) other than (1/128, 0)")
    require(op.options.activation == "NONE", op, graph, "a fused activation")
    depth = int(x.shape[-1]) if x.shape else 1
    require(depth > 0 and depth * 255 * 255 < (1 << 31), op, graph, f"a depth of {depth}")
    ins, outs = activations(graph, op)
    call = Call("tinyml_l2_normalization_s8", [int(x.quant.zp), x.numel // depth, depth, TRef(x.index),
                                               TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call],
                inplace_ok=[(x.index, y.index)] if not x.is_const else [],
                comment=f"{x.numel // depth} rows of {depth}")
