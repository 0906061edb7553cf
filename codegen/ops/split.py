"""SPLIT, SPLIT_V, UNPACK and PACK: data movement on the shape group's kernels.

Each output of SPLIT / SPLIT_V / UNPACK is a strided view of the input
(tinyml_strided_copy, one call per output); PACK copies each input into its
slot of the output (tinyml_concat_part_copy, one call per input, the
concatenation of inputs given a new size-1 axis). Bytes are copied unchanged,
as TFLite's reference Split / SplitV / Unpack / Pack do
(tensorflow/lite/kernels/{split,split_v,unpack,pack}.cc). No sharing facts:
the copies use memcpy, so outputs never overlap the input.
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.codegen.lowering import activations, lowering, require
from tinyml.codegen.ops.shape import COPY_DTYPES, _merge_axes, _strides
from tinyml.ir import DTYPE_BYTES
from tinyml.steps import Call, Step, TRef


def _axis(op, graph, axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    require(0 <= a < rank, op, graph, f"axis {axis} of a {rank}-D tensor")
    return a


def _const_scalar(op, graph, k: int, what: str) -> int:
    t = graph.t(op.inputs[k])
    require(t.is_const and t.numel == 1 and t.dtype in ("int32", "int64"), op, graph, f"a non-constant {what}")
    return int(np.asarray(t.data).reshape(-1)[0])


def _split_step(op, graph, ctx, x_index: int, axis: int, sizes: list[int], squeeze: bool, what: str) -> Step:
    """One strided copy per output: output k is input[..., offset_k : offset_k + sizes[k], ...]."""
    x = graph.t(x_index)
    ys = [graph.t(o) for o in op.outputs]
    require(x.dtype in COPY_DTYPES and all(y.dtype == x.dtype for y in ys), op, graph, "mixed or unsupported dtypes")
    require(len(x.shape) <= 4, op, graph, f"a {len(x.shape)}-D input")
    require(len(sizes) == len(ys) and sum(sizes) == x.shape[axis] and all(s >= 0 for s in sizes), op, graph,
            f"sizes {sizes} for axis extent {x.shape[axis]}")
    st = _strides(tuple(x.shape))
    p = ctx.name(f"op{op.index}")
    decls, calls, offset = [], [], 0
    for k, (y, size) in enumerate(zip(ys, sizes)):
        shape = list(x.shape)
        shape[axis] = size
        want = shape[:axis] + shape[axis + 1:] if squeeze else shape
        require(tuple(want) == tuple(y.shape), op, graph, f"output {k} shape {list(y.shape)} (expected {want})")
        if size > 0:
            dims, stride = _merge_axes(shape, st)
            dims = [1] * (4 - len(dims)) + dims
            stride = [0] * (4 - len(stride)) + stride
            decls.append(cdecl.struct("tinyml_view4", f"{p}_view{k}", dims=dims, stride=stride,
                                      start=offset * st[axis]))
            calls.append(Call("tinyml_strided_copy", [f"&{p}_view{k}", DTYPE_BYTES[x.dtype], TRef(x.index),
                                                      TRef(y.index)]))
        offset += size
    ins, outs = activations(graph, op)
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=calls, decls=decls,
                comment=f"axis {axis}, {what} {sizes}")


@lowering("SPLIT")
def lower_split(op, graph, ctx) -> Step:
    x = graph.t(op.inputs[1])
    axis = _axis(op, graph, _const_scalar(op, graph, 0, "axis"), len(x.shape))
    n = len(op.outputs)
    require(n >= 1 and op.options.num_splits in (0, n) and x.shape[axis] % n == 0, op, graph,
            f"{n} splits of an axis of {x.shape[axis]}")
    return _split_step(op, graph, ctx, x.index, axis, [x.shape[axis] // n] * n, False, "sizes")


@lowering("SPLIT_V")
def lower_split_v(op, graph, ctx) -> Step:
    x, sz = graph.t(op.inputs[0]), graph.t(op.inputs[1])
    axis = _axis(op, graph, _const_scalar(op, graph, 2, "axis"), len(x.shape))
    require(sz.is_const, op, graph, "non-constant size_splits")
    sizes = [int(v) for v in np.asarray(sz.data).reshape(-1)]
    require(sizes.count(-1) <= 1, op, graph, "more than one -1 in size_splits")
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - sum(s for s in sizes if s != -1)
    return _split_step(op, graph, ctx, x.index, axis, sizes, False, "sizes")


@lowering("UNPACK")
def lower_unpack(op, graph, ctx) -> Step:
    x = graph.t(op.inputs[0])
    axis = _axis(op, graph, op.options.axis, len(x.shape))
    n = len(op.outputs)
    require(x.shape[axis] == n, op, graph, f"{n} outputs for an axis of {x.shape[axis]}")
    return _split_step(op, graph, ctx, x.index, axis, [1] * n, True, "unpacked")


@lowering("PACK")
def lower_pack(op, graph, ctx) -> Step:
    xs = [graph.t(i) for i in op.inputs]
    y = graph.t(op.outputs[0])
    rank = len(y.shape)
    axis = _axis(op, graph, op.options.axis, rank)
    require(y.dtype in COPY_DTYPES and all(t.dtype == y.dtype for t in xs), op, graph, "mixed or unsupported dtypes")
    shape = tuple(xs[0].shape)
    require(all(tuple(t.shape) == shape for t in xs), op, graph, "inputs of different shapes")
    want = shape[:axis] + (len(xs),) + shape[axis:]
    require(tuple(y.shape) == want, op, graph, f"output shape {list(y.shape)} (expected {list(want)})")
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis:], dtype=np.int64))
    p = ctx.name(f"op{op.index}_pack")
    decls, calls = [], []
    for k, t in enumerate(xs):
        decls.append(cdecl.struct("tinyml_concat_part", f"{p}_{k}", inner=inner, offset=k * inner, table="NULL"))
        calls.append(Call("tinyml_concat_part_copy", [f"&{p}_{k}", DTYPE_BYTES[y.dtype], outer, TRef(t.index),
                                                      len(xs) * inner, TRef(y.index)]))
    ins, outs = activations(graph, op)
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=calls, decls=decls,
                comment=f"axis {axis}, {len(xs)} inputs")
