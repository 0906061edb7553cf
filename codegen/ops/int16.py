"""16x8 quantization: int16 activations (zero point 0), int8 weights, int64 bias.

The converter writes these models with
`supported_ops = [OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]`.
Every lowering here registers with `@lowering(..., int16=True)`, so
`codegen.lowering.lowering_for` picks it for ops that read or write an int16
activation; the C kernels are the `tinyml_*_s16` functions (tinyml/s16.h).
Build-time constants are the int8 ones (TFLite's Prepare computes them the same
way) except where a comment says otherwise:
- CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED accumulate in int64 and
  requantize with the 64-bit MultiplyByQuantizedMultiplier (16-bit multiplier);
- ADD / SUB take the general path with left_shift 15 (pot_scale_int16 false);
- QUANTIZE between integer types is reference Requantize, double rounding.
- LOGISTIC / TANH / SOFTMAX follow TFLite's int16 kernels (not the int8 float
  tables): interpolated uint16 / int16 tables from codegen.luts, output 1/32768.
Movement ops that only copy elements (RESHAPE, CONCATENATION with one
quantization, TRANSPOSE, (STRIDED_)SLICE, SPLIT(_V), PACK, UNPACK, REVERSE_V2,
BROADCAST_TO, GATHER, DYNAMIC_UPDATE_SLICE) reuse the int8 lowerings, which size
copies by the dtype.
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.codegen.luts import (gelu_lut_s16, rsqrt_lut_s16, sigmoid_table_u16, softmax_exp_lut_s16,
                                 softmax_one_over_one_plus_x_lut_s16)
from tinyml.codegen.lowering import activations, dims4, lowering, require
from tinyml.codegen.quant import activation_range, per_channel_multipliers, quantize_multiplier
from tinyml.steps import Call, Step, TRef

from . import gather as _gather
from . import movement as _movement
from . import reshape as _reshape
from . import shape as _shape
from . import split as _split
from . import update as _update
from .batch_matmul import matmul_geometry, matmul_multiplier
from .conv import dims_decl, geometry, shift_array
from .elementwise import add_sub_quant, broadcast_geometry, mul_quant, squared_difference_quant
from .fully_connected import fc_multipliers
from .pool import pool_step
from .reduce import mean_plan
from .rows import fc_overlap_16, row_overlap_16

F32 = np.float32


def _act16(op, graph, *tensors) -> None:
    """Every given tensor is a per-tensor int16 activation with zero point 0."""
    for t in tensors:
        require(t.dtype == "int16", op, graph, f"tensor {t.index} of type {t.dtype} in a 16x8 op")
        require(t.quant is not None and not t.quant.per_channel, op, graph,
                f"tensor {t.index} without per-tensor quantization")
        require(int(t.quant.zp) == 0, op, graph, f"int16 tensor {t.index} with zero point {int(t.quant.zp)} "
                "(16x8 activations are symmetric)")


ACC_LIMIT_16X8 = 1 << 47     # TFLite's 64-bit MultiplyByQuantizedMultiplier assumes |x| < 2^47


def acc_bound_ok(weights: np.ndarray, bias, channel_axis: int) -> bool:
    """|bias| + 32768 * sum|w| < 2^47 per output channel: no int64 overflow in the kernels'
    requantization (x times a 16-bit multiplier) for any int16 input."""
    w = np.abs(np.moveaxis(np.asarray(weights, dtype=np.int64), channel_axis, 0))
    acc = 32768 * w.reshape(w.shape[0], -1).sum(axis=1)
    if bias is not None:
        acc = acc + np.abs(np.asarray(bias.data, dtype=np.int64).reshape(-1))
    return bool(np.all(acc < ACC_LIMIT_16X8))


def _f(x: float) -> str:
    return repr(float(x)) + "f"


def _same_size_inplace(op, graph, y) -> list[tuple[int, int]]:
    return [(i, y.index) for i in op.inputs
            if i >= 0 and not graph.t(i).is_const and tuple(graph.t(i).shape) == tuple(y.shape)
            and graph.t(i).dtype == y.dtype]


# --- CONV_2D / DEPTHWISE_CONV_2D ---------------------------------------------------

def _conv_common(op, graph, ctx, channels: int):
    x, w, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    bias = graph.t(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    _act16(op, graph, x, y)
    require(w.dtype == "int8" and w.is_const and w.quant is not None, op, graph,
            "non-constant, unquantized or non-int8 weights")
    require(len(x.shape) == 4 and len(w.shape) == 4 and len(y.shape) == 4, op, graph, "non-4-D tensors")
    require(bool(np.all(w.quant.zero_point == 0)), op, graph, "weights with a non-zero zero point")
    require(w.quant.scale.size in (1, channels), op, graph, "a filter scale count that is neither 1 "
            "nor the output channel count")
    require(bias is None or (bias.dtype == "int64" and bias.is_const and bias.numel == channels), op, graph,
            f"{bias.dtype if bias is not None else ''} bias (16x8 convolutions take int64 bias)")
    axis = 3 if op.kind == "DEPTHWISE_CONV_2D" else 0
    require(acc_bound_ok(w.data, bias, axis), op, graph, "a bias or weights whose accumulator can reach 2^47")
    p = ctx.name(f"op{op.index}")
    mults, shifts = per_channel_multipliers(x.quant.s, w.quant.scale, y.quant.s, channels)
    require(all(-31 <= s <= 7 for s in shifts), op, graph, "a rescale beyond 2^7")
    lo, hi = activation_range(op.options.activation, y.quant.s, 0, "int16")
    decls = [cdecl.struct("tinyml_per_channel_quant", f"{p}_quant",
                          multiplier=ctx.const_array(f"{p}_mult", "int32_t", mults),
                          shift=shift_array(ctx, f"{p}_shift", shifts))]
    return x, w, bias, y, p, decls, (lo, hi)


def _conv_params(p: str, g: dict, lo: int, hi: int, depth_multiplier: int) -> str:
    return cdecl.struct("tinyml_conv_params", f"{p}_params", input_offset=0, output_offset=0,
                        stride_h=g["stride_h"], stride_w=g["stride_w"], dilation_h=g["dilation_h"],
                        dilation_w=g["dilation_w"], pad_h=g["pad_h"], pad_w=g["pad_w"],
                        depth_multiplier=depth_multiplier, activation=cdecl.activation(lo, hi), fast_requant=0)


@lowering("CONV_2D", int16=True)
def lower_conv2d_s16(op, graph, ctx) -> Step:
    out_c = graph.t(op.inputs[1]).shape[0]
    x, w, bias, y, p, decls, (lo, hi) = _conv_common(op, graph, ctx, out_c)
    _, kh, kw, fc = w.shape
    require(x.shape[3] == fc and y.shape[3] == out_c and y.shape[0] == x.shape[0], op, graph,
            "a grouped convolution or channels not matching the filter")
    g = geometry(op, graph, x.shape, kh, kw, y.shape)
    decls += [_conv_params(p, g, lo, hi, 1), dims_decl(f"{p}_in", x.shape), dims_decl(f"{p}_filter", w.shape),
              dims_decl(f"{p}_out", y.shape)]
    ins, outs = activations(graph, op)
    call = Call("tinyml_conv2d_s16", [
        f"&{p}_params", f"&{p}_quant", f"&{p}_in", TRef(x.index), f"&{p}_filter", TRef(w.index),
        TRef(bias.index) if bias is not None else "NULL", f"&{p}_out", TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                overlap=row_overlap_16(graph, op, g["stride_h"], g["pad_h"]),
                comment=f"16x8 {kh}x{kw}x{fc}->{out_c} stride {g['stride_h']}x{g['stride_w']} "
                        f"dilation {g['dilation_h']}x{g['dilation_w']} {g['padding']}")


@lowering("DEPTHWISE_CONV_2D", int16=True)
def lower_depthwise_s16(op, graph, ctx) -> Step:
    out_c = graph.t(op.inputs[1]).shape[3]
    x, w, bias, y, p, decls, (lo, hi) = _conv_common(op, graph, ctx, out_c)
    _, kh, kw, _ = w.shape
    ic = x.shape[3]
    require(w.shape[0] == 1 and y.shape[3] == out_c and y.shape[0] == x.shape[0], op, graph,
            f"filter shape {list(w.shape)}")
    require(ic > 0 and out_c % ic == 0, op, graph, f"{out_c} output channels for {ic} input channels")
    g = geometry(op, graph, x.shape, kh, kw, y.shape)
    decls += [_conv_params(p, g, lo, hi, out_c // ic), dims_decl(f"{p}_in", x.shape),
              dims_decl(f"{p}_filter", w.shape), dims_decl(f"{p}_out", y.shape)]
    ins, outs = activations(graph, op)
    call = Call("tinyml_depthwise_conv2d_s16", [
        f"&{p}_params", f"&{p}_quant", f"&{p}_in", TRef(x.index), f"&{p}_filter", TRef(w.index),
        TRef(bias.index) if bias is not None else "NULL", f"&{p}_out", TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                overlap=row_overlap_16(graph, op, g["stride_h"], g["pad_h"]),
                comment=f"16x8 {kh}x{kw} x{out_c // ic} stride {g['stride_h']}x{g['stride_w']} {g['padding']}")


# --- FULLY_CONNECTED ------------------------------------------------------------------

@lowering("FULLY_CONNECTED", int16=True)
def lower_fc_s16(op, graph, ctx) -> Step:
    x, w, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    bias = graph.t(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    _act16(op, graph, x, y)
    require(w.dtype == "int8" and w.is_const and w.quant is not None, op, graph,
            "non-constant, unquantized or non-int8 weights")
    require(bool(np.all(w.quant.zero_point == 0)), op, graph, "weights with a non-zero zero point")
    require(bias is None or (bias.dtype == "int64" and bias.is_const), op, graph,
            f"{bias.dtype if bias is not None else ''} bias (16x8 FULLY_CONNECTED takes int64 bias)")
    require(op.options.weights_format == 0, op, graph, "shuffled weights format")
    require(len(w.shape) == 2, op, graph, f"{len(w.shape)}-D weights")
    out_depth, accum = w.shape
    require(x.numel % accum == 0, op, graph, "input size not a multiple of the weight depth")
    require(acc_bound_ok(w.data, bias, 0), op, graph, "a bias or weights whose accumulator can reach 2^47")
    mults, shifts = fc_multipliers(x, w, y, out_depth)
    require(all(-31 <= s <= 7 for s in shifts), op, graph, "a rescale beyond 2^7")
    lo, hi = activation_range(op.options.activation, y.quant.s, 0, "int16")
    p = ctx.name(f"op{op.index}")
    decls = [cdecl.struct("tinyml_fc_s16_params", f"{p}_params", accum_depth=accum, output_depth=out_depth,
                          multiplier=ctx.const_array(f"{p}_mult", "int32_t", mults),
                          shift=ctx.const_array(f"{p}_shift", "int32_t", shifts),
                          activation=cdecl.activation(lo, hi))]
    ins, outs = activations(graph, op)
    call = Call("tinyml_fc_s16", [f"&{p}_params", x.numel // accum, TRef(x.index), TRef(w.index),
                                  TRef(bias.index) if bias is not None else "NULL", TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                overlap=fc_overlap_16(graph, op),
                comment=f"16x8 {x.numel // accum}x{accum} . {accum}x{out_depth}")


# --- BATCH_MATMUL --------------------------------------------------------------------------

@lowering("BATCH_MATMUL", int16=True)
def lower_batch_matmul_s16(op, graph, ctx) -> Step:
    """batch_matmul.cc EvalInt16: reference BatchMatMul<int16_t, int64_t> (int64 sums, the 64-bit
    MultiplyByQuantizedMultiplier), the int8 Prepare's multiplier, no activation clamp beyond int16."""
    a, b, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    _act16(op, graph, a, b, y)
    g = matmul_geometry(op, graph)
    require(g["depth"] < (1 << 17), op, graph, f"an inner dimension of {g['depth']} (int64 sums reach 2^47)")
    m, s = matmul_multiplier(a, b, y)
    require(-31 <= s <= 7, op, graph, "a rescale beyond 2^7")
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_matmul_dims", f"{p}_dims", **g),
        cdecl.struct("tinyml_matmul_params", f"{p}_params", lhs_offset=0, rhs_offset=0, output_offset=0,
                     quant={"multiplier": m, "shift": s}, double_rounding=0,
                     activation=cdecl.activation(-32768, 32767)),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_batch_matmul_s16", [f"&{p}_params", f"&{p}_dims", TRef(a.index), TRef(b.index),
                                            TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                comment=f"16x8 {g['batches']} x [{g['rows']}x{g['depth']}] . [{g['depth']}x{g['cols']}] "
                        f"adj_x={g['adj_x']} adj_y={g['adj_y']}")


