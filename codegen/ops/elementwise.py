"""ADD, SUB, MUL, DIV, SQUARED_DIFFERENCE (int8, numpy broadcasting up to 4-D) and RSQRT (int8 table).

Every constant is computed here the way TensorFlow Lite's kernel Prepare
computes it (tensorflow/lite/kernels/{add,sub,mul,squared_difference,elementwise}.cc,
desktop TFLite as shipped with TensorFlow 2.21, whose reference kernels
requantize with gemmlowp double rounding, verified op by op against it); the C
kernels in firmware/kernels/src/elementwise.c only run the integer pipeline.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinyml.codegen import cdecl
from tinyml.codegen.quant import activation_range
from tinyml.steps import Call, Step, TRef
from tinyml.codegen.lowering import activations, lowering, require

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


# --- gemmlowp fixed-point arithmetic on Python ints (int32 semantics) -------

def wrap32(x: int) -> int:
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def srdhm(a: int, b: int) -> int:
    """SaturatingRoundingDoublingHighMul."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    q = abs(v) >> 31                     # C division truncates toward zero
    return q if v >= 0 else -q


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def sat_shift_left(x: int, exponent: int) -> int:
    """SaturatingRoundingMultiplyByPOT<exponent> for exponent > 0."""
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return wrap32(x << exponent)


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier with gemmlowp double rounding, as TensorFlow
    2.21's desktop reference kernels compute it (see tinyml_requantize_dr)."""
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    return rounding_divide_by_pot(srdhm(wrap32(x << left), multiplier), right)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier as built into TensorFlow 2.21's TFLite (without
    TFLITE_SINGLE_ROUNDING): real = m * 2^(shift - 31), m in [2^30, 2^31);
    shifts above 30 are kept (the double-rounding kernels shift left), shifts
    below -31 flush to zero."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(math.floor(abs(q) * (1 << 31) + 0.5)) * (1 if q >= 0 else -1)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def f32(x) -> np.float32:
    return np.float32(x)


# --- broadcasting -------------------------------------------------------------

@dataclass
class Broadcast:
    dims: list[int]
    stride1: list[int]
    stride2: list[int]

    def c(self) -> dict:
        return {"dims": self.dims, "stride1": self.stride1, "stride2": self.stride2}


def broadcast_geometry(shape1, shape2, out_shape) -> Broadcast | None:
    """Strides (0 where broadcast) of both inputs over the output, with
    size-1 dimensions dropped and contiguous runs merged, padded to 4-D.
    None when the shapes do not broadcast or need more than 4 dimensions."""
    rank = max(len(shape1), len(shape2), len(out_shape))
    s1 = [1] * (rank - len(shape1)) + list(shape1)
    s2 = [1] * (rank - len(shape2)) + list(shape2)
    so = [1] * (rank - len(out_shape)) + list(out_shape)
    for a, b, o in zip(s1, s2, so):
        if o != max(a, b) or a not in (1, o) or b not in (1, o):
            return None

    def strides(s):
        st, acc = [0] * rank, 1
        for k in range(rank - 1, -1, -1):
            st[k] = acc if s[k] > 1 else 0
            acc *= s[k]
        return st

    t1, t2 = strides(s1), strides(s2)
    dims = [(so[k], t1[k], t2[k]) for k in range(rank) if so[k] > 1]
    merged: list[list[int]] = []
    for d, a, b in dims:
        if merged:
            pd, pa, pb = merged[-1]
            if pa == a * d and pb == b * d:       # the previous dim continues this one
                merged[-1] = [pd * d, a, b]
                continue
        merged.append([d, a, b])
    if len(merged) > 4:
        return None
    while len(merged) < 4:
        merged.insert(0, [1, 0, 0])
    return Broadcast([m[0] for m in merged], [m[1] for m in merged], [m[2] for m in merged])


# --- prepare-time constants (TFLite Prepare, desktop TF 2.21) -------------------------

def add_sub_quant(s1: float, s2: float, so: float, left_shift: int = 20):
    """PrepareAdd / PrepareGeneralSubOp (8-bit general path): doubles from float scales."""
    twice_max = 2.0 * float(max(f32(s1), f32(s2)))
    r1 = float(f32(s1)) / twice_max
    r2 = float(f32(s2)) / twice_max
    ro = twice_max / float(f32((1 << left_shift) * f32(so)))
    return quantize_multiplier(r1), quantize_multiplier(r2), quantize_multiplier(ro)


def squared_difference_quant(s1: float, s2: float, so: float, left_shift: int = 7):
    twice_max = 2.0 * float(max(f32(s1), f32(s2)))
    r1 = float(f32(s1)) / twice_max
    r2 = float(f32(s2)) / twice_max
    ro = (twice_max * twice_max) / float(f32((1 << (2 * left_shift)) * f32(so)))
    return quantize_multiplier(r1), quantize_multiplier(r2), quantize_multiplier(ro)


