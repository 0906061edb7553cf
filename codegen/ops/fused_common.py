"""Shared build-time helpers of the fused kernels (codegen/ops/fused_*.py).

Everything here reuses the unfused lowerings' arithmetic (codegen/ops/
elementwise.py, reduce.py, activation.py ...) so that a fused step computes
the member ops' exact integer pipeline; only where values live changes.
"""
from __future__ import annotations

import numpy as np

from tinyml.ir import Graph, Op
from tinyml.codegen.lowering import LowerCtx, lowering_for, require
from tinyml.codegen.ops import elementwise as fx
from tinyml.codegen.quant import activation_range


def shared_array(ctx: LowerCtx, base: str, ctype: str, values) -> str:
    """`ctx.const_array`, but equal tables (same type and values) share one symbol."""
    return ctx.const_array(base, ctype, values, share=True)


def shift_table(zp: int, left_shift: int, quant: tuple[int, int]) -> np.ndarray:
    """requant_dr((x - zp) << left_shift, quant) for x = -128..127 (ADD's input rescaling)."""
    m, s = quant
    return np.array([fx.multiply_by_quantized_multiplier((x - zp) << left_shift, m, s)
                     for x in range(-128, 128)], dtype=np.int64)


def bounded_rescale(x: int, zp: int, left_shift: int, quant: tuple[int, int]) -> int:
    """What the kernel computes (fused_common.h fused_rescale, common.h
    tinyml_requantize_bounded with zp 0): SMMULR of 2 (x - zp) 2^ls, then
    floor((h + [h < 0 ? -1 : 0] + 2^(e-1)) / 2^e), e = -shift."""
    m, s = quant
    x2 = ((x - zp) << left_shift) * 2
    h = (x2 * m + (1 << 31)) >> 32
    e = -s
    return (h + (-1 if h < 0 else 0) + (1 << (e - 1))) >> e


def rescale_quant(zp: int, left_shift: int, quant: tuple[int, int]) -> tuple[int, int] | None:
    """The (multiplier, shift) with which the kernel's bounded rescaling gives exactly
    requant_dr((x - zp) << left_shift, quant) for every int8 x, or None. The larger
    input's multiplier of ADD is exactly 0.5 (2^30, shift 0): on even inputs that is
    the same as (2^31 - 1, -1). Every candidate is checked on all 256 inputs."""
    m, s = quant
    cands = [(m, s)] + ([((1 << 31) - 1, -1)] if (m, s) == (1 << 30, 0) else [])
    want = shift_table(zp, left_shift, quant)
    for cm, cs in cands:
        if not (0 <= cm < (1 << 31) and -22 <= cs <= -1 and 255 << (left_shift + 1) < (1 << 30)):
            continue
        got = np.array([bounded_rescale(x, zp, left_shift, (cm, cs)) for x in range(-128, 128)], dtype=np.int64)
        if np.array_equal(got, want):
            return cm, cs
    return None


def add_eval(q1, q2, qo, zp1: int, zp2: int, zpo: int, x1: int, x2: int, lo: int = -128, hi: int = 127,
             left_shift: int = 20) -> int:
    """One int8 ADD element with the unfused kernel's arithmetic (tinyml_add_s8)."""
    a = fx.multiply_by_quantized_multiplier((x1 - zp1) << left_shift, *q1)
    b = fx.multiply_by_quantized_multiplier((x2 - zp2) << left_shift, *q2)
    y = fx.multiply_by_quantized_multiplier(a + b, *qo) + zpo
    return min(max(y, lo), hi)


def fused_add_struct(ctx: LowerCtx, p: str, op: Op, graph: Graph, swap: bool = False,
                     kind: str = "ADD") -> dict:
    """tinyml_fused_add fields for an ADD / SQUARED_DIFFERENCE op (operands swapped if `swap`)."""
    i1, i2 = (op.inputs[1], op.inputs[0]) if swap else (op.inputs[0], op.inputs[1])
    x1, x2, y = graph.t(i1), graph.t(i2), graph.t(op.outputs[0])
    if kind == "ADD":
        q1, q2, qo = fx.add_sub_quant(x1.quant.s, x2.quant.s, y.quant.s)
        ls = 20
        lo, hi = activation_range(op.options.activation, y.quant.s, y.quant.zp)
    else:
        q1, q2, qo = fx.squared_difference_quant(x1.quant.s, x2.quant.s, y.quant.s)
        ls = 7
        lo, hi = -128, 127
    r1, r2 = rescale_quant(x1.quant.zp, ls, q1), rescale_quant(x2.quant.zp, ls, q2)
    require(r1 is not None and r2 is not None, op, graph,
            f"an {kind} input rescaling outside the computed range (multiplier below 2^-22)")
    return {"input1": rescale_struct(x1.quant.zp, r1), "input2": rescale_struct(x2.quant.zp, r2),
            "output": {"multiplier": qo[0], "shift": qo[1]},
            "output_offset": y.quant.zp, "activation": {"min": lo, "max": hi}}


def rescale_struct(zp: int, quant: tuple[int, int]) -> dict:
    """tinyml_rescale fields."""
    return {"offset": -zp, "quant": {"multiplier": quant[0], "shift": quant[1]}}


def mul_struct(op: Op, graph: Graph, swap: bool = False) -> dict:
    """tinyml_mul_params fields of a MUL op (operands swapped if `swap`)."""
    i1, i2 = (op.inputs[1], op.inputs[0]) if swap else (op.inputs[0], op.inputs[1])
    x1, x2, y = graph.t(i1), graph.t(i2), graph.t(op.outputs[0])
    m, s = fx.mul_quant(x1.quant.s, x2.quant.s, y.quant.s)
    lo, hi = activation_range(op.options.activation, y.quant.s, y.quant.zp)
    return {"input1_offset": -x1.quant.zp, "input2_offset": -x2.quant.zp, "output_offset": y.quant.zp,
            "output": {"multiplier": m, "shift": s}, "activation": {"min": lo, "max": hi}}


def unary_table(op: Op, graph: Graph) -> np.ndarray | None:
    """The int8 -> int8 table (indexed x + 128, as int8) that the unfused lowering of a
    one-input table op (activations, RSQRT, 8-bit QUANTIZE) builds; None if it is not one."""
    fn = lowering_for(op, graph)
    if fn is None:
        return None
    tmp = LowerCtx(graph)
    try:
        step = fn(op, graph, tmp)
    except Exception:                                   # noqa: BLE001 - any rejection: not a table op
        return None
    if len(step.calls) != 1 or len(tmp.arrays) != 1:
        return None
    vals = np.asarray(tmp.arrays[0].values)
    if step.calls[0].func == "tinyml_lut_8" and vals.size == 256:       # indexed by the byte (uint8)
        raw = vals.astype(np.uint8)
        return np.array([raw[x & 0xFF] for x in range(-128, 128)], dtype=np.uint8).view(np.int8)
    if step.calls[0].func == "tinyml_lut_s8" and vals.size == 256:      # indexed x + 128
        return vals.astype(np.int8)
    return None


def per_tensor_int8(graph: Graph, *tensors: int) -> bool:
    for i in tensors:
        t = graph.t(i)
        if t.dtype != "int8" or t.quant is None or t.quant.per_channel:
            return False
    return True
