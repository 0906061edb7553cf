"""CONV_2D and DEPTHWISE_CONV_2D (int8 activations, int8 weights, int32 bias).

Multipliers follow TFLite's PopulateConvolutionQuantizationParams: per output
channel, double(input_scale) * double(filter_scale) / double(output_scale),
a single filter scale applying to every channel. Padding follows TFLite's
ComputePaddingHeightWidth (the top/left share of SAME padding).
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.steps import Call, ScratchRef, Step, TRef
from tinyml.codegen.lowering import activations, lowering, require
from tinyml.codegen.quant import activation_range, per_channel_multipliers
from tinyml.codegen.ops.rows import row_overlap


def out_size(padding: str, size: int, k: int, stride: int, dilation: int = 1) -> int:
    """TFLite ComputeOutSize."""
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size + stride - eff) // stride


def pad_before(padding: str, size: int, k: int, stride: int, dilation: int, out: int) -> int:
    """TFLite ComputePaddingWithOffset: the leading (top/left) padding; VALID gives 0."""
    if padding != "SAME":
        return 0
    eff = (k - 1) * dilation + 1
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2


def dims_decl(name: str, shape: tuple[int, int, int, int]) -> str:
    n, h, w, c = shape
    return cdecl.struct("tinyml_dims", name, n=n, h=h, w=w, c=c)


def geometry(op, graph, x_shape, k_h: int, k_w: int, y_shape, dilated: bool = True) -> dict:
    """Strides, dilations and leading pads of a windowed op, checked against the output shape."""
    o = op.options        # Conv2DOptions, DepthwiseConv2DOptions or Pool2DOptions
    padding = str(o.padding)
    sh, sw = o.stride_h, o.stride_w
    dh = o.dilation_h if dilated else 1
    dw = o.dilation_w if dilated else 1
    require(sh > 0 and sw > 0 and dh > 0 and dw > 0, op, graph, "a non-positive stride or dilation")
    _, ih, iw, _ = x_shape
    _, oh, ow, _ = y_shape
    require(out_size(padding, ih, k_h, sh, dh) == oh and out_size(padding, iw, k_w, sw, dw) == ow,
            op, graph, f"output shape {list(y_shape)} inconsistent with {padding} padding")
    g = {"stride_h": sh, "stride_w": sw, "dilation_h": dh, "dilation_w": dw,
         "pad_h": pad_before(padding, ih, k_h, sh, dh, oh), "pad_w": pad_before(padding, iw, k_w, sw, dw, ow)}
    require_int16(op, graph, g)
    return {**g, "padding": padding}


def requantize_double(x: int, multiplier: int, shift: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier with double rounding (gemmlowp's
    SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT), in Python integers."""
    left, right = max(shift, 0), max(-shift, 0)
    a = ((x << left) + (1 << 31)) % (1 << 32) - (1 << 31)       # int32 wrap of the left shift
    if a == multiplier == -(1 << 31):
        h = (1 << 31) - 1
    else:
        ab = a * multiplier
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        h = abs(ab + nudge) // (1 << 31) * (1 if ab + nudge >= 0 else -1)   # C division truncates
    if right == 0:
        return h
    mask = (1 << right) - 1
    remainder, threshold = h & mask, (mask >> 1) + (1 if h < 0 else 0)
    return (h >> right) + (1 if remainder > threshold else 0)


def shift_array(ctx, base: str, shifts, ctype: str = "int8_t") -> str:
    """The per-channel shifts in flash: int8 (tinyml_per_channel_quant, tinyml_invres_dw;
    TFLite's shifts are in -31..30) or int32 (tinyml_fc_layer.shift)."""
    if ctype == "int8_t":
        assert all(-128 <= int(s) <= 127 for s in shifts), "a requantization shift beyond int8"
    return ctx.const_array(base, ctype, shifts)


