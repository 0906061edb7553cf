"""16x8 quantization, the ops added after tests/test_ops_16x8.py's set: data movement on
2-byte elements, BATCH_MATMUL, RSQRT, GELU and SQUARED_DIFFERENCE. Each sweep is one
multi-op model (one host build), compared byte for byte with every oracle that runs the op
in int16: TFLite's reference interpreter (BUILTIN_REF) and tflite_micro. Where only one runs
it, or they disagree, the test says which one the kernel follows and why."""
from __future__ import annotations

import numpy as np
import pytest

from opgraph import OpCase, case_records, i32, multi_op_model
from opmodels import Spec, run_generated, run_reference, tflm_oracle


def a16(shape, scale=0.001) -> Spec:
    return Spec(shape, "int16", scale=scale, zero_point=0)


def _same(got, want, where) -> None:
    g = np.asarray(got)
    w = np.asarray(want).reshape(g.shape)
    if g.tobytes() != w.tobytes():
        bad = np.argwhere(g != w)
        first = tuple(int(i) for i in bad[0])
        raise AssertionError(f"{where}: {len(bad)} of {g.size} values differ; first at {first}: "
                             f"got {g[first]} want {w[first]}")


def _check(cases, records, ref: bool = True, tflm: bool = True, rounding: str = "tflite") -> None:
    """Generated C (one build) against the reference interpreter and/or tflite_micro."""
    model = multi_op_model(cases)
    got = run_generated(model, records, rounding=rounding)
    micro = tflm_oracle(model) if tflm else None
    for r, rec in enumerate(records):
        if ref:
            for k, (g, w) in enumerate(zip(got[r], run_reference(model, rec))):
                _same(g, w, f"record {r} output {k} vs TFLite reference")
        if micro is not None:
            for k, (g, w) in enumerate(zip(got[r], micro.run(rec))):
                _same(g, w, f"record {r} output {k} vs tflite_micro")


def _movement_cases() -> list[OpCase]:
    return [
        OpCase("TRANSPOSE", [a16((1, 16, 2, 8)), i32([0, 2, 1, 3])], [a16((1, 2, 16, 8))]),
        OpCase("TRANSPOSE", [a16((1, 16, 2, 8)), i32([0, 2, 3, 1])], [a16((1, 2, 8, 16))]),
        OpCase("TRANSPOSE", [a16((3, 5, 7)), i32([2, 0, 1])], [a16((7, 3, 5))]),
        OpCase("STRIDED_SLICE", [a16((4, 9, 6)), i32([1, 0, 1]), i32([4, 9, 6]), i32([2, 3, 2])],
               [a16((2, 3, 3))], options=("StridedSliceOptions", {})),
        OpCase("STRIDED_SLICE", [a16((1, 5, 8)), i32([0, 0, 0]), i32([1, 1, 8]), i32([1, 1, 1])],
               [a16((1, 8))], options=("StridedSliceOptions", {"shrinkAxisMask": 2})),   # CLS token
        OpCase("SLICE", [a16((3, 6, 4)), i32([1, 2, 0]), i32([2, -1, 3])], [a16((2, 4, 3))]),
        OpCase("SPLIT", [i32(2), a16((2, 3, 12))], [a16((2, 3, 4))] * 3,
               options=("SplitOptions", {"numSplits": 3})),
        OpCase("SPLIT_V", [a16((5, 7)), i32([2, -1, 1]), i32(1)], [a16((5, 2)), a16((5, 4)), a16((5, 1))],
               options=("SplitVOptions", {"numSplits": 3})),
        OpCase("PACK", [a16((3, 5)), a16((3, 5))], [a16((3, 2, 5))],
               options=("PackOptions", {"valuesCount": 2, "axis": 1})),
        OpCase("UNPACK", [a16((4, 3, 2))], [a16((4, 2))] * 3, options=("UnpackOptions", {"num": 3, "axis": 1})),
        OpCase("REVERSE_V2", [a16((3, 4, 5)), i32([1, 2])], [a16((3, 4, 5))]),
        OpCase("DYNAMIC_UPDATE_SLICE", [a16((5, 6)), a16((2, 3)), i32([4, 1])], [a16((5, 6))]),
    ]


def test_movement_16x8_both_oracles():
    """TRANSPOSE (the attention head split), (STRIDED_)SLICE, SPLIT(_V), PACK, UNPACK, REVERSE_V2,
    DYNAMIC_UPDATE_SLICE: 2-byte elements copied; TFLite's reference and tflite_micro agree."""
    cases = _movement_cases()
    _check(cases, case_records(cases, 2, seed=1))


def test_gather_broadcast_to_16x8():
    """GATHER: TFLite's reference only (tflite_micro's GATHER refuses int16: 'Type INT16 is not
    supported by gather'); BROADCAST_TO: tflite_micro, and the reference at version 2."""
    g = [OpCase("GATHER", [a16((6, 5)), i32([4, 0, 4])], [a16((3, 5))], options=("GatherOptions", {"axis": 0})),
         OpCase("GATHER", [a16((2, 7, 3)), i32([[6, 1], [2, 2]])], [a16((2, 2, 2, 3))],
                options=("GatherOptions", {"axis": 1}))]
    _check(g, case_records(g, 2, seed=2), tflm=False)
    b = [OpCase("BROADCAST_TO", [a16((1, 3)), i32([4, 3])], [a16((4, 3))], version=2),
         OpCase("BROADCAST_TO", [a16((2, 1, 5)), i32([3, 2, 4, 5])], [a16((3, 2, 4, 5))], version=2)]
    _check(b, case_records(b, 2, seed=3))
