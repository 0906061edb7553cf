"""EXP, LOG, ELU, ABS and ZEROS_LIKE (int8) as 256-entry tables (tinyml_lut_8).

A unary int8 op is a function of one byte, so the generator evaluates the
reference's arithmetic for all 256 inputs (codegen/luts.py):
- EXP (TFLite exp.cc), ELU (TFLM's activations: exp(x) - 1 below 0), LOG
  (TFLite 2.21 elementwise.cc, int8): the float32 table of LUTPopulate
  (measured bit-exact; TFLite 2.21's int8 SQRT is not this table -- up to 1 LSB
  off on 17-112 of the inputs -- so SQRT stays unsupported);
- ABS (TFLite / TFLM elementwise.cc AbsEvalQuantized): |x - zp_in|, rescaled by
  QuantizeMultiplier(float(in_scale / out_scale)) when the scales differ;
- ZEROS_LIKE (TFLM; TFLite has no int8 ZEROS_LIKE): every byte 0.
Every table op may run in place (activation.lut_step).
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import luts
from tinyml.codegen.lowering import lowering, require
from tinyml.codegen.ops.activation import _check_8bit, lut_step
from tinyml.codegen.quant import quantize_multiplier
from tinyml.steps import Step

F32 = np.float32


def _exp(x: np.float32) -> np.float32:
    return luts.expf(x)


def _elu(x: np.float32) -> np.float32:
    return F32(luts.expf(x) - F32(1)) if x < 0 else x


def _log(x: np.float32) -> np.float32:
    with np.errstate(all="ignore"):
        return F32(np.log(F32(x)))


_FLOAT_FNS = {"EXP": _exp, "ELU": _elu, "LOG": _log}


@lowering(*_FLOAT_FNS)
def lower_float_unary(op, graph, ctx) -> Step:
    x, y = _check_8bit(op, graph)
    require(x.dtype == "int8", op, graph, f"{x.dtype} input")
    t = luts.float_lut(_FLOAT_FNS[op.kind], x.quant.s, x.quant.zp, y.quant.s, y.quant.zp, "int8")
    return lut_step(op, graph, ctx, t, op.kind.lower())


def abs_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int, single_rounding: bool) -> np.ndarray:
    rescale = F32(in_scale) != F32(out_scale)
    m, s = quantize_multiplier(float(F32(F32(in_scale) / F32(out_scale)))) if rescale else (0, 0)
    table = np.zeros(256, dtype=np.uint8)
    for v in range(-128, 128):
        value = abs(v - in_zp)
        out = (luts.mbqm(value, m, s, single_rounding) if rescale else value) + out_zp
        table[v & 0xFF] = min(max(out, -128), 127) & 0xFF
    return table


@lowering("ABS")
def lower_abs(op, graph, ctx) -> Step:
    x, y = _check_8bit(op, graph)
    require(x.dtype == "int8", op, graph, f"{x.dtype} input")
    t = abs_table(x.quant.s, x.quant.zp, y.quant.s, y.quant.zp, single_rounding=False)
    return lut_step(op, graph, ctx, t, "abs")


@lowering("ZEROS_LIKE")
def lower_zeros_like(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.dtype == y.dtype == "int8" and x.numel == y.numel, op, graph, f"{x.dtype} -> {y.dtype}")
    return lut_step(op, graph, ctx, np.zeros(256, dtype=np.uint8), "zeros")
