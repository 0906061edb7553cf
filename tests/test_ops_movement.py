"""RESIZE_NEAREST_NEIGHBOR, TILE, SPLIT, SPLIT_V, PACK and UNPACK against TFLite's reference interpreter.

Each sweep is one model holding every case as an independent op (tests/opgraph.py),
so the generated C is compiled once per sweep; every output byte of every case is
compared with TFLite's BUILTIN_REF kernels on random inputs.
"""
import itertools

import numpy as np
import pytest

from opgraph import OpCase, i32, multi_op_model
from opmodels import Spec, check_bit_exact


def q(shape, dtype="int8", scale=0.05, zp=3):
    if dtype in ("int32",):
        return Spec(shape, dtype)
    return Spec(shape, dtype, scale=scale, zero_point=zp)


# ------------------------------------------------------- RESIZE_NEAREST_NEIGHBOR

RESIZE_SHAPES = [((1, 2, 3, 4), (4, 6)), ((1, 5, 7, 3), (3, 4)), ((2, 3, 3, 2), (7, 5)),
                 ((1, 1, 4, 1), (3, 9)), ((1, 4, 4, 8), (8, 8)), ((1, 6, 5, 2), (6, 5))]


def resize_cases():
    cases = []
    for (shape, (oh, ow)), (ac, hp) in itertools.product(RESIZE_SHAPES, [(False, False), (True, False),
                                                                          (False, True), (True, True)]):
        n, _, _, c = shape
        cases.append(OpCase("RESIZE_NEAREST_NEIGHBOR", [q(shape), i32([oh, ow])], [q((n, oh, ow, c))],
                            options=("ResizeNearestNeighborOptions",
                                     {"alignCorners": ac, "halfPixelCenters": hp}), version=3))
    return cases




# ------------------------------------------------------------------------ TILE

TILE_CASES = [((2, 3), (2, 1), "int8"), ((1, 2, 2, 3), (1, 2, 2, 1), "int8"), ((3,), (4,), "int8"),
              ((2, 1, 3), (1, 5, 2), "int8"), ((1, 3, 2, 4), (2, 1, 3, 2), "int8"), ((2, 2), (3, 2), "int32"),
              ((1, 4, 1, 2), (1, 1, 1, 1), "int8"), ((2, 3, 1), (1, 2, 3), "int32")]


def tile_cases():
    return [OpCase("TILE", [q(s, dt), i32(m)], [q(tuple(a * b for a, b in zip(s, m)), dt)])
            for s, m, dt in TILE_CASES]


# --------------------------------------------------- SPLIT, SPLIT_V, UNPACK, PACK

def split_cases():
    cases = []
    for shape, axis, n in [((1, 6, 4), 1, 3), ((1, 6, 4), -1, 2), ((4, 3), 0, 4), ((1, 2, 4, 6), 3, 3),
                           ((2, 4, 2, 2), 1, 2), ((5,), 0, 1)]:
        a = axis % len(shape)
        out = list(shape)
        out[a] //= n
        cases.append(OpCase("SPLIT", [i32(axis), q(shape)], [q(tuple(out))] * n,
                            options=("SplitOptions", {"numSplits": n})))
    for shape, axis, sizes in [((1, 7, 4), 1, [2, 4, 1]), ((1, 3, 8), -1, [3, -1, 2]), ((6, 2), 0, [6]),
                               ((1, 2, 5, 4), 2, [1, 1, 3]), ((3, 5), 1, [1, 4])]:
        # (an empty part, e.g. sizes [0, 5], makes a tensor with a zero dimension, which
        # codegen.validate refuses for every op: 'dimensions are positive')
        a = axis % len(shape)
        full = [shape[a] - sum(s for s in sizes if s != -1) if s == -1 else s for s in sizes]
        outs = []
        for s in full:
            o = list(shape)
            o[a] = s
            outs.append(q(tuple(o)))
        cases.append(OpCase("SPLIT_V", [q(shape), i32(sizes), i32(axis)], outs,
                            options=("SplitVOptions", {"numSplits": len(sizes)})))
    for shape, axis, dt in [((3, 4), 0, "int8"), ((1, 4, 3), 1, "int8"), ((2, 3, 5), -1, "int8"),
                            ((1, 2, 2, 3), 2, "int32"), ((4,), 0, "int32")]:
        a = axis % len(shape)
        o = shape[:a] + shape[a + 1:]
        cases.append(OpCase("UNPACK", [q(shape, dt)], [q(o, dt)] * shape[a],
                            options=("UnpackOptions", {"num": shape[a], "axis": axis})))
    for shape, axis, n, dt in [((4,), 0, 3, "int8"), ((2, 3), 1, 2, "int8"), ((2, 3), -1, 4, "int8"),
                               ((1, 3, 2), 0, 2, "int32"), ((3,), 0, 4, "int32"), ((2, 2, 3), 3, 2, "int8")]:
        rank = len(shape) + 1
        a = axis % rank
        o = shape[:a] + (n,) + shape[a:]
        cases.append(OpCase("PACK", [q(shape, dt)] * n, [q(o, dt)],
                            options=("PackOptions", {"valuesCount": n, "axis": axis})))
    return cases


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_movement_sweep():
    """One model, one host build (AddressSanitizer runs these kernels in test_ops_data's sweep): RESIZE_NEAREST_NEIGHBOR 6 shapes (up, down, mixed,
    identity, batch 2) x align_corners x half_pixel_centers = 24 ops; TILE 8 (1-D to 4-D, int8
    and int32, UpSampling2D's [1,2,2,1] form); SPLIT 6, SPLIT_V 5 (with -1),
    UNPACK 5, PACK 6 (int8 and int32)."""
    check_bit_exact(multi_op_model(resize_cases() + tile_cases() + split_cases()), count=2, sanitize=False)