def mul_quant(s1: float, s2: float, so: float) -> tuple[int, int]:
    """mul.cc: input1_scale * input2_scale / output_scale evaluated in float32, then doubled."""
    real = f32(f32(f32(s1) * f32(s2)) / f32(so))
    return quantize_multiplier(float(real))


def inv_sqrt_quantized_multiplier_exp(x: int, reverse_shift: int = -1) -> tuple[int, int]:
    """GetInvSqrtQuantizedMultiplierExp: 1/sqrt(x) as (Q0.31 multiplier, shift)."""
    if x <= 1:
        return INT32_MAX, 0
    shift = 11
    while x >= (1 << 29):
        x //= 4
        shift += 1
    clz = 32 - x.bit_length()
    left_shift_bit_pairs = (clz - 1) // 2 - 1
    shift -= left_shift_bit_pairs
    x <<= 2 * left_shift_bit_pairs
    # Newton-Raphson in Q3.28: x_{n+1} = 1.5 x_n - (input/2) x_n^3.
    fp_input = x >> 1
    fp_half_input = rounding_divide_by_pot(fp_input, 1)
    fp_half_three = (1 << 28) + (1 << 27)
    v = 1 << 28                                   # F3::One()
    for _ in range(5):
        v3 = sat_shift_left(srdhm(srdhm(v, v), v), 6)            # Rescale<3>(F9)
        diff = wrap32(srdhm(fp_half_three, v) - srdhm(fp_half_input, v3))
        v = sat_shift_left(diff, 3)                               # Rescale<3>(F6)
    v = srdhm(v, 1518500250)                      # * sqrt(2)/2 (Q0.31)
    if shift < 0:
        v = wrap32(v << -shift)
        shift = 0
    return v, shift * reverse_shift


def rsqrt_quant(in_scale: float, out_scale: float) -> tuple[int, int]:
    """RsqrtPrepare (int8): the output multiplier 1 / (sqrt(in_scale) * out_scale), float32 operands."""
    return quantize_multiplier(1.0 / float(f32(np.sqrt(f32(in_scale)) * f32(out_scale))))


def rsqrt_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """RsqrtEvalQuantizedInt8 for every int8 input, indexed by x + 128."""
    mult, shift = rsqrt_quant(in_scale, out_scale)
    k_shift = 20
    table = np.zeros(256, dtype=np.int8)
    for q in range(-128, 128):
        value = q - in_zp
        if value == 0:
            out = 127
        else:
            m, s = inv_sqrt_quantized_multiplier_exp(value)
            data = multiply_by_quantized_multiplier(1, m, s + k_shift)
            out = multiply_by_quantized_multiplier(data, mult, shift - k_shift) + out_zp
            out = min(max(out, -128), 127)
        table[q + 128] = out
    return table

def _binary_operands(op, graph):
    require(len(op.inputs) == 2 and len(op.outputs) == 1, op, graph, "operand count")
    x1, x2, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    require(x1.dtype == x2.dtype == y.dtype == "int8", op, graph,
            f"{x1.dtype}/{x2.dtype} -> {y.dtype} (only int8 is supported)")
    for t in (x1, x2, y):
        require(t.quant is not None and not t.quant.per_channel, op, graph,
                f"tensor {t.index} without per-tensor quantization")
    geo = broadcast_geometry(x1.shape, x2.shape, y.shape)
    require(geo is not None, op, graph, f"broadcast {list(x1.shape)} x {list(x2.shape)} -> {list(y.shape)}")
    return x1, x2, y, geo


def _inplace(op, graph, y):
    """Inputs with the output's exact shape may share its bytes."""
    return [(i, y.index) for i in op.inputs
            if i >= 0 and not graph.t(i).is_const and tuple(graph.t(i).shape) == tuple(y.shape)]


def _quant(m_s: tuple[int, int]) -> dict:
    return {"multiplier": m_s[0], "shift": m_s[1]}


# --- ADD / SUB -----------------------------------------------------------------

@lowering("ADD", "SUB")
def lower_add_sub(op, graph, ctx) -> Step:
    x1, x2, y, geo = _binary_operands(op, graph)
    q1, q2, qo = add_sub_quant(x1.quant.s, x2.quant.s, y.quant.s)
    if op.kind == "SUB":
        # TFLite's SUB is ADD with the second input's multiplier negated (op_sign = -1).
        q2 = (-q2[0], q2[1])
    lo, hi = activation_range(op.options.activation, y.quant.s, y.quant.zp)
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_add_params", f"{p}_params", input1_offset=-x1.quant.zp,
                     input2_offset=-x2.quant.zp, output_offset=y.quant.zp, left_shift=20,
                     input1=_quant(q1), input2=_quant(q2), output=_quant(qo),
                     activation=cdecl.activation(lo, hi)),
        cdecl.struct("tinyml_broadcast", f"{p}_shape", **geo.c()),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_add_s8", [f"&{p}_params", f"&{p}_shape", TRef(x1.index), TRef(x2.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                inplace_ok=_inplace(op, graph, y),
                comment=f"{list(x1.shape)} {'+' if op.kind == 'ADD' else '-'} {list(x2.shape)}")


