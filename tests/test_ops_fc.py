"""FULLY_CONNECTED against the TFLite reference, across shapes and quantization."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from opmodels import Spec, check_bit_exact, single_op_model

ACT = {"NONE": 0, "RELU": 1, "RELU6": 3}


def fc_model(batches, depth, units, in_scale, in_zp, w_scales, out_scale, out_zp, act, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, size=(units, depth)).astype(np.int8)
    b = rng.integers(-3000, 3000, size=(units,)).astype(np.int32)
    w_spec = Spec((units, depth), "int8", scale=w_scales, zero_point=0, axis=0, data=w)
    b_scales = [in_scale * s for s in np.atleast_1d(w_scales)]
    b_spec = Spec((units,), "int32", scale=b_scales, zero_point=0, data=b) if bias else None
    return single_op_model(
        "FULLY_CONNECTED",
        [Spec((batches, depth), scale=in_scale, zero_point=in_zp), w_spec, b_spec],
        [Spec((batches, units), scale=out_scale, zero_point=out_zp)],
        options=("FullyConnectedOptions", {"fusedActivationFunction": ACT[act]}))


@pytest.mark.parametrize("act", ["NONE", "RELU", "RELU6"])
def test_fc_per_tensor(act):
    check_bit_exact(fc_model(3, 37, 11, 0.05, 7, 0.01, 0.1, -3, act), count=3)


def test_fc_per_channel_no_bias():
    scales = list(np.linspace(0.002, 0.02, 9))
    check_bit_exact(fc_model(2, 64, 9, 0.02, -128, scales, 0.05, 5, "NONE", bias=False), count=3)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.integers(1, 4), depth=st.integers(1, 70), units=st.integers(1, 20),
       in_scale=st.floats(1e-3, 1.0), in_zp=st.integers(-128, 127), w_scale=st.floats(1e-4, 0.1),
       out_scale=st.floats(1e-3, 2.0), out_zp=st.integers(-128, 127),
       act=st.sampled_from(["NONE", "RELU", "RELU6"]), seed=st.integers(0, 1000))
def test_fc_sweep(batches, depth, units, in_scale, in_zp, w_scale, out_scale, out_zp, act, seed):
    check_bit_exact(fc_model(batches, depth, units, in_scale, in_zp, w_scale, out_scale, out_zp, act, seed=seed),
                    count=2, sanitize=False)
