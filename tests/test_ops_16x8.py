"""16x8 quantization (int16 activations with zero point 0, int8 weights, int64 bias):
every op tinyml lowers in 16x8, a few configurations each, against TFLite's reference
interpreter byte for byte. Each sweep is one multi-op model (one host build)."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from opgraph import OpCase, case_records, i32, multi_op_model
from opmodels import Spec, check_bit_exact, run_generated, single_op_model, tflm_oracle

PAD = {"SAME": 0, "VALID": 1}
ACT = {"NONE": 0, "RELU": 1, "RELU6": 3}
RNG = np.random.default_rng(16)


def a16(shape, scale) -> Spec:
    return Spec(shape, "int16", scale=scale, zero_point=0)


def _weights(shape, channels: int, axis: int, per_channel: bool) -> Spec:
    data = RNG.integers(-127, 128, size=shape).astype(np.int8)
    scale = list(RNG.uniform(0.002, 0.02, size=channels)) if per_channel else 0.01
    return Spec(shape, "int8", scale=scale, zero_point=0, axis=axis, data=data)


def _bias(channels: int, s_in: float, w: Spec, big: bool = False) -> Spec:
    """int64 bias with the scale TFLite checks: input scale x filter scale (per channel)."""
    data = RNG.integers(-2_000_000, 2_000_000, size=channels).astype(np.int64)
    if big:
        data[0] = (1 << 35) + 12345          # beyond int32: the int64 accumulator saturates the output
    scale = [float(np.float32(s_in) * np.float32(x)) for x in np.atleast_1d(w.scale)]
    return Spec((channels,), "int64", scale=scale if len(scale) > 1 else scale[0], zero_point=0, data=data)


def _out_scale(in_scale: float, taps: int) -> float:
    """An output scale that keeps most results inside int16 for full-range inputs."""
    return in_scale * 0.01 * 127 * math.sqrt(taps) * 32768 / 30000


def _conv(n, h, w, c, oc, k, stride, padding, act="NONE", dilation=1, per_channel=True, bias=True,
          big_bias=False) -> OpCase:
    eff = (k - 1) * dilation + 1
    oh = (h + stride - 1) // stride if padding == "SAME" else (h + stride - eff) // stride
    ow = (w + stride - 1) // stride if padding == "SAME" else (w + stride - eff) // stride
    s_in = 0.001
    wt = _weights((oc, k, k, c), oc, 0, per_channel)
    ins = [a16((n, h, w, c), s_in), wt, _bias(oc, s_in, wt, big_bias) if bias else None]
    return OpCase("CONV_2D", ins, [a16((n, oh, ow, oc), _out_scale(s_in, k * k * c))],
                  options=("Conv2DOptions", {"padding": PAD[padding], "strideH": stride, "strideW": stride,
                                             "dilationHFactor": dilation, "dilationWFactor": dilation,
                                             "fusedActivationFunction": ACT[act]}), version=4)


def _depthwise(h, w, c, mult, k, stride, padding, act="NONE", per_channel=True) -> OpCase:
    oc = c * mult
    oh = (h + stride - 1) // stride if padding == "SAME" else (h + stride - k) // stride
    ow = (w + stride - 1) // stride if padding == "SAME" else (w + stride - k) // stride
    s_in = 0.002
    wt = _weights((1, k, k, oc), oc, 3, per_channel)
    ins = [a16((1, h, w, c), s_in), wt, _bias(oc, s_in, wt)]
    return OpCase("DEPTHWISE_CONV_2D", ins, [a16((1, oh, ow, oc), _out_scale(s_in, k * k))],
                  options=("DepthwiseConv2DOptions", {"padding": PAD[padding], "strideH": stride,
                                                      "strideW": stride, "depthMultiplier": mult,
                                                      "fusedActivationFunction": ACT[act]}), version=5)


def _fc(batches, n, od, act="NONE", per_channel=False, bias=True) -> OpCase:
    s_in = 0.0005
    wt = _weights((od, n), od, 0, per_channel)
    ins = [a16((batches, n), s_in), wt, _bias(od, s_in, wt) if bias else None]
    return OpCase("FULLY_CONNECTED", ins, [a16((batches, od), _out_scale(s_in, n))],
                  options=("FullyConnectedOptions", {"fusedActivationFunction": ACT[act]}), version=7)


def test_conv_depthwise_fc_16x8():
    cases = [
        _conv(1, 7, 6, 3, 5, 3, 1, "SAME", act="RELU"),
        _conv(2, 9, 8, 4, 6, 3, 2, "VALID", per_channel=False, big_bias=True),
        _conv(1, 8, 8, 2, 3, 3, 1, "SAME", dilation=2, act="RELU6"),
        _conv(1, 5, 5, 300, 4, 1, 1, "VALID"),            # 300 taps: one int32 sum per window
        _conv(1, 4, 4, 64, 3, 3, 1, "SAME"),              # 576 taps: int32 partial sums into int64
        _depthwise(7, 7, 4, 1, 3, 1, "SAME"),
        _depthwise(8, 6, 3, 2, 3, 2, "VALID", act="RELU", per_channel=False),
        _fc(1, 40, 7),
        _fc(3, 600, 5, act="RELU", per_channel=True),       # deep rows, per-channel weights
        _fc(2, 16, 4, bias=False),
    ]
    check_bit_exact(multi_op_model(cases), records=case_records(cases, 3))


def test_conv_depthwise_fc_16x8_tflm():
    """tflite_micro's 16x8 FULLY_CONNECTED requantizes with the 64-bit MultiplyByQuantizedMultiplier
    (16-bit multiplier) where TensorFlow 2.21's rounds once in int32: `--rounding tflm` follows it."""
    cases = [_conv(1, 6, 6, 3, 4, 3, 1, "SAME", act="RELU"), _depthwise(6, 5, 4, 2, 3, 1, "SAME"),
             _fc(3, 600, 5, act="RELU", per_channel=True), _fc(2, 40, 7)]
    model = multi_op_model(cases)
    records = case_records(cases, 3, seed=4)
    got = run_generated(model, records, rounding="tflm")
    oracle = tflm_oracle(model)
    for r, rec in enumerate(records):
        for k, (g, w) in enumerate(zip(got[r], oracle.run(rec))):
            assert np.asarray(g).tobytes() == np.asarray(w).reshape(np.asarray(g).shape).tobytes(), (r, k)


