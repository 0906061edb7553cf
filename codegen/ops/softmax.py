"""SOFTMAX (int8 in, int8 out with scale 1/256 and zero point -128, any beta and row length);
LOG_SOFTMAX (int8, output 16/256 and 127; lower_log_softmax below).

Desktop TFLite's reference kernel (activations.cc SoftmaxPrepare with
kReference, then reference_ops::Softmax) rescales each difference to the row
maximum with PreprocessSoftmaxScaling's multiplier into Q5.26, takes gemmlowp's
exp_on_negative_values, sums in Q12.19, and multiplies by a fixed-point
reciprocal. The difference is an integer in [-255, 0], so the exp is a
256-entry table computed here (or, for short softmaxes, the same exps computed
by the kernel); the C kernel does the per-row sum, reciprocal and output
rounding.
"""
from __future__ import annotations

import math

import numpy as np

from tinyml.codegen import cdecl, luts
from tinyml.codegen.ops import elementwise as fx
from tinyml.codegen.quant import quantize_multiplier_smaller_than_one
from tinyml.steps import Call, Step, TRef
from tinyml.codegen.lowering import activations, lowering, require

SCALED_DIFF_INTEGER_BITS = 5


def softmax_input_scaling(beta: float, input_scale: float) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling + CalculateInputRadius: (multiplier, left_shift, diff_min)."""
    max_real = float((1 << 31) - 1)            # TF 2.21 is a double-rounding build
    real = min(float(beta) * float(np.float32(input_scale)) * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)),
               max_real)
    mult, left_shift = fx.quantize_multiplier(real)
    radius = math.floor(1.0 * ((1 << SCALED_DIFF_INTEGER_BITS) - 1)
                        * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)) / float(1 << left_shift))
    return mult, left_shift, -radius


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    const_term = 1895147668                     # exp(-1/8) in Q0.31
    const_1_over_3 = 715827883
    x = a + (1 << 28)
    x2 = fx.srdhm(x, x)
    x3 = fx.srdhm(x2, x)
    x4 = fx.srdhm(x2, x2)
    x4_over_4 = fx.rounding_divide_by_pot(x4, 2)
    poly = fx.rounding_divide_by_pot(fx.wrap32(fx.srdhm(fx.wrap32(x4_over_4 + x3), const_1_over_3) + x2), 1)
    return fx.wrap32(const_term + fx.srdhm(const_term, fx.wrap32(x + poly)))


def exp_on_negative_values(a: int, integer_bits: int = SCALED_DIFF_INTEGER_BITS) -> int:
    """gemmlowp exp_on_negative_values: a in Q(integer_bits).(31-integer_bits), a <= 0 -> Q0.31."""
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        fx.sat_shift_left(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = fx.wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                                 (2, 39332535), (3, 720401), (4, 242)):
        if integer_bits > exponent and remainder & (1 << (frac_bits + exponent)):
            result = fx.srdhm(result, multiplier)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        if a < clamp:
            result = 0
    if a == 0:
        result = fx.INT32_MAX
    return result


def softmax_exp_table(beta: float, input_scale: float) -> np.ndarray:
    """exp of the rescaled difference -k for k = 0..255 (Q0.31); 0 below diff_min."""
    mult, left_shift, diff_min = softmax_input_scaling(beta, input_scale)
    table = np.zeros(256, dtype=np.int64)
    for k in range(256):
        diff = -k
        if diff >= diff_min:
            rescaled = fx.multiply_by_quantized_multiplier(diff, mult, left_shift)
            table[k] = exp_on_negative_values(rescaled)
    return table.astype(np.int32)

# Up to this many elements per inference (a classifier's output) the kernel
# computes its exps (tinyml_softmax_exp_s8: ~120 instructions per element, a
# few hundred bytes of code shared by every such softmax) instead of reading
# the 1 KB table; longer softmaxes (attention rows) keep the table.
COMPUTED_EXP_MAX_ELEMENTS = 64


@lowering("SOFTMAX")
def lower_softmax(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.dtype == y.dtype == "int8", op, graph, f"{x.dtype} -> {y.dtype} (only int8 -> int8 is supported)")
    require(x.quant is not None and y.quant is not None, op, graph, "unquantized int8 tensors")
    require(y.quant.zp == -128 and abs(y.quant.s - 1.0 / 256) <= 0.001 / 256, op, graph,
            f"output quantization (scale {y.quant.s}, zero point {y.quant.zp}); TFLite requires 1/256, -128")
    require(len(x.shape) >= 1 and x.shape[-1] > 0, op, graph, "a scalar input")
    depth = int(x.shape[-1])
    rows = x.numel // depth
    beta = float(np.float32(op.options.beta))
    ins, outs = activations(graph, op)
    if rows * depth <= COMPUTED_EXP_MAX_ELEMENTS:
        mult, left_shift, diff_min = softmax_input_scaling(beta, x.quant.s)
        p = ctx.name(f"op{op.index}")
        decl = cdecl.struct("tinyml_softmax_params", f"{p}_params",
                            input_quant={"multiplier": mult, "shift": left_shift}, diff_min=diff_min)
        call = Call("tinyml_softmax_exp_s8", [f"&{p}_params", rows, depth, TRef(x.index), TRef(y.index)])
        return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                    inplace_ok=[(x.index, y.index)],
                    comment=f"{rows} rows of {depth}, beta {beta}, exps computed (no table)")
    table = softmax_exp_table(beta, x.quant.s)
    sym = ctx.const_array(f"op{op.index}_softmax_exp", "int32_t", table, share=True)
    call = Call("tinyml_softmax_s8", [sym, rows, depth, TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call],
                inplace_ok=[(x.index, y.index)], comment=f"{rows} rows of {depth}, beta {beta}")


LOG_SOFTMAX_OUTPUT_SCALE = 16.0 / 256
LOG_SOFTMAX_OUTPUT_ZP = 127


def log_softmax_exp_table(input_scale: float, single_rounding: bool) -> np.ndarray:
    """exp12[k] = RoundingDivideByPOT(exp_on_negative_values(MBQM(-k)), 12) (Q12.19), 0 below
    diff_min: the per-difference terms of reference_ops::LogSoftmax's sum of exps."""
    mult, left_shift, diff_min = softmax_input_scaling(1.0, input_scale)
    table = np.zeros(256, dtype=np.int64)
    for k in range(256):
        if -k >= diff_min:
            rescaled = luts.mbqm(-k, mult, left_shift, single_rounding)
            table[k] = fx.rounding_divide_by_pot(exp_on_negative_values(rescaled), 12)
    return table.astype(np.int32)


