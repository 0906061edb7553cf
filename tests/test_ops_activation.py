"""int8 unary activations, QUANTIZE / DEQUANTIZE / NEG against the TFLite reference.

Two layers of evidence:
- compiled: the generated C (ASan/UBSan) on every input byte for fixed
  (scale, zero point) pairs, and hypothesis sweeps without sanitizers;
- table sweeps: codegen.luts tables against tf.lite.Interpreter over all 256
  inputs for many random (scale, zero point) pairs (no C build, so hundreds of
  pairs stay fast). The C kernel is a plain table lookup, covered by the
  compiled cases.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tinyml.codegen import luts
from opmodels import Spec, check_bit_exact, run_reference, single_op_model

ALL_S8 = np.arange(-128, 128, dtype=np.int8)
ALL_U8 = np.arange(0, 256, dtype=np.uint8)

# op -> (options or None, fixed output quantization or None)
OPS = {
    "RELU": (None, None),
    "RELU6": (None, None),
    "RELU_N1_TO_1": (None, None),
    "LEAKY_RELU": (("LeakyReluOptions", {"alpha": 0.2}), None),
    "HARD_SWISH": (None, None),
    "LOGISTIC": (None, (1 / 256, -128)),
    "TANH": (None, None),
    "GELU": (("GeluOptions", {"approximate": False}), None),
    "GELU_APPROX": (("GeluOptions", {"approximate": True}), None),
}


def act_model(op, in_scale, in_zp, out_scale, out_zp, n=256, dtype="int8", alpha=None):
    options, fixed = OPS[op]
    if fixed is not None:
        out_scale, out_zp = fixed
        if dtype == "uint8":
            out_zp = 0
    if alpha is not None:
        options = ("LeakyReluOptions", {"alpha": alpha})
    kind = "GELU" if op == "GELU_APPROX" else op
    return single_op_model(kind, [Spec((n,), dtype, scale=in_scale, zero_point=in_zp)],
                           [Spec((n,), dtype, scale=out_scale, zero_point=out_zp)], options=options)


def table_for(op, in_scale, in_zp, out_scale, out_zp, dtype="int8", alpha=0.2):
    _, fixed = OPS[op]
    if fixed is not None:
        out_scale, out_zp = fixed
        if dtype == "uint8":
            out_zp = 0
    if op in ("RELU", "RELU6", "RELU_N1_TO_1"):
        lo, hi = {"RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}[op]
        return luts.relu_lut(lo, hi, in_scale, in_zp, out_scale, out_zp, dtype)
    if op == "LEAKY_RELU":
        return luts.leaky_relu_lut(alpha, in_scale, in_zp, out_scale, out_zp, dtype)
    if op == "HARD_SWISH":
        return luts.hard_swish_lut(in_scale, in_zp, out_scale, out_zp, dtype)
    fn = {"LOGISTIC": luts.logistic_f32, "TANH": luts.tanh_f32, "GELU": luts.gelu_f32,
          "GELU_APPROX": luts.gelu_approx_f32}[op]
    return luts.float_lut(fn, in_scale, in_zp, out_scale, out_zp, dtype)


def _all_inputs(dtype):
    return ALL_S8 if dtype == "int8" else ALL_U8


def _out_range(op, in_scale, in_zp):
    """An output scale that keeps the op's range roughly in int8, as a converter would pick."""
    lo = in_scale * (-128 - in_zp)
    hi = in_scale * (127 - in_zp)
    if op in ("TANH",):
        return 1 / 128, 0
    if op == "RELU6":
        hi = min(hi, 6.0)
    if op == "RELU_N1_TO_1":
        lo, hi = max(lo, -1.0), min(hi, 1.0)
    if op in ("RELU", "RELU6", "HARD_SWISH", "GELU", "GELU_APPROX"):
        lo = max(lo, -0.4) if op != "RELU" else 0.0
    if op == "LEAKY_RELU":
        lo = lo * 0.2
    span = max(hi - lo, 1e-3)
    scale = span / 255
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return scale, zp


# ------------------------------------------------------------------ compiled C

# The C kernel is the same table lookup for every op; one compiled case per
# lowering path (fixed point, float table, options) keeps the build count low.
COMPILED = ["RELU6", "LEAKY_RELU", "HARD_SWISH", "LOGISTIC", "GELU_APPROX"]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("op", COMPILED)
def test_activation_compiled(op):
    in_scale, in_zp = 0.05, 3
    out_scale, out_zp = _out_range(op, in_scale, in_zp)
    check_bit_exact(act_model(op, in_scale, in_zp, out_scale, out_zp), records=[[ALL_S8]])


@pytest.mark.timeout(300)
def test_relu_uint8_and_4d():
    m = single_op_model("RELU6", [Spec((1, 4, 4, 16), "uint8", scale=0.04, zero_point=100)],
                        [Spec((1, 4, 4, 16), "uint8", scale=0.03, zero_point=5)])
    check_bit_exact(m, records=[[ALL_U8.reshape(1, 4, 4, 16)]])