def _binary(op, s1, s2, so, shape2=(1, 4, 5, 6), act="NONE") -> OpCase:
    shape = (1, 4, 5, 6)
    opts = {"fusedActivationFunction": ACT[act]}
    if op in ("ADD", "SUB"):
        opts["potScaleInt16"] = False               # what the converter writes for 16x8
    return OpCase(op, [a16(shape, s1), a16(shape2, s2)], [a16(shape, so)],
                  options=(f"{op.capitalize()}Options", opts), version=3)


def _pool(op, h, w, c, k, stride, padding, act="NONE") -> OpCase:
    oh = (h + stride - 1) // stride if padding == "SAME" else (h + stride - k) // stride
    ow = (w + stride - 1) // stride if padding == "SAME" else (w + stride - k) // stride
    return OpCase(op, [a16((1, h, w, c), 0.001)], [a16((1, oh, ow, c), 0.001)],
                  options=("Pool2DOptions", {"padding": PAD[padding], "strideH": stride, "strideW": stride,
                                             "filterHeight": k, "filterWidth": k,
                                             "fusedActivationFunction": ACT[act]}), version=3)


def test_elementwise_pool_reduce_movement_16x8():
    cases = [
        _binary("ADD", 0.001, 0.0007, 0.0015),
        _binary("ADD", 0.002, 0.0005, 0.001, shape2=(1, 1, 1, 6), act="RELU"),
        _binary("SUB", 0.001, 0.0012, 0.0018),
        _binary("SUB", 0.0004, 0.001, 0.0009, shape2=(1, 4, 1, 6)),
        _binary("MUL", 0.01, 0.02, 0.3),
        _binary("MUL", 0.005, 0.003, 0.02, shape2=(1, 1, 5, 1), act="RELU6"),
        _pool("AVERAGE_POOL_2D", 7, 6, 5, 3, 2, "SAME"),
        _pool("AVERAGE_POOL_2D", 8, 8, 4, 8, 8, "VALID", act="RELU"),
        _pool("MAX_POOL_2D", 7, 6, 5, 2, 2, "SAME"),
        _pool("MAX_POOL_2D", 9, 9, 3, 3, 3, "VALID", act="RELU6"),
        OpCase("MEAN", [a16((1, 6, 5, 8), 0.001), i32([1, 2])], [a16((1, 1, 1, 8), 0.0007)],
               options=("ReducerOptions", {"keepDims": True}), version=2),
        OpCase("MEAN", [a16((2, 3, 10), 0.001), i32([-1])], [a16((2, 3), 0.0013)],
               options=("ReducerOptions", {"keepDims": False}), version=2),
        OpCase("PAD", [a16((1, 5, 4, 3), 0.001), i32([[0, 0], [1, 2], [2, 0], [0, 1]])],
               [a16((1, 8, 6, 4), 0.001)], options=("PadOptions", {}), version=4),
        OpCase("RELU", [a16((3, 7), 0.001)], [a16((3, 7), 0.0006)], version=3),
        OpCase("RELU6", [a16((2, 9), 0.0004)], [a16((2, 9), 0.0002)], version=3),
        OpCase("RESHAPE", [a16((2, 3, 4), 0.001), i32([6, 4])], [a16((6, 4), 0.001)],
               options=("ReshapeOptions", {"newShape": [6, 4]})),
        OpCase("CONCATENATION", [a16((1, 3, 2), 0.001), a16((1, 3, 5), 0.001)], [a16((1, 3, 7), 0.001)],
               options=("ConcatenationOptions", {"axis": 2}), version=3),
    ]
    check_bit_exact(multi_op_model(cases), records=case_records(cases, 3))


