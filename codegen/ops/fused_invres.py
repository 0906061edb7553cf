"""FUSED_INVERTED_RESIDUAL: a MobileNetV2 block as one row pipeline.

Matches

    x -> CONV_2D (expand) -> e [-> PAD] -> DEPTHWISE_CONV_2D kxk -> d -> CONV_2D 1x1 (project, linear) -> p
    [x ------------------------------------------------------------------------ ADD(p, x) -> out]

(the expand is a 1x1 in MobileNetV2 blocks; MobileNetV2's first block has
none, so the stem convolution before it (3x3 stride 2) takes its place and the
stem's feature map never exists either; the PAD is Keras' ZeroPadding2D before
a VALID stride-2 depthwise), where e, d, p are read only
inside the block. tinyml_fused_invres_s8 produces the output top to bottom:
per output row it computes the e rows the depthwise window needs next (a ring
of the window's height), one d row, one p row and the ADD. Nothing is
recomputed: each e row is computed once. The expanded tensor, the largest of a
MobileNetV2, never exists.

Arithmetic: the convolutions are CONV_2D's packed lowering (conv_packed_fields),
the depthwise is DEPTHWISE_CONV_2D's (same multipliers, padding and clamp),
the ADD is FUSED_ADD's table; only where values live changes.

Overlap: the kernel writes output row oy after reading x rows it needs for it;
`down_bytes` replays the schedule (tinyml.steps.Overlap): the output may start
that far before x. Residual blocks give 0 (output over the input).
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.codegen.lowering import require
from tinyml.codegen.ops.conv import (conv_packed_fields, fast_requant_ok, geometry, grouped_filter_symbol,
                                     require_int16, shift_array)
from tinyml.codegen.ops.fused_common import fused_add_struct, per_tensor_int8, rescale_struct
from tinyml.codegen.patterns import FusionGroup, GraphIndex, pattern
from tinyml.codegen.quant import activation_range, per_channel_multipliers
from tinyml.op_options import Activation
from tinyml.steps import Call, Overlap, ScratchRef, Step, TRef

MAX_K = 16        # TINYML_INVRES_MAX_K (tinyml/fused.h): the kernel's window-row table


def _int8_4d(ix: GraphIndex, t: int) -> bool:
    x = ix.t(t)
    return not x.is_const and x.dtype == "int8" and len(x.shape) == 4 and x.shape[0] == 1 and x.quant is not None


def _pointwise(ix: GraphIndex, op) -> bool:
    """A one-group 1x1 stride-1 int8 CONV_2D with constant weights."""
    if op is None or op.kind != "CONV_2D" or len(op.inputs) < 2 or not ix.is_const(op.inputs[1]):
        return False
    w = ix.t(op.inputs[1])
    if len(w.shape) != 4 or w.shape[1] != 1 or w.shape[2] != 1 or not _int8_4d(ix, op.inputs[0]):
        return False
    o = op.options
    return (w.shape[3] == ix.t(op.inputs[0]).shape[3] and o.stride_h == 1 and o.stride_w == 1
            and _int8_4d(ix, op.outputs[0]))


def _conv(ix: GraphIndex, op) -> bool:
    """A one-group int8 CONV_2D with constant weights on a batch-1 activation (any window)."""
    if op is None or op.kind != "CONV_2D" or len(op.inputs) < 2 or not ix.is_const(op.inputs[1]):
        return False
    w = ix.t(op.inputs[1])
    return (len(w.shape) == 4 and _int8_4d(ix, op.inputs[0]) and _int8_4d(ix, op.outputs[0])
            and w.shape[3] == ix.t(op.inputs[0]).shape[3])


def _zero_pad(ix: GraphIndex, op) -> tuple[int, int] | None:
    """(top, left) of a PAD that only pads rows/columns with the zero point (int8, same quant), or None."""
    if op is None or op.kind not in ("PAD", "PADV2") or len(op.inputs) < 2 or not ix.is_const(op.inputs[1]):
        return None
    x, y = ix.t(op.inputs[0]), ix.t(op.outputs[0])
    if not (_int8_4d(ix, op.inputs[0]) and _int8_4d(ix, op.outputs[0])) or x.quant.per_channel:
        return None
    if float(x.quant.s) != float(y.quant.s) or int(x.quant.zp) != int(y.quant.zp):
        return None
    pv = np.asarray(ix.const_value(op.inputs[1]), dtype=np.int64).reshape(-1, 2)
    if pv.shape != (4, 2) or np.any(pv < 0) or np.any(pv[0] != 0) or np.any(pv[3] != 0):
        return None
    if op.kind == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        v = ix.const_value(op.inputs[2])
        if v is None or np.asarray(v).size != 1 or int(np.asarray(v).reshape(-1)[0]) != int(y.quant.zp):
            return None
    return int(pv[1][0]), int(pv[2][0])


def _block(ix: GraphIndex, p: int):
    """(expand, pad, depthwise, project, x) of the block whose projection writes `p`, or None."""
    project = ix.producer_op(p)
    # a linear bottleneck: the projection has no activation (MobileNetV1's pointwise
    # convolutions all do, so a depthwise-separable chain is left to the row kernels)
    if not _pointwise(ix, project) or project.options.activation != Activation.NONE:
        return None
    d = project.inputs[0]
    dw = ix.producer_op(d)
    if dw is None or dw.kind != "DEPTHWISE_CONV_2D" or ix.sole_reader(d) is not project:
        return None
    if len(dw.inputs) < 2 or not ix.is_const(dw.inputs[1]) or not _int8_4d(ix, dw.inputs[0]):
        return None
    w = ix.t(dw.inputs[1])
    if len(w.shape) != 4 or w.shape[0] != 1 or w.shape[3] != ix.t(dw.inputs[0]).shape[3]:
        return None                                   # depth multiplier 1 only
    e = dw.inputs[0]
    pad = ix.producer_op(e)
    if pad is not None and pad.kind in ("PAD", "PADV2"):
        if _zero_pad(ix, pad) is None or ix.sole_reader(e) is not dw:
            return None
        e = pad.inputs[0]
    else:
        pad = None
    expand = ix.producer_op(e)
    if _conv(ix, expand) and ix.sole_reader(e) is (pad or dw):
        x = expand.inputs[0]
    else:
        expand, x = None, e
    return expand, pad, dw, project, x


def _add_of(ix: GraphIndex, op):
    """(p, x, p_first) when `op` is a per-tensor int8 ADD of a block's projection and its input."""
    if op.kind != "ADD" or len(op.inputs) != 2 or len(op.outputs) != 1 or min(op.inputs) < 0:
        return None
    if not per_tensor_int8(ix.graph, op.inputs[0], op.inputs[1], op.outputs[0]):
        return None
    shape = tuple(ix.t(op.outputs[0]).shape)
    if any(tuple(ix.t(i).shape) != shape for i in op.inputs):
        return None
    for pi in (0, 1):
        p, x = op.inputs[pi], op.inputs[1 - pi]
        b = _block(ix, p)
        if b is not None and b[4] == x and ix.sole_reader(p) is op:
            return b, pi == 0
    return None