def _common(op, graph, ctx, channels: int, dead: np.ndarray | None = None, shift_type: str = "int8_t"):
    """Checks and the per-channel (multiplier, shift) arrays (shifts of C type `shift_type`).
    Channels marked in `dead` (all weights zero: a constant output) get multiplier 2^30,
    shift -1, whose requantization of 4 d is d exactly; the caller sets their bias to 4 d
    (dead_channel_bias)."""
    x, w = graph.t(op.inputs[0]), graph.t(op.inputs[1])
    bias = graph.t(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    y = graph.t(op.outputs[0])
    require(x.dtype == "int8" and y.dtype == "int8", op, graph, f"{x.dtype} -> {y.dtype} activations")
    require(x.quant is not None and y.quant is not None and w.quant is not None, op, graph,
            "unquantized tensors")
    require(w.dtype == "int8" and w.is_const, op, graph, "non-constant or non-int8 weights")
    require(len(x.shape) == 4 and len(w.shape) == 4 and len(y.shape) == 4, op, graph, "non-4-D tensors")
    require(bool(np.all(w.quant.zero_point == 0)), op, graph, "weights with a non-zero zero point")
    require(w.quant.scale.size in (1, channels), op, graph, "a filter scale count that is neither 1 "
            "nor the output channel count")
    require(bias is None or (bias.dtype == "int32" and bias.is_const and bias.numel == channels),
            op, graph, "a non-int32 or mis-sized bias")
    p = ctx.name(f"op{op.index}")
    mults, shifts = per_channel_multipliers(x.quant.s, w.quant.scale, y.quant.s, channels)
    if dead is not None:
        mults = [1 << 30 if d else m for m, d in zip(mults, dead)]
        shifts = [-1 if d else sh for sh, d in zip(shifts, dead)]
    msym = ctx.const_array(f"{p}_mult", "int32_t", mults)
    ssym = shift_array(ctx, f"{p}_shift", shifts, shift_type)
    lo, hi = activation_range(op.options.activation, y.quant.s, y.quant.zp)
    return x, w, bias, y, p, msym, ssym, (lo, hi)


INT16_FIELD = (-(1 << 15), (1 << 15) - 1)


def require_int16(op, graph, fields: dict) -> None:
    """The kernels' geometry structs hold dims, strides, pads and offsets as int16_t (flash)."""
    for k, v in fields.items():
        if isinstance(v, (int, np.integer)) and not INT16_FIELD[0] <= int(v) <= INT16_FIELD[1]:
            require(False, op, graph, f"{k} = {int(v)}, beyond the int16 geometry fields of the kernels")


def _params_decl(op, graph, p: str, x, y, g: dict, lo: int, hi: int, depth_multiplier: int, fast: bool = False,
                 grouped: bool = False) -> str:
    fields = {"input_offset": -x.quant.zp, "output_offset": y.quant.zp, "stride_h": g["stride_h"],
              "stride_w": g["stride_w"], "dilation_h": g["dilation_h"], "dilation_w": g["dilation_w"],
              "pad_h": g["pad_h"], "pad_w": g["pad_w"], "depth_multiplier": depth_multiplier}
    require_int16(op, graph, fields)
    extra = {"weights_grouped": 1} if grouped else {}
    return cdecl.struct("tinyml_conv_params", f"{p}_params", **fields,
                        activation=cdecl.activation(lo, hi), fast_requant=int(fast), **extra)


def group_depthwise_filter(data: np.ndarray) -> np.ndarray:
    """A [1][kh][kw][C] depthwise filter in the grouped layout of tinyml_depthwise_conv2d_s8
    (conv.h, weights_grouped): per four channels the K = kh*kw taps of the group
    contiguous (tap-major, 4 bytes a tap), then the C % 4 tail channels tap-major.
    A permutation of the same bytes."""
    c = data.shape[-1]
    taps = np.asarray(data).reshape(-1, c)                  # [K][C]
    c4 = c - c % 4
    head = taps[:, :c4].reshape(taps.shape[0], c4 // 4, 4).transpose(1, 0, 2).reshape(-1)
    return np.concatenate([head, taps[:, c4:].reshape(-1)])


def grouped_filter_symbol(ctx, w) -> str:
    """The grouped copy of depthwise filter `w` in flash (the TFLite-layout tensor is not emitted)."""
    key = ("depthwise_grouped", w.index)
    if key not in ctx.packed_filters:
        ctx.packed_filters[key] = ctx.const_array(f"tinyml_w{w.index}", "int8_t",
                                                  group_depthwise_filter(np.asarray(w.data, np.int8)))
    return ctx.packed_filters[key]


@lowering("CONV_2D")
def lower_conv2d(op, graph, ctx) -> Step:
    w0, x0 = graph.t(op.inputs[1]), graph.t(op.inputs[0])
    if len(w0.shape) == 4 and len(x0.shape) == 4 and w0.shape[3] == x0.shape[3]:
        return _lower_conv_packed(op, graph, ctx)       # one group
    out_c = w0.shape[0]
    x, w, bias, y, p, msym, ssym, (lo, hi) = _common(op, graph, ctx, out_c)
    _, kh, kw, fc = w.shape
    n, ih, iw, ic = x.shape
    require(y.shape[3] == out_c and y.shape[0] == n, op, graph, "output channels/batch not matching the filter")
    require(fc > 0 and ic % fc == 0 and out_c % (ic // fc) == 0, op, graph,
            f"input depth {ic} not a multiple of the filter depth {fc}")
    g = geometry(op, graph, x.shape, kh, kw, y.shape)
    decls = [
        cdecl.struct("tinyml_per_channel_quant", f"{p}_quant", multiplier=msym, shift=ssym),
        _params_decl(op, graph, p, x, y, g, lo, hi, 1),
        dims_decl(f"{p}_in", x.shape), dims_decl(f"{p}_filter", w.shape), dims_decl(f"{p}_out", y.shape),
    ]
    ksums = "NULL"
    if x.quant.zp != 0:
        sums = w.data.astype(np.int64).reshape(out_c, -1).sum(axis=1)
        ksums = ctx.const_array(f"{p}_ksum", "int32_t", sums)
    ins, outs = activations(graph, op)
    call = Call("tinyml_conv2d_s8", [
        f"&{p}_params", f"&{p}_quant", f"&{p}_in", TRef(x.index), f"&{p}_filter", TRef(w.index),
        TRef(bias.index) if bias is not None else "NULL", ksums, f"&{p}_out", TRef(y.index)])
    groups = ic // fc
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                overlap=row_overlap(graph, op, kh, g["stride_h"], g["dilation_h"], g["pad_h"]),
                comment=f"{kh}x{kw}x{fc}->{out_c} stride {g['stride_h']}x{g['stride_w']} "
                        f"dilation {g['dilation_h']}x{g['dilation_w']} {g['padding']}"
                        + (f" groups {groups}" if groups > 1 else ""))


def packed_scratch_bytes(kh: int, kw: int, ic: int, g: dict) -> int:
    """Planned scratch of tinyml_conv2d_packed_s8: two im2col windows unless 1x1/stride 1/unpadded
    (tests/test_scratch_size.py checks it against the kernel's C size function, tinyml_conv2d_packed_s8_scratch_size)."""
    direct = kh == kw == 1 and g["stride_h"] == g["stride_w"] == 1 and g["pad_h"] == g["pad_w"] == 0
    return 0 if direct else (2 * kh * kw * ic + 3) // 4 * 4


def fast_requant_ok(folded_bias: np.ndarray, weights: np.ndarray, shifts, zero_point: int,
                    x_max: int = 128) -> bool:
    """Whether tinyml_requantize_bounded (tinyml/common.h) gives the same bytes as the double
    rounding for every possible input of a layer: every accumulator bias + sum w*x (|x| <=
    x_max: 128 for raw int8, 255 for int8 plus the input offset) stays below 2^30 in
    magnitude, every shift is in -22..-1 and the output zero point in -128..128.
    weights: [channels][taps] int; folded_bias: [channels]."""
    w = np.abs(np.asarray(weights, dtype=np.int64)).reshape(len(folded_bias), -1).sum(axis=1)
    bound = np.abs(np.asarray(folded_bias, dtype=np.int64)) + x_max * w
    s = np.asarray(shifts, dtype=np.int64)
    return bool(np.all(bound < (1 << 30)) and np.all((s >= -22) & (s <= -1)) and -128 <= zero_point <= 128)


def conv_packed_fields(op, graph, ctx) -> tuple[dict, str, int, dict, str]:
    """(tinyml_conv_packed_params fields, packed filter symbol, scratch bytes, geometry, C name
    prefix) of a
    one-group CONV_2D (tinyml_conv2d_packed_s8): filter packed as [out_c][kh*kw*in_c], input
    offset folded into the bias (bias + input_offset * sum of the channel's weights; exact in
    int32, checked). Also used by fused steps that run convolutions row by row."""
    from tinyml.codegen.ops.fully_connected import INT32_MAX, INT32_MIN, packed_filter_symbol
    w0 = graph.t(op.inputs[1])
    out_c = w0.shape[0]
    dead = None
    if w0.data is not None and len(w0.shape) == 4:
        dead = ~np.any(np.asarray(w0.data).reshape(out_c, -1) != 0, axis=1)
    # int32 shifts: the pair path loads a channel pair's shifts with one LDRD; int8
    # shifts there cost ResNet-8 +22k and KWS +43k instructions (measured, issue 15 round 7)
    x, w, bias, y, p, msym, ssym, (lo, hi) = _common(op, graph, ctx, out_c, dead, shift_type="int32_t")
    _, kh, kw, ic = w.shape
    require(x.shape[3] == ic and y.shape[3] == out_c and y.shape[0] == x.shape[0], op, graph,
            "a grouped convolution or channels not matching the filter")
    g = geometry(op, graph, x.shape, kh, kw, y.shape)
    k = kh * kw * ic
    io = -int(x.quant.zp)
    wv = np.asarray(w.data, dtype=np.int64).reshape(out_c, k)
    b = np.asarray(bias.data, dtype=np.int64).reshape(-1) if bias is not None else np.zeros(out_c, np.int64)
    folded = b + io * wv.sum(axis=1)
    if dead is not None and dead.any():
        mults, shifts = per_channel_multipliers(x.quant.s, w.quant.scale, y.quant.s, out_c)
        for c in np.flatnonzero(dead):
            # the constant output clamp(requant(bias) + zp), re-expressed as 4 d with d = output - zp
            const = min(max(requantize_double(int(folded[c]), mults[c], shifts[c]) + int(y.quant.zp), lo), hi)
            folded[c] = 4 * (const - int(y.quant.zp))
    require(bool(np.all((folded >= INT32_MIN) & (folded <= INT32_MAX))), op, graph,
            "a bias beyond int32 once the input offset is folded in")
    _, shifts = per_channel_multipliers(x.quant.s, w.quant.scale, y.quant.s, out_c)
    if dead is not None:
        shifts = [-1 if d else sh for sh, d in zip(shifts, dead)]
    layer = {"accum_depth": k, "output_depth": out_c, "filter_offset": 0, "output_offset": y.quant.zp,
             "activation": cdecl.activation(lo, hi),
             "bias": ctx.const_array(f"{p}_bias", "int32_t", folded.astype(np.int32)),
             "multiplier": msym, "shift": ssym, "table": "NULL", "double_rounding": 1,
             "fast_requant": int(fast_requant_ok(folded, wv, shifts, int(y.quant.zp)))}
    _, ih, iw, _ = x.shape
    _, oh, ow, _ = y.shape
    fields = {"in_h": ih, "in_w": iw, "in_c": ic, "out_h": oh, "out_w": ow, "k_h": kh, "k_w": kw,
              "stride_h": g["stride_h"], "stride_w": g["stride_w"], "dilation_h": g["dilation_h"],
              "dilation_w": g["dilation_w"], "pad_h": g["pad_h"], "pad_w": g["pad_w"],
              "pad_value": int(x.quant.zp), "layer": layer}
    require_int16(op, graph, fields)
    return fields, packed_filter_symbol(ctx, w), packed_scratch_bytes(kh, kw, ic, g), g, p


def _lower_conv_packed(op, graph, ctx) -> Step:
    """One-group CONV_2D on the FULLY_CONNECTED inner loops (tinyml_conv2d_packed_s8)."""
    fields, fsym, scratch, g, p = conv_packed_fields(op, graph, ctx)
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    kh, kw, ic, out_c = fields["k_h"], fields["k_w"], fields["in_c"], fields["layer"]["output_depth"]
    decls = [cdecl.struct("tinyml_conv_packed_params", f"{p}_conv", **fields)]
    ins, outs = activations(graph, op)
    call = Call("tinyml_conv2d_packed_s8", [ScratchRef(f"tinyml_conv2d_packed_s8_scratch_size(&{p}_conv)"),
                                            f"&{p}_conv", x.shape[0], TRef(x.index), fsym, TRef(y.index)])
    how = "matrix product over pixels" if scratch == 0 else "two-pixel im2col"
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                scratch_bytes=scratch,
                overlap=row_overlap(graph, op, kh, g["stride_h"], g["dilation_h"], g["pad_h"]),
                comment=f"{kh}x{kw}x{ic}->{out_c} stride {g['stride_h']}x{g['stride_w']} "
                        f"dilation {g['dilation_h']}x{g['dilation_w']} {g['padding']}, packed filter, {how}")


@lowering("DEPTHWISE_CONV_2D")
def lower_depthwise(op, graph, ctx) -> Step:
    w0 = graph.t(op.inputs[1])
    out_c = w0.shape[3]
    x, w, bias, y, p, msym, ssym, (lo, hi) = _common(op, graph, ctx, out_c)
    _, kh, kw, _ = w.shape
    n, ih, iw, ic = x.shape
    require(w.shape[0] == 1, op, graph, f"filter shape {list(w.shape)}")
    require(y.shape[3] == out_c and y.shape[0] == n, op, graph, "output channels/batch not matching the filter")
    # TFLite derives the multiplier from the shapes (out_c = in_c * M).
    require(ic > 0 and out_c % ic == 0, op, graph, f"{out_c} output channels for {ic} input channels")
    mult = out_c // ic
    g = geometry(op, graph, x.shape, kh, kw, y.shape)
    _, shifts = per_channel_multipliers(x.quant.s, w.quant.scale, y.quant.s, out_c)
    b = np.asarray(bias.data, dtype=np.int64).reshape(-1) if bias is not None else np.zeros(out_c, np.int64)
    wv = np.asarray(w.data, dtype=np.int64).reshape(-1, out_c).T       # [channel][tap]
    fast = fast_requant_ok(b, wv, shifts, int(y.quant.zp), x_max=255)
    decls = [
        cdecl.struct("tinyml_per_channel_quant", f"{p}_quant", multiplier=msym, shift=ssym),
        _params_decl(op, graph, p, x, y, g, lo, hi, mult, fast, grouped=mult == 1),
        dims_decl(f"{p}_in", x.shape), dims_decl(f"{p}_filter", w.shape), dims_decl(f"{p}_out", y.shape),
    ]
    ins, outs = activations(graph, op)
    # multiplier 1: the filter re-laid in four-channel groups (one weight pointer per group)
    wref = grouped_filter_symbol(ctx, w) if mult == 1 else TRef(w.index)
    call = Call("tinyml_depthwise_conv2d_s8", [
        f"&{p}_params", f"&{p}_quant", f"&{p}_in", TRef(x.index), f"&{p}_filter", wref,
        TRef(bias.index) if bias is not None else "NULL", f"&{p}_out", TRef(y.index)])
    # the depthwise kernel also runs bottom to top (output above input): both allowances
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                overlap=row_overlap(graph, op, kh, g["stride_h"], g["dilation_h"], g["pad_h"],
                                    bidirectional=True),
                comment=f"{kh}x{kw} x{mult} stride {g['stride_h']}x{g['stride_w']} "
                        f"dilation {g['dilation_h']}x{g['dilation_w']} {g['padding']}")
