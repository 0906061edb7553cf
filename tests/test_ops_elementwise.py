"""ADD, SUB, MUL, SQUARED_DIFFERENCE, RSQRT and SOFTMAX (int8) against the TFLite reference.

Fixed cases cover the variants the reference models use (the ViT's LayerNorm
and attention ops with their real quantization parameters, ResNet-8's fused
RELU residual ADD) and run under ASan/UBSan; hypothesis sweeps cover shapes,
broadcasting, constant operands, zero points, scales and activations.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from opmodels import Spec, check_bit_exact, single_op_model

from tinyml.codegen.ops.elementwise import broadcast_geometry

ACT = {"NONE": 0, "RELU": 1, "RELU6": 3}
OPTIONS = {"ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions"}
VIT = (1, 49, 64)


def binary_model(op, shape1, q1, shape2, q2, out_shape, qo, act="NONE", const2=None):
    """q = (scale, zero_point); const2 = data makes input 2 a constant tensor."""
    spec2 = Spec(shape2, scale=q2[0], zero_point=q2[1],
                 data=None if const2 is None else np.asarray(const2, dtype=np.int8).reshape(shape2))
    options = (OPTIONS[op], {"fusedActivationFunction": ACT[act]}) if op in OPTIONS else None
    return single_op_model(op, [Spec(shape1, scale=q1[0], zero_point=q1[1]), spec2],
                           [Spec(out_shape, scale=qo[0], zero_point=qo[1])], options=options)


def const_data(shape, seed=0):
    return np.random.default_rng(seed).integers(-128, 128, size=shape).astype(np.int8)


# --- fixed cases (sanitized) -----------------------------------------------------

def test_add_resnet_residual_relu():
    # ResNet-8: ADD of two [1,32,32,16]-ish activations with fused RELU.
    check_bit_exact(binary_model("ADD", (1, 32, 32, 16), (0.061, -5), (1, 32, 32, 16), (0.043, 9),
                                 (1, 32, 32, 16), (0.072, -128), act="RELU"), count=2)


def test_add_vit_residual_and_bias_broadcast():
    # Residual add of two [1,49,64] activations, then a [1,1,64] constant (LayerNorm beta).
    check_bit_exact(binary_model("ADD", VIT, (0.005015, 19), VIT, (0.048351, 2), VIT, (0.048351, 2)), count=2)
    check_bit_exact(binary_model("ADD", VIT, (0.002182, 24), (1, 1, 64), (0.000146, -20), VIT, (0.002182, 24),
                                 const2=const_data((1, 1, 64))), count=2)


def test_add_vit_epsilon_scalar():
    # LayerNorm variance + epsilon: a () constant whose scale is so small its
    # multiplier flushes to zero in TFLite's QuantizeMultiplier.
    check_bit_exact(binary_model("ADD", (1, 49, 1), (0.000216, -128), (), (7.0e-9, -43), (1, 49, 1),
                                 (0.000216, -128), const2=np.array(127)), count=3)


def test_add_rank_mismatch_4d_relu6():
    check_bit_exact(binary_model("ADD", (2, 3, 4, 5), (0.02, 3), (4, 1), (0.5, -7), (2, 3, 4, 5), (0.03, 0),
                                 act="RELU6"), count=2)


def test_sub_broadcast_both_sides():
    check_bit_exact(binary_model("SUB", (2, 1, 5), (0.05, -3), (3, 1), (0.07, 5), (2, 3, 5), (0.03, 1)), count=3)


def test_mul_vit_variants():
    # RSQRT output [1,49,1] x gamma [1,1,64] -> [1,49,64]
    check_bit_exact(binary_model("MUL", (1, 49, 1), (0.070953, -128), (1, 1, 64), (0.004202, -128), VIT,
                                 (0.07602, -128), const2=const_data((1, 1, 64), 1)), count=2)
    # -mean [1,49,1] x scale [1,49,64]
    check_bit_exact(binary_model("MUL", (1, 49, 1), (0.000218, -4), VIT, (0.07602, -128), VIT, (0.002182, 24)),
                    count=2)


def test_mul_attention_scalar():
    # Attention logits [1,2,49,49] times the () constant 1/sqrt(d).
    check_bit_exact(binary_model("MUL", (1, 2, 49, 49), (0.627497, -20), (), (0.000693, -128), (1, 2, 49, 49),
                                 (0.110927, -20), const2=np.array(127)), count=2)


def test_mul_relu():
    check_bit_exact(binary_model("MUL", (3, 7), (0.1, 4), (3, 7), (0.2, -9), (3, 7), (0.5, -20), act="RELU"),
                    count=3)


def test_squared_difference_vit():
    check_bit_exact(binary_model("SQUARED_DIFFERENCE", VIT, (0.005376, 22), (1, 49, 1), (0.000218, 3), VIT,
                                 (0.002519, -128)), count=2)


def rsqrt_model(shape, qi, qo):
    return single_op_model("RSQRT", [Spec(shape, scale=qi[0], zero_point=qi[1])],
                           [Spec(shape, scale=qo[0], zero_point=qo[1])])


def rsqrt_records(shape, zp, count, seed=0):
    # TFLite rejects inputs below the zero point (negative reals).
    rng = np.random.default_rng(seed)
    return [[rng.integers(zp, 128, size=shape).astype(np.int8)] for _ in range(count)]


def test_rsqrt_vit():
    check_bit_exact(rsqrt_model((1, 49, 1), (0.000216, -128), (0.070953, -128)),
                    records=rsqrt_records((1, 49, 1), -128, 3))


def test_rsqrt_every_input_value():
    # All 256 int8 inputs at once with a non-trivial zero point: the table is complete.
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    check_bit_exact(rsqrt_model((1, 256), (0.0183, -128), (0.0098, -120)), records=[[x]])
    x = np.arange(-30, 128, dtype=np.int8).reshape(1, 158)
    check_bit_exact(rsqrt_model((1, 158), (0.3, -30), (0.004, -128)), records=[[x]])


def softmax_model(shape, qi, beta=1.0):
    return single_op_model("SOFTMAX", [Spec(shape, scale=qi[0], zero_point=qi[1])],
                           [Spec(shape, scale=1.0 / 256, zero_point=-128)], options=("SoftmaxOptions", {"beta": beta}))


def test_softmax_vit_attention():
    check_bit_exact(softmax_model((1, 2, 49, 49), (0.110927, -20)), count=2)


def test_softmax_classifier_and_extremes():
    check_bit_exact(softmax_model((1, 10), (0.0625, 5)), count=3)
    # Large beta*scale: most differences fall below diff_min; constant rows; one-element rows.
    check_bit_exact(softmax_model((4, 33), (0.9, 0), beta=3.0), count=2)
    flat = [[np.full((2, 5), 17, dtype=np.int8)], [np.array([[127, -128, 0, 5, 127], [-128] * 5], dtype=np.int8)]]
    check_bit_exact(softmax_model((2, 5), (0.05, 0)), records=flat)
    check_bit_exact(softmax_model((6, 1), (0.05, 0)), count=1)


def test_softmax_capped_input_multiplier():
    # beta * scale * 2^26 above 2^31 - 1: PreprocessSoftmaxScaling caps it and the
    # left shift reaches 31, beyond what single-rounding builds allow.
    check_bit_exact(softmax_model((3, 7), (20.0, 0), beta=2.0), count=2)
    check_bit_exact(softmax_model((3, 7), (12.0, 3), beta=1.0), count=2)


def test_softmax_computed_exps_cover_every_difference(tmp_path):
    """Short softmaxes compute their exps (no 1 KB table): rows [127, 127 - k]
    for every difference k = 0..255 at three input scales (none, some and most
    differences below diff_min), and a (1, 65) softmax keeps the table."""
    from tinyml.codegen.pipeline import compile
    k = np.arange(256).reshape(8, 32)
    records = [[np.stack([np.full(32, 127), 127 - row], axis=1).astype(np.int8)] for row in k]
    for qi, beta in (((0.0078, 0), 1.0), ((0.1, -3), 1.0), ((0.9, 0), 3.0)):
        model = softmax_model((32, 2), qi, beta)
        check_bit_exact(model, records=records)
        path = tmp_path / "short.tflite"
        path.write_bytes(model)
        compiled = compile(str(path))
        assert [c.func for s in compiled.steps for c in s.calls] == ["tinyml_softmax_exp_s8"]
        assert compiled.ctx.const_bytes() == 0
    path = tmp_path / "long.tflite"
    path.write_bytes(softmax_model((1, 65), (0.0625, 5)))
    compiled = compile(str(path))
    assert [c.func for s in compiled.steps for c in s.calls] == ["tinyml_softmax_s8"]
    assert compiled.ctx.const_bytes() == 1024


# --- broadcast geometry against numpy's broadcasting ---------------------------------

@settings(max_examples=60, deadline=None)
@given(out=st.lists(st.integers(1, 4), min_size=0, max_size=4), data=st.data())
def test_broadcast_geometry_matches_numpy(out, data):
    def operand():
        keep = data.draw(st.lists(st.booleans(), min_size=len(out), max_size=len(out)))
        shape = [d if k else 1 for d, k in zip(out, keep)]
        drop = data.draw(st.integers(0, len(shape)))
        return tuple(shape[drop:])
    s1, s2 = operand(), operand()
    out = tuple(int(d) for d in np.broadcast_shapes(s1, s2))
    geo = broadcast_geometry(s1, s2, out)
    assert geo is not None
    a = np.arange(int(np.prod(s1)), dtype=np.int64).reshape(s1)
    b = np.arange(int(np.prod(s2)), dtype=np.int64).reshape(s2)
    want_a = np.broadcast_to(a, tuple(out)).reshape(-1)
    want_b = np.broadcast_to(b, tuple(out)).reshape(-1)
    idx = np.indices(geo.dims).reshape(4, -1)
    got_a = (idx * np.asarray(geo.stride1)[:, None]).sum(0)
    got_b = (idx * np.asarray(geo.stride2)[:, None]).sum(0)
    assert np.array_equal(got_a, want_a) and np.array_equal(got_b, want_b)
    assert broadcast_geometry((2, 3), (4, 3), (2, 3)) is None


# --- hypothesis sweeps (unsanitized for speed) ------------------------------------------

scales = st.floats(1e-3, 0.5)
zps = st.integers(-128, 127)


@st.composite
def broadcast_shapes(draw):
    out = draw(st.lists(st.integers(1, 7), min_size=1, max_size=4))

    def operand():
        if draw(st.integers(0, 9)) == 0:
            return ()
        keep = draw(st.lists(st.booleans(), min_size=len(out), max_size=len(out)))
        shape = [d if k else 1 for d, k in zip(out, keep)]
        return tuple(shape[draw(st.integers(0, len(shape) - 1)):])

    s1, s2 = operand(), operand()
    # The output shape is the broadcast of the two inputs.
    out_shape = np.broadcast_shapes(s1, s2)
    if out_shape == ():
        s1, out_shape = (1,), (1,)
    return s1, s2, tuple(int(d) for d in out_shape)


SWEEP = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
@SWEEP
@given(shapes=broadcast_shapes(), q1=st.tuples(scales, zps), q2=st.tuples(scales, zps),
       qo=st.tuples(st.floats(1e-3, 1.0), zps), act=st.sampled_from(["NONE", "RELU", "RELU6"]),
       const=st.booleans(), seed=st.integers(0, 1000))
def test_binary_sweep(op, shapes, q1, q2, qo, act, const, seed):
    s1, s2, so = shapes
    model = binary_model(op, s1, q1, s2, q2, so, qo, act=act, const2=const_data(s2, seed) if const else None)
    check_bit_exact(model, count=2, seed=seed, sanitize=False)


@SWEEP
@given(shapes=broadcast_shapes(), q1=st.tuples(scales, zps), q2=st.tuples(scales, zps),
       qo=st.tuples(st.floats(1e-3, 2.0), zps), seed=st.integers(0, 1000))
def test_squared_difference_sweep(shapes, q1, q2, qo, seed):
    s1, s2, so = shapes
    check_bit_exact(binary_model("SQUARED_DIFFERENCE", s1, q1, s2, q2, so, qo), count=2, seed=seed, sanitize=False)


@SWEEP
@given(n=st.integers(1, 300), qi=st.tuples(st.floats(1e-5, 1.0), zps), qo=st.tuples(st.floats(1e-4, 1.0), zps),
       seed=st.integers(0, 1000))
def test_rsqrt_sweep(n, qi, qo, seed):
    check_bit_exact(rsqrt_model((1, n), qi, qo), records=rsqrt_records((1, n), qi[1], 2, seed), sanitize=False)


@SWEEP
@given(rows=st.integers(1, 6), depth=st.integers(1, 130), qi=st.tuples(st.floats(1e-3, 2.0), zps),
       beta=st.sampled_from([1.0, 0.5, 2.0, 0.125]), seed=st.integers(0, 1000))
def test_softmax_sweep(rows, depth, qi, beta, seed):
    check_bit_exact(softmax_model((rows, depth), qi, beta), count=2, seed=seed, sanitize=False)


def test_sub_relu6_bound_is_computed_in_float32():
    """Found by the SUB sweep: RELU6's upper bound is zp + round(6.0f / scale) in
    float32 (6 / 0.8f = 7.5f -> 8); dividing by the float64 widening of the scale
    gives 7.4999999 -> 7."""
    m = binary_model("SUB", (1, 1, 1, 1), (0.4617966861850174, 0), (), (0.1001462894699416, 0),
                     (1, 1, 1, 1), (0.8, 0), act="RELU6")
    check_bit_exact(m, count=2, seed=0, sanitize=False)