@pytest.mark.timeout(600)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=st.sampled_from(sorted(OPS)), in_scale=st.floats(1e-3, 0.5), in_zp=st.integers(-128, 127),
       out_scale=st.floats(1e-3, 0.5), out_zp=st.integers(-128, 127))
def test_activation_compiled_sweep(op, in_scale, in_zp, out_scale, out_zp):
    if op == "HARD_SWISH":
        out_scale = min(max(out_scale, in_scale / 100), in_scale * 200)
    check_bit_exact(act_model(op, in_scale, in_zp, out_scale, out_zp), records=[[ALL_S8]],
                    sanitize=False)


# ----------------------------------------------------------- table-only sweeps

def _sweep_pairs(seed, n):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        in_scale = float(np.float32(10 ** rng.uniform(-3.3, 0)))
        out_scale = float(np.float32(10 ** rng.uniform(-3.3, 0)))
        yield in_scale, int(rng.integers(-128, 128)), out_scale, int(rng.integers(-128, 128))


SWEEP_PAIRS = 120


@pytest.mark.parametrize("op", sorted(OPS))
def test_activation_table_sweep(op):
    """The generate-time table equals TFLite on all 256 inputs for many quantizations."""
    bad = []
    pairs = list(_sweep_pairs(hash(op) % 1000, SWEEP_PAIRS))
    # plus the converter's usual choice of output range for each input quantization
    pairs += [(s, z) + _out_range(op, s, z) for s, z, _, _ in pairs[:40]]
    for dtype in ("int8", "uint8"):
        for in_scale, in_zp, out_scale, out_zp in pairs:
            if dtype == "uint8":
                if op in ("GELU", "GELU_APPROX"):
                    continue  # GELU has no uint8 kernel in TFLite
                in_zp, out_zp = in_zp + 128, out_zp + 128
            if op == "HARD_SWISH" and not in_scale / 128 <= out_scale <= in_scale * 200:
                continue  # TFLite rejects the first; tinyml rejects the second (luts.hard_swish_lut)
            want = run_reference(act_model(op, in_scale, in_zp, out_scale, out_zp, dtype=dtype),
                                 [_all_inputs(dtype)])[0]
            table = table_for(op, in_scale, in_zp, out_scale, out_zp, dtype)
            got = table[_all_inputs(dtype).view(np.uint8)].view(np.int8 if dtype == "int8" else np.uint8)
            if got.tobytes() != want.tobytes():
                bad.append((dtype, in_scale, in_zp, out_scale, out_zp, int((got != want).sum())))
    assert not bad, f"{len(bad)} quantizations differ, first: {bad[:3]}"


def test_hard_swish_tiny_input_scales():
    """Input scales below ~1e-6 (MobileNetV3Small with untrained BatchNorm: 8e-9) put the reluish
    multiplier's exponent at -16 or below, where gemmlowp's int16 RoundingDivideByPOT gives the
    sign (its mask truncates to -1): measured 1-64 of 256 bytes off before the table followed it."""
    bad = []
    for in_scale, in_zp, out_scale, out_zp in [(7.85821e-09, -1, 7.85067e-09, -1), (7.84338e-09, 0, 7.84326e-09, 0),
                                               (8.09857e-09, 0, 7.97086e-09, 0), (1.16887e-08, 6, 9.7659e-09, 4),
                                               (4.0221e-09, -4, 9.8542e-09, -1), (3.2e-07, 2, 1.6e-07, 2),
                                               (2e-05, -13, 1e-05, -13)]:
        in_scale, out_scale = float(np.float32(in_scale)), float(np.float32(out_scale))
        want = run_reference(act_model("HARD_SWISH", in_scale, in_zp, out_scale, out_zp), [ALL_S8])[0]
        table = table_for("HARD_SWISH", in_scale, in_zp, out_scale, out_zp, "int8")
        got = table[ALL_S8.view(np.uint8)].view(np.int8)
        if got.tobytes() != np.asarray(want).tobytes():
            bad.append((in_scale, in_zp, out_scale, out_zp, int((got != np.asarray(want).ravel()).sum())))
    assert not bad, bad


@pytest.mark.parametrize("alpha", [0.01, 0.2, 0.3, 1.5, -0.5])
def test_leaky_relu_alpha_table(alpha):
    bad = []
    for in_scale, in_zp, out_scale, out_zp in _sweep_pairs(int(abs(alpha) * 1000), 30):
        m = act_model("LEAKY_RELU", in_scale, in_zp, out_scale, out_zp, alpha=alpha)
        want = run_reference(m, [ALL_S8])[0]
        got = luts.leaky_relu_lut(alpha, in_scale, in_zp, out_scale, out_zp)[ALL_S8.view(np.uint8)].view(np.int8)
        if got.tobytes() != want.tobytes():
            bad.append((in_scale, in_zp, out_scale, out_zp))
    assert not bad, bad[:3]


# ------------------------------------------- QUANTIZE / DEQUANTIZE / NEG (float islands)

