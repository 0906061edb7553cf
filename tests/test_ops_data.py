"""DEPTH_TO_SPACE, SPACE_TO_DEPTH, REVERSE_V2, BROADCAST_TO, GATHER, MAXIMUM, MINIMUM,
the six comparisons and SELECT_V2 against TFLite's reference interpreter: every case
an independent op of one model (tests/opgraph.py), one host build."""
import itertools

import numpy as np
import pytest

from opgraph import OpCase, case_records, i32, multi_op_model
from opmodels import Spec, check_bit_exact


def q(shape, dtype="int8", scale=0.05, zp=3):
    if dtype in ("int32", "bool"):
        return Spec(shape, dtype)
    return Spec(shape, dtype, scale=scale, zero_point=zp)


def space_cases():
    cases = []
    for shape, bs in [((1, 2, 3, 8), 2), ((2, 1, 2, 9), 3), ((1, 3, 3, 4), 1), ((1, 2, 2, 32), 4)]:
        n, h, w, c = shape
        cases.append(OpCase("DEPTH_TO_SPACE", [q(shape)], [q((n, h * bs, w * bs, c // (bs * bs)))],
                            options=("DepthToSpaceOptions", {"blockSize": bs})))
    for shape, bs in [((1, 4, 6, 3), 2), ((2, 3, 6, 1), 3), ((1, 8, 8, 2), 4), ((1, 2, 2, 5), 1)]:
        n, h, w, c = shape
        cases.append(OpCase("SPACE_TO_DEPTH", [q(shape)], [q((n, h // bs, w // bs, c * bs * bs))],
                            options=("SpaceToDepthOptions", {"blockSize": bs})))
    return cases


def reverse_cases():
    cases = []
    for shape, axes, dt in [((5,), [0], "int8"), ((2, 3, 4), [1], "int8"), ((2, 3, 4), [-1], "int32"),
                            ((1, 3, 4, 2), [1, 2], "int8"), ((2, 2, 3, 2), [2, 3], "int8")]:
        cases.append(OpCase("REVERSE_V2", [q(shape, dt), i32(axes)], [q(shape, dt)]))
    return cases


def broadcast_cases():
    cases = []
    for shape, out, dt in [((1, 3), (4, 3), "int8"), ((3, 1), (2, 3, 5), "int8"), ((1,), (2, 2, 2, 3), "int32"),
                           ((2, 1, 4), (2, 3, 4), "int8"), ((1, 2, 1, 1), (3, 2, 2, 2), "int8")]:
        cases.append(OpCase("BROADCAST_TO", [q(shape, dt), i32(out)], [q(out, dt)]))
    return cases


def gather_cases():
    cases = []
    for shape, axis, idx, dt in [((5, 3), 0, [4, 0, 2, 2], "int8"), ((2, 6, 3), 1, [[5, 1], [0, 0]], "int8"),
                                 ((3, 4), -1, [3], "int32"), ((2, 3, 2, 4), 3, [1, 3, 0], "int8")]:
        a = axis % len(shape)
        out = shape[:a] + np.shape(idx) + shape[a + 1:]
        cases.append(OpCase("GATHER", [q(shape, dt), i32(idx)], [q(out, dt)],
                            options=("GatherOptions", {"axis": axis})))
    # run-time indices: an int8 embedding table in flash, and an activation indexed by an activation
    table = np.arange(-60, 60, dtype=np.int8).reshape(10, 12)
    cases.append(OpCase("GATHER", [Spec((10, 12), "int8", scale=0.1, zero_point=0, data=table), Spec((1, 5), "int32")],
                        [Spec((1, 5, 12), "int8", scale=0.1, zero_point=0)], options=("GatherOptions", {"axis": 0}),
                        index_bounds={1: 10}))
    cases.append(OpCase("GATHER", [q((2, 7, 3)), Spec((4,), "int32")], [q((2, 4, 3))],
                        options=("GatherOptions", {"axis": 1}), index_bounds={1: 7}))
    return cases


BINARY_SHAPES = [((2, 3, 4), (2, 3, 4)), ((1, 4, 4, 3), (3,)), ((2, 1, 5), (1, 4, 1)), ((6,), (1,))]


def compare_cases():
    cases = []
    for (s1, s2), kind in itertools.product(BINARY_SHAPES, ["MAXIMUM", "MINIMUM"]):
        out = np.broadcast_shapes(s1, s2)
        cases.append(OpCase(kind, [q(s1), q(s2)], [q(out)]))
    quants = [((0.05, 3), (0.05, 3)), ((0.02, -10), (0.07, 40)), ((0.5, 0), (0.003, -128)), ((0.1, 5), (0.1, 6))]
    kinds = ["EQUAL", "NOT_EQUAL", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL"]
    for k, kind in enumerate(kinds):
        for j, ((s1, s2), (qa, qb)) in enumerate(zip(BINARY_SHAPES, quants)):
            out = np.broadcast_shapes(s1, s2)
            cases.append(OpCase(kind, [q(s1, "int8", *qa), q(s2, "int8", *qb)], [Spec(out, "bool")]))
    for sc, sx, sy in [((2, 3), (2, 3), (2, 3)), ((1, 3), (2, 3), (2, 1)), ((4, 1, 2), (1, 3, 1), (2,)),
                       ((1,), (2, 2, 3), (2, 2, 3))]:
        out = np.broadcast_shapes(sc, sx, sy)
        cases.append(OpCase("SELECT_V2", [Spec(sc, "bool"), q(sx), q(sy)], [q(out)]))
    cases.append(OpCase("SELECT", [Spec((2, 5), "bool"), q((2, 5)), q((2, 5))], [q((2, 5))]))
    return cases


REDUCE_GEOMS = [((1, 4, 4, 3), [1, 2], True), ((2, 3, 5), [-1], False), ((3, 4), [0, 1], True),
                ((2, 3, 4, 2), [0, 2], False), ((1, 6, 2, 5), [3], True)]


def reduced_shape(shape, axes, keep):
    red = {x % len(shape) for x in axes}
    if keep:
        return tuple(1 if a in red else d for a, d in enumerate(shape))
    return tuple(d for a, d in enumerate(shape) if a not in red)


def reduce_cases():
    cases = []
    for shape, axes, keep in REDUCE_GEOMS:
        out = reduced_shape(shape, axes, keep)
        for kind in ["REDUCE_MAX", "REDUCE_MIN"]:
            cases.append(OpCase(kind, [q(shape), i32(axes)], [q(out)], options=("ReducerOptions", {"keepDims": keep})))
    for shape, axis, otype in [((2, 7), 1, 2), ((3, 4, 5), 0, 4), ((1, 3, 3, 4), -1, 2), ((4, 2, 3), 1, 4)]:
        a = axis % len(shape)
        out = shape[:a] + shape[a + 1:]
        odt = "int32" if otype == 2 else "int64"
        cases.append(OpCase("ARG_MAX", [q(shape), i32([axis])], [Spec(out, odt)],
                            options=("ArgMaxOptions", {"outputType": otype})))
        cases.append(OpCase("ARG_MIN", [q(shape), i32([axis])], [Spec(out, odt)],
                            options=("ArgMinOptions", {"outputType": otype})))
    return cases


def spatial_cases():
    cases = []
    for shape, pads, mode, dt in [((5,), [[2, 3]], 0, "int8"), ((3, 4), [[1, 2], [3, 0]], 1, "int8"),
                                  ((1, 3, 3, 2), [[0, 0], [2, 2], [1, 2], [0, 0]], 0, "int8"),
                                  ((2, 2, 3), [[1, 1], [2, 0], [0, 3]], 1, "int32"),
                                  ((1, 4, 4, 1), [[0, 0], [1, 1], [1, 1], [0, 0]], 1, "int8")]:
        out = tuple(d + a + b for d, (a, b) in zip(shape, pads))
        cases.append(OpCase("MIRROR_PAD", [q(shape, dt), i32(pads)], [q(out, dt)],
                            options=("MirrorPadOptions", {"mode": mode})))
    for shape, blk, pads in [((1, 4, 4, 3), [2, 2], [[0, 0], [0, 0]]), ((2, 3, 5, 2), [2, 3], [[1, 0], [0, 1]]),
                             ((1, 5, 5, 1), [3, 2], [[2, 2], [1, 2]])]:
        n, h, w, c = shape
        ph, pw = h + sum(pads[0]), w + sum(pads[1])
        cases.append(OpCase("SPACE_TO_BATCH_ND", [q(shape, "int8", 0.05, -7), i32(blk), i32(pads)],
                            [q((n * blk[0] * blk[1], ph // blk[0], pw // blk[1], c), "int8", 0.05, -7)]))
    for shape, blk, crops in [((4, 2, 2, 3), [2, 2], [[0, 0], [0, 0]]), ((12, 2, 3, 2), [2, 3], [[1, 0], [0, 2]]),
                              ((6, 3, 3, 1), [3, 2], [[2, 1], [1, 1]])]:
        n, h, w, c = shape
        out = (n // (blk[0] * blk[1]), h * blk[0] - sum(crops[0]), w * blk[1] - sum(crops[1]), c)
        cases.append(OpCase("BATCH_TO_SPACE_ND", [q(shape), i32(blk), i32(crops)], [q(out)]))
    return cases


def add_n_cases():
    cases = []
    for shape, n, qi, qo in [((2, 3), 2, (0.05, 3), (0.1, -5)), ((1, 4, 4, 2), 3, (0.02, -100), (0.05, 20)),
                             ((7,), 4, (0.1, 0), (0.3, 0)), ((3, 5), 4, (0.5, 60), (0.01, -128))]:
        cases.append(OpCase("ADD_N", [q(shape, "int8", *qi)] * n, [q(shape, "int8", *qo)]))
    return cases


def sum_cases():
    cases = []
    for (shape, axes, keep), out_q in zip(REDUCE_GEOMS, [(0.3, -5), (0.05, 3), (0.9, 100), (0.02, 0), (0.6, -128)]):
        cases.append(OpCase("SUM", [q(shape), i32(axes)], [q(reduced_shape(shape, axes, keep), "int8", *out_q)],
                            options=("ReducerOptions", {"keepDims": keep})))
    return cases


def other_kernel_cases():
    """A few cases of the kernels whose sweeps build without AddressSanitizer (transpose conv,
    resize, tile, split/pack, PReLU, L2 norm), so this sanitized build runs every new kernel."""
    from test_ops_movement import bilinear_cases, resize_cases, split_cases, tile_cases
    from test_ops_transpose_conv import tconv_case
    rng = np.random.default_rng(5)
    alpha = np.array([3, -100, 50], dtype=np.int8)
    return (resize_cases()[:4] + tile_cases()[:3] + split_cases()[::4] + bilinear_cases()[::2]
            + [tconv_case(rng, (1, 3, 4, 3), (3, 3), 4, (2, 2), "SAME", True, True),
               tconv_case(rng, (1, 5, 5, 2), (2, 4), 1, (2, 1), "VALID", False, False),
               OpCase("PRELU", [q((1, 2, 3, 3)), Spec((3,), "int8", scale=0.01, zero_point=0, data=alpha)],
                      [q((1, 2, 3, 3))]),
               OpCase("L2_NORMALIZATION", [q((3, 9))], [Spec((3, 9), "int8", scale=1 / 128, zero_point=0)])])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_data_ops_sweep():
    """DEPTH_TO_SPACE 4 and SPACE_TO_DEPTH 4 (blocks 1-4, batch 2), REVERSE_V2 5 (int8/int32), GATHER 6 (constant and run-time indices, constant and activation params),
    MAXIMUM/MINIMUM 8 (broadcasting), 6 comparisons x 4 shape/quantization pairs = 24, SELECT_V2 4, SELECT 1,
    REDUCE_MAX/REDUCE_MIN over 5 axis sets (keep_dims both ways), ARG_MAX/ARG_MIN
    4 each (int32 and int64 indices), MIRROR_PAD 5 (REFLECT/SYMMETRIC, 1-D to 4-D, int32),
    SPACE_TO_BATCH_ND 3 and BATCH_TO_SPACE_ND 3 (paddings / crops, non-square blocks, batch 2);
    and a few cases of every other new kernel: this is the sweep built with AddressSanitizer."""
    cases = (space_cases() + reverse_cases() + gather_cases() + compare_cases() + reduce_cases()
             + spatial_cases() + other_kernel_cases())
    check_bit_exact(multi_op_model(cases), records=case_records(cases, 3))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tflm_oracle_ops():
    """Ops checked against tflite_micro's interpreter instead of TFLite's reference:
    BROADCAST_TO, 5 cases (int8/int32, rank growth): TensorFlow 2.21's BUILTIN_REF resolver has no
    BROADCAST_TO. SUM (int8), 5 axis sets requantized: TFLite 2.21's reference SUM hands int8 data to
    reference_ops::QuantizedMeanOrSum as uint8 (negative inputs read as x + 256, the output clamped
    to [0, 255] and stored as int8), so tinyml matches TFLM's integer SUM (double rounding).
    ADD_N (int8), 2-4 inputs, 4 quantizations: TFLite's ADD_N is float32/int32 only."""
    from opmodels import run_generated
    from opmodels import tflm_oracle as _tflm
    cases = broadcast_cases() + sum_cases() + add_n_cases()
    model = multi_op_model(cases)
    records = case_records(cases, 2)
    got = run_generated(model, records, sanitize=False)
    oracle = _tflm(model)
    for r, rec in enumerate(records):
        for k, (g, w) in enumerate(zip(got[r], oracle.run(rec))):
            assert np.asarray(g).tobytes() == np.asarray(w).reshape(np.shape(g)).tobytes(), f"record {r} output {k}"
