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
