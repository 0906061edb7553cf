"""GATHER (batch_dims 0, any copyable params type, int32/int64 indices).

Params and indices may each be constant or an activation (an embedding table
in flash indexed at run time, or an activation indexed by constants). Bytes
are copied unchanged, as TFLite's reference Gather does
(tensorflow/lite/kernels/gather.cc); an index outside the axis is an error
there and here (at generate time for constant indices, a kernel error
otherwise).
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.codegen.lowering import activations, lowering, require
from tinyml.codegen.ops.shape import COPY_DTYPES
from tinyml.ir import DTYPE_BYTES
from tinyml.steps import Call, Step, TRef


@lowering("GATHER")
def lower_gather(op, graph, ctx) -> Step:
    x, idx, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    require(x.dtype in COPY_DTYPES and x.dtype == y.dtype, op, graph, f"{x.dtype} -> {y.dtype}")
    require(op.options.batch_dims == 0, op, graph, f"batch_dims {op.options.batch_dims}")
    rank = len(x.shape)
    axis = op.options.axis + rank if op.options.axis < 0 else op.options.axis
    require(0 <= axis < rank, op, graph, f"axis {op.options.axis} of a {rank}-D tensor")
    want = tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1:])
    require(want == tuple(y.shape), op, graph, f"output shape {list(y.shape)} (expected {list(want)})")
    p = ctx.name(f"op{op.index}")
    if idx.is_const:
        require(idx.dtype in ("int32", "int64"), op, graph, f"{idx.dtype} indices")
        values = np.asarray(idx.data, dtype=np.int64).reshape(-1)
        require(bool(np.all((values >= 0) & (values < x.shape[axis]))), op, graph,
                f"indices outside [0, {x.shape[axis]})")
        index_arg = TRef(idx.index) if idx.dtype == "int32" else \
            ctx.const_array(f"{p}_indices", "int32_t", values.astype(np.int32))
    else:
        require(idx.dtype == "int32", op, graph, f"{idx.dtype} run-time indices")
        index_arg = TRef(idx.index)
    fields = {"outer": int(np.prod(x.shape[:axis], dtype=np.int64)), "axis_size": int(x.shape[axis]),
              "inner": int(np.prod(x.shape[axis + 1:], dtype=np.int64)), "count": int(idx.numel)}
    decl = cdecl.struct("tinyml_gather_params", f"{p}_params", **fields)
    ins, outs = activations(graph, op)
    call = Call("tinyml_gather", [f"&{p}_params", DTYPE_BYTES[x.dtype], TRef(x.index), index_arg, TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                comment=f"axis {axis}, {idx.numel} indices")


@lowering("EMBEDDING_LOOKUP")
def lower_embedding_lookup(op, graph, ctx) -> Step:
    """EMBEDDING_LOOKUP with a value table of the output's type: GATHER on axis 0 (TFLite's
    embedding_lookup.cc EvalSimple, TFLM's same-type path: rows copied, out-of-range ids an
    error). The hybrid form (int8 table, float32 output) computes in float and is refused."""
    ids, value, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    require(value.dtype in COPY_DTYPES and value.dtype == y.dtype, op, graph,
            f"{value.dtype} table -> {y.dtype} output (only the same type: no hybrid dequantization)")
    require(ids.dtype == "int32" and len(ids.shape) == 1, op, graph, f"{ids.dtype} {len(ids.shape)}-D ids")
    require(len(value.shape) >= 2, op, graph, f"a {len(value.shape)}-D table (TFLite requires at least 2-D)")
    want = (ids.shape[0],) + tuple(value.shape[1:])
    require(want == tuple(y.shape), op, graph, f"output shape {list(y.shape)} (expected {list(want)})")
    if ids.is_const:
        v = np.asarray(ids.data).reshape(-1)
        require(bool(np.all((v >= 0) & (v < value.shape[0]))), op, graph, f"ids outside [0, {value.shape[0]})")
    p = ctx.name(f"op{op.index}")
    fields = {"outer": 1, "axis_size": int(value.shape[0]),
              "inner": int(np.prod(value.shape[1:], dtype=np.int64)), "count": int(ids.numel)}
    decl = cdecl.struct("tinyml_gather_params", f"{p}_params", **fields)
    ins, outs = activations(graph, op)
    call = Call("tinyml_gather", [f"&{p}_params", DTYPE_BYTES[value.dtype], TRef(value.index), TRef(ids.index),
                                  TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                comment=f"{ids.numel} rows of a {value.shape[0]}-row table")


@lowering("GATHER_ND")
def lower_gather_nd(op, graph, ctx) -> Step:
    """GATHER_ND (int32 indices, constant or run-time; index depth 1..4): slices copied from the
    flat position the index tuple names, bounds-checked on that flat position as TFLite's
    reference GatherNd and TFLM's gather_nd.cc do."""
    x, idx, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    require(x.dtype in COPY_DTYPES and x.dtype == y.dtype, op, graph, f"{x.dtype} -> {y.dtype}")
    require(idx.dtype == "int32", op, graph, f"{idx.dtype} indices")
    require(len(idx.shape) >= 1, op, graph, "scalar indices")
    depth = int(idx.shape[-1])
    require(1 <= depth <= min(4, len(x.shape)), op, graph, f"index depth {depth} into a {len(x.shape)}-D tensor")
    want = tuple(idx.shape[:-1]) + tuple(x.shape[depth:])
    require(want == tuple(y.shape), op, graph, f"output shape {list(y.shape)} (expected {list(want)})")
    inner = int(np.prod(x.shape[depth:], dtype=np.int64))
    stride = [int(np.prod(x.shape[j + 1:], dtype=np.int64)) for j in range(depth)]
    count = int(idx.numel // depth)
    if idx.is_const:
        v = np.asarray(idx.data, dtype=np.int64).reshape(count, depth)
        pos = v @ np.asarray(stride, dtype=np.int64)
        require(bool(np.all((pos >= 0) & (pos + inner <= x.numel))), op, graph, "indices outside the params tensor")
    p = ctx.name(f"op{op.index}")
    decl = cdecl.struct("tinyml_gather_nd_params", f"{p}_params", count=count, depth=depth, inner=inner,
                        total=int(x.numel), stride=stride + [0] * (4 - depth))
    ins, outs = activations(graph, op)
    call = Call("tinyml_gather_nd", [f"&{p}_params", DTYPE_BYTES[x.dtype], TRef(x.index), TRef(idx.index),
                                     TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                comment=f"{count} slices of {inner}, index depth {depth}")
