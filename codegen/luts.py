"""256-entry tables for 8-bit unary ops, computed at generate time (and, at the end,
the interpolated tables of the 16x8 LOGISTIC / TANH / SOFTMAX kernels).

Every function here reproduces, for each of the 256 possible input bytes,
the arithmetic TensorFlow Lite's reference kernel performs for that op:
the fixed-point integer path (RELU family, LEAKY_RELU, HARD_SWISH, 8-bit
QUANTIZE) or the float32 table TFLite itself builds in Prepare (LOGISTIC,
TANH, GELU: `LUTPopulate` / `PopulateLookupTable`). The C side then only does
`out = table[(uint8_t)in]` (tinyml_lut_8).

Rounding: TensorFlow 2.21's reference RELU / RELU6 / RELU_N1_TO_1 /
LEAKY_RELU / QUANTIZE (8-bit requantize), like its BATCH_MATMUL, match
gemmlowp double rounding and not single rounding (measured against
tf.lite.Interpreter BUILTIN_REF over hundreds of quantizations; only the
FULLY_CONNECTED path matches single rounding), so the fixed-point tables
default to double rounding.

Tables are indexed by the input byte as uint8 (int8 -1 is index 255) and
hold output bytes as uint8 (int8 values two's-complement encoded).

Float32 arithmetic is done with numpy float32 scalars, one IEEE operation at a
time in the reference's order. The transcendental functions (expf, tanhf,
erfcf) are taken from the platform C math library through ctypes when one is
loadable, since that is the very function TFLite's kernels call; otherwise
the float64 result rounded to float32 is used (equal except in rare last-ulp
cases).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
from typing import Callable

import numpy as np

from .quant import quantize_multiplier

F32 = np.float32
RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


# ---------------------------------------------------------------- float32 libm

def _load_libm():
    name = ctypes.util.find_library("m")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    fns = {}
    for fn in ("expf", "tanhf", "erfcf", "erff"):
        f = getattr(lib, fn, None)
        if f is None:
            return None
        f.restype = ctypes.c_float
        f.argtypes = [ctypes.c_float]
        fns[fn] = f
    return fns


_LIBM = _load_libm()


def _f32_fn(c_name: str, py: Callable[[float], float]) -> Callable[[np.float32], np.float32]:
    if _LIBM is not None:
        f = _LIBM[c_name]
        return lambda x: F32(f(float(x)))

    def fallback(x: np.float32) -> np.float32:
        try:
            return F32(py(float(x)))
        except OverflowError:
            return F32(np.inf)
    return fallback


expf = _f32_fn("expf", math.exp)
tanhf = _f32_fn("tanhf", math.tanh)
erfcf = _f32_fn("erfcf", math.erfc)


def roundf(x: np.float32) -> np.float32:
    """std::round on float: half away from zero (exact in float32)."""
    if not np.isfinite(x):
        return x
    return F32(math.copysign(math.floor(abs(float(x)) + 0.5), float(x))) \
        if abs(float(x)) < 2 ** 23 else x


def _to_int32(x: np.float32) -> int:
    """static_cast<int32_t>(float) for in-range values; saturates outside
    (the C++ cast is undefined there), NaN -> INT32_MIN."""
    if np.isnan(x):
        return -(1 << 31)
    v = float(x)
    if v >= 2 ** 31:
        return (1 << 31) - 1
    if v < -2 ** 31:
        return -(1 << 31)
    return int(v)  # truncation toward zero


def _table(dtype_in: str, dtype_out: str, f: Callable[[int], int]) -> np.ndarray:
    """Table indexed by the input byte; f maps the input value to the output value."""
    lo, hi = RANGES[dtype_in]
    olo, ohi = RANGES[dtype_out]
    table = np.zeros(256, dtype=np.uint8)
    for v in range(lo, hi + 1):
        q = f(v)
        assert olo <= q <= ohi, (v, q)
        table[v & 0xFF] = q & 0xFF
    return table


# ------------------------------------------------------------- float LUT path

def float_lut(transform: Callable[[np.float32], np.float32], in_scale: float, in_zp: int,
              out_scale: float, out_zp: int, dtype: str = "int8") -> np.ndarray:
    """TFLite LUTPopulate<int8/uint8> (and the older PopulateLookupTable):
    deq = in_scale * (v - in_zp); y = transform(deq);
    q = (int)(round(y * (1 / out_scale)) + out_zp), clamped; all float32."""
    lo, hi = RANGES[dtype]
    s_in = F32(in_scale)
    inv = F32(1) / F32(out_scale)

    def one(v: int) -> int:
        deq = s_in * F32(v - in_zp)
        y = transform(deq)
        rescaled = roundf(y * inv)
        q = _to_int32(rescaled + F32(out_zp))
        return max(lo, min(hi, q))

    with np.errstate(all="ignore"):
        return _table(dtype, dtype, one)


def logistic_f32(x: np.float32) -> np.float32:
    """1.0f / (1.0f + std::exp(-x))."""
    return F32(1) / (F32(1) + expf(-x))


def tanh_f32(x: np.float32) -> np.float32:
    return tanhf(x)


SQRT1_2 = 0.70710678118654752440       # M_SQRT1_2
TWO_SQRTPI = 1.12837916709551257390    # M_2_SQRTPI


def gelu_f32(x: np.float32) -> np.float32:
    """reference_ops::GeluTransform: 0.5f * x * erfc(x * (float)-M_SQRT1_2)."""
    return F32(0.5) * x * erfcf(x * F32(-SQRT1_2))


def gelu_approx_f32(x: np.float32) -> np.float32:
    """reference_ops::GeluTransformApproximate:
    0.5f * x * (1 + tanh((float)sqrt(2/pi) * (x + 0.044715f * x * x * x)))."""
    k = F32(TWO_SQRTPI * SQRT1_2)
    inner = x + F32(0.044715) * x * x * x
    return F32(0.5) * x * (F32(1) + tanhf(k * inner))


# ---------------------------------------------------------- fixed-point paths

def mbqm(x: int, multiplier: int, shift: int, single_rounding: bool = True) -> int:
    """MultiplyByQuantizedMultiplier(int32 x, int32 m, int shift)."""
    if single_rounding:
        total = 31 - shift
        return (x * multiplier + (1 << (total - 1))) >> total
    left = max(shift, 0)
    right = max(-shift, 0)
    return rounding_divide_by_pot(srdhm32(_wrap32(x << left), multiplier), right)


def _wrap32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def _wrap16(x: int) -> int:
    x &= 0xFFFF
    return x - (1 << 16) if x & 0x8000 else x


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def srdhm32(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul (int32)."""
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _cdiv(ab + nudge, 1 << 31)