# --- pooling, PAD --------------------------------------------------------------------

@lowering("AVERAGE_POOL_2D", "MAX_POOL_2D", int16=True)
def lower_pool_s16(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    _act16(op, graph, x, y)
    return pool_step(op, graph, ctx, "s16", 0, "int16",
                     lambda g: row_overlap_16(graph, op, g["stride_h"], g["pad_h"]), "16x8 ")


@lowering("PAD", "PADV2", int16=True)
def lower_pad_s16(op, graph, ctx) -> Step:
    x, pads, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    _act16(op, graph, x, y)
    require(pads.is_const and pads.dtype in ("int32", "int64"), op, graph, "non-constant paddings")
    rank = len(x.shape)
    require(rank <= 4, op, graph, f"{rank}-D padding")
    pv = np.asarray(pads.data, dtype=np.int64).reshape(-1, 2)
    require(pv.shape[0] == rank and bool(np.all(pv >= 0)), op, graph, "paddings not matching the input")
    want = tuple(int(d + a + b) for d, (a, b) in zip(x.shape, pv))
    require(want == tuple(y.shape), op, graph, f"output shape {list(y.shape)} (paddings give {list(want)})")
    if op.kind == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        cv = graph.t(op.inputs[2])
        require(cv.is_const and cv.numel == 1 and int(np.asarray(cv.data).reshape(-1)[0]) == 0, op, graph,
                "a pad value other than the zero point 0")
    before = [0] * (4 - rank) + [int(a) for a, _ in pv]
    after = [0] * (4 - rank) + [int(b) for _, b in pv]
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_pad_params", f"{p}_params", before=before, after=after, pad_value=0),
        cdecl.struct("tinyml_dims", f"{p}_in", **dict(zip("nhwc", dims4(x)))),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_pad_s16", [f"&{p}_params", f"&{p}_in", TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                comment=f"16x8 before {before} after {after}")


# --- ADD / SUB / MUL -----------------------------------------------------------------

def _binary(op, graph):
    require(len(op.inputs) == 2 and len(op.outputs) == 1, op, graph, "operand count")
    x1, x2, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    _act16(op, graph, x1, x2, y)
    geo = broadcast_geometry(x1.shape, x2.shape, y.shape)
    require(geo is not None, op, graph, f"broadcast {list(x1.shape)} x {list(x2.shape)} -> {list(y.shape)}")
    return x1, x2, y, geo


@lowering("ADD", "SUB", int16=True)
def lower_add_sub_s16(op, graph, ctx) -> Step:
    x1, x2, y, geo = _binary(op, graph)
    # add.cc / sub.cc Prepare: the power-of-two path runs when pot_scale_int16 is set and
    # all three scales are powers of two; the converter writes pot_scale_int16 = false.
    pot = all(float(np.log2(F32(t.quant.s))).is_integer() for t in (x1, x2, y))
    require(not (op.options.pot_scale_int16 and pot), op, graph,
            "the power-of-two-scale int16 path (pot_scale_int16 with power-of-two scales)")
    q1, q2, qo = add_sub_quant(x1.quant.s, x2.quant.s, y.quant.s, left_shift=15)
    if op.kind == "SUB":
        q2 = (-q2[0], q2[1])       # a - b: the second input's rescale negated (symmetric rounding)
    lo, hi = activation_range(op.options.activation, y.quant.s, 0, "int16")
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_add_params", f"{p}_params", input1_offset=0, input2_offset=0, output_offset=0,
                     left_shift=15, input1={"multiplier": q1[0], "shift": q1[1]},
                     input2={"multiplier": q2[0], "shift": q2[1]}, output={"multiplier": qo[0], "shift": qo[1]},
                     activation=cdecl.activation(lo, hi)),
        cdecl.struct("tinyml_broadcast", f"{p}_shape", **geo.c()),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_add_s16", [f"&{p}_params", f"&{p}_shape", TRef(x1.index), TRef(x2.index),
                                   TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                inplace_ok=_same_size_inplace(op, graph, y), comment=f"16x8 {op.kind.lower()}")


