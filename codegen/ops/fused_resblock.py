"""FUSED_RESBLOCK: a ResNet basic block as one row pipeline.

Matches, at an int8 ADD of two same-shape 4-D tensors,

    x -> CONV_2D (conv1) -> y -> CONV_2D (conv2, stride 1) -> z --+
    x -------------------------------------------- (identity) ----+--> ADD -> out
    x -> CONV_2D (shortcut, e.g. 1x1 stride 2) -> c --------------+   (instead of the identity)

where y, z (and c) are read only inside the block. tinyml_fused_resblock_s8
produces the output top to bottom: for each output row it computes the rows
of y that row needs (kept in a ring of conv2's window height), one row of z,
one row of c, and the ADD. So y and z exist as a few rows instead of whole
tensors (fused-layer tiling as in MCUNetV2), and the output can overwrite x
(token overwriting for CNNs) whenever the geometry proves that no row of x is
read after the output bytes covering it are written (`overwrite_safe`).

Arithmetic: each convolution is CONV_2D's packed lowering
(codegen/ops/conv.py conv_packed_fields), the ADD is FUSED_ADD's table
(codegen/ops/fused_common.py fused_add_struct); only where values live changes.
Registered before FUSED_ADD (priority 15), which otherwise takes the ADD.
"""
from __future__ import annotations

from tinyml.codegen import cdecl
from tinyml.codegen.patterns import FusionGroup, GraphIndex, pattern
from tinyml.steps import Call, ScratchRef, Step, TRef
from tinyml.codegen.lowering import require
from tinyml.codegen.ops.conv import conv_packed_fields
from tinyml.codegen.ops.fused_common import fused_add_struct, per_tensor_int8


def _conv(ix: GraphIndex, t: int):
    """The one-group int8 CONV_2D producing activation `t`, or None."""
    p = ix.producer_op(t)
    if p is None or p.kind != "CONV_2D" or len(p.inputs) < 2 or not ix.is_const(p.inputs[1]):
        return None
    x, w = ix.t(p.inputs[0]), ix.t(p.inputs[1])
    if x.is_const or len(x.shape) != 4 or len(w.shape) != 4 or x.shape[0] != 1 or w.shape[3] != x.shape[3]:
        return None
    if x.dtype != "int8" or ix.t(t).dtype != "int8":
        return None
    return p


def _stride1(op) -> bool:
    return op.options.stride_h == 1


@pattern("FUSED_RESBLOCK", lower=lambda g, graph, ctx: lower_resblock(g, graph, ctx), priority=15)
def match_resblock(ix: GraphIndex, op) -> FusionGroup | None:
    if op.kind != "ADD" or len(op.inputs) != 2 or len(op.outputs) != 1 or min(op.inputs) < 0:
        return None
    out = op.outputs[0]
    if not per_tensor_int8(ix.graph, op.inputs[0], op.inputs[1], out):
        return None
    shape = tuple(ix.t(out).shape)
    if len(shape) != 4 or shape[0] != 1 or any(tuple(ix.t(i).shape) != shape for i in op.inputs):
        return None
    for zi in (0, 1):
        z, other = op.inputs[zi], op.inputs[1 - zi]
        conv2 = _conv(ix, z)
        if conv2 is None or not _stride1(conv2) or ix.sole_reader(z) is not op:
            continue
        y = conv2.inputs[0]
        conv1 = _conv(ix, y)
        if conv1 is None or ix.sole_reader(y) is not conv2:
            continue
        x = conv1.inputs[0]
        members = [conv1.index, conv2.index, op.index]
        shortcut = None
        if other != x:
            shortcut = _conv(ix, other)
            if shortcut is None or shortcut.inputs[0] != x or ix.sole_reader(other) is not op:
                continue
            members.append(shortcut.index)
        elif tuple(ix.t(x).shape) != shape:
            continue
        return FusionGroup("FUSED_RESBLOCK", members, inputs=[x], outputs=[out],
                           roles={"conv1": conv1.index, "conv2": conv2.index, "add": op.index,
                                  "shortcut": None if shortcut is None else shortcut.index, "z_first": zi == 0})
    return None


def _rows_reach(conv: dict) -> tuple[int, int, int]:
    """(stride, top padding, window extent in rows) of a packed convolution's fields."""
    return conv["stride_h"], conv["pad_h"], (conv["k_h"] - 1) * conv["dilation_h"] + 1