# ------------------------------------------------------------ rejected variants

def _lower_error(model: bytes) -> str:
    from tinyml.codegen.importer import import_bytes
    from tinyml.codegen.lower import lower_graph
    from tinyml.errors import TinymlError
    with pytest.raises(TinymlError) as e:
        lower_graph(import_bytes(model))
    return str(e.value)


def test_rejects_runtime_operands():
    """Operands that must be constants (multiples, split axis, sizes) name the op and the operand."""
    msg = _lower_error(multi_op_model([OpCase("TILE", [q((2, 3)), Spec((2,), "int32")], [q((4, 3))])]))
    assert "TILE" in msg and "non-constant multiples" in msg
    msg = _lower_error(multi_op_model([OpCase("SPLIT", [Spec((), "int32"), q((1, 4))], [q((1, 2))] * 2,
                                              options=("SplitOptions", {"numSplits": 2}))]))
    assert "SPLIT" in msg and "non-constant axis" in msg
    msg = _lower_error(multi_op_model([OpCase("RESIZE_NEAREST_NEIGHBOR", [q((1, 2, 2, 1)), Spec((2,), "int32")],
                                              [q((1, 4, 4, 1))])]))
    assert "RESIZE_NEAREST_NEIGHBOR" in msg and "non-constant size" in msg


def test_five_d_only_between_rank_free_ops():
    """A 5-D tile between reshapes is lowered (merged to <= 4 axes); a 5-D graph input is still refused."""
    from tinyml.codegen.importer import import_bytes
    from tinyml.codegen.lower import lower_graph
    from tinyml.errors import TinymlError
    g = import_bytes(multi_op_model([OpCase("TILE", [q((1, 3, 1, 3, 2)), i32([1, 1, 2, 1, 1])],
                                            [q((1, 3, 2, 3, 2))])]))
    with pytest.raises(TinymlError, match="5 dimensions"):
        lower_graph(g)


# ------------------------------------------------------------- RESIZE_BILINEAR

def bilinear_cases():
    cases = []
    for (shape, (oh, ow)), (ac, hp) in itertools.product(
            [((1, 2, 3, 4), (4, 6)), ((1, 5, 7, 3), (3, 4)), ((2, 3, 3, 2), (7, 5)), ((1, 4, 4, 2), (4, 4))],
            [(False, False), (True, False), (False, True)]):
        n, _, _, c = shape
        cases.append(OpCase("RESIZE_BILINEAR", [q(shape), i32([oh, ow])], [q((n, oh, ow, c))],
                            options=("ResizeBilinearOptions", {"alignCorners": ac, "halfPixelCenters": hp})))
    return cases


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_resize_bilinear_both_runtimes():
    """RESIZE_BILINEAR, 4 shapes (up, down, batch 2, identity) x {plain, align_corners,
    half_pixel_centers} = 12 ops, against both oracles: TFLite's reference (default rounding)
    and tflite_micro (--rounding tflm); both round the Q20 sum half away from zero."""
    from opgraph import case_records
    from opmodels import run_generated, run_reference
    from opmodels import tflm_oracle as _tflm
    cases = bilinear_cases()
    model = multi_op_model(cases)
    records = case_records(cases, 2)
    tflm = _tflm(model)
    for rounding, oracle in (("tflite", lambda rec: run_reference(model, rec)), ("tflm", tflm.run)):
        got = run_generated(model, records, sanitize=False, rounding=rounding)
        for r, rec in enumerate(records):
            for k, (g, w) in enumerate(zip(got[r], oracle(rec))):
                assert np.asarray(g).tobytes() == np.asarray(w).reshape(np.shape(g)).tobytes(), \
                    f"{rounding}: record {r} output {k}"