@lowering("SQUARED_DIFFERENCE", int16=True)
def lower_squared_difference_s16(op, graph, ctx) -> Step:
    """tflite_micro's squared_difference.cc int16 Prepare: the int8 multipliers with left_shift 0
    (twice the larger input scale; output (2 max_scale)^2 / output_scale), clamp to int16. TensorFlow
    2.21's TFLite refuses int16 SQUARED_DIFFERENCE, so tflite_micro is the oracle (codegen.oracle)."""
    x1, x2, y, geo = _binary(op, graph)
    q1, q2, qo = squared_difference_quant(x1.quant.s, x2.quant.s, y.quant.s, left_shift=0)
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_add_params", f"{p}_params", input1_offset=0, input2_offset=0, output_offset=0,
                     left_shift=0, input1={"multiplier": q1[0], "shift": q1[1]},
                     input2={"multiplier": q2[0], "shift": q2[1]}, output={"multiplier": qo[0], "shift": qo[1]},
                     activation=cdecl.activation(-32768, 32767)),
        cdecl.struct("tinyml_broadcast", f"{p}_shape", **geo.c()),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_squared_difference_s16", [f"&{p}_params", f"&{p}_shape", TRef(x1.index),
                                                  TRef(x2.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                inplace_ok=_same_size_inplace(op, graph, y), comment="16x8 squared difference")


