"""FULLY_CONNECTED (int8 in/out, int8 weights, optional int32 bias)."""
from __future__ import annotations

import numpy as np

from codegen import cdecl
from codegen.lower import Call, Step, TRef, activations, lowering, require
from codegen.quant import activation_range, per_channel_multipliers, quantize_multiplier


@lowering("FULLY_CONNECTED")
def lower_fully_connected(op, graph, ctx) -> Step:
    x, w = graph.t(op.inputs[0]), graph.t(op.inputs[1])
    bias = graph.t(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    y = graph.t(op.outputs[0])
    require(x.dtype == "int8" and y.dtype == "int8", op, graph, f"{x.dtype} -> {y.dtype} activations")
    require(w.dtype == "int8" and w.is_const, op, graph, "non-constant or non-int8 weights")
    require(bias is None or (bias.dtype == "int32" and bias.is_const), op, graph, "non-int32 bias")
    require(op.options.get("weights_format", 0) == 0, op, graph, "shuffled weights format")
    out_depth, accum = w.shape[0], w.shape[1]
    require(x.numel % accum == 0, op, graph, "input size not a multiple of the weight depth")
    batches = x.numel // accum
    p = ctx.name(f"op{op.index}")
    if w.quant.per_channel:
        mults, shifts = per_channel_multipliers(x.quant.s, w.quant.scale, y.quant.s, out_depth)
    else:
        # GetQuantizedConvolutionMultipler: the float product, then double.
        real = float(np.float64(np.float32(x.quant.s) * np.float32(w.quant.s))) / float(np.float64(np.float32(y.quant.s)))
        m, s = quantize_multiplier(real)
        mults, shifts = [m] * out_depth, [s] * out_depth
    msym = ctx.const_array(f"{p}_mult", "int32_t", mults)
    ssym = ctx.const_array(f"{p}_shift", "int32_t", shifts)
    lo, hi = activation_range(op.options.get("fused_activation_function", "NONE"), y.quant.s, y.quant.zp)
    decls = [
        cdecl.struct("tinyml_per_channel_quant", f"{p}_quant", multiplier=msym, shift=ssym),
        cdecl.struct("tinyml_fc_params", f"{p}_params", input_offset=-x.quant.zp,
                     filter_offset=-w.quant.zp, output_offset=y.quant.zp,
                     activation=cdecl.activation(lo, hi)),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_fully_connected_s8", [
        f"&{p}_params", f"&{p}_quant", batches, accum, out_depth,
        TRef(x.index), TRef(w.index), TRef(bias.index) if bias is not None else "NULL", TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                comment=f"{batches}x{accum} . {accum}x{out_depth}")
