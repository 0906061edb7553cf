"""Build-time quantization arithmetic, mirroring TFLite's kernel Prepare steps.

These run in Python at generate time; the C kernels only see the resulting
integer multipliers and shifts. Each function states which TFLite routine it
reproduces; the per-op tests compare whole-op outputs against TFLite, which
also pins these down.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def _tflite_round(x: float) -> int:
    """std::round: half away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier: real = m * 2^(shift-31), m in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = _tflite_round(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    # Single-rounding builds saturate shifts above 30 (double rounding never
    # meets them for the scales int8 models use).
    if shift > 30:
        shift = 30
        q_fixed = (1 << 31) - 1
    return int(q_fixed), int(shift)


def quantize_multiplier_smaller_than_one(real: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp: expects 0 < real < 1; shift <= 0."""
    m, shift = quantize_multiplier(real)
    return m, shift


def activation_range(act: str, scale: float, zero_point: int, dtype: str = "int8") -> tuple[int, int]:
    """CalculateActivationRangeQuantized: clamp bounds of a fused activation."""
    qmin, qmax = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}[dtype]

    def q(x: float) -> int:
        # TFLite divides in float (the tensor's float32 scale): 6 / 0.8f is 7.5f, not 7.4999999
        return zero_point + _tflite_round(float(np.float32(x) / np.float32(scale)))

    if act in ("NONE", None):
        return qmin, qmax
    if act == "RELU":
        return max(qmin, q(0.0)), qmax
    if act == "RELU6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if act == "RELU_N1_TO_1":
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    raise ValueError(f"unsupported fused activation {act}")


def per_channel_multipliers(input_scale: float, filter_scales: np.ndarray, output_scale: float,
                            channels: int) -> tuple[list[int], list[int]]:
    """PopulateConvolutionQuantizationParams: one (multiplier, shift) per channel.

    effective = double(input_scale) * double(filter_scale) / double(output_scale).
    A single filter scale is broadcast to every channel.
    """
    mults: list[int] = []
    shifts: list[int] = []
    for c in range(channels):
        fs = float(filter_scales[c] if filter_scales.size > 1 else filter_scales[0])
        eff = float(np.float64(np.float32(input_scale))) * float(np.float64(np.float32(fs))) \
            / float(np.float64(np.float32(output_scale)))
        m, s = quantize_multiplier(eff)
        mults.append(m)
        shifts.append(s)
    return mults, shifts


def c_int_array(values, per_line: int = 16) -> str:
    """Format integers as the body of a C initializer, a fixed count per line."""
    vals = [str(int(v)) for v in values]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    return ",\n    ".join(lines)


# Ops whose requantization multipliers come from a constant filter's scales (input 1).
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")
# Ops that mark a model as a transformer for issue 15's flash target.
ATTENTION_OPS = ("BATCH_MATMUL",)


def requant_floor_bytes(graph) -> int:
    """The fewest flash bytes a bit-exact requantization of the weighted ops can take beyond
    their parameters: a per-channel multiplier is a function of the channel's float32 filter
    scale (a 24-bit mantissa; TFLite stores 4 B per channel), so at least 3 B per
    per-channel-quantized output channel, and 4 B (one int32 multiplier) per per-tensor
    weighted op. Shifts, clamps, op structs and lookup tables come on top."""
    total = 0
    for op in graph.ops:
        if op.kind not in WEIGHTED_OPS or len(op.inputs) < 2 or op.inputs[1] < 0:
            continue
        w = graph.t(op.inputs[1])
        if w.quant is None or not w.is_const:
            continue
        n = int(np.asarray(w.quant.scale).size)
        total += 3 * n if n > 1 else 4
    return total


def flash_target(graph) -> float:
    """Issue 15's bound on flash constants over parameter bytes: 1.15 for transformers
    (attention), 1.05 for the CNNs."""
    return 1.15 if any(op.kind in ATTENTION_OPS for op in graph.ops) else 1.05