@pattern("FUSED_INVERTED_RESIDUAL", lower=lambda g, graph, ctx: lower_invres(g, graph, ctx), priority=14)
def match_invres(ix: GraphIndex, op) -> FusionGroup | None:
    if op.kind == "ADD":
        found = _add_of(ix, op)
        if found is None:
            return None
        (expand, pad, dw, project, x), p_first = found
        add, out = op, op.outputs[0]
    elif op.kind == "CONV_2D":
        b = _block(ix, op.outputs[0])
        if b is None:
            return None
        reader = ix.sole_reader(op.outputs[0], "ADD")
        if reader is not None and _add_of(ix, reader) is not None:
            return None                               # the ADD takes the whole block
        expand, pad, dw, project, x = b
        add, out, p_first = None, op.outputs[0], True
    else:
        return None
    members = [m.index for m in (expand, pad, dw, project, add) if m is not None]
    return FusionGroup("FUSED_INVERTED_RESIDUAL", members, inputs=[x], outputs=[out],
                       roles={"expand": expand and expand.index, "pad": pad and pad.index, "dw": dw.index,
                              "project": project.index, "add": add and add.index, "p_first": p_first})


def _dw_fields(dw, graph, ctx, pad_top: int, pad_left: int, in_shape) -> tuple[dict, dict]:
    """(tinyml_invres_dw fields, geometry) of the depthwise, with a folded PAD's (top, left)."""
    x, w, y = graph.t(dw.inputs[0]), graph.t(dw.inputs[1]), graph.t(dw.outputs[0])
    bias = graph.t(dw.inputs[2]) if len(dw.inputs) > 2 and dw.inputs[2] >= 0 else None
    ch = w.shape[3]
    require(y.dtype == "int8" and y.quant is not None and w.quant is not None and w.dtype == "int8",
            dw, graph, "unquantized or non-int8 depthwise tensors")
    require(bool(np.all(w.quant.zero_point == 0)), dw, graph, "weights with a non-zero zero point")
    require(w.quant.scale.size in (1, ch), dw, graph, "a filter scale count that is neither 1 nor the channel count")
    require(bias is None or (bias.dtype == "int32" and bias.is_const and bias.numel == ch), dw, graph,
            "a non-int32 or mis-sized bias")
    _, kh, kw, _ = w.shape
    require(kh <= MAX_K, dw, graph, f"a {kh}-row depthwise window in a fused block (at most {MAX_K})")
    g = geometry(dw, graph, x.shape, kh, kw, y.shape)
    p = ctx.name(f"op{dw.index}")
    mults, shifts = per_channel_multipliers(x.quant.s, w.quant.scale, y.quant.s, ch)
    lo, hi = activation_range(dw.options.activation, y.quant.s, y.quant.zp)
    _, ih, iw, _ = in_shape
    _, oh, ow, _ = y.shape
    b = np.asarray(bias.data, dtype=np.int64).reshape(-1) if bias is not None else np.zeros(ch, np.int64)
    fast = fast_requant_ok(b, np.asarray(w.data, dtype=np.int64).reshape(-1, ch).T, shifts, int(y.quant.zp),
                           x_max=255)
    fields = {"in_h": ih, "in_w": iw, "channels": ch, "out_h": oh, "out_w": ow, "k_h": kh, "k_w": kw,
              "stride_h": g["stride_h"], "stride_w": g["stride_w"], "dilation_h": g["dilation_h"],
              "dilation_w": g["dilation_w"], "pad_h": g["pad_h"] + pad_top, "pad_w": g["pad_w"] + pad_left,
              "input_offset": -int(x.quant.zp), "output_offset": int(y.quant.zp),
              "activation": cdecl.activation(lo, hi),
              "bias": ctx.const_array(f"{p}_bias", "int32_t", np.asarray(bias.data, np.int32).reshape(-1))
              if bias is not None else "NULL",
              "multiplier": ctx.const_array(f"{p}_mult", "int32_t", mults),
              "shift": shift_array(ctx, f"{p}_shift", shifts), "fast_requant": int(fast),
              "weights_grouped": int(kh == 3 and kw == 3)}
    require_int16(dw, graph, fields)
    return fields, g


