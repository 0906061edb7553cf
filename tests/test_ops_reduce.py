"""MEAN (int8) against the TFLite reference: any axes, keep_dims true/false, any quantization."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from opmodels import Spec, check_bit_exact, single_op_model

from tinyml.codegen.ops.reduce import reduce_geometry
from tinyml.errors import TinymlError


def mean_shape(shape, axes, keep_dims):
    nd = len(shape)
    red = {a % nd for a in axes}
    if keep_dims:
        return tuple(1 if k in red else d for k, d in enumerate(shape))
    return tuple(d for k, d in enumerate(shape) if k not in red)


def mean_model(shape, axes, keep_dims, qi, qo):
    return single_op_model(
        "MEAN", [Spec(shape, scale=qi[0], zero_point=qi[1]),
                 Spec((len(axes),), dtype="int32", data=np.asarray(axes, dtype=np.int32))],
        [Spec(mean_shape(shape, axes, keep_dims), scale=qo[0], zero_point=qo[1])],
        options=("ReducerOptions", {"keepDims": keep_dims}))


def test_mean_vit_layernorm_last_axis():
    # The ViT's LayerNorm mean and variance: [1,49,64] over axis -1, keep_dims.
    check_bit_exact(mean_model((1, 49, 64), [-1], True, (0.005376, 22), (0.000218, 3)), count=3)
    check_bit_exact(mean_model((1, 49, 64), [-1], True, (0.002519, -128), (0.000216, -128)), count=2)


@pytest.mark.parametrize("keep_dims", [True, False])
def test_mean_cnn_global_pool(keep_dims):
    # MEAN over H, W of a 4-D activation (Keras GlobalAveragePooling2D).
    check_bit_exact(mean_model((1, 6, 5, 16), [1, 2], keep_dims, (0.05, 3), (0.02, -7)), count=3)


def test_mean_same_quantization_and_odd_axes():
    check_bit_exact(mean_model((2, 5, 6, 8), [0, 2], False, (0.05, 3), (0.05, 3)), count=2)
    check_bit_exact(mean_model((3, 4, 5), [2, 0, -3], True, (0.1, -100), (0.01, 100)), count=2)


def test_mean_large_count_folds_shift():
    # n = 4096 reduced elements: the 1/n shift is clamped by 31 + output_shift.
    check_bit_exact(mean_model((1, 64, 64, 2), [1, 2], True, (0.9, 0), (0.0005, 0)), count=2)


def test_mean_non_constant_axis_is_rejected():
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.lower import lower_graph
    import os
    import tempfile
    m = single_op_model("MEAN", [Spec((2, 3), scale=0.1, zero_point=0), Spec((1,), dtype="int32")],
                        [Spec((2,), scale=0.1, zero_point=0)], options=("ReducerOptions", {"keepDims": False}))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.tflite")
        with open(path, "wb") as f:
            f.write(m)
        g = import_tflite(path)
        # The graph's second input is int32 (not int8); either check rejects it with a one-line error.
        with pytest.raises(TinymlError):
            lower_graph(g)


def test_reduce_geometry_merges_runs():
    assert reduce_geometry((1, 49, 64), {2}) == ([1, 1, 49, 64], [0, 0, 0, 1])
    assert reduce_geometry((2, 3, 4, 5), {1, 2}) == ([1, 2, 12, 5], [0, 0, 1, 0])
    assert reduce_geometry((2, 1, 4, 5), {0, 2}) == ([1, 1, 8, 5], [0, 0, 1, 0])


@settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=4), data=st.data(),
       keep_dims=st.booleans(), qi=st.tuples(st.floats(1e-3, 1.0), st.integers(-128, 127)),
       qo=st.tuples(st.floats(1e-3, 1.0), st.integers(-128, 127)), seed=st.integers(0, 1000))
def test_mean_sweep(shape, data, keep_dims, qi, qo, seed):
    nd = len(shape)
    axes = data.draw(st.lists(st.integers(-nd, nd - 1), min_size=1, max_size=nd, unique=True))
    if data.draw(st.booleans()):
        qo = qi                              # equal input/output quantization
    check_bit_exact(mean_model(tuple(shape), axes, keep_dims, qi, qo), count=2, seed=seed, sanitize=False)
