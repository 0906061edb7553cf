"""CONV_2D and DEPTHWISE_CONV_2D against the TFLite reference, across geometry and quantization."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from opmodels import Spec, check_bit_exact, single_op_model

ACT = {"NONE": 0, "RELU": 1, "RELU6": 3}
PAD = {"SAME": 0, "VALID": 1}


def _out(padding, size, k, stride, dil):
    eff = (k - 1) * dil + 1
    return (size + stride - 1) // stride if padding == "SAME" else (size + stride - eff) // stride


def _w_scales(rng, per_channel, n, base):
    if per_channel:
        return [float(base * s) for s in rng.uniform(0.3, 1.7, size=n)]
    return float(base)


def conv_model(n=1, h=9, w=8, cin=5, cout=7, kh=3, kw=3, stride=(1, 1), dil=(1, 1), padding="SAME",
               act="NONE", in_scale=0.05, in_zp=-3, w_scale=0.01, per_channel=True, out_scale=0.08,
               out_zp=2, bias=True, groups=1, seed=0, bias_override=None, dead=()):
    rng = np.random.default_rng(seed)
    oh = _out(padding, h, kh, stride[0], dil[0])
    ow = _out(padding, w, kw, stride[1], dil[1])
    fc = cin // groups
    wts = rng.integers(-127, 128, size=(cout, kh, kw, fc)).astype(np.int8)
    wts[list(dead)] = 0                          # channels with all weights zero: a constant output
    scales = _w_scales(rng, per_channel, cout, w_scale)
    b = rng.integers(-5000, 5000, size=(cout,)).astype(np.int32)
    for c, v in (bias_override or {}).items():
        b[c] = v
    b_scales = [in_scale * s for s in np.atleast_1d(scales)]
    return single_op_model(
        "CONV_2D",
        [Spec((n, h, w, cin), scale=in_scale, zero_point=in_zp),
         Spec((cout, kh, kw, fc), scale=scales, zero_point=0, axis=0, data=wts),
         *([Spec((cout,), "int32", scale=b_scales, zero_point=0, data=b)] if bias else [])],
        [Spec((n, oh, ow, cout), scale=out_scale, zero_point=out_zp)],
        options=("Conv2DOptions", {"padding": PAD[padding], "strideH": stride[0], "strideW": stride[1],
                                   "dilationHFactor": dil[0], "dilationWFactor": dil[1],
                                   "fusedActivationFunction": ACT[act]}),
        version=3)


def dw_model(n=1, h=9, w=8, cin=6, mult=1, kh=3, kw=3, stride=(1, 1), dil=(1, 1), padding="SAME",
             act="NONE", in_scale=0.05, in_zp=-3, w_scale=0.01, per_channel=True, out_scale=0.08,
             out_zp=2, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    cout = cin * mult
    oh = _out(padding, h, kh, stride[0], dil[0])
    ow = _out(padding, w, kw, stride[1], dil[1])
    wts = rng.integers(-127, 128, size=(1, kh, kw, cout)).astype(np.int8)
    scales = _w_scales(rng, per_channel, cout, w_scale)
    b = rng.integers(-5000, 5000, size=(cout,)).astype(np.int32)
    b_scales = [in_scale * s for s in np.atleast_1d(scales)]
    return single_op_model(
        "DEPTHWISE_CONV_2D",
        [Spec((n, h, w, cin), scale=in_scale, zero_point=in_zp),
         Spec((1, kh, kw, cout), scale=scales, zero_point=0, axis=3, data=wts),
         *([Spec((cout,), "int32", scale=b_scales, zero_point=0, data=b)] if bias else [])],
        [Spec((n, oh, ow, cout), scale=out_scale, zero_point=out_zp)],
        options=("DepthwiseConv2DOptions", {"padding": PAD[padding], "strideH": stride[0], "strideW": stride[1],
                                            "dilationHFactor": dil[0], "dilationWFactor": dil[1],
                                            "depthMultiplier": mult, "fusedActivationFunction": ACT[act]}),
        version=3)


# ---- fixed cases (ASan/UBSan) -------------------------------------------------------------

@pytest.mark.parametrize("act", ["NONE", "RELU6"])
def test_conv_3x3_same_per_channel(act):
    check_bit_exact(conv_model(act=act), count=2)


def test_conv_1x1_per_tensor_zero_input_offset():
    check_bit_exact(conv_model(kh=1, kw=1, cin=16, cout=12, in_zp=0, per_channel=False), count=2)


def test_conv_strided_valid_batch2():
    # (TFLite's int8 CONV_2D requires a bias; the kernel also accepts NULL.)
    check_bit_exact(conv_model(n=2, h=11, w=10, kh=3, kw=2, stride=(2, 3), padding="VALID",
                               in_zp=-128, out_zp=-128, act="RELU"), count=2)


def test_conv_dilated_same():
    check_bit_exact(conv_model(h=10, w=9, kh=3, kw=3, dil=(2, 3), in_zp=17), count=2)


def test_conv_stem_like_vww():
    # 3-channel stem, stride 2, SAME: padding only on the bottom/right.
    check_bit_exact(conv_model(h=16, w=16, cin=3, cout=8, stride=(2, 2), in_zp=-128, act="RELU"), count=2)


def test_conv_kws_like_rect_kernel():
    check_bit_exact(conv_model(h=13, w=10, cin=1, cout=6, kh=10, kw=4, stride=(2, 2), in_zp=83,
                               act="RELU"), count=2)


def test_conv_grouped():
    check_bit_exact(conv_model(cin=6, cout=9, groups=3, in_zp=5), count=2)


def test_conv_kernel_larger_than_input_same():
    check_bit_exact(conv_model(h=2, w=3, kh=5, kw=5, in_zp=-7), count=2)


@pytest.mark.parametrize("mult", [1, 2, 8])
def test_depthwise_multiplier(mult):
    check_bit_exact(dw_model(cin=5 if mult > 1 else 11, mult=mult, act="RELU6"), count=2)


def test_depthwise_strided_valid_per_tensor():
    check_bit_exact(dw_model(h=12, w=11, cin=8, stride=(2, 2), padding="VALID", per_channel=False,
                             in_zp=-128, act="RELU"), count=2)


def test_depthwise_dilated_no_bias():
    check_bit_exact(dw_model(h=10, w=10, cin=7, dil=(2, 2), bias=False, in_zp=9), count=2)


def test_depthwise_stride2_same_vww_like():
    check_bit_exact(dw_model(h=12, w=12, cin=16, stride=(2, 2), in_zp=-128, out_zp=-128, act="RELU"), count=2)


# ---- hypothesis sweeps (no sanitizers, for speed) -------------------------------------------

geometry = dict(
    h=st.integers(1, 9), w=st.integers(1, 9), kh=st.integers(1, 4), kw=st.integers(1, 4),
    sh=st.integers(1, 3), sw=st.integers(1, 3), dh=st.integers(1, 2), dw=st.integers(1, 2),
    padding=st.sampled_from(["SAME", "VALID"]))
quant = dict(
    in_scale=st.floats(1e-3, 0.5), in_zp=st.integers(-128, 127), w_scale=st.floats(1e-4, 0.05),
    per_channel=st.booleans(), out_scale=st.floats(1e-3, 1.0), out_zp=st.integers(-128, 127),
    act=st.sampled_from(["NONE", "RELU", "RELU6"]), bias=st.booleans(), seed=st.integers(0, 10_000))


def _valid_geometry(h, w, kh, kw, sh, sw, dh, dw, padding):
    return (_out(padding, h, kh, sh, dh) > 0 and _out(padding, w, kw, sw, dw) > 0)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 2), cin=st.integers(1, 9), cout=st.integers(1, 9), **geometry, **quant)
def test_conv_sweep(n, cin, cout, h, w, kh, kw, sh, sw, dh, dw, padding, in_scale, in_zp, w_scale,
                    per_channel, out_scale, out_zp, act, bias, seed):
    if not _valid_geometry(h, w, kh, kw, sh, sw, dh, dw, padding):
        return
    m = conv_model(n, h, w, cin, cout, kh, kw, (sh, sw), (dh, dw), padding, act, in_scale, in_zp, w_scale,
                   per_channel, out_scale, out_zp, True, seed=seed)
    check_bit_exact(m, count=2, seed=seed, sanitize=False)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 2), cin=st.integers(1, 10), mult=st.sampled_from([1, 1, 2, 3]), **geometry, **quant)
def test_depthwise_sweep(n, cin, mult, h, w, kh, kw, sh, sw, dh, dw, padding, in_scale, in_zp, w_scale,
                         per_channel, out_scale, out_zp, act, bias, seed):
    if not _valid_geometry(h, w, kh, kw, sh, sw, dh, dw, padding):
        return
    m = dw_model(n, h, w, cin, mult, kh, kw, (sh, sw), (dh, dw), padding, act, in_scale, in_zp, w_scale,
                 per_channel, out_scale, out_zp, bias, seed=seed)
    check_bit_exact(m, count=2, seed=seed, sanitize=False)


# ---- Cortex-M4 DSP path (SXTB16/SMLAD/SMLABB) on QEMU, same TFLite vectors -------------------

@pytest.mark.emulator
@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", ["conv", "depthwise_m1", "depthwise_m3"])
def test_dsp_path_on_cortex_m4_matches_tflite(case, tmp_path):
    import shutil

    from opmodels import build_m4
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm not installed")
    model = {"conv": lambda: conv_model(h=10, w=9, cin=13, cout=6, in_zp=-11, stride=(1, 2), act="RELU"),
             "depthwise_m1": lambda: dw_model(h=9, w=10, cin=19, in_zp=37, act="RELU6"),
             "depthwise_m3": lambda: dw_model(h=7, w=6, cin=5, mult=3, in_zp=-128)}[case]()
    path = str(tmp_path / f"{case}.tflite")
    with open(path, "wb") as f:
        f.write(model)
    fw = build_m4(path, str(tmp_path / "fw"), seed=11)
    want = "smlad" if case == "conv" else "smlabb"
    assert want in fw.disassembly(), f"the Cortex-M4 build does not use the DSP path ({want} missing)"
    fw.run()


# ---- fast_requant (tinyml_requantize_bounded) and constant channels ------------------------

def _generated_model_c(model: bytes, tmp_path) -> str:
    from tinyml.codegen.emit import generate
    from tinyml.codegen.importer import import_bytes
    generate(import_bytes(model), str(tmp_path))
    return (tmp_path / "model.c").read_text()


def test_fast_requant_bound():
    from tinyml.codegen.ops.conv import fast_requant_ok
    w = np.full((2, 4), 127)
    edge = (1 << 30) - 1 - 128 * 127 * 4        # largest bias whose accumulator stays below 2^30
    assert fast_requant_ok(np.array([edge, -edge]), w, [-1, -22], 0)
    assert not fast_requant_ok(np.array([edge + 1, 0]), w, [-5, -5], 0)
    assert not fast_requant_ok(np.array([0, 0]), w, [-5, 0], 0)        # shift 0: no rounding step
    assert not fast_requant_ok(np.array([0, 0]), w, [-5, -23], 0)
    assert not fast_requant_ok(np.array([edge, 0]), w, [-5, -5], 0, x_max=255)


def test_conv_fast_requant_flag_follows_the_bound(tmp_path):
    """The generator turns the fast epilogue on for ordinary layers and off when an
    accumulator could reach 2^30; both stay bit-exact."""
    ordinary = conv_model(kh=1, kw=1, cin=8, cout=8, act="RELU6")
    assert ".fast_requant = 1" in _generated_model_c(ordinary, tmp_path / "a")
    check_bit_exact(ordinary, count=2)
    huge = conv_model(kh=1, kw=1, cin=8, cout=8, bias_override={3: (1 << 30) + 12345}, out_scale=6e4)
    assert ".fast_requant = 0" in _generated_model_c(huge, tmp_path / "b")
    check_bit_exact(huge, count=2)


def test_conv_dead_channels_keep_their_constant(tmp_path):
    """All-zero filters with biases near +-2^30 (as in VWW's trained file): requantized at
    generate time and re-expressed within the fast epilogue's bound, same bytes as TFLite."""
    model = conv_model(kh=3, kw=3, cin=8, cout=9, dead=(0, 4, 8), act="RELU6",
                       bias_override={0: 1 << 30, 4: -(1 << 30), 8: 1073741760})
    assert ".fast_requant = 1" in _generated_model_c(model, tmp_path)
    check_bit_exact(model, count=2)


def test_depthwise_fast_requant_flag(tmp_path):
    model = dw_model(cin=8, act="RELU6")
    assert ".fast_requant = 1" in _generated_model_c(model, tmp_path)
    check_bit_exact(model, count=2)


@pytest.mark.parametrize("kh,kw,c", [(3, 3, 8), (3, 3, 7), (3, 3, 3), (5, 5, 10), (1, 2, 4)])
def test_depthwise_grouped_filter_layout(kh, kw, c):
    """The generator's grouped filter (conv.h, weights_grouped): tap t of channel c < C4
    at (c // 4) * 4K + 4t + c % 4, of a tail channel at C4 * K + t * (C - C4) + (c - C4)."""
    from tinyml.codegen.ops.conv import group_depthwise_filter
    rng = np.random.default_rng(kh * 100 + c)
    w = rng.integers(-128, 128, size=(1, kh, kw, c)).astype(np.int8)
    got = group_depthwise_filter(w)
    k, c4 = kh * kw, c - c % 4
    want = np.zeros(k * c, np.int8)
    for ky in range(kh):
        for kx in range(kw):
            t = ky * kw + kx
            for ch in range(c):
                pos = (ch // 4) * 4 * k + 4 * t + ch % 4 if ch < c4 else c4 * k + t * (c - c4) + (ch - c4)
                want[pos] = w[0, ky, kx, ch]
    assert got.dtype == np.int8 and got.shape == (k * c,)
    assert np.array_equal(got, want)