@lowering("LOG_SOFTMAX")
def lower_log_softmax(op, graph, ctx) -> Step:
    """LOG_SOFTMAX (int8): PreprocessLogSoftmaxScalingExp (beta 1, Q5.26 differences) at
    generate time, tables of the exp terms for both rounding flavours; the kernel
    (tinyml_log_softmax_s8) does the per-row sum, fixed-point log and output rounding."""
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.dtype == y.dtype == "int8", op, graph, f"{x.dtype} -> {y.dtype} (only int8 -> int8 is supported)")
    require(x.quant is not None and y.quant is not None, op, graph, "unquantized int8 tensors")
    require(y.quant.zp == LOG_SOFTMAX_OUTPUT_ZP and float(np.float32(y.quant.s)) == LOG_SOFTMAX_OUTPUT_SCALE,
            op, graph, f"output quantization (scale {y.quant.s}, zero point {y.quant.zp}); TFLite requires 16/256, 127")
    require(tuple(x.shape) == tuple(y.shape) and len(x.shape) >= 1, op, graph, "input and output shapes differ")
    depth = int(x.shape[-1])
    require(depth <= 4096, op, graph, f"rows of {depth} (the Q12.19 sum holds 4096)")
    rows = x.numel // depth
    mult, left_shift, diff_min = softmax_input_scaling(1.0, x.quant.s)
    rev_m, rev_s = quantize_multiplier_smaller_than_one((1 << (31 - left_shift)) / float(mult))
    p = ctx.name(f"op{op.index}")
    t_single, t_double = log_softmax_exp_table(x.quant.s, True), log_softmax_exp_table(x.quant.s, False)
    single = ctx.const_array(f"{p}_exp12", "int32_t", t_single)
    double = single if np.array_equal(t_single, t_double) else \
        ctx.const_array(f"{p}_exp12_double", "int32_t", t_double)
    decl = cdecl.struct("tinyml_log_softmax_params", f"{p}_params",
                        input_quant={"multiplier": mult, "shift": left_shift},
                        reverse_quant={"multiplier": rev_m, "shift": rev_s}, diff_min=diff_min,
                        exp12_single=single, exp12_double=double)
    ins, outs = activations(graph, op)
    call = Call("tinyml_log_softmax_s8", [f"&{p}_params", rows, depth, TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                inplace_ok=[(x.index, y.index)], comment=f"{rows} rows of {depth}")