# --- SQUARED_DIFFERENCE ------------------------------------------------------------

@lowering("SQUARED_DIFFERENCE")
def lower_squared_difference(op, graph, ctx) -> Step:
    x1, x2, y, geo = _binary_operands(op, graph)
    q1, q2, qo = squared_difference_quant(x1.quant.s, x2.quant.s, y.quant.s)
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_add_params", f"{p}_params", input1_offset=-x1.quant.zp,
                     input2_offset=-x2.quant.zp, output_offset=y.quant.zp, left_shift=7,
                     input1=_quant(q1), input2=_quant(q2), output=_quant(qo),
                     activation=cdecl.activation(-128, 127)),
        cdecl.struct("tinyml_broadcast", f"{p}_shape", **geo.c()),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_squared_difference_s8",
                [f"&{p}_params", f"&{p}_shape", TRef(x1.index), TRef(x2.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                inplace_ok=_inplace(op, graph, y), comment=f"({list(x1.shape)} - {list(x2.shape)})^2")


# --- MUL -------------------------------------------------------------------------

@lowering("MUL")
def lower_mul(op, graph, ctx) -> Step:
    x1, x2, y, geo = _binary_operands(op, graph)
    qo = mul_quant(x1.quant.s, x2.quant.s, y.quant.s)
    lo, hi = activation_range(op.options.activation, y.quant.s, y.quant.zp)
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_mul_params", f"{p}_params", input1_offset=-x1.quant.zp,
                     input2_offset=-x2.quant.zp, output_offset=y.quant.zp, output=_quant(qo),
                     activation=cdecl.activation(lo, hi)),
        cdecl.struct("tinyml_broadcast", f"{p}_shape", **geo.c()),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_mul_s8", [f"&{p}_params", f"&{p}_shape", TRef(x1.index), TRef(x2.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                inplace_ok=_inplace(op, graph, y), comment=f"{list(x1.shape)} * {list(x2.shape)}")


# --- RSQRT -----------------------------------------------------------------------

@lowering("RSQRT")
def lower_rsqrt(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.dtype == y.dtype == "int8", op, graph, f"{x.dtype} -> {y.dtype} (only int8 is supported)")
    require(x.quant is not None and y.quant is not None, op, graph, "unquantized int8 tensors")
    table = rsqrt_table(x.quant.s, x.quant.zp, y.quant.s, y.quant.zp)
    sym = ctx.const_array(f"op{op.index}_rsqrt_lut", "int8_t", table, share=True)
    ins, outs = activations(graph, op)
    call = Call("tinyml_lut_s8", [sym, x.numel, TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call],
                inplace_ok=[(x.index, y.index)] if not x.is_const else [],
                comment="256-entry table of TFLite's fixed-point 1/sqrt")


# --- DIV -------------------------------------------------------------------------

@lowering("DIV")
def lower_div(op, graph, ctx) -> Step:
    """div.cc Prepare: input1_scale / (input2_scale * output_scale) in float32 (TFLite 2.21's
    reference) or in double (the tflite_micro wheel, measured: exact .5 ties differ); the kernel
    (firmware/kernels/src/div.c) runs DivElementwise's reciprocal arithmetic and picks the
    multiplier of the runtime config.h names."""
    x1, x2, y, geo = _binary_operands(op, graph)
    real = f32(f32(x1.quant.s) / f32(f32(x2.quant.s) * f32(y.quant.s)))
    qo = quantize_multiplier(float(real))
    qo_tflm = quantize_multiplier(float(f32(x1.quant.s)) / (float(f32(x2.quant.s)) * float(f32(y.quant.s))))
    lo, hi = activation_range(op.options.activation, y.quant.s, y.quant.zp)
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_div_params", f"{p}_params", input1_offset=-x1.quant.zp, input2_offset=-x2.quant.zp,
                     output_offset=y.quant.zp, output=_quant(qo), output_tflm=_quant(qo_tflm),
                     activation=cdecl.activation(lo, hi)),
        cdecl.struct("tinyml_broadcast", f"{p}_shape", **geo.c()),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_div_s8", [f"&{p}_params", f"&{p}_shape", TRef(x1.index), TRef(x2.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                inplace_ok=_inplace(op, graph, y), comment=f"{list(x1.shape)} / {list(x2.shape)}")
