"""FUSED_ATTENTION: Q.K^T -> (MUL scale) -> SOFTMAX -> .V, one query row at a time.

Matched chain (what Keras Dense/Reshape/Transpose/matmul/softmax converts to):
    per operand X in (Q, K, V):  [RESHAPE [.., N, H*dh] -> [.., N, H, dh]] -> TRANSPOSE (swap N, H)
        (for K either that with adj_y, or TRANSPOSE [.., N, H, dh] -> [.., H, dh, N] without)
    S = BATCH_MATMUL(Qh, Kh)  [MUL(S, scalar const)]  P = SOFTMAX(S)
    O = BATCH_MATMUL(P, Vh)  [TRANSPOSE (swap H, N) [-> RESHAPE]]
The transposes and reshapes become strides (token, head) of the kernel's
operands, so the kernel reads the [N, H*dh] projections and writes the
[N, H*dh] output directly; the H x N x N score tensors never exist, only one
row of scores (scratch). The kernel folds the lhs offsets into int16 copies of
the query row and the score row, so both products run SMLAD loops on K and V
in place (no transposed copies). Each member's arithmetic is the unfused kernel's:
BATCH_MATMUL requantization (codegen/ops/batch_matmul.py), the MUL by a
constant as a 256-entry table, SOFTMAX's exp table (codegen/ops/softmax.py).
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.codegen.patterns import FusionGroup, GraphIndex, pattern
from tinyml.steps import Call, ScratchRef, Step, TRef
from tinyml.codegen.lowering import require
from tinyml.codegen.ops import batch_matmul as bmm
from tinyml.codegen.ops import elementwise as fx
from tinyml.codegen.ops.fused_common import per_tensor_int8, shared_array
from tinyml.codegen.ops.softmax import softmax_exp_table
from tinyml.codegen.quant import activation_range, quantize_multiplier


def attention_scratch(keys: int, depth: int, value_depth: int) -> int:
    """Planned scratch of tinyml_fused_attention_s8: the offset query row as int16,
    one score row, the offset scores as int16 (tests/test_scratch_size.py checks it against the kernel's C size function,
    tinyml_fused_attention_s8_scratch_size)."""
    def pad4(n: int) -> int:
        return (n + 3) // 4 * 4
    return 2 * pad4(depth) + pad4(keys) + 2 * pad4(keys + 1)


def _lead_ones(shape, keep: int) -> bool:
    return len(shape) >= keep and all(d == 1 for d in shape[:len(shape) - keep])


def _perm(ix: GraphIndex, op) -> list[int] | None:
    p = ix.const_value(op.inputs[1]) if len(op.inputs) > 1 else None
    if p is None:
        return None
    n = len(ix.t(op.inputs[0]).shape)
    return [int(a) + n if int(a) < 0 else int(a) for a in p.reshape(-1)]


def _swaps_last_but_one(perm: list[int]) -> bool:
    """perm swaps axes -3 and -2 and keeps the others (e.g. [0, 2, 1, 3])."""
    n = len(perm)
    if n < 3:
        return False
    want = list(range(n))
    want[n - 3], want[n - 2] = want[n - 2], want[n - 3]
    return perm == want


def _keys_last(perm: list[int]) -> bool:
    """perm turns [.., M, H, d] into [.., H, d, M] (e.g. [0, 2, 3, 1])."""
    n = len(perm)
    return n >= 3 and perm == list(range(n - 3)) + [n - 2, n - 1, n - 3]


def _operand(ix: GraphIndex, t: int, reader, transposed: bool = False) -> tuple[int, int, int, list[int]] | None:
    """A [.., H, N, d] operand (or, `transposed`, a [.., H, d, N] one made by a TRANSPOSE of
    [.., N, H, d]) as (external tensor, token stride, head stride, member ops); d is contiguous."""
    shape = ix.t(t).shape
    if not _lead_ones(shape, 3):
        return None
    heads, n, d = shape[-3:]
    if transposed:
        n, d = d, n
    prod = ix.producer_op(t)
    if prod is not None and prod.kind == "TRANSPOSE" and ix.sole_reader(t) is reader:
        perm = _perm(ix, prod)
        if perm is not None and (_keys_last(perm) if transposed else _swaps_last_but_one(perm)):
            src = prod.inputs[0]                       # [.., N, H, d]
            members = [prod.index]
            rp = ix.producer_op(src)
            if rp is not None and rp.kind == "RESHAPE" and ix.sole_reader(src) is prod \
                    and not ix.is_const(rp.inputs[0]):
                src = rp.inputs[0]
                members.append(rp.index)
            return src, heads * d, d, members
    if transposed:
        return None
    return t, d, n * d, []


@pattern("FUSED_ATTENTION", lower=lambda g, graph, ctx: lower_attention(g, graph, ctx), priority=0)
def match_attention(ix: GraphIndex, op) -> FusionGroup | None:
    if op.kind != "BATCH_MATMUL" or op.options.adj_x:
        return None
    adj_y = op.options.adj_y
    qt, kt = op.inputs[0], op.inputs[1]
    s = op.outputs[0]
    members = [op.index]
    scale_op = ix.sole_reader(s, "MUL")
    scores = s
    if scale_op is not None:
        other = scale_op.inputs[1] if scale_op.inputs[0] == s else scale_op.inputs[0]
        if not ix.is_const(other) or ix.t(other).numel != 1 or s not in scale_op.inputs:
            return None
        members.append(scale_op.index)
        scores = scale_op.outputs[0]
    sm = ix.sole_reader(scores, "SOFTMAX")
    if sm is None:
        return None
    members.append(sm.index)
    pv = ix.sole_reader(sm.outputs[0], "BATCH_MATMUL")
    if pv is None or pv.inputs[0] != sm.outputs[0] or pv.options.adj_x or pv.options.adj_y:
        return None
    members.append(pv.index)
    vt = pv.inputs[1]
    if len({qt, kt, vt}) != 3:
        return None
    q = _operand(ix, qt, op)
    k = _operand(ix, kt, op, transposed=not adj_y)
    v = _operand(ix, vt, pv)
    if q is None or k is None or v is None:
        return None
    o = pv.outputs[0]
    oshape = ix.t(o).shape
    if not _lead_ones(oshape, 3):
        return None
    heads, nq, dv = oshape[-3:]
    out, o_tok, o_head = o, dv, nq * dv
    tr = ix.sole_reader(o, "TRANSPOSE")
    if tr is not None and _perm(ix, tr) is not None and _swaps_last_but_one(_perm(ix, tr)):
        members.append(tr.index)
        out, o_tok, o_head = tr.outputs[0], heads * dv, dv
        rs = ix.sole_reader(out, "RESHAPE")
        if rs is not None:
            members.append(rs.index)
            out = rs.outputs[0]
    qs, ks, vs = ix.t(qt).shape, list(ix.t(kt).shape), ix.t(vt).shape
    if not adj_y:
        ks[-2], ks[-1] = ks[-1], ks[-2]               # as [.., H, keys, depth]
    if not (qs[-3] == ks[-3] == vs[-3] == heads and qs[-2] == nq and qs[-1] == ks[-1]
            and ks[-2] == vs[-2] and vs[-1] == dv):
        return None
    for x in (q, k, v):
        members += x[3]
    return FusionGroup("FUSED_ATTENTION", members, inputs=[q[0], k[0], v[0]], outputs=[out],
                       roles={"qk": op.index, "scale": scale_op.index if scale_op else None,
                              "softmax": sm.index, "pv": pv.index, "q": q[:3], "k": k[:3], "v": v[:3],
                              "o": (out, o_tok, o_head), "heads": heads, "queries": nq,
                              "keys": ks[-2], "depth": qs[-1], "value_depth": dv})


def _mm_params(op, graph) -> dict:
    """tinyml_matmul_params as codegen/ops/batch_matmul.py computes them."""
    a, b, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    real = float(np.float64(np.float32(a.quant.s) * np.float32(b.quant.s))) / float(np.float64(np.float32(y.quant.s)))
    m, s = quantize_multiplier(real)
    return {"lhs_offset": -a.quant.zp, "rhs_offset": -b.quant.zp, "output_offset": y.quant.zp,
            "quant": {"multiplier": m, "shift": s}, "double_rounding": bmm.DOUBLE_ROUNDING,
            "activation": {"min": -128, "max": 127}}


def scale_table(op, graph) -> np.ndarray:
    """MUL(s, c) for every int8 s with a constant scalar c (tinyml_mul_s8 arithmetic)."""
    a, b, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    if a.is_const:
        a, b = b, a
    c = int(np.asarray(b.data).reshape(-1)[0])
    m, s = fx.mul_quant(a.quant.s, b.quant.s, y.quant.s)
    lo, hi = activation_range(op.options.activation, y.quant.s, y.quant.zp)
    out = [min(max(fx.multiply_by_quantized_multiplier((x - a.quant.zp) * (c - b.quant.zp), m, s)
                   + y.quant.zp, lo), hi) for x in range(-128, 128)]
    return np.array(out, dtype=np.int8)


def lower_attention(group: FusionGroup, graph, ctx) -> Step:
    r = group.roles
    qk, sm, pv = graph.ops[r["qk"]], graph.ops[r["softmax"]], graph.ops[r["pv"]]
    scale = graph.ops[r["scale"]] if r["scale"] is not None else None
    tensors = list(qk.inputs) + list(qk.outputs) + list(sm.inputs) + list(sm.outputs) + list(pv.inputs) \
        + list(pv.outputs) + ([i for i in scale.inputs + scale.outputs] if scale else [])
    require(per_tensor_int8(graph, *tensors), qk, graph, "an attention block that is not int8 per-tensor")
    st, so = graph.t(sm.inputs[0]), graph.t(sm.outputs[0])
    require(so.quant.zp == -128 and abs(so.quant.s - 1.0 / 256) <= 0.001 / 256, sm, graph,
            "softmax output quantization other than 1/256, -128")
    beta = float(np.float32(sm.options.beta))
    p = ctx.name(f"op{qk.index}_attn")
    exp_sym = shared_array(ctx, f"{p}_exp", "int32_t", softmax_exp_table(beta, st.quant.s))
    table_sym = shared_array(ctx, f"{p}_scale", "int8_t", scale_table(scale, graph)) if scale else "NULL"
    (qe, qtok, qhead), (ke, ktok, khead), (ve, vtok, vhead) = r["q"], r["k"], r["v"]
    oe, otok, ohead = r["o"]
    params = {"heads": r["heads"], "queries": r["queries"], "keys": r["keys"], "depth": r["depth"],
              "value_depth": r["value_depth"], "q_token_stride": qtok, "q_head_stride": qhead,
              "k_token_stride": ktok, "k_head_stride": khead, "v_token_stride": vtok, "v_head_stride": vhead,
              "o_token_stride": otok, "o_head_stride": ohead, "qk": _mm_params(qk, graph),
              "score_table": table_sym, "exp_table": exp_sym, "pv": _mm_params(pv, graph)}
    decls = [cdecl.struct("tinyml_attention_params", f"{p}_params", **params)]
    scratch = attention_scratch(r["keys"], r["depth"], r["value_depth"])
    call = Call("tinyml_fused_attention_s8", [ScratchRef(f"tinyml_fused_attention_s8_scratch_size(&{p}_params)"),
                                              f"&{p}_params", TRef(qe), TRef(ke), TRef(ve), TRef(oe)])
    inplace = []
    if (qtok, qhead) == (otok, ohead) and r["depth"] == r["value_depth"] \
            and graph.t(qe).nbytes == graph.t(oe).nbytes and qe not in (ke, ve):
        inplace = [(qe, oe)]
    return Step(index=group.ops[0], kind="FUSED_ATTENTION", inputs=[qe, ke, ve], outputs=[oe], calls=[call],
                decls=decls, scratch_bytes=scratch, inplace_ok=inplace,
                comment=f"{r['heads']} heads x {r['queries']} queries x {r['keys']} keys, depth "
                        f"{r['depth']}/{r['value_depth']}, one score row at a time")