VIT_LAYERNORM = [(0.00021824997384101152, 3, -4), (0.003240155056118965, 23, -24),
                 (0.00750581594184041, -20, 19)]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("scale,zp_in,zp_out", VIT_LAYERNORM[:1])
def test_vit_layernorm_island(scale, zp_in, zp_out):
    """The ViT's DEQUANTIZE -> NEG -> QUANTIZE chain, one op at a time, all inputs."""
    deq = single_op_model("DEQUANTIZE", [Spec((256,), scale=scale, zero_point=zp_in)], [Spec((256,), "float32")])
    check_bit_exact(deq, records=[[ALL_S8]])
    floats = (np.float32(scale) * (ALL_S8.astype(np.float32) - np.float32(zp_in))).astype(np.float32)
    neg = single_op_model("NEG", [Spec((256,), "float32")], [Spec((256,), "float32")])
    check_bit_exact(neg, records=[[floats]])
    q = single_op_model("QUANTIZE", [Spec((256,), "float32")], [Spec((256,), scale=scale, zero_point=zp_out)])
    check_bit_exact(q, records=[[-floats], [floats]])


def _tie_floats(scale, rng, n=2048):
    """Floats at and next to the rounding ties of x / scale, plus random ones."""
    k = rng.integers(-200, 200, size=n // 2).astype(np.float64) + 0.5
    ties = (k * scale).astype(np.float32)
    near = np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf))])
    rand = (rng.standard_normal(n - near.size % n) * 100 * scale).astype(np.float32)
    return np.concatenate([near, rand])[:n].astype(np.float32)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("dtype,scale,zp", [("int8", 0.0123, -7), ("uint8", 3e-5, 128)])
def test_quantize_float_ties(dtype, scale, zp):
    rng = np.random.default_rng(1)
    x = _tie_floats(scale, rng)
    # saturation well past the int8 range; quotients beyond int32 are left out:
    # there TFLite's float->int cast is undefined (x86 gives INT32_MIN, whose
    # zero-point add then wraps), while tinyml saturates.
    x[:4] = [0.0, -0.0, 1e6 * scale, -1e6 * scale]
    m = single_op_model("QUANTIZE", [Spec((x.size,), "float32")], [Spec((x.size,), dtype, scale=scale, zero_point=zp)])
    check_bit_exact(m, records=[[x]])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("din,dout,si,zi,so,zo", [
    ("int8", "int8", 0.02, 5, 0.03, -9),
    ("int8", "uint8", 0.1, 0, 0.1, 128),       # the XOR fast path
])
def test_requantize_compiled(din, dout, si, zi, so, zo):
    m = single_op_model("QUANTIZE", [Spec((256,), din, scale=si, zero_point=zi)],
                        [Spec((256,), dout, scale=so, zero_point=zo)])
    check_bit_exact(m, records=[[_all_inputs(din)]])


def test_vit_layernorm_island_table():
    """DEQUANTIZE -> NEG -> QUANTIZE for the other ViT LayerNorm quantizations,
    float path checked in numpy-free form against TFLite op by op."""
    for scale, zp_in, zp_out in VIT_LAYERNORM[1:]:
        deq = single_op_model("DEQUANTIZE", [Spec((256,), scale=scale, zero_point=zp_in)], [Spec((256,), "float32")])
        f = run_reference(deq, [ALL_S8])[0]
        mine = np.float32(scale) * (ALL_S8.astype(np.int32) - zp_in).astype(np.float32)
        assert f.tobytes() == mine.astype(np.float32).tobytes()


def test_requantize_table_sweep():
    bad = []
    for k, (si, zi, so, zo) in enumerate(_sweep_pairs(7, 150)):
        din, dout = [("int8", "int8"), ("int8", "uint8"), ("uint8", "int8")][k % 3]
        zi = zi + 128 if din == "uint8" else zi
        zo = zo + 128 if dout == "uint8" else zo
        m = single_op_model("QUANTIZE", [Spec((256,), din, scale=si, zero_point=zi)],
                            [Spec((256,), dout, scale=so, zero_point=zo)])
        want = run_reference(m, [_all_inputs(din)])[0]
        got = luts.requantize_lut(si, zi, so, zo, din, dout)[_all_inputs(din).view(np.uint8)]
        if got.tobytes() != want.tobytes():
            bad.append((din, dout, si, zi, so, zo))
    assert not bad, bad[:3]


@pytest.mark.timeout(600)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scale=st.floats(1e-5, 10.0), zp=st.integers(-128, 127), n=st.integers(1, 300), seed=st.integers(0, 99))
def test_dequantize_quantize_sweep(scale, zp, n, seed):
    deq = single_op_model("DEQUANTIZE", [Spec((n,), scale=scale, zero_point=zp)], [Spec((n,), "float32")])
    check_bit_exact(deq, count=2, seed=seed, sanitize=False)
    q = single_op_model("QUANTIZE", [Spec((n,), "float32")], [Spec((n,), scale=scale, zero_point=zp)])
    x = (np.random.default_rng(seed).standard_normal(n) * 64 * scale).astype(np.float32)
    check_bit_exact(q, records=[[x]], sanitize=False)