def overlap_down_bytes(dw: dict, expand: tuple[int, int] | None, has_add: bool, in_row: int,
                       out_row: int) -> int:
    """How far the output may start before x (tinyml.steps.Overlap.down_bytes), by replaying the kernel.

    `expand`: None, or the expanding convolution's (stride, top padding) in rows.
    Output row oy is written once the depthwise rows it needs exist: e rows (or,
    without expand, x rows) up to oy*s - p + reach. After that, x is still read
    by the next e row (its expand window from row next*s_e - p_e; without expand,
    the window of row oy + 1 from (oy+1)*s - p) and, with the ADD, by the
    identity row oy + 1. Writing bytes up to out_start + (oy+1)*out_row must not
    reach the first x byte still to be read:
    out_start <= x_start + first*in_row - (oy+1)*out_row."""
    reach = (dw["k_h"] - 1) * dw["dilation_h"]
    s, pad, in_h, out_h = dw["stride_h"], dw["pad_h"], dw["in_h"], dw["out_h"]
    nxt, down = 0, 0
    for oy in range(out_h):
        nxt = max(nxt, min(oy * s - pad + reach, in_h - 1) + 1)
        if oy + 1 == out_h:
            break                                     # nothing is read after the last row
        future = [oy + 1] if has_add else []          # the next identity row
        if expand is not None and nxt < in_h:
            future.append(max(0, nxt * expand[0] - expand[1]))   # the expand of e row nxt
        if expand is None:                            # the next window's first in-image x row
            top, dil = (oy + 1) * s - pad, dw["dilation_h"]
            first = top if top >= 0 else top + (-top + dil - 1) // dil * dil
            if first < in_h:
                future.append(first)
        if future:
            down = max(down, (oy + 1) * out_row - min(future) * in_row)
    return max(0, down)


