"""FULLY_CONNECTED (int8 in/out, int8 weights, optional int32 bias).

Build-time work (so the kernel only multiplies and accumulates):
- the input-offset term is folded into the bias: sum_d (w + fo)(x + io) + b =
  dot(w, x) + fo * sum(x) + [b + io * sum(w) + n * io * fo], the bracket exact
  in int32 (checked) and computed here;
- the filter is packed into the order the kernel's inner loops read it (see
  tinyml/fc.h): for one input row (tinyml_fc_s8_pairs) row pairs whose first
  row is stored +128 so one SMLAD of the raw word serves both rows (the bias of
  that row then holds b[r] + 256 b[r+1]); for more rows (tinyml_fc_s8) groups of
  4 output rows, 4 depth values per row per block.
  Packing only reorders bytes; the packed array replaces the filter in flash.
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.steps import Call, Step, TRef
from tinyml.codegen.lowering import activations, lowering, require
from tinyml.codegen.quant import activation_range, per_channel_multipliers, quantize_multiplier
from tinyml.codegen.ops.rows import fc_overlap

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
# Shifts the int8 shift array of tinyml_fc_layer may hold (fc.c fc_requant_s8:
# e = -1 - shift in 0..23, so (2 zp + 1) 2^e fits int32; real multipliers in [2^-25, 0.5)).
SHIFT8_MIN, SHIFT8_MAX = -24, -1


def pack_filter(w: np.ndarray) -> np.ndarray:
    """[out][n] int8 -> the packed byte order of tinyml/fc.h (same size)."""
    w = np.asarray(w, dtype=np.int8)
    return w.reshape(-1)[_pack_order(*w.shape)]


def unpack_filter(p: np.ndarray, od: int, n: int) -> np.ndarray:
    """Inverse of pack_filter (used by tests)."""
    order = _pack_order(od, n)
    w = np.empty(od * n, dtype=np.int8)
    w[order] = np.asarray(p, dtype=np.int8)
    return w.reshape(od, n)


def _pack_order(od: int, n: int) -> np.ndarray:
    """pack_filter(w) == w.reshape(-1)[_pack_order(od, n)]."""
    ids = np.arange(od * n, dtype=np.int64).reshape(od, n)
    n4, groups = n // 4 * 4, od // 4
    parts = []
    for g in range(groups):
        rows = ids[4 * g:4 * g + 4]
        parts.append(rows[:, :n4].reshape(4, n4 // 4, 4).transpose(1, 0, 2).reshape(-1))
        parts.append(rows[:, n4:].reshape(-1))
    parts.append(ids[4 * groups:].reshape(-1))
    return np.concatenate(parts)


def pack_filter_pairs(w: np.ndarray) -> np.ndarray:
    """[out][n] int8 -> the row-pair layout of tinyml_fc_s8_pairs (tinyml/fc.h; same
    size): per group of 4 rows and block of 4 depth values k..k+3, per row pair
    (r, r+1) the words (w[r][k]^0x80, w[r+1][k], w[r][k+2]^0x80, w[r+1][k+2]) and
    (w[r][k+1]^0x80, w[r+1][k+1], w[r][k+3]^0x80, w[r+1][k+3]); then the group's
    depth tail rows, plain; then the output_depth % 4 remaining rows, plain."""
    w = np.asarray(w, dtype=np.int8)
    od, n = w.shape
    u = w.view(np.uint8).astype(np.uint8)
    n4, groups = n // 4 * 4, od // 4
    parts = []
    for g in range(groups):
        rows = u[4 * g:4 * g + 4]
        # blocks[b, r, j] = row r, depth 4 b + j
        blocks = rows[:, :n4].reshape(4, n4 // 4, 4).transpose(1, 0, 2)
        out = np.empty((n4 // 4, 2, 2, 4), dtype=np.uint8)   # block, pair, word, byte
        for pair in range(2):
            even, odd = blocks[:, 2 * pair] ^ 0x80, blocks[:, 2 * pair + 1]
            for word, (k0, k1) in enumerate(((0, 2), (1, 3))):
                out[:, pair, word] = np.stack([even[:, k0], odd[:, k0], even[:, k1], odd[:, k1]], axis=1)
        parts.append(out.reshape(-1))
        parts.append(rows[:, n4:].reshape(-1))
    parts.append(u[4 * groups:].reshape(-1))
    return np.concatenate(parts).view(np.int8)


def pair_bias(folded: np.ndarray) -> np.ndarray:
    """The int32 bias of tinyml_fc_s8_pairs: per group of 4 rows, the first row of
    each pair gets 256 x the second row's bias added (wrapped modulo 2^32)."""
    b = np.asarray(folded, dtype=np.int64).copy()
    groups = b.size // 4
    for r in range(0, 4 * groups, 2):
        b[r] = b[r] + 256 * b[r + 1]
    return ((b + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def fc_multipliers(x, w, y, out_depth: int) -> tuple[list[int], list[int]]:
    if w.quant.per_channel:
        return per_channel_multipliers(x.quant.s, w.quant.scale, y.quant.s, out_depth)
    # GetQuantizedConvolutionMultipler: the float product, then double.
    real = float(np.float64(np.float32(x.quant.s) * np.float32(w.quant.s))) / float(np.float64(np.float32(y.quant.s)))
    m, s = quantize_multiplier(real)
    return [m] * out_depth, [s] * out_depth


def packed_filter_symbol(ctx, w) -> str:
    """The packed copy of constant filter `w` in flash, shared by every op using it.
    Named like the tensor's own symbol (the unpacked filter is not emitted)."""
    cache = ctx.packed_filters
    if w.index not in cache:
        od, n = w.shape[0], int(np.prod(w.shape[1:]))
        data = np.asarray(w.data).reshape(od, n)
        cache[w.index] = ctx.const_array(f"tinyml_w{w.index}", "int8_t", pack_filter(data))
    return cache[w.index]


def pairs_filter_symbol(ctx, w) -> str:
    """The row-pair copy (pack_filter_pairs) of constant filter `w` in flash, shared
    by every tinyml_fc_s8_pairs call using it."""
    key = ("pairs", w.index)
    if key not in ctx.packed_filters:
        od, n = w.shape[0], int(np.prod(w.shape[1:]))
        data = np.asarray(w.data).reshape(od, n)
        ctx.packed_filters[key] = ctx.const_array(f"tinyml_w{w.index}", "int8_t", pack_filter_pairs(data))
    return ctx.packed_filters[key]


def fc_layer(ctx, graph, op, p: str, table: str = "NULL", pairs: bool = False) -> tuple[dict, str]:
    """(tinyml_fc_layer fields, packed filter symbol) of a FULLY_CONNECTED op; with
    `pairs`, for tinyml_fc_s8_pairs (row-pair filter, pair_bias)."""
    x, w, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    bias = graph.t(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    out_depth, n = w.shape[0], w.shape[1]
    mults, shifts = fc_multipliers(x, w, y, out_depth)
    io, fo = -int(x.quant.zp), -int(w.quant.zp)
    wv = np.asarray(w.data, dtype=np.int64).reshape(out_depth, n)
    b = np.asarray(bias.data, dtype=np.int64).reshape(-1) if bias is not None else np.zeros(out_depth, np.int64)
    folded = b + io * wv.sum(axis=1) + n * io * fo
    require(bool(np.all((folded >= INT32_MIN) & (folded <= INT32_MAX))), op, graph,
            "a bias beyond int32 once the input offset is folded in")
    lo, hi = activation_range(op.options.activation, y.quant.s, y.quant.zp)
    from tinyml.codegen.ops.fused_common import shared_array
    # One requantization for every output (per-tensor weights, or per-channel
    # scales that happen to be equal): one-element arrays, per_tensor = 1.
    per_tensor = len(set(mults)) == 1 and len(set(shifts)) == 1
    if per_tensor:
        mults, shifts = mults[:1], shifts[:1]
    fields = {"accum_depth": n, "output_depth": out_depth, "filter_offset": fo, "output_offset": y.quant.zp,
              "activation": cdecl.activation(lo, hi),
              "bias": ctx.const_array(f"{p}_bias", "int32_t", pair_bias(folded) if pairs else folded.astype(np.int32)),
              "multiplier": shared_array(ctx, f"{p}_mult", "int32_t", mults),
              "table": table, "double_rounding": 0, "per_tensor": int(per_tensor)}
    if all(SHIFT8_MIN <= s <= SHIFT8_MAX for s in shifts):
        # int8 shifts (a quarter of the bytes) and the one-SMLAL epilogue (fc.c fc_requant_s8)
        fields["shift"] = "NULL"
        fields["shift8"] = shared_array(ctx, f"{p}_shift", "int8_t", shifts)
    else:
        fields["shift"] = shared_array(ctx, f"{p}_shift", "int32_t", shifts)
    return fields, (pairs_filter_symbol if pairs else packed_filter_symbol)(ctx, w)


@lowering("FULLY_CONNECTED")
def lower_fully_connected(op, graph, ctx) -> Step:
    x, w = graph.t(op.inputs[0]), graph.t(op.inputs[1])
    bias = graph.t(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    y = graph.t(op.outputs[0])
    require(x.dtype == "int8" and y.dtype == "int8", op, graph, f"{x.dtype} -> {y.dtype} activations")
    require(w.dtype == "int8" and w.is_const, op, graph, "non-constant or non-int8 weights")
    require(bias is None or (bias.dtype == "int32" and bias.is_const), op, graph, "non-int32 bias")
    require(op.options.weights_format == 0, op, graph, "shuffled weights format")
    require(len(w.shape) == 2, op, graph, f"{len(w.shape)}-D weights")
    out_depth, accum = w.shape[0], w.shape[1]
    require(x.numel % accum == 0, op, graph, "input size not a multiple of the weight depth")
    batches = x.numel // accum
    p = ctx.name(f"op{op.index}")
    # One input row: the row-pair layout (one SXTB16 per weight word); more rows:
    # the 4-row groups, whose 2x2 blocking shares each weight load between two rows.
    pairs = batches == 1
    fields, packed = fc_layer(ctx, graph, op, p, pairs=pairs)
    decls = [cdecl.struct("tinyml_fc_layer", f"{p}_layer", **fields)]
    ins, outs = activations(graph, op)
    kernel = "tinyml_fc_s8_pairs" if pairs else "tinyml_fc_s8"
    call = Call(kernel, [f"&{p}_layer", batches, TRef(x.index), packed, TRef(y.index)])
    layout = "row pairs (+128 / raw SMLAD)" if pairs else "packed 4 rows x 4"
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                overlap=fc_overlap(graph, op),
                comment=f"{batches}x{accum} . {accum}x{out_depth}, filter {layout}")
