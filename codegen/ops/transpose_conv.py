"""TRANSPOSE_CONV (int8 activations, int8 per-channel or per-tensor weights, optional int32 bias).

Constants follow TFLite's transpose_conv.cc Prepare: per-channel multipliers
as for CONV_2D (PopulateConvolutionQuantizationParams), and the padding of
ComputePaddingHeightWidth evaluated with the transpose conv's *output* as the
forward convolution's input (stride, dilation 1, the filter size, the op's
SAME/VALID); the clamp range is the fused activation's. The C kernel
(firmware/kernels/src/transpose_conv.c) gathers every output pixel's taps, so
it needs no scratch (the reference scatters into an int32 buffer of the whole
output) and writes output rows top to bottom (an Overlap fact).
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.codegen.lowering import activations, lowering, require
from tinyml.codegen.ops.conv import dims_decl, out_size, pad_before, require_int16, shift_array
from tinyml.codegen.ops.int16 import acc_bound_ok
from tinyml.codegen.ops.rows import source_rows_overlap
from tinyml.codegen.quant import activation_range, per_channel_multipliers
from tinyml.steps import Call, Step, TRef


def first_input_rows(out_h: int, in_h: int, k: int, stride: int, pad: int) -> list[int]:
    """Per output row oy, the lowest input row iy whose scatter reaches it:
    iy * stride - pad + ky == oy for some 0 <= ky < k (clamped to [0, in_h])."""
    rows = []
    for oy in range(out_h):
        lo = -(-(oy + pad - (k - 1)) // stride)         # ceil((oy + pad - k + 1) / stride)
        rows.append(min(max(lo, 0), in_h))
    return rows


@lowering("TRANSPOSE_CONV")
@lowering("TRANSPOSE_CONV", int16=True)
def lower_transpose_conv(op, graph, ctx) -> Step:
    """int8, or 16x8 (int16 activations with zero point 0, int64 bias, `tinyml_transpose_conv_s16`:
    TFLite's and tflite_micro's int16 TransposeConv, int64 sums, 64-bit requantization)."""
    require(len(op.inputs) >= 3, op, graph, "fewer than 3 inputs")
    shape_t, w, x = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.inputs[2])
    bias = graph.t(op.inputs[3]) if len(op.inputs) > 3 and op.inputs[3] >= 0 else None
    y = graph.t(op.outputs[0])
    require(x.dtype == y.dtype and y.dtype in ("int8", "int16"), op, graph, f"{x.dtype} -> {y.dtype} activations")
    require(x.quant is not None and y.quant is not None and w.quant is not None, op, graph, "unquantized tensors")
    s16 = y.dtype == "int16"
    bias_type = "int64" if s16 else "int32"
    require(not s16 or (int(x.quant.zp) == 0 and int(y.quant.zp) == 0), op, graph,
            "int16 activations with a non-zero zero point (16x8 activations are symmetric)")
    require(w.dtype == "int8" and w.is_const, op, graph, "non-constant or non-int8 weights")
    require(shape_t.is_const, op, graph, "a non-constant output_shape")
    require(len(x.shape) == 4 and len(w.shape) == 4 and len(y.shape) == 4, op, graph, "non-4-D tensors")
    out_c, kh, kw, ic = w.shape
    n, ih, iw, xc = x.shape
    require(tuple(int(v) for v in np.asarray(shape_t.data).reshape(-1)) == tuple(y.shape), op, graph,
            f"output_shape {np.asarray(shape_t.data).reshape(-1).tolist()} differing from the output {list(y.shape)}")
    require(xc == ic and y.shape[3] == out_c and y.shape[0] == n, op, graph,
            "channels or batch not matching the filter")
    require(bool(np.all(w.quant.zero_point == 0)), op, graph, "weights with a non-zero zero point")
    require(w.quant.scale.size in (1, out_c), op, graph,
            "a filter scale count that is neither 1 nor the output channel count")
    require(bias is None or (bias.dtype == bias_type and bias.is_const and bias.numel == out_c), op, graph,
            f"a non-{bias_type} or mis-sized bias ({y.dtype} activations take {bias_type} bias)")
    require(not s16 or acc_bound_ok(w.data, bias, 0), op, graph,
            "a bias or weights whose accumulator can reach 2^47")
    o = op.options
    require(o.stride_h > 0 and o.stride_w > 0, op, graph, "a non-positive stride")
    padding = str(o.padding)
    _, oh, ow, _ = y.shape
    pad_h = pad_before(padding, oh, kh, o.stride_h, 1, out_size(padding, oh, kh, o.stride_h))
    pad_w = pad_before(padding, ow, kw, o.stride_w, 1, out_size(padding, ow, kw, o.stride_w))
    require_int16(op, graph, {"stride_h": o.stride_h, "stride_w": o.stride_w, "pad_h": pad_h, "pad_w": pad_w})
    p = ctx.name(f"op{op.index}")
    mults, shifts = per_channel_multipliers(x.quant.s, w.quant.scale, y.quant.s, out_c)
    msym = ctx.const_array(f"{p}_mult", "int32_t", mults)
    ssym = shift_array(ctx, f"{p}_shift", shifts)
    if s16:
        require(all(-31 <= v <= 7 for v in shifts), op, graph, "a rescale beyond 2^7")
    lo, hi = activation_range(o.activation, y.quant.s, y.quant.zp, y.dtype)
    decls = [
        cdecl.struct("tinyml_per_channel_quant", f"{p}_quant", multiplier=msym, shift=ssym),
        cdecl.struct("tinyml_conv_params", f"{p}_params", input_offset=-x.quant.zp, output_offset=y.quant.zp,
                     stride_h=o.stride_h, stride_w=o.stride_w, dilation_h=1, dilation_w=1,
                     pad_h=pad_h, pad_w=pad_w, depth_multiplier=1, activation=cdecl.activation(lo, hi)),
        dims_decl(f"{p}_in", x.shape), dims_decl(f"{p}_filter", w.shape), dims_decl(f"{p}_out", y.shape),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_transpose_conv_s16" if s16 else "tinyml_transpose_conv_s8", [
        f"&{p}_params", f"&{p}_quant", f"&{p}_in", TRef(x.index), f"&{p}_filter", TRef(w.index),
        TRef(bias.index) if bias is not None else "NULL", f"&{p}_out", TRef(y.index)])
    overlap = source_rows_overlap(graph, op, x.index, y.index, first_input_rows(oh, ih, kh, o.stride_h, pad_h))
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                overlap=overlap,
                comment=f"{kh}x{kw}x{ic}->{out_c} stride {o.stride_h}x{o.stride_w} {padding}"
                        + ("" if bias is not None else ", no bias"))