def overwrite_safe(c1: dict, c2: dict, cs: dict | None, in_row: int, out_row: int) -> bool:
    """Whether the kernel may write the output over its input x.

    Replays the kernel's schedule: output row oy is written after the y rows it
    needs and its shortcut row are computed; afterwards x is still read by the
    y rows not computed yet (conv1, from row next * s1 - p1 on) and by the
    shortcut / identity rows below oy. Safe iff the bytes written so far,
    (oy + 1) * out_row, end at or before the first x byte still to be read."""
    s1, p1, _ = _rows_reach(c1)
    _, p2, e2 = _rows_reach(c2)
    y_h = c1["out_h"]
    nxt = 0
    for oy in range(c2["out_h"]):
        nxt = max(nxt, min(oy - p2 + e2 - 1, y_h - 1) + 1)
        future = []
        if nxt < y_h:
            future.append(max(0, nxt * s1 - p1))
        if oy + 1 < c2["out_h"]:
            if cs is None:
                future.append(oy + 1)
            else:
                ss, ps, _ = _rows_reach(cs)
                future.append(max(0, (oy + 1) * ss - ps))
        if future and (oy + 1) * out_row > min(future) * in_row:
            return False
    return True


def resblock_scratch(c1: dict, c2: dict, cs: dict | None, scratch1: int, scratch2: int, scratch_s: int) -> int:
    """Planned scratch of tinyml_fused_resblock_s8: y ring, z row (and c row), one im2col buffer
    (tests/test_scratch_size.py checks it against the kernel's C size function, tinyml_fused_resblock_s8_scratch_size)."""
    a4 = lambda n: (n + 3) // 4 * 4                                    # noqa: E731
    _, _, e2 = _rows_reach(c2)
    ring = a4(e2 * c1["out_w"] * c1["layer"]["output_depth"])
    row = a4(c2["out_w"] * c2["layer"]["output_depth"])
    return ring + row * (2 if cs is not None else 1) + max(scratch1, scratch2, scratch_s if cs else 0)


def lower_resblock(group: FusionGroup, graph, ctx) -> Step:
    r = group.roles
    conv1, conv2, add = graph.ops[r["conv1"]], graph.ops[r["conv2"]], graph.ops[r["add"]]
    sc = graph.ops[r["shortcut"]] if r["shortcut"] is not None else None
    c1, f1, s1, _, _ = conv_packed_fields(conv1, graph, ctx)
    c2, f2, s2, g2, _ = conv_packed_fields(conv2, graph, ctx)
    require(g2["stride_h"] == 1, conv2, graph, "a strided second convolution in a residual block")
    cs, fs, ss = None, "NULL", 0
    if sc is not None:
        cs, fs, ss, _, _ = conv_packed_fields(sc, graph, ctx)
    p = ctx.name(f"op{add.index}_resblock")
    x, out = group.inputs[0], group.outputs[0]
    xt, ot = graph.t(x), graph.t(out)
    in_row, out_row = xt.shape[2] * xt.shape[3], ot.shape[2] * ot.shape[3]
    unused = dict(c2, layer=dict(c2["layer"], bias="NULL", multiplier="NULL", shift="NULL"))
    params = {"conv1": c1, "conv2": c2, "shortcut": cs if cs is not None else unused,
              "has_shortcut": int(cs is not None), "conv2_rows": _rows_reach(c2)[2],
              "z_first": int(r["z_first"]), "add": fused_add_struct(ctx, f"{p}_add", add, graph)}
    scratch = resblock_scratch(c1, c2, cs, s1, s2, ss)
    decls = [cdecl.struct("tinyml_resblock_params", f"{p}_params", **params)]
    call = Call("tinyml_fused_resblock_s8", [ScratchRef(f"tinyml_fused_resblock_s8_scratch_size(&{p}_params)"),
                                             f"&{p}_params", TRef(x), f1, f2, fs, TRef(out)])
    safe = overwrite_safe(c1, c2, cs, in_row, out_row) and ot.nbytes <= xt.nbytes
    k = lambda c: f"{c['k_h']}x{c['k_w']}/{c['stride_h']}"             # noqa: E731
    how = f"shortcut conv {k(cs)}" if cs is not None else "identity shortcut"
    return Step(index=add.index, kind="FUSED_RESBLOCK", inputs=[x], outputs=[out], calls=[call], decls=decls,
                scratch_bytes=scratch, inplace_ok=[(x, out)] if safe else [],
                comment=f"{list(xt.shape)} -> conv {k(c1)} -> conv {k(c2)} (+ {how}) -> ADD {list(ot.shape)}, "
                        f"row by row ({params['conv2_rows']}-row ring)"
                        + (", output over the input" if safe else ""))
