"""FULLY_CONNECTED at batch 1 on the row-pair filter layout (tinyml_fc_s8_pairs):
the layout and bias written as tinyml/fc.h states them, the kernel's choice by
the lowering, and the portable C path against the TFLite reference, including
accumulators that wrap modulo 2^32 before the A - 256 B correction."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from opmodels import Spec, check_bit_exact, single_op_model
from test_ops_fc import ACT, fc_model


def fc_model_w(w, b, in_scale, in_zp, w_scale, out_scale, out_zp, act="NONE", batches=1):
    """fc_model with the weights and bias given."""
    units, depth = w.shape
    return single_op_model(
        "FULLY_CONNECTED",
        [Spec((batches, depth), scale=in_scale, zero_point=in_zp),
         Spec((units, depth), "int8", scale=w_scale, zero_point=0, axis=0, data=w.astype(np.int8)),
         Spec((units,), "int32", scale=in_scale * w_scale, zero_point=0, data=b.astype(np.int32))],
        [Spec((batches, units), scale=out_scale, zero_point=out_zp)],
        options=("FullyConnectedOptions", {"fusedActivationFunction": ACT[act]}))


def test_pack_filter_pairs_bytes_as_documented():
    from tinyml.codegen.ops.fully_connected import pack_filter_pairs
    rng = np.random.default_rng(1)
    w = rng.integers(-128, 128, size=(6, 10)).astype(np.int8)   # 1 group + 2 plain rows; 2 blocks + tail 2
    p = pack_filter_pairs(w).view(np.uint8)
    u = w.view(np.uint8)
    assert p.size == w.size
    # block 0, pair (0, 1): (w[0][0]+128, w[1][0], w[0][2]+128, w[1][2]), (w[0][1]+128, w[1][1], w[0][3]+128, w[1][3])
    assert list(p[0:8]) == [(int(w[0, 0]) + 128), u[1, 0], int(w[0, 2]) + 128, u[1, 2],
                            int(w[0, 1]) + 128, u[1, 1], int(w[0, 3]) + 128, u[1, 3]]
    # block 0, pair (2, 3)
    assert list(p[8:16]) == [int(w[2, 0]) + 128, u[3, 0], int(w[2, 2]) + 128, u[3, 2],
                             int(w[2, 1]) + 128, u[3, 1], int(w[2, 3]) + 128, u[3, 3]]
    # block 1 (depth 4..7), pair (0, 1), first word
    assert list(p[16:20]) == [int(w[0, 4]) + 128, u[1, 4], int(w[0, 6]) + 128, u[1, 6]]
    # the group's depth tail (8, 9), rows 0..3 plain, then rows 4 and 5 plain
    assert list(p[32:40]) == list(u[0:4, 8:10].reshape(-1))
    assert list(p[40:]) == list(u[4:6].reshape(-1))


def test_pair_bias_adds_256_times_the_odd_row_wrapped():
    from tinyml.codegen.ops.fully_connected import pair_bias
    b = np.array([5, -7, 2**31 - 1, 2**23, 11, 13, 17], dtype=np.int64)
    got = pair_bias(b)
    assert got.dtype == np.int32
    # rows 0 and 2 change (2^31 - 1 + 256 * 2^23 = 2^32 - 1 wraps to -1); 4..6 are plain rows
    assert [int(v) for v in got] == [5 - 7 * 256, -7, -1, 2**23, 11, 13, 17]


def test_lowering_picks_the_pair_kernel_at_batch_1_only(tmp_path):
    from tinyml.codegen.pipeline import compile
    kernels = {}
    for batches in (1, 2):
        path = tmp_path / f"fc{batches}.tflite"
        path.write_bytes(fc_model(batches, 37, 11, 0.05, 7, 0.01, 0.1, -3, "RELU"))
        kernels[batches] = [c.func for s in compile(str(path)).steps for c in s.calls]
    assert kernels == {1: ["tinyml_fc_s8_pairs"], 2: ["tinyml_fc_s8"]}


def test_fc_pairs_accumulators_wrap_and_stay_exact():
    """Depth 640 with weights at -128 / +127 and inputs at -128: A = sum x (w[r] + 128 + 256 w[r+1])
    passes 2^31 (640 x 128 x 32768 = 2^31.3) and wraps; A - 256 B - 128 sum x is still exact."""
    rng = np.random.default_rng(3)
    depth, units = 640, 10
    w = np.where(rng.random((units, depth)) < 0.85, -128, 127).astype(np.int8)
    w[1] = -128
    w[3] = 127
    b = rng.integers(-5000, 5000, size=units)
    m = fc_model_w(w, b, 0.01, 0, 0.001, 1.0, 0)
    records = [[np.full((1, depth), -128, np.int8)], [np.full((1, depth), 127, np.int8)],
               [rng.integers(-128, 128, size=(1, depth)).astype(np.int8)]]
    check_bit_exact(m, records=records)


def round_half_model(seed: int = 0, depth: int = 150, units: int = 6, act: str = "NONE"):
    """Real multiplier 0.26 (shift -1: the SMMLAR epilogue) with sparse weights in -1..1, so
    that the outputs spread over int8 instead of saturating."""
    rng = np.random.default_rng(seed)
    w = rng.choice([-1, 0, 1], p=[0.05, 0.9, 0.05], size=(units, depth)).astype(np.int8)
    return fc_model_w(w, rng.integers(-300, 300, size=units), 0.05, -9, 0.01, 0.0005 / 0.26, 4, act)


def test_fc_pairs_per_tensor_smmla():
    # real multiplier 0.05 * 0.0005 / 0.02 = 0.00125 (shift -10): outputs spread over int8
    check_bit_exact(fc_model(1, 150, 11, 0.05, 7, 0.0005, 0.02, -3, "RELU"), count=3)


def test_fc_pairs_per_tensor_smmlar():
    check_bit_exact(round_half_model(), count=3)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(1, 90), units=st.integers(1, 14), in_scale=st.floats(1e-3, 1.0),
       in_zp=st.integers(-128, 127), w_scale=st.floats(1e-4, 0.1), out_scale=st.floats(1e-3, 2.0),
       out_zp=st.integers(-128, 127), act=st.sampled_from(["NONE", "RELU", "RELU6"]),
       per_channel=st.booleans(), seed=st.integers(0, 1000))
def test_fc_pairs_sweep(depth, units, in_scale, in_zp, w_scale, out_scale, out_zp, act, per_channel, seed):
    scales = list(np.geomspace(w_scale, w_scale * 3, units)) if per_channel else w_scale
    check_bit_exact(fc_model(1, depth, units, in_scale, in_zp, scales, out_scale, out_zp, act, seed=seed),
                    count=2, sanitize=False)
