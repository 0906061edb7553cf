"""TILE (any copyable element type, up to 4-D): the input repeated along each axis.

The bytes follow TFLite's reference Tile (tensorflow/lite/kernels/tile.cc):
output[i] = input[i mod dims] per axis, no arithmetic, quantization passed
through. Keras UpSampling2D / ops.repeat export to TILE between RESHAPEs
(beyond TFLM, which has no TILE kernel).
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.codegen.lowering import activations, lowering, require
from tinyml.codegen.ops.shape import COPY_DTYPES
from tinyml.ir import DTYPE_BYTES
from tinyml.steps import Call, Step, TRef


def merge_tile_axes(dims: list[int], mult: list[int]) -> tuple[list[int], list[int]]:
    """Drop size-1 axes that are not repeated and merge runs of unrepeated axes (the
    same bytes: an unrepeated run is one block). Keras UpSampling2D's 5-D tiles
    ([1, h, 1, w, c] x [1, 1, 2, 1, 1]) become 3-D."""
    d2: list[int] = []
    m2: list[int] = []
    for d, m in zip(dims, mult):
        if d == 1 and m == 1:
            continue
        if m == 1 and m2 and m2[-1] == 1:
            d2[-1] *= d
            continue
        d2.append(d)
        m2.append(m)
    return d2 or [1], m2 or [1]


@lowering("TILE")
def lower_tile(op, graph, ctx) -> Step:
    x, m, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    require(x.dtype in COPY_DTYPES and x.dtype == y.dtype, op, graph, f"{x.dtype} -> {y.dtype}")
    require(m.is_const and m.dtype in ("int32", "int64"), op, graph, "non-constant multiples")
    mult = [int(v) for v in np.asarray(m.data).reshape(-1)]
    rank = len(x.shape)
    require(len(mult) == rank and all(v >= 1 for v in mult), op, graph, f"multiples {mult}")
    want = tuple(d * k for d, k in zip(x.shape, mult))
    require(want == tuple(y.shape), op, graph, f"output shape {list(y.shape)} (multiples give {list(want)})")
    dims, mult_m = merge_tile_axes(list(x.shape), mult)
    require(len(dims) <= 4, op, graph, f"tiling needing {len(dims)} axes")
    dims = [1] * (4 - len(dims)) + dims
    mult4 = [1] * (4 - len(mult_m)) + mult_m
    p = ctx.name(f"op{op.index}")
    decl = cdecl.struct("tinyml_tile_params", f"{p}_params", dims=dims, multiples=mult4)
    ins, outs = activations(graph, op)
    call = Call("tinyml_tile", [f"&{p}_params", DTYPE_BYTES[x.dtype], TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                comment=f"multiples {mult}")