def test_quantize_dequantize_16x8():
    cases = [
        OpCase("QUANTIZE", [Spec((4, 9), "float32")], [a16((4, 9), 0.0003)], version=3),
        OpCase("QUANTIZE", [a16((2, 8), 0.001)], [Spec((2, 8), "int8", scale=0.2, zero_point=-5)], version=3),
        OpCase("QUANTIZE", [a16((3, 5), 0.001)], [a16((3, 5), 0.0017)], version=3),
        OpCase("DEQUANTIZE", [a16((3, 6), 0.0013)], [Spec((3, 6), "float32")], version=4),
    ]
    rng = np.random.default_rng(3)
    records = []
    for _ in range(3):
        rec = []
        for case in cases:
            spec = case.inputs[0]
            if spec.dtype == "float32":   # beyond the int16 range too (saturation), and exact ties
                x = rng.uniform(-12.0, 12.0, size=spec.shape).astype(np.float32)
                x.reshape(-1)[:4] = np.float32(0.0003) * np.float32([0.5, -2.5, 1e6, -1e6])
                rec.append(x)
            else:
                info = np.iinfo(np.int16 if spec.dtype == "int16" else np.int8)
                rec.append(rng.integers(info.min, info.max + 1, size=spec.shape).astype(
                    np.int16 if spec.dtype == "int16" else np.int8))
        records.append(rec)
    check_bit_exact(multi_op_model(cases), records=records)


def _every_int16_records(cases, count: int) -> list[list[np.ndarray]]:
    """Record 0 holds every int16 value once per (256, 256) input; the rest are random."""
    records = case_records(cases, count, seed=7)
    for k, case in enumerate(cases):
        records[0][k] = np.arange(-32768, 32768, dtype=np.int16).reshape(case.inputs[0].shape)
    return records


