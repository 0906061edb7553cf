"""CUMSUM (int8, constant axis, exclusive/reverse): tflite_micro's arithmetic.

TFLite 2.21 has no int8 CUMSUM (int32/int64/float32 only), so the kernel
reproduces TFLM's cumsum.cc: the quantized-ADD scheme with left shift 20, a
fixed input multiplier QuantizeMultiplierSmallerThanOneExp(1/2) (so each term
is (x - zp_in) * 2^19 exactly) and an output multiplier of
2 * input_scale / (2^20 * output_scale), all in double as TFLM's Prepare;
TFLM's accumulator starts at the scaled input offset (-zp_in * 2^19), not 0,
and the kernel does the same (firmware/kernels/include/tinyml/reduce.h). The
kernel reads each element before writing it: in place.
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.codegen.lowering import activations, lowering, require
from tinyml.codegen.quant import quantize_multiplier_smaller_than_one
from tinyml.steps import Call, Step, TRef

CUMSUM_LEFT_SHIFT = 20


def cumsum_output_multiplier(input_scale: float, output_scale: float) -> float:
    twice_max_input_scale = 2 * float(np.float32(input_scale))
    return twice_max_input_scale / ((1 << CUMSUM_LEFT_SHIFT) * float(np.float32(output_scale)))


@lowering("CUMSUM")
def lower_cumsum(op, graph, ctx) -> Step:
    x, a, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    require(x.dtype == y.dtype == "int8", op, graph, f"{x.dtype} -> {y.dtype} (only int8 -> int8)")
    require(x.quant is not None and y.quant is not None and not x.quant.per_channel
            and not y.quant.per_channel, op, graph, "missing or per-channel quantization")
    require(tuple(x.shape) == tuple(y.shape) and len(x.shape) >= 1, op, graph, "input and output shapes differ")
    require(a.is_const and a.dtype == "int32" and a.numel == 1, op, graph, "a non-constant or non-int32 axis")
    rank = len(x.shape)
    axis = int(np.asarray(a.data).reshape(-1)[0])
    axis = axis + rank if axis < 0 else axis
    require(0 <= axis < rank, op, graph, f"axis {axis} of a {rank}-D tensor")
    real = cumsum_output_multiplier(x.quant.s, y.quant.s)
    require(0 < real < 1, op, graph, f"output multiplier {real:.3g} (TFLM requires it below 1)")
    m, s = quantize_multiplier_smaller_than_one(real)
    p = ctx.name(f"op{op.index}")
    fields = {"outer": int(np.prod(x.shape[:axis], dtype=np.int64)), "depth": int(x.shape[axis]),
              "inner": int(np.prod(x.shape[axis + 1:], dtype=np.int64)),
              "exclusive": int(op.options.exclusive), "reverse": int(op.options.reverse),
              "input_zp": int(x.quant.zp), "output_zp": int(y.quant.zp),
              "quant": {"multiplier": m, "shift": s}}
    decl = cdecl.struct("tinyml_cumsum_params", f"{p}_params", **fields)
    ins, outs = activations(graph, op)
    call = Call("tinyml_cumsum_s8", [f"&{p}_params", TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                inplace_ok=[(x.index, y.index)],
                comment=f"axis {axis}{' exclusive' if op.options.exclusive else ''}"
                        f"{' reverse' if op.options.reverse else ''}")
