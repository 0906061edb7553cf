"""FUSED_LAYERNORM: Keras LayerNormalization's converted op chain as one per-row kernel.

The TFLite converter turns `LayerNormalization(axis=-1)` into
    m  = MEAN(x, -1)                      nm = QUANTIZE(NEG(DEQUANTIZE(m)))
    sd = SQUARED_DIFFERENCE(x, m)         v  = MEAN(sd, -1)
    r  = RSQRT(ADD(v, eps))               g  = MUL(r, gamma)
    t2 = ADD(MUL(nm, g), beta)            y  = ADD(MUL(x, g), t2)
(13 ops, five [rows, depth] intermediates). tinyml_fused_layernorm_s8 runs it
row by row with per-row scalars m, nm, v, r: DEQUANTIZE -> NEG -> QUANTIZE is a
256-entry table built here from the unfused lowerings' own arithmetic (float32);
ADD(eps) -> RSQRT is computed once per row with the reference's integer
arithmetic (tinyml_ln_rsqrt; checked here on all 256 v against the composed
tables of the unfused lowerings); each ADD's input rescaling is computed by the
kernel (fused_common.py rescale_quant); every requantization is the member op's.
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl, luts
from tinyml.codegen.patterns import FusionGroup, GraphIndex, pattern
from tinyml.steps import Call, Step, TRef
from tinyml.codegen.lowering import require
from tinyml.codegen.ops import elementwise as fx
from tinyml.codegen.ops.fused_common import (add_eval, bounded_rescale, fused_add_struct, mul_struct,
                                             per_tensor_int8, rescale_quant, rescale_struct, shared_array,
                                             unary_table)
from tinyml.codegen.ops.reduce import mean_plan

F32 = np.float32


def neg_island_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """QUANTIZE(NEG(DEQUANTIZE(q))) for q = -128..127, in float32 as the unfused
    kernels compute it (tinyml_dequantize_s8_f32, tinyml_neg_f32, tinyml_quantize_f32_s8:
    scale * (q - zp), negate, round(x / scale) half away + zp, clamped)."""
    out = np.zeros(256, dtype=np.int8)
    for q in range(-128, 128):
        deq = F32(in_scale) * F32(q - in_zp)
        neg = -deq
        with np.errstate(all="ignore"):
            r = luts._to_int32(luts.roundf(F32(neg / F32(out_scale))))
        out[q + 128] = min(max(r + out_zp, -128), 127)
    return out


def ln_rsqrt_eval(p: dict, v: int) -> int:
    """What tinyml_ln_rsqrt computes for one v (fused_layernorm.c ln_rsqrt), in Python."""
    r, q = p["v_rescale"], p["v_rescale"]["quant"]
    s = bounded_rescale(v, -r["offset"], 20, (q["multiplier"], q["shift"])) + p["eps"]
    a = p["add_output"]
    av = fx.multiply_by_quantized_multiplier(s, a["multiplier"], a["shift"]) + p["add_offset"]
    av = min(max(av, p["add_activation"]["min"]), p["add_activation"]["max"])
    value = av - p["input_zp"]
    if value == 0:
        return 127
    m, sh = fx.inv_sqrt_quantized_multiplier_exp(value)
    data = fx.multiply_by_quantized_multiplier(1, m, sh + 20)
    o = p["output"]
    return min(max(fx.multiply_by_quantized_multiplier(data, o["multiplier"], o["shift"]) + p["output_zp"], -128),
               127)


def _last_axis_mean(ix: GraphIndex, op) -> bool:
    if op.kind != "MEAN" or not op.options.keep_dims:
        return False
    ax = ix.const_value(op.inputs[1])
    x = ix.t(op.inputs[0])
    if ax is None or ax.size != 1 or len(x.shape) < 1:
        return False
    a = int(ax.reshape(-1)[0])
    return a in (-1, len(x.shape) - 1)


def _other(op, tensor: int) -> tuple[int, bool] | None:
    """(the operand that is not `tensor`, whether `tensor` is input 2) of a binary op."""
    if len(op.inputs) != 2:
        return None
    if op.inputs[0] == tensor:
        return op.inputs[1], False
    if op.inputs[1] == tensor:
        return op.inputs[0], True
    return None


@pattern("FUSED_LAYERNORM", lower=lambda g, graph, ctx: lower_layernorm(g, graph, ctx), priority=10)
def match_layernorm(ix: GraphIndex, op) -> FusionGroup | None:
    if not _last_axis_mean(ix, op):
        return None
    x, m = op.inputs[0], op.outputs[0]
    xt = ix.t(x)
    depth = xt.shape[-1]
    if tuple(ix.t(m).shape) != tuple(xt.shape[:-1]) + (1,):
        return None
    rm = ix.readers(m)
    if m in ix.outputs or len(rm) != 2:
        return None
    deq = next((r for r in rm if r.kind == "DEQUANTIZE"), None)
    sq = next((r for r in rm if r.kind == "SQUARED_DIFFERENCE"), None)
    if deq is None or sq is None or set(sq.inputs) != {x, m}:
        return None
    neg = ix.sole_reader(deq.outputs[0], "NEG")
    quant = neg and ix.sole_reader(neg.outputs[0], "QUANTIZE")
    if not quant:
        return None
    nm = quant.outputs[0]
    mean2 = ix.sole_reader(sq.outputs[0], "MEAN")
    if not mean2 or not _last_axis_mean(ix, mean2):
        return None
    v = mean2.outputs[0]
    add_eps = ix.sole_reader(v, "ADD")
    eps = add_eps and _other(add_eps, v)
    if not eps or not ix.is_const(eps[0]) or ix.t(eps[0]).numel != 1:
        return None
    rsq = ix.sole_reader(add_eps.outputs[0], "RSQRT")
    mul_g = rsq and ix.sole_reader(rsq.outputs[0], "MUL")
    gam = mul_g and _other(mul_g, rsq.outputs[0])
    if not gam or not ix.is_const(gam[0]):
        return None
    g = mul_g.outputs[0]
    rg = ix.readers(g)
    if g in ix.outputs or len(rg) != 2 or any(r.kind != "MUL" for r in rg):
        return None
    mul_c = next((r for r in rg if _other(r, g) and _other(r, g)[0] == nm), None)
    mul_x = next((r for r in rg if _other(r, g) and _other(r, g)[0] == x), None)
    if mul_c is None or mul_x is None or mul_c is mul_x:
        return None
    add_b = ix.sole_reader(mul_c.outputs[0], "ADD")
    bet = add_b and _other(add_b, mul_c.outputs[0])
    if not bet or not ix.is_const(bet[0]):
        return None
    add_o = ix.sole_reader(mul_x.outputs[0], "ADD")
    if not add_o or set(add_o.inputs) != {mul_x.outputs[0], add_b.outputs[0]}:
        return None
    y = add_o.outputs[0]
    gamma, beta = ix.t(gam[0]), ix.t(bet[0])
    for t in (gamma, beta):
        if t.numel != depth or (len(t.shape) and t.shape[-1] != depth):
            return None
    for t in (g, mul_c.outputs[0], add_b.outputs[0], mul_x.outputs[0], y):
        if tuple(ix.t(t).shape) != tuple(xt.shape):
            return None
    members = [op, deq, neg, quant, sq, mean2, add_eps, rsq, mul_g, mul_c, add_b, mul_x, add_o]
    return FusionGroup("FUSED_LAYERNORM", [o.index for o in members], inputs=[x], outputs=[y],
                       roles={"mean": op.index, "deq": deq.index, "quant": quant.index, "sq": sq.index,
                              "mean2": mean2.index, "add_eps": add_eps.index, "rsqrt": rsq.index,
                              "mul_g": mul_g.index, "mul_c": mul_c.index, "add_b": add_b.index,
                              "mul_x": mul_x.index, "add_o": add_o.index,
                              "gamma": gam[0], "beta": bet[0], "nm": nm})


def lower_layernorm(group: FusionGroup, graph, ctx) -> Step:
    r = group.roles
    op = lambda k: graph.ops[r[k]]          # noqa: E731
    first = op("mean")
    x, y = graph.t(group.inputs[0]), graph.t(group.outputs[0])
    depth = x.shape[-1]
    rows = x.numel // depth
    tensors = [t for k in ("mean", "sq", "mean2", "add_eps", "rsqrt", "mul_g", "mul_c", "add_b",
                           "mul_x", "add_o") for t in op(k).inputs + op(k).outputs
               if t >= 0 and graph.t(t).dtype != "int32"]
    require(per_tensor_int8(graph, *tensors), first, graph, "a LayerNorm chain that is not int8 per-tensor")
    m, sd, v = op("mean").outputs[0], op("sq").outputs[0], op("mean2").outputs[0]
    mt, sdt, vt, nmt = graph.t(m), graph.t(sd), graph.t(v), graph.t(r["nm"])
    deq_in = graph.t(op("deq").inputs[0])
    require(graph.t(op("quant").outputs[0]).dtype == "int8" and deq_in.index == m, first, graph,
            "a LayerNorm whose negated mean is not int8")
    plan1 = mean_plan(x.shape, [-1], True, x.quant.s, x.quant.zp, mt.quant.s, mt.quant.zp)
    plan2 = mean_plan(sdt.shape, [-1], True, sdt.quant.s, sdt.quant.zp, vt.quant.s, vt.quant.zp)
    require(plan1 is not None and plan2 is not None and depth * 255 < (1 << 31), first, graph,
            "LayerNorm means")
    p = ctx.name(f"op{first.index}_ln")
    neg = neg_island_table(mt.quant.s, mt.quant.zp, nmt.quant.s, nmt.quant.zp)
    # ADD(v, eps) then RSQRT, composed into one table of v.
    ae = op("add_eps")
    swap_e = ae.inputs[1] == v
    eps_t = graph.t(ae.inputs[0] if swap_e else ae.inputs[1])
    vet = graph.t(ae.outputs[0])
    q1, q2, qo = fx.add_sub_quant(vt.quant.s, eps_t.quant.s, vet.quant.s)
    from tinyml.codegen.quant import activation_range
    lo, hi = activation_range(ae.options.activation, vet.quant.s, vet.quant.zp)
    eps_q = int(np.asarray(eps_t.data).reshape(-1)[0])
    if swap_e:   # ADD(eps, v): the same sum with the roles of the rescalings exchanged
        q1b, q2b, qo = fx.add_sub_quant(eps_t.quant.s, vt.quant.s, vet.quant.s)
        q1, q2 = q2b, q1b
    add_table = [add_eval(q1, q2, qo, vt.quant.zp, eps_t.quant.zp, vet.quant.zp, q, eps_q, lo, hi)
                 for q in range(-128, 128)]
    rs_table = unary_table(op("rsqrt"), graph)
    require(op("rsqrt").kind == "RSQRT" and rs_table is not None, first, graph, "RSQRT without a table lowering")
    rv = np.array([rs_table[a + 128] for a in add_table], dtype=np.int8)
    # ... computed per row instead (tinyml_ln_rsqrt); checked here on all 256 v against the table
    rq = rescale_quant(vt.quant.zp, 20, q1)
    rst = graph.t(op("rsqrt").outputs[0])
    rmult, rshift = fx.rsqrt_quant(vet.quant.s, rst.quant.s)
    require(rq is not None and -31 <= rshift - 20 <= 30 and -31 <= qo[1] <= 30, first, graph,
            "a LayerNorm epsilon or RSQRT rescaling outside the computed range")
    eps_r = fx.multiply_by_quantized_multiplier((eps_q - eps_t.quant.zp) << 20, *q2)
    rsqrt = {"v_rescale": rescale_struct(vt.quant.zp, rq), "eps": int(eps_r),
             "add_output": {"multiplier": qo[0], "shift": qo[1]}, "add_offset": vet.quant.zp,
             "add_activation": {"min": lo, "max": hi}, "input_zp": vet.quant.zp,
             "output": {"multiplier": rmult, "shift": rshift - 20}, "output_zp": rst.quant.zp}
    require(all(ln_rsqrt_eval(rsqrt, q) == int(rv[q + 128]) for q in range(-128, 128)), first, graph,
            "a LayerNorm RSQRT whose computed form differs from its table")

    mean_f = lambda pl, xin, yout: {"input_zp": xin.quant.zp, "output_zp": yout.quant.zp,  # noqa: E731
                                    "count": pl.count,
                                    "quant": {"multiplier": pl.multiplier, "shift": pl.shift}}
    params = {
        "rows": rows, "depth": depth,
        "mean": mean_f(plan1, x, mt),
        "neg_table": shared_array(ctx, f"{p}_neg", "int8_t", neg),
        "sqdiff": fused_add_struct(ctx, f"{p}_sq", op("sq"), graph, swap=op("sq").inputs[0] != x.index,
                                   kind="SQUARED_DIFFERENCE"),
        "variance": mean_f(plan2, sdt, vt),
        "rsqrt": rsqrt,
        "mul_gamma": mul_struct(op("mul_g"), graph, swap=op("mul_g").inputs[0] == r["gamma"]),
        "mul_center": mul_struct(op("mul_c"), graph, swap=op("mul_c").inputs[0] != r["nm"]),
        "add_beta": fused_add_struct(ctx, f"{p}_beta", op("add_b"), graph,
                                     swap=op("add_b").inputs[0] == r["beta"]),
        "mul_x": mul_struct(op("mul_x"), graph, swap=op("mul_x").inputs[0] != x.index),
        "add_out": fused_add_struct(ctx, f"{p}_out", op("add_o"), graph,
                                    swap=op("add_o").inputs[0] != op("mul_x").outputs[0]),
    }
    decls = [cdecl.struct("tinyml_layernorm_params", f"{p}_params", **params)]
    call = Call("tinyml_fused_layernorm_s8", [f"&{p}_params", TRef(x.index), TRef(r["gamma"]),
                                              TRef(r["beta"]), TRef(y.index)])
    return Step(index=first.index, kind="FUSED_LAYERNORM", inputs=[x.index], outputs=[y.index],
                calls=[call], decls=decls, inplace_ok=[(x.index, y.index)],
                comment=f"LayerNorm {rows} rows of {depth} (ops {group.ops[0]}..{group.ops[-1]})")