# input scales: power of two 2^-12 (TANH also 2^-11: the multiplier-3 path), the general
# multiplier path at the scales the converter gives Keras sigmoid/tanh inputs (1e-4 .. 1e-3),
# coarse and very fine scales (shift 8 .. 29), and a scale >= 1 (no shift)
SIGMOID_SCALES = [2.0 ** -12, 2.0 ** -11, 2.0 ** -14, 0.001, 0.000213, 0.0003, 0.01, 3e-9, 2.0]


def test_logistic_tanh_16x8():
    """Every int16 input at each scale, byte for byte against the reference interpreter."""
    cases = [OpCase(op, [a16((256, 256), s)], [a16((256, 256), 1 / 32768)], version=3)
             for op in ("LOGISTIC", "TANH") for s in SIGMOID_SCALES]
    check_bit_exact(multi_op_model(cases), records=_every_int16_records(cases, 2))


def _softmax(shape, scale, beta=1.0) -> OpCase:
    return OpCase("SOFTMAX", [a16(shape, scale)], [a16(shape, 1 / 32768)],
                  options=("SoftmaxOptions", {"beta": beta}), version=3)


def test_softmax_16x8():
    """Input scales of Keras softmax heads (1e-4 .. 1e-3), coarse (0.01, 0.1: the rescale
    shifts left) and fine (5e-5: single and double rounding differ), beta 0.5 and 2,
    rows of 1 .. 1000; half the rows squeezed to a narrow range so that many exps count."""
    cases = [_softmax((1, 10), 0.001), _softmax((4, 37), 0.0003), _softmax((2, 3, 100), 0.0002, beta=0.5),
             _softmax((8, 5), 0.01), _softmax((6, 16), 5e-05), _softmax((3, 16), 0.1, beta=2.0),
             _softmax((2, 1000), 0.00047), _softmax((5, 1), 0.001)]
    records = case_records(cases, 3, seed=11)
    for rec in records:
        for x in rec:
            x.reshape(-1, x.shape[-1])[::2] //= 64
    check_bit_exact(multi_op_model(cases), records=records)


def test_logistic_tanh_softmax_16x8_tflm():
    """tflite_micro runs the same int16 LOGISTIC / TANH / SOFTMAX arithmetic: bit-exact with it too."""
    cases = [OpCase("LOGISTIC", [a16((4, 64), 0.000213)], [a16((4, 64), 1 / 32768)], version=3),
             OpCase("TANH", [a16((4, 64), 2.0 ** -11)], [a16((4, 64), 1 / 32768)], version=3),
             _softmax((6, 16), 5e-05), _softmax((3, 40), 0.0004)]
    model = multi_op_model(cases)
    records = case_records(cases, 2, seed=5)
    got = run_generated(model, records, rounding="tflm")
    oracle = tflm_oracle(model)
    for r, rec in enumerate(records):
        for k, (g, w) in enumerate(zip(got[r], oracle.run(rec))):
            assert np.asarray(g).tobytes() == np.asarray(w).reshape(np.asarray(g).shape).tobytes(), (r, k)


# ---- rejected variants: one line naming the op and the cause, non-zero exit -----------------------

def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.mark.parametrize("what", ["hard_swish", "softmax_scale", "int32_bias", "zero_point", "huge_bias",
                                  "logistic_scale", "prelu_int16_alpha", "tconv_int32_bias"])