def srdhm16(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul (int16)."""
    if a == b == -(1 << 15):
        return (1 << 15) - 1
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    return _wrap16(_cdiv(ab + nudge, 1 << 15))


def sdhm16(a: int, b: int) -> int:
    """SaturatingDoublingHighMul (int16, truncating), from reference hard_swish."""
    if a == b == -(1 << 15):
        return (1 << 15) - 1
    return _wrap16(_cdiv(a * b, 1 << 15))


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def _sat_left_shift16(v: int, amount: int) -> int:
    return max(-(1 << 15), min((1 << 15) - 1, v * (1 << amount)))


def _roundf_int(x: np.float32) -> int:
    return int(roundf(x))


def relu_lut(act_min: float | None, act_max: float | None, in_scale: float, in_zp: int,
             out_scale: float, out_zp: int, dtype: str = "int8",
             single_rounding: bool = False) -> np.ndarray:
    """activations.cc ReluPrepare + QuantizedReluX -> ReluX:
    multiplier from the float32 quotient in_scale / out_scale; clamp bounds
    out_zp + (int)roundf(act / out_scale) (float32 division), None = no bound."""
    lo, hi = RANGES[dtype]
    real = float(F32(in_scale) / F32(out_scale))
    m, s = quantize_multiplier(real)
    qmin = lo if act_min is None else max(lo, out_zp + _roundf_int(F32(act_min) / F32(out_scale)))
    qmax = hi if act_max is None else min(hi, out_zp + _roundf_int(F32(act_max) / F32(out_scale)))

    def one(v: int) -> int:
        q = out_zp + mbqm(v - in_zp, m, s, single_rounding)
        return min(qmax, max(qmin, q))
    return _table(dtype, dtype, one)


def leaky_relu_lut(alpha: float, in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                   dtype: str = "int8", single_rounding: bool = False) -> np.ndarray:
    """LeakyReluPrepare + reference QuantizeLeakyRelu. Both multipliers come
    from float32 arithmetic (in_scale * alpha / out_scale, in_scale / out_scale).
    TensorFlow 2.21's LEAKY_RELU rounds twice (gemmlowp), measured against
    tf.lite.Interpreter: single rounding differs in ~half of all quantizations."""
    lo, hi = RANGES[dtype]
    s_in, s_out = F32(in_scale), F32(out_scale)
    ma, sa = quantize_multiplier(float(s_in * F32(alpha) / s_out))
    mi, si = quantize_multiplier(float(s_in / s_out))
    neg = ma < 0
    ma = -ma if neg else ma

    def one(v: int) -> int:
        x = v - in_zp
        if x >= 0:
            r = out_zp + mbqm(x, mi, si, single_rounding)
        else:
            a = mbqm(x, ma, sa, single_rounding)
            r = out_zp + (-a if neg else a)
        return min(hi, max(lo, r))
    return _table(dtype, dtype, one)


def _downscale_to_int16(m32: int) -> int:
    """DownScaleInt32ToInt16Multiplier."""
    if m32 >= (1 << 31) - 1 - (1 << 15):
        return (1 << 15) - 1
    return (m32 + (1 << 15)) >> 16


def rounding_divide_by_pot16(x: int, exponent: int) -> int:
    """gemmlowp's RoundingDivideByPOT on int16 values: for exponents >= 16 its mask
    `(1 << exponent) - 1` truncates to int16 -1, so the result is 1 for x >= 0 and -1
    for x < 0 (HardSwish's reluish path meets this when the input scale is tiny)."""
    if exponent >= 16:
        return 1 if x >= 0 else -1
    return rounding_divide_by_pot(x, exponent)


def hard_swish_lut(in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                   dtype: str = "int8") -> np.ndarray:
    """HardSwishPrepare (float32 scale arithmetic) + reference_ops::HardSwish
    (int16 fixed point)."""
    lo, hi = RANGES[dtype]
    s_in = F32(in_scale)
    hires = F32(1.0 / 128.0) * s_in
    reluish_scale = F32(3.0) / F32(32768.0)
    out_mult = hires / F32(out_scale)
    m32, out_exp = quantize_multiplier(float(out_mult))
    out_m16 = _downscale_to_int16(m32)
    r32, rel_exp = quantize_multiplier(float(hires / reluish_scale))
    rel_m16 = _downscale_to_int16(r32)
    if out_exp > 0:
        raise ValueError("HARD_SWISH output multiplier exponent > 0 (TFLite rejects it)")
    if out_exp < -15:
        # TFLite's int16 RoundingDivideByPOT by >= 16 bits gives results we do
        # not reproduce (measured: every exponent <= -16 differs, >= -15 matches);
        # it needs out_scale > ~256 * in_scale, which no real model has.
        raise ValueError("HARD_SWISH output scale above ~256x the input scale")

    def one(v: int) -> int:
        x = _wrap16(v - in_zp)
        hires_v = _wrap16(x * (1 << 7))
        pre_out = srdhm16(hires_v, out_m16)
        r = hires_v
        if rel_exp > 0:
            r = _sat_left_shift16(r, rel_exp - 1)
        r = srdhm16(r, rel_m16)
        if rel_exp > 0:
            r = _sat_left_shift16(r, 1)
        if rel_exp < 0:
            r = rounding_divide_by_pot16(r, -rel_exp)
        r = _wrap16((r + (1 << 15)) >> 1)
        pre = sdhm16(r, pre_out)
        o = rounding_divide_by_pot(pre, -out_exp)
        o = _wrap16(o + out_zp)
        return min(hi, max(lo, o))
    return _table(dtype, dtype, one)


def requantize_lut(in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                   dtype_in: str = "int8", dtype_out: str = "int8",
                   single_rounding: bool = False) -> np.ndarray:
    """quantize.cc Prepare (double(in_scale) / double(out_scale)) + reference
    Requantize, including its int8<->uint8 XOR-0x80 fast path."""
    lo, hi = RANGES[dtype_out]
    m, s = quantize_multiplier(float(np.float64(F32(in_scale))) / float(np.float64(F32(out_scale))))
    same = (m == 1 << 30 and s == 1)
    diff = in_zp - out_zp
    if same and ((dtype_in, dtype_out, diff) in (("int8", "uint8", -128), ("uint8", "int8", 128))):
        return _table(dtype_in, dtype_out, lambda v: v + 128 if dtype_out == "uint8" else v - 128)

    def one(v: int) -> int:
        return min(hi, max(lo, mbqm(v - in_zp, m, s, single_rounding) + out_zp))
    return _table(dtype_in, dtype_out, one)


def concat_requant_lut(in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                       dtype: str = "int8") -> np.ndarray:
    """reference ConcatenationWithScaling for one input (float32):
    scale = in_scale * (1.f / out_scale); bias = -in_zp * scale;
    q = (int32)round(v * scale + bias) + out_zp, clamped. TFLite runs it for
    uint8; int8 graphs with differing concat quantization are rejected by
    TFLite and TFLM, and use the same formula here."""
    lo, hi = RANGES[dtype]
    scale = F32(in_scale) * (F32(1) / F32(out_scale))
    bias = F32(-in_zp) * scale

    def one(v: int) -> int:
        return max(lo, min(hi, _to_int32(roundf(F32(v) * scale + bias)) + out_zp))
    with np.errstate(all="ignore"):
        return _table(dtype, dtype, one)


# ------------------------------------------------- 16x8 LOGISTIC / TANH table

def sigmoid_table_u16() -> np.ndarray:
    """The 256-entry uint16 table TFLite's int16 LOGISTIC and TANH interpolate in:
    entry i approximates 65536 * sigmoid(i / 24), with half of the midpoint
    curvature added so that linear interpolation between entries i and i+1
    errs less, i.e. round(f(i) + (f(i + 1/2) - (f(i) + f(i + 1)) / 2) / 2) with
    f(x) = 65536 / (1 + exp(-x / 24)) in float64, round half away from zero. The
    last entry is the saturation value 65535 (what both kernels output beyond the
    table). Derived here and checked entry by entry through the kernels' outputs
    against the TFLite reference interpreter (tests/test_ops_16x8.py)."""
    def f(x: float) -> float:
        return 65536.0 / (1.0 + math.exp(-x / 24.0))
    vals = [math.floor(f(i) + (f(i + 0.5) - (f(i) + f(i + 1)) / 2) / 2 + 0.5) for i in range(255)]
    return np.asarray(vals + [65535], dtype=np.uint16)


# ---------------------------------------- 513-entry int16 tables (interpolated)

def lut_int16(transform: Callable[[np.float32], np.float32], in_scale: float, in_zp: int,
              out_scale: float, out_zp: int) -> np.ndarray:
    """TFLite's LUTPopulate<int16_t> (float32 flavour), one float32 operation at a time:
    512 samples of `transform` over the whole int16 input range plus the end point,
    each sample lowered by half the rounded error that linear interpolation makes at
    the segment's midpoint, clamped to int16. Read by the 9-bit index / 7-bit
    fraction interpolation of LUTLookup (tinyml_lut16_lookup)."""
    s_in, s_out = F32(in_scale), F32(out_scale)
    in_min = s_in * F32(-32768 - in_zp)
    in_max = s_in * F32(32767 - in_zp)
    out_min = s_out * F32(-32768 - out_zp)
    out_max = s_out * F32(32767 - out_zp)
    steps = 512
    step = (in_max - in_min) / F32(steps)
    half = step / F32(2)
    inv = F32(65536) / (out_max - out_min)

    def clamp(v: np.float32) -> int:
        return int(min(max(float(v), -32768.0), 32767.0))

    table = np.zeros(steps + 1, dtype=np.int16)
    for i in range(steps):
        x = in_min + F32(i) * step
        val = transform(x)
        mid = transform(x + half)
        nxt = transform(in_min + F32(i + 1) * step)
        sample = roundf(val * inv)
        interp = roundf((nxt * inv + roundf(val * inv)) / F32(2))
        bias = roundf((interp - roundf(mid * inv)) / F32(2))
        table[i] = clamp(sample - bias)
    table[steps] = clamp(roundf(transform(in_max) * inv))
    return table


def lut_int16_f64(transform: Callable[[float], float], in_scale: float, in_zp: int,
                  out_scale: float, out_zp: int) -> np.ndarray:
    """lut_int16's arithmetic in double precision (std::round, half away from zero): the table
    TensorFlow 2.21's reference SOFTMAX (int16) uses for 1/(1 + x), measured (tflite_micro's is
    the float32 lut_int16; they differ in 2 of 513 entries)."""
    def rnd(v: float) -> float:
        return math.floor(abs(v) + 0.5) * (1.0 if v >= 0 else -1.0)
    in_min, in_max = in_scale * (-32768 - in_zp), in_scale * (32767 - in_zp)
    out_min, out_max = out_scale * (-32768 - out_zp), out_scale * (32767 - out_zp)
    steps = 512
    step = (in_max - in_min) / steps
    half = step / 2
    inv = 65536.0 / (out_max - out_min)
    table = np.zeros(steps + 1, dtype=np.int16)
    for i in range(steps):
        x = in_min + i * step
        val, mid, nxt = transform(x), transform(x + half), transform(in_min + (i + 1) * step)
        interp = rnd((nxt * inv + rnd(val * inv)) / 2)
        bias = rnd((interp - rnd(mid * inv)) / 2)
        table[i] = int(min(max(rnd(val * inv) - bias, -32768), 32767))
    table[steps] = int(min(max(rnd(transform(in_max) * inv), -32768), 32767))
    return table


def rsqrt_lut_s16(in_scale: float, out_scale: float) -> np.ndarray:
    """RSQRT 16x8 (elementwise.cc int16 Prepare): 1.0f / sqrtf(v), and for v <= 0 the
    largest output (32767 * output_scale), tabled by LUTPopulate<int16_t>, zero points 0."""
    top = F32(32767) * F32(out_scale)

    def f(v: np.float32) -> np.float32:
        return top if v <= 0 else F32(1.0) / F32(np.sqrt(F32(v)))
    return lut_int16(f, in_scale, 0, out_scale, 0)


def gelu_lut_s16(in_scale: float, out_scale: float, approximate: bool) -> np.ndarray:
    """GELU 16x8 (gelu.cc int16 Prepare): GeluTransform or GeluTransformApproximate tabled
    by LUTPopulate<int16_t>, zero points 0."""
    return lut_int16(gelu_approx_f32 if approximate else gelu_f32, in_scale, 0, out_scale, 0)


def softmax_exp_lut_s16() -> np.ndarray:
    """exp over [-10, 0] (input zero point 32767, output scale 2/65535): SOFTMAX 16x8."""
    return lut_int16(lambda v: expf(v), F32(10.0) / F32(65535), 32767, F32(2.0) / F32(65535), 0)


def softmax_one_over_one_plus_x_lut_s16(double: bool = False) -> np.ndarray:
    """1 / (1 + x) over [0, 1] (input zero point -32768, output scale 2/65535): SOFTMAX 16x8;
    `double`: TensorFlow 2.21's reference table (lut_int16_f64), else tflite_micro's (float32)."""
    if double:
        return lut_int16_f64(lambda v: 1.0 / (1.0 + v), 1.0 / 65535, -32768, 2.0 / 65535, 0)
    return lut_int16(lambda v: F32(1.0) / (F32(1.0) + v), F32(1.0) / F32(65535), -32768,
                     F32(2.0) / F32(65535), 0)
