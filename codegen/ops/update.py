"""DYNAMIC_UPDATE_SLICE, FILL (run-time value) and CAST: data movement and type conversion.

- DYNAMIC_UPDATE_SLICE (tflite dynamic_update_slice.cc, TFLM the same): the
  operand copied, then the update written at start indices clamped to
  [0, operand - update] per axis (indices constant or run-time, int32; constant
  int64 ones are narrowed here). The kernel skips the copy when the output is
  the operand's buffer, so the planner may share them (in place).
- FILL whose value is an activation (a constant value is folded at import,
  codegen.shape_fold): every output element is the value's bytes (fill.cc).
- CAST between int8, uint8, int16, int32, float32 and bool: static_cast per
  element (cast.cc); in place when both element widths are equal.
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.codegen.lowering import activations, lowering, require
from tinyml.codegen.ops.shape import COPY_DTYPES
from tinyml.ir import DTYPE_BYTES
from tinyml.steps import Call, Step, TRef

CAST_TYPES = {"int8": "TINYML_TYPE_INT8", "uint8": "TINYML_TYPE_UINT8", "int16": "TINYML_TYPE_INT16",
              "int32": "TINYML_TYPE_INT32", "float32": "TINYML_TYPE_FLOAT32", "bool": "TINYML_TYPE_BOOL"}


def _pad4(dims) -> list[int]:
    return [1] * (4 - len(dims)) + [int(d) for d in dims]


@lowering("DYNAMIC_UPDATE_SLICE")
def lower_dynamic_update_slice(op, graph, ctx) -> Step:
    x, u, s, y = (graph.t(i) for i in (*op.inputs[:3], op.outputs[0]))
    require(x.dtype in COPY_DTYPES and x.dtype == u.dtype == y.dtype, op, graph,
            f"{x.dtype} operand, {u.dtype} update -> {y.dtype}")
    rank = len(x.shape)
    require(1 <= rank <= 4, op, graph, f"a {rank}-D operand")
    require(len(u.shape) == rank and tuple(y.shape) == tuple(x.shape), op, graph,
            f"update {list(u.shape)} into operand {list(x.shape)} -> {list(y.shape)}")
    require(all(0 <= b <= a for a, b in zip(x.shape, u.shape)), op, graph,
            f"update {list(u.shape)} larger than the operand {list(x.shape)}")
    require(s.numel == rank and s.dtype in ("int32", "int64"), op, graph, f"{s.numel} {s.dtype} start indices")
    p = ctx.name(f"op{op.index}")
    if s.is_const and s.dtype == "int64":
        start = ctx.const_array(f"{p}_start", "int32_t",
                                np.clip(np.asarray(s.data, dtype=np.int64).reshape(-1), -2**31, 2**31 - 1)
                                .astype(np.int32))
    else:
        require(s.dtype == "int32", op, graph, "run-time int64 start indices")
        start = TRef(s.index)
    decl = cdecl.struct("tinyml_update_slice_params", f"{p}_params", rank=rank,
                        operand_dims=_pad4(x.shape), update_dims=_pad4(u.shape))
    ins, outs = activations(graph, op)
    call = Call("tinyml_dynamic_update_slice", [f"&{p}_params", DTYPE_BYTES[x.dtype], TRef(x.index),
                                                TRef(u.index), start, TRef(y.index)])
    inplace = [(x.index, y.index)] if not x.is_const else []
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                inplace_ok=inplace, comment=f"update {list(u.shape)} into {list(x.shape)}")


@lowering("FILL")
def lower_fill(op, graph, ctx) -> Step:
    v, y = graph.t(op.inputs[1]), graph.t(op.outputs[0])
    require(v.dtype in COPY_DTYPES and v.dtype == y.dtype, op, graph, f"{v.dtype} value -> {y.dtype}")
    require(v.numel == 1, op, graph, f"a value of {v.numel} elements")
    ins, outs = activations(graph, op)
    call = Call("tinyml_fill", [y.numel, DTYPE_BYTES[y.dtype], TRef(v.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call],
                comment=f"{y.numel} x the run-time value")


@lowering("CAST", int16=True)     # type-generic: also the 16x8 table's CAST (int16 in or out)
@lowering("CAST")
def lower_cast(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.dtype in CAST_TYPES and y.dtype in CAST_TYPES, op, graph, f"{x.dtype} -> {y.dtype}")
    require(x.numel == y.numel, op, graph, "input and output of different sizes")
    ins, outs = activations(graph, op)
    call = Call("tinyml_cast", [x.numel, CAST_TYPES[x.dtype], TRef(x.index), CAST_TYPES[y.dtype], TRef(y.index)])
    inplace = [(x.index, y.index)] if DTYPE_BYTES[x.dtype] == DTYPE_BYTES[y.dtype] and not x.is_const else []
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], inplace_ok=inplace,
                comment=f"{x.dtype} -> {y.dtype}")
