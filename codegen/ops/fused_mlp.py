"""FUSED_MLP: FULLY_CONNECTED [-> activation] -> FULLY_CONNECTED chains per token.

Matches 2..4 FULLY_CONNECTED ops where each one's output (or the output of
the one table-driven activation op that follows it: RELU*, GELU, LOGISTIC,
TANH, HARD_SWISH, LEAKY_RELU, 8-bit QUANTIZE; RESHAPEs in between are
absorbed, they only rename bytes) is read only by the next FC:
the transformer MLP (fc1 -> act -> fc2), a low-rank pair (in -> r -> out) and
a low-rank MLP (in -> r1 -> hidden -> act -> r2 -> out). tinyml_fused_mlp_s8
runs the chain one token row at a time, so the hidden matrix never exists.

Each layer's arithmetic is FULLY_CONNECTED's (codegen/ops/fully_connected.py,
tinyml_fully_connected_s8); the input-offset term is folded into the bias at
generate time (sum_d (w + fo)(x + io) = sum wx + io sum w + fo sum x + n io fo,
exact in int32). The activation op becomes the table its own lowering builds.
"""
from __future__ import annotations

from tinyml.codegen import cdecl
from tinyml.codegen.patterns import FusionGroup, GraphIndex, pattern
from tinyml.steps import Call, ScratchRef, Step, TRef
from tinyml.codegen.lowering import require
from tinyml.codegen.ops.fused_common import per_tensor_int8, shared_array, unary_table

ACTIVATIONS = ("RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "HARD_SWISH", "LOGISTIC", "TANH", "GELU",
               "QUANTIZE")
MAX_LAYERS = 4
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _fc_ok(ix: GraphIndex, op) -> bool:
    if op.kind != "FULLY_CONNECTED" or op.options.weights_format != 0:
        return False
    if len(op.inputs) < 2 or not ix.is_const(op.inputs[1]) or ix.is_const(op.inputs[0]):
        return False
    x, w, y = ix.t(op.inputs[0]), ix.t(op.inputs[1]), ix.t(op.outputs[0])
    if x.dtype != "int8" or y.dtype != "int8" or w.dtype != "int8" or w.quant is None or len(w.shape) != 2:
        return False
    if x.quant is None or y.quant is None or x.quant.per_channel or y.quant.per_channel:
        return False
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = ix.t(op.inputs[2])
        if not b.is_const or b.dtype != "int32":
            return False
    return x.numel % w.shape[1] == 0


def _rows(ix: GraphIndex, op) -> int:
    return ix.t(op.inputs[0]).numel // ix.t(op.inputs[1]).shape[1]


@pattern("FUSED_MLP", lower=lambda g, graph, ctx: lower_mlp(g, graph, ctx), priority=20)
def match_mlp(ix: GraphIndex, op) -> FusionGroup | None:
    if not _fc_ok(ix, op):
        return None
    rows = _rows(ix, op)
    if rows < 2:
        # One row: there is no hidden matrix to save, and separate FC steps keep the
        # planner's output-over-input overlaps (e.g. the ad01 autoencoder's 768 B arena).
        return None
    layers: list[tuple[int, int | None]] = []          # (fc op, activation op or None)
    members = [op.index]
    fc = op

    def skip_reshapes(t: int) -> tuple[int, list[int]]:
        """Follow RESHAPEs (same bytes) that are the sole reader of `t`."""
        passed = []
        while (rs := ix.sole_reader(t, "RESHAPE")) is not None and rs.inputs[0] == t:
            passed.append(rs.index)
            t = rs.outputs[0]
        return t, passed

    while True:
        t, between = skip_reshapes(fc.outputs[0])
        act = ix.sole_reader(t, ACTIVATIONS)
        if act is not None and (act.inputs[0] != t or unary_table(act, ix.graph) is None):
            act = None
        nxt_in, after = skip_reshapes(act.outputs[0]) if act is not None else (t, [])
        nxt = ix.sole_reader(nxt_in, "FULLY_CONNECTED")
        if len(layers) + 1 >= MAX_LAYERS or nxt is None or nxt.inputs[0] != nxt_in or not _fc_ok(ix, nxt) \
                or _rows(ix, nxt) != rows:
            layers.append((fc.index, None))
            break
        members += between + after + ([act.index] if act is not None else []) + [nxt.index]
        layers.append((fc.index, act.index if act is not None else None))
        fc = nxt
    if len(layers) < 2:
        return None
    last = ix.op(layers[-1][0])
    return FusionGroup("FUSED_MLP", members, inputs=[op.inputs[0]], outputs=[last.outputs[0]],
                       roles={"layers": layers, "rows": rows})


def _layer(ctx, graph, p: str, k: int, fc, act) -> tuple[dict, str]:
    x, y = graph.t(fc.inputs[0]), graph.t(fc.outputs[0])
    require(per_tensor_int8(graph, x.index, y.index), fc, graph, "per-tensor int8 activations")
    table = "NULL"
    if act is not None:
        t = unary_table(act, graph)
        require(t is not None, act, graph, "an activation without a table")
        table = shared_array(ctx, f"{p}_act{k}", "int8_t", t)
    # FULLY_CONNECTED's own build-time constants: folded bias, packed filter.
    from tinyml.codegen.ops.fully_connected import fc_layer
    return fc_layer(ctx, graph, fc, f"{p}{k}", table)


def lower_mlp(group: FusionGroup, graph, ctx) -> Step:
    r = group.roles
    first = graph.ops[group.ops[0]]
    p = ctx.name(f"op{first.index}_mlp")
    layers, weights = [], []
    for k, (fci, acti) in enumerate(r["layers"]):
        layer, w = _layer(ctx, graph, p, k, graph.ops[fci], graph.ops[acti] if acti is not None else None)
        layers.append(layer)
        weights.append(w)
    n = len(layers)
    hidden = [l["output_depth"] for l in layers[:-1]]
    stride = (max(hidden) + 3) // 4 * 4
    scratch = 2 * stride * (1 if n == 2 else 2)        # two rows per pass (tinyml_fused_mlp_s8_scratch_size)
    # the layers as an array of exactly their count (the struct points at it)
    params = {"rows": r["rows"], "layers": n, "hidden_stride": stride, "layer": f"{p}_layers"}
    decls = [cdecl.array("tinyml_fused_fc_layer", f"{p}_layers", layers),
             cdecl.struct("tinyml_mlp_params", f"{p}_params", **params)]
    x, y = group.inputs[0], group.outputs[0]
    wargs = list(weights) + ["NULL"] * (MAX_LAYERS - n)
    call = Call("tinyml_fused_mlp_s8", [ScratchRef(f"tinyml_fused_mlp_s8_scratch_size(&{p}_params)"),
                                        f"&{p}_params", TRef(x), *wargs, TRef(y)])
    inplace = [(x, y)] if layers[-1]["output_depth"] <= layers[0]["accum_depth"] else []
    widths = " -> ".join([str(layers[0]["accum_depth"])] + [str(l["output_depth"]) for l in layers])
    return Step(index=first.index, kind="FUSED_MLP", inputs=[x], outputs=[y], calls=[call], decls=decls,
                scratch_bytes=scratch, inplace_ok=inplace,
                comment=f"{r['rows']} rows, {widths}, two token rows at a time, packed filters")
