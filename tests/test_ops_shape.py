"""TRANSPOSE, STRIDED_SLICE, SLICE and CONCATENATION against the TFLite reference."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from opmodels import Spec, check_bit_exact, run_reference, single_op_model


def i32(values):
    v = np.asarray(values, dtype=np.int32)
    return Spec(v.shape, "int32", data=v)


# float32 graphs outside DEQUANTIZE/NEG/QUANTIZE are rejected by codegen.lower
# (not fully int8-quantized), so the 4-byte copy paths are exercised with int32.
def q(shape, dtype="int8", scale=0.05, zp=3):
    if dtype in ("float32", "int32"):
        return Spec(shape, dtype)
    return Spec(shape, dtype, scale=scale, zero_point=zp)


def transpose_model(shape, perm, dtype="int8"):
    out = tuple(shape[p] for p in perm)
    return single_op_model("TRANSPOSE", [q(shape, dtype), i32(perm)], [q(out, dtype)])


# ---------------------------------------------------------------- TRANSPOSE

@pytest.mark.timeout(300)
def test_vit_transpose_0213():
    """The ViT's head split and merge: [1,49,2,32] <-> [1,2,49,32], perm [0,2,1,3]."""
    check_bit_exact(transpose_model((1, 49, 2, 32), (0, 2, 1, 3)), count=2)
    check_bit_exact(transpose_model((1, 2, 49, 32), (0, 2, 1, 3)), count=2)


@pytest.mark.timeout(300)
def test_transpose_int32_and_3d():
    check_bit_exact(transpose_model((3, 5, 7, 2), (3, 1, 0, 2), "int32"), count=2)
    check_bit_exact(transpose_model((4, 6, 5), (2, 0, 1)), count=2)


@pytest.mark.timeout(900)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), data=st.data(),
       dtype=st.sampled_from(["int8", "int32"]))
def test_transpose_sweep(shape, data, dtype):
    perm = data.draw(st.permutations(range(len(shape))))
    check_bit_exact(transpose_model(tuple(shape), tuple(perm), dtype), count=1, sanitize=False)


# ------------------------------------------------------------ STRIDED_SLICE

def slice_model(shape, begin, end, strides, masks=(0, 0, 0), dtype="int8"):
    bm, em, sm = masks
    # Output shape from numpy's semantics of the same slice (then checked by TFLite).
    idx = []
    for a in range(len(shape)):
        if a >= len(begin):
            idx.append(slice(None))
            continue
        if sm >> a & 1:
            idx.append(begin[a])
            continue
        idx.append(slice(None if bm >> a & 1 else begin[a], None if em >> a & 1 else end[a], strides[a]))
    out = np.zeros(shape)[tuple(idx)].shape
    return single_op_model("STRIDED_SLICE", [q(shape, dtype), i32(begin), i32(end), i32(strides)], [q(out, dtype)],
                           options=("StridedSliceOptions", {"beginMask": bm, "endMask": em, "shrinkAxisMask": sm}))


@pytest.mark.timeout(300)
def test_strided_slice_cases():
    # class token: x[:, 0, :] on [1, 50, 64] (shrink axis 1)
    check_bit_exact(slice_model((1, 50, 64), [0, 0, 0], [1, 1, 64], [1, 1, 1], (5, 5, 2)), count=2)
    # negative stride, masks, float
    check_bit_exact(slice_model((2, 7, 6, 3), [1, -1, 1, 0], [2, 0, 6, 3], [1, -2, 2, 1], (8, 0, 1), "int32"),
                    count=2)


@pytest.mark.timeout(900)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=4), data=st.data())
def test_strided_slice_sweep(shape, data):
    n = len(shape)
    k = data.draw(st.integers(1, n))
    begin = [data.draw(st.integers(-shape[a], shape[a] - 1)) for a in range(k)]
    end = [data.draw(st.integers(-shape[a] - 1, shape[a] + 1)) for a in range(k)]
    strides = [data.draw(st.sampled_from([-3, -2, -1, 1, 2, 3])) for _ in range(k)]
    bm, em, sm = (data.draw(st.integers(0, (1 << k) - 1)) for _ in range(3))
    # shrunk axes with negative strides: TFLite returns uninitialized bytes, tinyml rejects
    strides = [abs(s) if sm >> a & 1 else s for a, s in enumerate(strides)]
    m = slice_model(tuple(shape), begin, end, strides, (bm, em, sm))
    try:
        run_reference(m, [np.zeros(shape, np.int8)])
    except (RuntimeError, ValueError):
        return  # a slice TFLite itself refuses (e.g. empty); nothing to compare
    if np.prod(single_shape(m)) == 0:
        return
    check_bit_exact(m, count=1, sanitize=False)


def single_shape(model):
    from opmodels import _schema
    s = _schema()
    m = s.ModelT.InitFromPackedBuf(model, 0)
    sg = m.subgraphs[0]
    return [int(d) for d in sg.tensors[sg.outputs[0]].shape]


def test_strided_slice_rejects_negative_shrink():
    from tinyml.codegen.importer import import_bytes
    from tinyml.codegen.lower import lower_graph
    from tinyml.errors import TinymlError
    # ends 1 on the kept axes: a [1, 1] output (an empty one is refused at import, codegen.validate)
    g = import_bytes(slice_model((1, 4, 1), [0, 2, 0], [1, 0, 1], [1, -1, 1], (0, 0, 2)))
    with pytest.raises(TinymlError, match="negative stride"):
        lower_graph(g)


@pytest.mark.timeout(300)
def test_slice():
    m = single_op_model("SLICE", [q((3, 8, 5)), i32([1, 2, 0]), i32([2, -1, 3])], [q((2, 6, 3))])
    check_bit_exact(m, count=2)


# ------------------------------------------------------------ CONCATENATION

def concat_model(shapes, axis, quants=None, out_q=(0.05, 3), dtype="int8"):
    quants = quants or [out_q] * len(shapes)
    n = len(shapes[0])
    ax = axis % n
    out = list(shapes[0])
    out[ax] = sum(s[ax] for s in shapes)
    ins = [q(s, dtype, *qq) for s, qq in zip(shapes, quants)]
    return single_op_model("CONCATENATION", ins, [q(tuple(out), dtype, *out_q)],
                           options=("ConcatenationOptions", {"axis": axis}))


@pytest.mark.timeout(300)
def test_concat_axes():
    check_bit_exact(concat_model([(1, 1, 64), (1, 49, 64)], 1), count=2)          # class token + patches
    check_bit_exact(concat_model([(2, 3, 4), (2, 3, 1), (2, 3, 2)], -1, dtype="int32"), count=2)


@pytest.mark.timeout(300)
def test_concat_uint8_requantized():
    """Inputs with their own quantization: TFLite's ConcatenationWithScaling (uint8).
    (TFLite and TFLM reject int8 concatenation with differing quantization.)"""
    m = concat_model([(2, 5, 3), (2, 4, 3), (2, 1, 3)], 1,
                     quants=[(0.02, 100), (0.1, 7), (0.05, 3)], out_q=(0.05, 3), dtype="uint8")
    check_bit_exact(m, count=3)


@pytest.mark.timeout(900)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), data=st.data())
def test_concat_sweep(shape, data):
    n = len(shape)
    axis = data.draw(st.integers(-n, n - 1))
    k = data.draw(st.integers(1, 4))
    shapes = []
    for _ in range(k):
        s = list(shape)
        s[axis % n] = data.draw(st.integers(1, 4))
        shapes.append(tuple(s))
    check_bit_exact(concat_model(shapes, axis), count=1, sanitize=False)