@lowering("MUL", int16=True)
def lower_mul_s16(op, graph, ctx) -> Step:
    x1, x2, y, geo = _binary(op, graph)
    m, s = mul_quant(x1.quant.s, x2.quant.s, y.quant.s)
    lo, hi = activation_range(op.options.activation, y.quant.s, 0, "int16")
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_mul_params", f"{p}_params", input1_offset=0, input2_offset=0, output_offset=0,
                     output={"multiplier": m, "shift": s}, activation=cdecl.activation(lo, hi)),
        cdecl.struct("tinyml_broadcast", f"{p}_shape", **geo.c()),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_mul_s16", [f"&{p}_params", f"&{p}_shape", TRef(x1.index), TRef(x2.index),
                                   TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                inplace_ok=_same_size_inplace(op, graph, y), comment="16x8 mul")


# --- MEAN, SUM ------------------------------------------------------------------------------

@lowering("MEAN", "SUM", int16=True)
def lower_mean_s16(op, graph, ctx) -> Step:
    """MEAN: TFLite's QuantizedMeanOrSum (1/n folded into the multiplier, as int8). SUM follows
    tflite_micro (reduce_common.cc: QuantizedMeanOrSum with compute_sum, the int8 SUM arithmetic
    on int16 values; multiplier double(input_scale) / double(output_scale)); TensorFlow 2.21's
    int16 SUM is other arithmetic, so it is not the oracle."""
    x, ax, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    _act16(op, graph, x, y)
    require(ax.is_const, op, graph, "a non-constant axis tensor")
    axes = [int(a) for a in np.asarray(ax.data).reshape(-1)]
    plan = mean_plan(x.shape, axes, op.options.keep_dims, x.quant.s, 0, y.quant.s, 0,
                     fold_count=op.kind == "MEAN")
    require(plan is not None, op, graph, f"axes {axes} of a {list(x.shape)} input")
    require(plan.count * 32768 < (1 << 31), op, graph, "a reduction of 65,536 or more int16 values")
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_mean_params", f"{p}_params", input_zp=0, output_zp=0, count=plan.count,
                     quant={"multiplier": plan.multiplier, "shift": plan.shift}),
        cdecl.struct("tinyml_reduce_shape", f"{p}_shape", dims=plan.dims, reduce=plan.reduce),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_mean_s16", [f"&{p}_params", f"&{p}_shape", TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                comment=f"16x8 {op.kind.lower()} over {plan.count}")