def test_unsupported_16x8_variants_are_one_line(tmp_path, what):
    if what == "hard_swish":       # no int16 HARD_SWISH kernel in TFLite 2.21 or tflite_micro
        m = single_op_model("HARD_SWISH", [a16((1, 8), 0.001)], [a16((1, 8), 0.001)])
        want = ["HARD_SWISH (16x8)", "supported 16x8 ops"]
    elif what == "softmax_scale":
        m = single_op_model("SOFTMAX", [a16((1, 8), 0.001)], [a16((1, 8), 1 / 256)],
                            options=("SoftmaxOptions", {"beta": 1.0}), version=3)
        want = ["SOFTMAX", "output scale", "1/32768"]
    elif what == "logistic_scale":
        m = single_op_model("LOGISTIC", [a16((1, 8), 0.001)], [a16((1, 8), 1 / 256)], version=3)
        want = ["LOGISTIC", "output scale", "1/32768"]
    elif what == "int32_bias":
        case = _conv(1, 5, 5, 2, 3, 3, 1, "SAME")
        case.inputs[2] = Spec((3,), "int32", scale=1.0, zero_point=0, data=np.arange(3, dtype=np.int32))
        m = multi_op_model([case])
        want = ["CONV_2D", "int32 bias"]
    elif what == "huge_bias":
        case = _fc(1, 8, 3)
        case.inputs[2].data[1] = 1 << 50          # beyond TFLite's |accumulator| < 2^47 assumption
        m = multi_op_model([case])
        want = ["FULLY_CONNECTED", "2^47"]
    elif what == "prelu_int16_alpha":     # tflite_micro's PRELU takes int8 alpha with int16 input
        m = single_op_model("PRELU", [a16((2, 3), 0.001), a16((3,), 0.001)], [a16((2, 3), 0.001)])
        want = ["PRELU", "int16/int16 -> int16", "int8 alpha"]
    elif what == "tconv_int32_bias":
        w = np.ones((2, 3, 3, 1), np.int8)
        m = single_op_model("TRANSPOSE_CONV", [i32([1, 4, 4, 2]), Spec(w.shape, "int8", scale=0.01, zero_point=0,
                                                                           data=w),
                                               a16((1, 2, 2, 1), 0.001),
                                               Spec((2,), "int32", scale=1e-5, zero_point=0,
                                                    data=np.zeros(2, np.int32))],
                            [a16((1, 4, 4, 2), 0.002)],
                            options=("TransposeConvOptions", {"padding": 0, "strideH": 2, "strideW": 2}), version=4)
        want = ["TRANSPOSE_CONV", "int64 bias"]
    else:
        m = single_op_model("RELU", [Spec((2, 3), "int16", scale=0.001, zero_point=5)], [a16((2, 3), 0.001)])
        want = ["RELU", "zero point 5"]
    path = tmp_path / "m.tflite"
    path.write_bytes(m)
    for cmd in (("inspect", str(path)), ("plan", str(path)),
                ("generate", str(path), "-o", str(tmp_path / "gen"))):
        p = _cli(*cmd)
        assert p.returncode in (1, 2), (cmd, p.stdout, p.stderr)     # inspect 1, others 2
        err = [ln for ln in p.stderr.splitlines() if ln.strip()]
        line = err[-1] if err else [ln for ln in p.stdout.splitlines() if ln.startswith("error")][-1]
        assert "Traceback" not in p.stderr
        for w in want:
            assert w in line, (cmd, line)
        if cmd[0] == "inspect" and what == "hard_swish":     # each op line says it runs in 16x8
            assert "  op 0    HARD_SWISH (16x8)        unsupported" in p.stdout.splitlines(), p.stdout
            assert "unsupported: HARD_SWISH (16x8)" in p.stdout.splitlines(), p.stdout
    assert not (tmp_path / "gen").exists()


@pytest.mark.slow
def test_cnn_with_sigmoid_tanh_softmax_16x8_verifies_bit_exact(tmp_path):
    """A Keras CNN (sigmoid Conv2D, tanh Dense, softmax head) converted with the standard 16x8
    recipe: LOGISTIC, TANH and SOFTMAX in int16 at the scales the converter picks, the whole
    model bit-exact against TFLite's reference."""
    from zoo_models import export

    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.verify import verify
    path = export("cnn_heads_16x8", tmp_path)
    g = import_tflite(path)
    kinds = [op.kind for op in g.ops]
    assert {"LOGISTIC", "TANH", "SOFTMAX"} <= set(kinds), kinds
    assert all(g.t(o).dtype == "int16" for op in g.ops if op.kind in ("LOGISTIC", "TANH", "SOFTMAX")
               for o in op.outputs)
    res = verify(path, count=4, seed=3)
    assert res.oracle == "tflite-reference" and res.notes == []
    assert res.bit_exact, res.first_mismatch
    assert res.output_bytes_compared == 4 * 5 * 2
