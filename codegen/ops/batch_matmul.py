"""BATCH_MATMUL (int8 x int8 -> int8, per-tensor, adj_x/adj_y, broadcast batches)."""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.steps import Call, ScratchRef, Step, TRef
from tinyml.codegen.lowering import activations, lowering, require
from tinyml.codegen.quant import quantize_multiplier


# TensorFlow 2.21's reference BATCH_MATMUL requantizes with gemmlowp double
# rounding even though its FULLY_CONNECTED/CONV use single rounding (measured
# against tf.lite.Interpreter BUILTIN_REF: double rounding is bit-exact, single
# is not); TFLM builds without TFLITE_SINGLE_ROUNDING round twice as well.
DOUBLE_ROUNDING = 1


def _pad(shape: tuple[int, ...], n: int) -> list[int]:
    return [1] * (n - len(shape)) + list(shape)


def scratch_bytes(rows: int, depth: int, cols: int, adj_x: bool, adj_y: bool) -> int:
    """Planned scratch of tinyml_batch_matmul_s8 (tests/test_scratch_size.py checks it against the kernel's C size function,
    tinyml_batch_matmul_s8_scratch_size)."""
    def pad4(n: int) -> int:
        return (n + 3) // 4 * 4
    b = 0
    if adj_x:
        b += pad4(rows * depth)
    if not adj_y:
        b += pad4(depth * cols)
    return b + 4 * cols


def matmul_geometry(op, graph) -> dict:
    """tinyml_matmul_dims fields of BATCH_MATMUL `op` (ranks 2..4, broadcast batch axes)."""
    a, b, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    for t in (a, b, y):
        require(t.quant is not None and not t.quant.per_channel, op, graph,
                "per-channel or missing quantization")
    require(len(a.shape) >= 2 and len(b.shape) >= 2 and max(len(a.shape), len(b.shape)) <= 4,
            op, graph, f"ranks {len(a.shape)} and {len(b.shape)}")
    adj_x, adj_y = op.options.adj_x, op.options.adj_y
    la, lb = _pad(a.shape, 4), _pad(b.shape, 4)
    rows, depth = (la[3], la[2]) if adj_x else (la[2], la[3])
    depth_b, cols = (lb[3], lb[2]) if adj_y else (lb[2], lb[3])
    require(depth == depth_b, op, graph, f"inner dimensions {depth} and {depth_b}")
    batches = []
    for ax in (0, 1):
        da, db = la[ax], lb[ax]
        require(da == db or da == 1 or db == 1, op, graph, f"batch dims {da} and {db}")
        batches.append(max(da, db))
    sa = [la[1] * la[2] * la[3], la[2] * la[3]]
    sb = [lb[1] * lb[2] * lb[3], lb[2] * lb[3]]
    lhs_stride = [0 if la[ax] == 1 else sa[ax] for ax in (0, 1)]
    rhs_stride = [0 if lb[ax] == 1 else sb[ax] for ax in (0, 1)]
    require(y.numel == batches[0] * batches[1] * rows * cols, op, graph, "output size")
    return dict(batches=batches, lhs_stride=lhs_stride, rhs_stride=rhs_stride, rows=rows, depth=depth,
                cols=cols, adj_x=int(adj_x), adj_y=int(adj_y))


def matmul_multiplier(a, b, y) -> tuple[int, int]:
    """GetQuantizedConvolutionMultipler: float product of the input scales, then double."""
    real = float(np.float64(np.float32(a.quant.s) * np.float32(b.quant.s))) / float(np.float64(np.float32(y.quant.s)))
    return quantize_multiplier(real)


@lowering("BATCH_MATMUL")
def lower_batch_matmul(op, graph, ctx) -> Step:
    a, b, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    require(a.dtype == "int8" and b.dtype == "int8" and y.dtype == "int8", op, graph,
            f"{a.dtype} x {b.dtype} -> {y.dtype} (only int8)")
    g = matmul_geometry(op, graph)
    batches, rows, depth, cols, adj_x, adj_y = (g["batches"], g["rows"], g["depth"], g["cols"],
                                                bool(g["adj_x"]), bool(g["adj_y"]))
    m, s = matmul_multiplier(a, b, y)
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_matmul_dims", f"{p}_dims", **g),
        cdecl.struct("tinyml_matmul_params", f"{p}_params", lhs_offset=-a.quant.zp, rhs_offset=-b.quant.zp,
                     output_offset=y.quant.zp, quant={"multiplier": m, "shift": s},
                     double_rounding=DOUBLE_ROUNDING,
                     activation=cdecl.activation(-128, 127)),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_batch_matmul_s8", [ScratchRef(f"tinyml_batch_matmul_s8_scratch_size(&{p}_dims)"),
                                           f"&{p}_params", f"&{p}_dims", TRef(a.index), TRef(b.index),
                                           TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                scratch_bytes=scratch_bytes(rows, depth, cols, adj_x, adj_y),
                comment=f"{batches} x [{rows}x{depth}] . [{depth}x{cols}] adj_x={adj_x} adj_y={adj_y}")
