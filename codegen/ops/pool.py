"""AVERAGE_POOL_2D and MAX_POOL_2D (int8).

TFLite's int8 pooling kernels never rescale: they average (or take the max
of) the raw int8 values and clamp to the fused activation's range, computed
from the output quantization.
"""
from __future__ import annotations

from tinyml.codegen import cdecl
from tinyml.steps import Call, Step, TRef
from tinyml.codegen.lowering import activations, lowering, require
from tinyml.codegen.quant import activation_range
from tinyml.codegen.ops.rows import row_overlap


@lowering("AVERAGE_POOL_2D", "MAX_POOL_2D")
def lower_pool(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.dtype == "int8" and y.dtype == "int8", op, graph, f"{x.dtype} -> {y.dtype} pooling")
    require(y.quant is not None, op, graph, "an unquantized output")
    return pool_step(op, graph, ctx, "s8", y.quant.zp, "int8",
                     lambda g: row_overlap(graph, op, op.options.filter_h, g["stride_h"], g["dilation_h"],
                                           g["pad_h"]), "")


def pool_step(op, graph, ctx, suffix: str, zp: int, dtype: str, overlap, tag: str) -> Step:
    """The pooling step of either type: shape checks, window geometry, activation clamp,
    and a call of tinyml_{avg,max}_pool_<suffix>; `overlap(geometry)` states the
    type's in-place rows, `tag` heads the comment."""
    # Imported here: codegen.ops.conv may itself be mid-import (op modules load each other's helpers).
    from tinyml.codegen.ops.conv import dims_decl, geometry
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(len(x.shape) == 4 and len(y.shape) == 4, op, graph, "non-4-D tensors")
    require(x.shape[0] == y.shape[0] and x.shape[3] == y.shape[3], op, graph, "batch/channels changing")
    fh, fw = op.options.filter_h, op.options.filter_w
    require(fh > 0 and fw > 0, op, graph, "an empty pooling window")
    g = geometry(op, graph, x.shape, fh, fw, y.shape, dilated=False)
    lo, hi = activation_range(op.options.activation, y.quant.s, zp, dtype)
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_pool_params", f"{p}_params", filter_h=fh, filter_w=fw,
                     stride_h=g["stride_h"], stride_w=g["stride_w"], pad_h=g["pad_h"], pad_w=g["pad_w"],
                     activation=cdecl.activation(lo, hi)),
        dims_decl(f"{p}_in", x.shape), dims_decl(f"{p}_out", y.shape),
    ]
    func = f"tinyml_{'avg' if op.kind == 'AVERAGE_POOL_2D' else 'max'}_pool_{suffix}"
    ins, outs = activations(graph, op)
    call = Call(func, [f"&{p}_params", f"&{p}_in", TRef(x.index), f"&{p}_out", TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                overlap=overlap(g), comment=f"{tag}{fh}x{fw} stride {g['stride_h']}x{g['stride_w']} {g['padding']}")
