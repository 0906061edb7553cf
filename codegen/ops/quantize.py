"""QUANTIZE, DEQUANTIZE and float NEG: the float islands int8 graphs keep.

float32 -> int8/uint8: tinyml_quantize_f32_{s8,u8} (float division, round
half away, as TFLite's reference AffineQuantize). 8-bit -> 8-bit: a 256-entry
requantization table (reference Requantize). int8 -> float32:
tinyml_dequantize_s8_f32. Float tensors are only accepted around these ops
(codegen.lower.FLOAT_ISLAND_OPS).
"""
from __future__ import annotations

from tinyml.codegen import luts
from tinyml.steps import Call, Step, TRef
from tinyml.codegen.lowering import activations, lowering, require

from .activation import lut_step


def _per_tensor(t) -> bool:
    return t.quant is not None and not t.quant.per_channel


def _f(x: float) -> str:
    return repr(float(x)) + "f"


@lowering("QUANTIZE")
def lower_quantize(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(y.dtype in ("int8", "uint8"), op, graph, f"quantizing to {y.dtype}")
    require(_per_tensor(y), op, graph, "per-channel or missing output quantization")
    ins, outs = activations(graph, op)
    if x.dtype == "float32":
        fn = "tinyml_quantize_f32_s8" if y.dtype == "int8" else "tinyml_quantize_f32_u8"
        call = Call(fn, [_f(y.quant.s), y.quant.zp, x.numel, TRef(x.index), TRef(y.index)])
        return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call],
                    comment=f"float32 -> {y.dtype} (scale {y.quant.s!r}, zp {y.quant.zp})")
    require(x.dtype in ("int8", "uint8"), op, graph, f"requantizing from {x.dtype}")
    require(_per_tensor(x), op, graph, "per-channel or missing input quantization")
    table = luts.requantize_lut(x.quant.s, x.quant.zp, y.quant.s, y.quant.zp, x.dtype, y.dtype)
    return lut_step(op, graph, ctx, table, f"requantize {x.dtype} -> {y.dtype}")


@lowering("DEQUANTIZE")
def lower_dequantize(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.dtype == "int8" and y.dtype == "float32", op, graph, f"{x.dtype} -> {y.dtype}")
    require(_per_tensor(x), op, graph, "per-channel or missing input quantization")
    if x.is_const:
        require(False, op, graph, "dequantizing a constant (float weights)")
    ins, outs = activations(graph, op)
    call = Call("tinyml_dequantize_s8_f32", [_f(x.quant.s), x.quant.zp, x.numel,
                                             TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call],
                comment=f"int8 -> float32 (scale {x.quant.s!r}, zp {x.quant.zp})")


@lowering("NEG")
def lower_neg(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.dtype == "float32" and y.dtype == "float32", op, graph,
            f"{x.dtype} NEG (only float32 NEG inside a DEQUANTIZE/QUANTIZE island)")
    ins, outs = activations(graph, op)
    call = Call("tinyml_neg_f32", [x.numel, TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call],
                inplace_ok=[(x.index, y.index)], comment="float32 negate")
