"""AVERAGE_POOL_2D, MAX_POOL_2D, PAD and PADV2 against the TFLite reference."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from opmodels import Spec, check_bit_exact, single_op_model

ACT = {"NONE": 0, "RELU": 1, "RELU6": 3}
PAD = {"SAME": 0, "VALID": 1}


def _out(padding, size, k, stride):
    return (size + stride - 1) // stride if padding == "SAME" else (size + stride - k) // stride


def pool_model(op="AVERAGE_POOL_2D", n=1, h=7, w=6, c=5, fh=2, fw=3, stride=(2, 2), padding="SAME",
               act="NONE", scale=0.05, zp=-4):
    oh, ow = _out(padding, h, fh, stride[0]), _out(padding, w, fw, stride[1])
    q = dict(scale=scale, zero_point=zp)
    return single_op_model(
        op, [Spec((n, h, w, c), **q)], [Spec((n, oh, ow, c), **q)],
        options=("Pool2DOptions", {"padding": PAD[padding], "strideH": stride[0], "strideW": stride[1],
                                   "filterHeight": fh, "filterWidth": fw, "fusedActivationFunction": ACT[act]}),
        version=2)


def pad_model(shape=(1, 5, 4, 3), pads=((0, 0), (1, 2), (2, 0), (0, 1)), scale=0.1, zp=-7, value=None,
              pad_dtype="int32"):
    out = tuple(d + a + b for d, (a, b) in zip(shape, pads))
    q = dict(scale=scale, zero_point=zp)
    ins = [Spec(shape, **q), Spec((len(shape), 2), pad_dtype, data=np.asarray(pads))]
    if value is None:
        return single_op_model("PAD", ins, [Spec(out, **q)], options=("PadOptions", {}), version=2)
    ins.append(Spec((1,), "int8", data=np.asarray([value]), **q))
    return single_op_model("PADV2", ins, [Spec(out, **q)], options=("PadV2Options", {}), version=2)


# ---- fixed cases (ASan/UBSan) -------------------------------------------------------------

@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_same_strided_relu6(op):
    # RELU6 on a coarse scale clamps inside the int8 range.
    check_bit_exact(pool_model(op, act="RELU6", scale=0.03, zp=-100), count=2)


@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_valid_global_batch2(op):
    # The reference models' global average pool: window = whole image.
    check_bit_exact(pool_model(op, n=2, h=8, w=8, c=16, fh=8, fw=8, stride=(8, 8), padding="VALID"), count=2)


def test_avg_pool_kws_like_window_and_relu():
    check_bit_exact(pool_model("AVERAGE_POOL_2D", h=25, w=5, c=8, fh=25, fw=5, stride=(25, 5),
                               padding="VALID", act="RELU", zp=3), count=2)


def test_pad_zero_point_4d():
    check_bit_exact(pad_model(), count=2)


def test_padv2_value_and_3d_int64_paddings():
    check_bit_exact(pad_model(shape=(4, 3, 6), pads=((1, 1), (0, 2), (3, 0)), value=55,
                              pad_dtype="int64"), count=2)


# ---- hypothesis sweeps --------------------------------------------------------------------

@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=st.sampled_from(["AVERAGE_POOL_2D", "MAX_POOL_2D"]), n=st.integers(1, 2), h=st.integers(1, 10),
       w=st.integers(1, 10), c=st.integers(1, 9), fh=st.integers(1, 4), fw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), padding=st.sampled_from(["SAME", "VALID"]),
       act=st.sampled_from(["NONE", "RELU", "RELU6"]), scale=st.floats(1e-3, 0.2),
       zp=st.integers(-128, 127), seed=st.integers(0, 10_000))
def test_pool_sweep(op, n, h, w, c, fh, fw, sh, sw, padding, act, scale, zp, seed):
    if _out(padding, h, fh, sh) <= 0 or _out(padding, w, fw, sw) <= 0:
        return
    check_bit_exact(pool_model(op, n, h, w, c, fh, fw, (sh, sw), padding, act, scale, zp),
                    count=2, seed=seed, sanitize=False)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), data=st.data(),
       zp=st.integers(-128, 127), v2=st.booleans(), value=st.integers(-128, 127), seed=st.integers(0, 10_000))
def test_pad_sweep(shape, data, zp, v2, value, seed):
    pads = tuple((data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))) for _ in shape)
    check_bit_exact(pad_model(tuple(shape), pads, zp=zp, value=value if v2 else None),
                    count=2, seed=seed, sanitize=False)
