"""RESIZE_NEAREST_NEIGHBOR (int8): a pixel copy through two index tables; RESIZE_BILINEAR (int8).

The source row and column of every output row and column are computed here
the way TFLite's reference GetNearestNeighbor computes them, in float32
(tensorflow/lite/kernels/internal/reference/resize_nearest_neighbor.h):
scale = in / out, or (in - 1) / (out - 1) with align_corners (out > 1);
half_pixel_centers adds 0.5 before scaling; the product is rounded (align
corners) or floored, then clamped to [0, in - 1]. The kernel
(firmware/kernels/src/resize.c) only copies; like the reference it passes
bytes through whatever the output's quantization says.

RESIZE_BILINEAR follows TFLite's integer path (ResizeBilinearInteger, Q10
coordinates, 64-bit weighted sum, rounded half away from zero: TFLite 2.21
and tflite_micro agree, tested against both), see tinyml/shape.h.
"""
from __future__ import annotations

import math

import numpy as np

from tinyml.codegen import cdecl
from tinyml.codegen.lowering import activations, dims4, lowering, require
from tinyml.codegen.ops.rows import source_rows_overlap
from tinyml.steps import Call, Step, TRef


def nearest_sources(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> list[int]:
    """TFLite GetNearestNeighbor for every output index, in float32."""
    f = np.float32
    if align_corners and out_size > 1:
        scale = f(f(in_size - 1) / f(out_size - 1))
    else:
        scale = f(f(in_size) / f(out_size))
    offset = f(0.5) if half_pixel_centers else f(0.0)
    out = []
    for i in range(out_size):
        v = float(f(f(f(i) + offset) * scale))
        # std::round (half away from zero; v >= 0) or std::floor, then the clamps
        k = int(math.floor(v + 0.5)) if align_corners else int(math.floor(v))
        k = min(k, in_size - 1)
        if half_pixel_centers:
            k = max(0, k)
        out.append(k)
    return out


def _resize_operands(op, graph, dtype: str = "int8"):
    """Both resizes: `dtype` 4-D in and out, a constant [oh, ow] size matching the output;
    -> (x, y, ih, iw, oh, ow)."""
    x, size, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    require(x.dtype == dtype and y.dtype == dtype, op, graph, f"{x.dtype} -> {y.dtype} resizing")
    require(len(x.shape) == 4 and len(y.shape) == 4, op, graph, "non-4-D tensors")
    require(size.is_const and size.numel == 2, op, graph, "a non-constant size")
    oh, ow = (int(v) for v in np.asarray(size.data).reshape(-1))
    n, ih, iw, c = x.shape
    require(tuple(y.shape) == (n, oh, ow, c), op, graph,
            f"output shape {list(y.shape)} (size gives {[n, oh, ow, c]})")
    require(ih > 0 and iw > 0 and oh > 0 and ow > 0, op, graph, "an empty image")
    return x, y, ih, iw, oh, ow


@lowering("RESIZE_NEAREST_NEIGHBOR")
@lowering("RESIZE_NEAREST_NEIGHBOR", int16=True)
def lower_resize_nearest(op, graph, ctx) -> Step:
    """int8, and int16 in 16x8 models (tinyml_resize_nearest_s16: the same copies, 2-byte elements;
    source_rows_overlap states the overlap fact for int8 only)."""
    x, y, ih, iw, oh, ow = _resize_operands(op, graph, graph.t(op.inputs[0]).dtype
                                            if graph.t(op.inputs[0]).dtype == "int16" else "int8")
    o = op.options
    src_y = nearest_sources(ih, oh, o.align_corners, o.half_pixel_centers)
    src_x = nearest_sources(iw, ow, o.align_corners, o.half_pixel_centers)
    p = ctx.name(f"op{op.index}")
    ysym = ctx.const_array(f"{p}_src_y", "int32_t", np.asarray(src_y, dtype=np.int32))
    xsym = ctx.const_array(f"{p}_src_x", "int32_t", np.asarray(src_x, dtype=np.int32))
    decls = [
        cdecl.struct("tinyml_resize_nearest_params", f"{p}_params", out_h=oh, out_w=ow, src_y=ysym, src_x=xsym),
        cdecl.struct("tinyml_dims", f"{p}_in", **dict(zip("nhwc", dims4(x)))),
    ]
    ins, outs = activations(graph, op)
    func = "tinyml_resize_nearest_s16" if x.dtype == "int16" else "tinyml_resize_nearest_s8"
    call = Call(func, [f"&{p}_params", f"&{p}_in", TRef(x.index), TRef(y.index)])
    flags = [k for k in ("align_corners", "half_pixel_centers") if getattr(o, k)]
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                overlap=source_rows_overlap(graph, op, x.index, y.index, src_y),
                comment=f"{ih}x{iw} -> {oh}x{ow}" + (f" {' '.join(flags)}" if flags else ""))


def bilinear_scale_10(in_size: int, out_size: int, align_corners: bool) -> int:
    """ResizeBilinearInteger's Q10 scale (integer arithmetic, C division of non-negatives)."""
    if align_corners and out_size > 1:
        return ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    return ((1 << 10) * in_size + out_size // 2) // out_size


@lowering("RESIZE_BILINEAR")
def lower_resize_bilinear(op, graph, ctx) -> Step:
    x, y, ih, iw, oh, ow = _resize_operands(op, graph)
    o = op.options
    require(not (o.align_corners and o.half_pixel_centers), op, graph, "align_corners with half_pixel_centers")
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_resize_bilinear_params", f"{p}_params", out_h=oh, out_w=ow,
                     scale_h_10=bilinear_scale_10(ih, oh, o.align_corners),
                     scale_w_10=bilinear_scale_10(iw, ow, o.align_corners),
                     half_pixel_centers=int(o.half_pixel_centers)),
        cdecl.struct("tinyml_dims", f"{p}_in", **dict(zip("nhwc", dims4(x)))),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_resize_bilinear_s8", [f"&{p}_params", f"&{p}_in", TRef(x.index), TRef(y.index)])
    flags = [k for k in ("align_corners", "half_pixel_centers") if getattr(o, k)]
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                comment=f"{ih}x{iw} -> {oh}x{ow} bilinear" + (f" {' '.join(flags)}" if flags else ""))