# --- RELU family ---------------------------------------------------------------------

_RELU_BOUNDS = {"RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}


def _roundf(x: np.float32) -> int:
    return int(np.floor(abs(float(x)) + 0.5)) * (1 if x >= 0 else -1)


@lowering("RELU", "RELU6", "RELU_N1_TO_1", int16=True)
def lower_relu_s16(op, graph, ctx) -> Step:
    """activations.cc ReluPrepare + QuantizedReluX: multiplier from the float32 quotient
    in_scale / out_scale; bounds (int)roundf(act / out_scale) in float32."""
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    _act16(op, graph, x, y)
    require(x.numel == y.numel, op, graph, "input and output of different sizes")
    amin, amax = _RELU_BOUNDS[op.kind]
    m, s = quantize_multiplier(float(F32(x.quant.s) / F32(y.quant.s)))
    lo = max(-32768, _roundf(F32(amin) / F32(y.quant.s)))
    hi = 32767 if amax is None else min(32767, _roundf(F32(amax) / F32(y.quant.s)))
    p = ctx.name(f"op{op.index}")
    decls = [cdecl.struct("tinyml_relu_params", f"{p}_params", input_offset=0, output_offset=0,
                          quant={"multiplier": m, "shift": s}, activation=cdecl.activation(lo, hi))]
    ins, outs = activations(graph, op)
    call = Call("tinyml_relu_s16", [f"&{p}_params", x.numel, TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                inplace_ok=[(x.index, y.index)], comment=f"16x8 {op.kind.lower()}")


# --- QUANTIZE / DEQUANTIZE ----------------------------------------------------------------

# (int8 -> int16 is refused by TFLite's QUANTIZE Prepare, so it is not offered either)
_REQUANT = {("int16", "int8"): "tinyml_requant_s16_s8", ("int16", "int16"): "tinyml_requant_s16_s16"}


@lowering("QUANTIZE", int16=True)
def lower_quantize_s16(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(y.quant is not None and not y.quant.per_channel, op, graph, "per-channel or missing output quantization")
    ins, outs = activations(graph, op)
    if x.dtype == "float32":
        _act16(op, graph, y)
        call = Call("tinyml_quantize_f32_s16", [_f(y.quant.s), 0, x.numel, TRef(x.index), TRef(y.index)])
        return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call],
                    comment=f"float32 -> int16 (scale {y.quant.s!r})")
    func = _REQUANT.get((x.dtype, y.dtype))
    require(func is not None, op, graph, f"requantizing {x.dtype} -> {y.dtype}")
    require(x.quant is not None and not x.quant.per_channel, op, graph, "per-channel or missing input quantization")
    for t in (x, y):
        if t.dtype == "int16":
            _act16(op, graph, t)
    # quantize.cc Prepare: double(input_scale) / double(output_scale); reference Requantize.
    m, s = quantize_multiplier(float(np.float64(F32(x.quant.s))) / float(np.float64(F32(y.quant.s))))
    p = ctx.name(f"op{op.index}")
    decls = [cdecl.struct("tinyml_requant_params", f"{p}_params", input_zp=int(x.quant.zp),
                          output_zp=int(y.quant.zp), quant={"multiplier": m, "shift": s}, double_rounding=1)]
    call = Call(func, [f"&{p}_params", x.numel, TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                inplace_ok=[(x.index, y.index)] if x.dtype == y.dtype else [],
                comment=f"requantize {x.dtype} -> {y.dtype}")


@lowering("DEQUANTIZE", int16=True)
def lower_dequantize_s16(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(y.dtype == "float32" and not x.is_const, op, graph, f"{x.dtype} -> {y.dtype}")
    _act16(op, graph, x)
    ins, outs = activations(graph, op)
    call = Call("tinyml_dequantize_s16_f32", [_f(x.quant.s), 0, x.numel, TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call],
                comment=f"int16 -> float32 (scale {x.quant.s!r})")


# --- element copies --------------------------------------------------------------------

lowering("RESHAPE", "SQUEEZE", "EXPAND_DIMS", int16=True)(_reshape.lower_reshape)

# Pure data movement: the int8 lowerings size every copy by DTYPE_BYTES (tinyml_strided_copy,
# tinyml_concat_part_copy, tinyml_gather, tinyml_dynamic_update_slice take the element size), and
# TFLite's and TFLM's int16 kernels copy the 2-byte elements unchanged (no requantization; TRANSPOSE
# and (STRIDED_)SLICE still require one quantization). Planner facts are the int8 ones: none for the
# copies, in place for DYNAMIC_UPDATE_SLICE's operand.
lowering("TRANSPOSE", int16=True)(_shape.lower_transpose)
lowering("STRIDED_SLICE", int16=True)(_shape.lower_strided_slice)
lowering("SLICE", int16=True)(_shape.lower_slice)
lowering("SPLIT", int16=True)(_split.lower_split)
lowering("SPLIT_V", int16=True)(_split.lower_split_v)
lowering("PACK", int16=True)(_split.lower_pack)
lowering("UNPACK", int16=True)(_split.lower_unpack)
lowering("REVERSE_V2", int16=True)(_movement.lower_reverse)
lowering("BROADCAST_TO", int16=True)(_movement.lower_broadcast_to)
lowering("GATHER", int16=True)(_gather.lower_gather)
lowering("DYNAMIC_UPDATE_SLICE", int16=True)(_update.lower_dynamic_update_slice)


@lowering("CONCATENATION", int16=True)
def lower_concatenation_s16(op, graph, ctx) -> Step:
    y = graph.t(op.outputs[0])
    xs = [graph.t(i) for i in op.inputs]
    _act16(op, graph, y, *xs)
    require(all(F32(t.quant.s) == F32(y.quant.s) for t in xs), op, graph,
            "int16 inputs with different scales")
    return _shape.lower_concatenation(op, graph, ctx)


# --- LOGISTIC / TANH --------------------------------------------------------------------

def _checked_log2(x: float) -> tuple[bool, int]:
    """quantization_util CheckedLog2 in float32: (|frac| < 1e-3, rounded log2)."""
    l2 = F32(np.log(F32(x))) * (F32(1.0) / F32(np.log(F32(2.0))))
    r = _roundf(l2)
    return abs(float(F32(l2 - F32(r)))) < 1e-3, r


def sigmoid_tanh_multiplier(in_scale: float, kind: str) -> tuple[int, int]:
    """(multiplier, right shift) bringing the int16 input to the table's 1/(3*4096) scale, as
    TFLite's int16 LOGISTIC / TANH Prepare and kernel compute them: a power-of-two scale
    2^-12 (TANH also 2^-11) gives 3 << shift with no shift; any other scale doubles
    float64(scale) * 4096 * 3 while it is <= 32767/2 (at most 31 times) and truncates."""
    ok, l2 = _checked_log2(in_scale)
    pot_shift = 12 + l2
    if ok and (pot_shift == 0 or (kind == "TANH" and pot_shift == 1)):
        return 3 << pot_shift, 0
    m, shift = float(F32(in_scale)) * 4096.0 * 3.0, 0
    while m <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        m *= 2.0
    return int(m), shift


@lowering("LOGISTIC", "TANH", int16=True)
def lower_sigmoid_tanh_s16(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    _act16(op, graph, x, y)
    require(x.numel == y.numel, op, graph, "input and output of different sizes")
    ok, l2 = _checked_log2(y.quant.s)
    require(ok and l2 == -15, op, graph, f"output scale {y.quant.s!r} (16x8 {op.kind} outputs 1/32768)")
    m, shift = sigmoid_tanh_multiplier(x.quant.s, op.kind)
    require(m <= 32767, op, graph, f"input scale {x.quant.s!r} above 32767/12288")
    p = ctx.name(f"op{op.index}")
    table = ctx.const_array("tinyml_sigmoid_u16", "uint16_t", sigmoid_table_u16(), share=True)
    decls = [cdecl.struct("tinyml_sigmoid_s16_params", f"{p}_params", input_multiplier=m, input_shift=shift,
                          table=table)]
    func = "tinyml_logistic_s16" if op.kind == "LOGISTIC" else "tinyml_tanh_s16"
    ins, outs = activations(graph, op)
    call = Call(func, [f"&{p}_params", x.numel, TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                inplace_ok=[(x.index, y.index)], comment=f"16x8 {op.kind.lower()} x{m} >> {shift}")


# --- SOFTMAX ---------------------------------------------------------------------------------

@lowering("SOFTMAX", int16=True)
def lower_softmax_s16(op, graph, ctx) -> Step:
    """activations.cc SoftmaxPrepare (int16): QuantizeMultiplier(double(input_scale) *
    double(beta) / (10 / 65535)); the exp and 1/(1+x) LUTPopulate tables (codegen.luts)."""
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    _act16(op, graph, x, y)
    require(abs(float(y.quant.s) - 1.0 / 32768) <= 0.001 / 32768, op, graph,
            f"output scale {y.quant.s!r} (16x8 SOFTMAX outputs 1/32768)")
    require(len(x.shape) >= 1 and x.shape[-1] > 0 and tuple(x.shape) == tuple(y.shape), op, graph,
            f"shapes {list(x.shape)} -> {list(y.shape)}")
    depth = int(x.shape[-1])
    require(depth * 32767 < (1 << 31), op, graph, f"a row of {depth} values (the int32 sum of exps overflows)")
    beta = float(F32(op.options.beta))
    m, shift = quantize_multiplier(float(F32(x.quant.s)) * beta / (10.0 / 65535.0))
    require(m > 0 and shift <= 30, op, graph, f"input scale x beta {float(F32(x.quant.s)) * beta!r}")
    p = ctx.name(f"op{op.index}")
    exp_lut = ctx.const_array("tinyml_softmax_exp_s16", "int16_t", softmax_exp_lut_s16(), share=True)
    inv_lut = ctx.const_array("tinyml_softmax_inv_s16", "int16_t", softmax_one_over_one_plus_x_lut_s16(),
                              share=True)
    inv_lut_tflite = ctx.const_array("tinyml_softmax_inv_s16_tflite", "int16_t",
                                     softmax_one_over_one_plus_x_lut_s16(double=True), share=True)
    decls = [cdecl.struct("tinyml_softmax_s16_params", f"{p}_params", input_multiplier=m, input_shift=shift,
                          exp_lut=exp_lut, one_over_one_plus_x_lut=inv_lut,
                          one_over_one_plus_x_lut_tflite=inv_lut_tflite)]
    rows = x.numel // depth
    ins, outs = activations(graph, op)
    call = Call("tinyml_softmax_s16", [f"&{p}_params", rows, depth, TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                inplace_ok=[(x.index, y.index)], comment=f"16x8 {rows} rows of {depth}, beta {beta}")


# --- RSQRT / GELU: interpolated 513-entry int16 tables -------------------------------------

def _lut16_step(op, graph, ctx, table: np.ndarray, what: str) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    sym = ctx.const_array(f"op{op.index}_lut16", "int16_t", table, share=True)
    ins, outs = activations(graph, op)
    call = Call("tinyml_lut16_s16", [sym, x.numel, TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call],
                inplace_ok=[(x.index, y.index)] if not x.is_const else [], comment=f"16x8 {what}")


def _unary16(op, graph):
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    _act16(op, graph, x, y)
    require(x.numel == y.numel, op, graph, "input and output of different sizes")
    return x, y


@lowering("RSQRT", int16=True)
def lower_rsqrt_s16(op, graph, ctx) -> Step:
    """elementwise.cc (TFLite) int16 RSQRT: LUTPopulate<int16_t> of 1/sqrt and LUTLookup. TFLite
    stops with an error on a negative input; the table gives it the largest output. tflite_micro's
    int16 RSQRT is other arithmetic (measured: 6,746 of 65,536 inputs differ at scales 0.001 ->
    0.01); the kernel follows TFLite's reference, the project's oracle."""
    x, y = _unary16(op, graph)
    return _lut16_step(op, graph, ctx, rsqrt_lut_s16(x.quant.s, y.quant.s), "rsqrt table")


@lowering("GELU", int16=True)
def lower_gelu_s16(op, graph, ctx) -> Step:
    """gelu.cc (TFLite) int16 GELU: LUTPopulate<int16_t> of the exact or tanh-approximate GELU and
    LUTLookup. tflite_micro has no GELU kernel."""
    x, y = _unary16(op, graph)
    approx = bool(op.options.approximate)
    return _lut16_step(op, graph, ctx, gelu_lut_s16(x.quant.s, y.quant.s, approx),
                       "gelu table (tanh approximation)" if approx else "gelu table")


# --- LEAKY_RELU / ABS ------------------------------------------------------------------------

@lowering("LEAKY_RELU", int16=True)
def lower_leaky_relu_s16(op, graph, ctx) -> Step:
    """LeakyReluPrepare: float32 in_scale * alpha / out_scale and in_scale / out_scale; reference
    QuantizeLeakyRelu<int16_t> (double rounding, as the int8 table: tinyml.codegen.luts.leaky_relu_lut)."""
    x, y = _unary16(op, graph)
    s_in, s_out, alpha = F32(x.quant.s), F32(y.quant.s), F32(op.options.alpha)
    ma, sa = quantize_multiplier(float(s_in * alpha / s_out))
    mi, si = quantize_multiplier(float(s_in / s_out))
    p = ctx.name(f"op{op.index}")
    decls = [cdecl.struct("tinyml_leaky_relu_s16_params", f"{p}_params",
                          identity={"multiplier": mi, "shift": si}, alpha={"multiplier": abs(ma), "shift": sa},
                          alpha_negative=int(ma < 0))]
    ins, outs = activations(graph, op)
    call = Call("tinyml_leaky_relu_s16", [f"&{p}_params", x.numel, TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                inplace_ok=[(x.index, y.index)], comment=f"16x8 leaky relu alpha={float(alpha)!r}")


@lowering("ABS", int16=True)
def lower_abs_s16(op, graph, ctx) -> Step:
    """elementwise.cc AbsEvalQuantized<int16_t>: |x|, rescaled by QuantizeMultiplier(float32
    in_scale / out_scale) when the scales differ (double rounding, as the int8 ABS table)."""
    x, y = _unary16(op, graph)
    ins, outs = activations(graph, op)
    decls, quant = [], "NULL"
    if F32(x.quant.s) != F32(y.quant.s):
        m, s = quantize_multiplier(float(F32(F32(x.quant.s) / F32(y.quant.s))))
        p = ctx.name(f"op{op.index}")
        decls = [cdecl.struct("tinyml_quant", f"{p}_quant", multiplier=m, shift=s)]
        quant = f"&{p}_quant"
    call = Call("tinyml_abs_s16", [quant, x.numel, TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                inplace_ok=[(x.index, y.index)], comment="16x8 abs")