def invres_scratch(dw: dict, has_expand: bool, has_add: bool, out_row: int, col: int) -> int:
    """Planned scratch of tinyml_fused_invres_s8: e ring, d row, p row (with the ADD), im2col
    (tests/test_scratch_size.py checks it against tinyml_fused_invres_s8_scratch_size)."""
    a4 = lambda n: (n + 3) // 4 * 4                                    # noqa: E731
    rows = (dw["k_h"] - 1) * dw["dilation_h"] + 1
    ring = a4(rows * dw["in_w"] * dw["channels"]) if has_expand else 0
    return ring + a4(dw["out_w"] * dw["channels"]) + (a4(out_row) if has_add else 0) + col


def lower_invres(group: FusionGroup, graph, ctx) -> Step:
    r = group.roles
    ops = graph.ops
    expand = ops[r["expand"]] if r["expand"] is not None else None
    pad = ops[r["pad"]] if r["pad"] is not None else None
    dw, project = ops[r["dw"]], ops[r["project"]]
    add = ops[r["add"]] if r["add"] is not None else None
    x, out = group.inputs[0], group.outputs[0]
    xt, ot = graph.t(x), graph.t(out)
    pad_top = pad_left = 0
    e_shape = graph.t(dw.inputs[0]).shape
    if pad is not None:
        pv = np.asarray(graph.t(pad.inputs[1]).data, dtype=np.int64).reshape(4, 2)
        pad_top, pad_left = int(pv[1][0]), int(pv[2][0])
        e_shape = graph.t(pad.inputs[0]).shape
    d, _ = _dw_fields(dw, graph, ctx, pad_top, pad_left, e_shape)
    # a 3x3 filter in the grouped layout (the kernel's one-pointer window rows)
    wdw = grouped_filter_symbol(ctx, graph.t(dw.inputs[1])) if d["weights_grouped"] else TRef(dw.inputs[1])
    ce, fe, se = None, "NULL", 0
    if expand is not None:
        ce, fe, se, _, _ = conv_packed_fields(expand, graph, ctx)
    cp, fp, sp, _, _ = conv_packed_fields(project, graph, ctx)
    require(cp["layer"]["accum_depth"] == d["channels"], project, graph, "a projection not reading the depthwise")
    name = ctx.name(f"op{(add or project).index}_invres")
    unused = dict(cp, layer=dict(cp["layer"], bias="NULL", multiplier="NULL", shift="NULL"))
    rows = (d["k_h"] - 1) * d["dilation_h"] + 1
    params = {"expand": ce if ce is not None else unused, "dw": d, "project": cp,
              "has_expand": int(ce is not None), "dw_rows": rows, "has_add": int(add is not None),
              "p_first": int(r["p_first"]),
              "add": fused_add_struct(ctx, f"{name}_add", add, graph) if add is not None else _no_add()}
    in_row, out_row = xt.shape[2] * xt.shape[3], ot.shape[2] * ot.shape[3]
    scratch = invres_scratch(d, ce is not None, add is not None, out_row, max(se, sp))
    decls = [cdecl.struct("tinyml_invres_params", f"{name}_params", **params)]
    call = Call("tinyml_fused_invres_s8", [ScratchRef(f"tinyml_fused_invres_s8_scratch_size(&{name}_params)"),
                                           f"&{name}_params", TRef(x), fe,
                                           wdw, fp, TRef(out)])
    down = overlap_down_bytes(d, (ce["stride_h"], ce["pad_h"]) if ce is not None else None, add is not None,
                              in_row, out_row)
    exp = "" if ce is None else \
        f"expand conv {ce['k_h']}x{ce['k_w']}/{ce['stride_h']} ->{ce['layer']['output_depth']} -> "
    return Step(index=(add or project).index, kind="FUSED_INVERTED_RESIDUAL", inputs=[x], outputs=[out],
                calls=[call], decls=decls, scratch_bytes=scratch, overlap=Overlap(down_bytes=down),
                comment=f"{list(xt.shape)} -> {exp}depthwise {d['k_h']}x{d['k_w']}/{d['stride_h']} -> project 1x1"
                        + (" -> ADD" if add is not None else "") + f" {list(ot.shape)}, row by row "
                        f"({rows}-row ring{', padding folded' if pad is not None else ''})")


def _no_add() -> dict:
    return {"input1": rescale_struct(0, (0, 0)), "input2": rescale_struct(0, (0, 0)), "output": {"multiplier": 0, "shift": 0}, "output_offset": 0,
            "activation": cdecl.activation(-128, 127)}
