"""EXP, LOG, ABS (TFLite reference) and ELU, ZEROS_LIKE, ABS (tflite_micro): every int8
input byte (-128..127) through each op, under several input/output quantizations, in one model."""
import itertools

import numpy as np
import pytest

from opgraph import OpCase, multi_op_model
from opmodels import Spec, check_bit_exact, run_generated

ALL_BYTES = np.arange(-128, 128, dtype=np.int8)
QUANTS = [((0.05, 3), (0.1, -20)), ((0.02, -128), (0.5, 10)), ((0.1, 0), (0.1, 0)), ((0.03, 60), (0.004, -100))]


def case_input(kind, zp):
    """Every input byte; LOG only where TFLite defines it (real input > 0)."""
    if kind == "LOG":
        return np.arange(zp + 1, 128, dtype=np.int8)
    return ALL_BYTES


def unary_cases(kinds):
    cases, inputs = [], []
    for kind, (qi, qo) in itertools.product(kinds, QUANTS):
        x = case_input(kind, qi[1])
        cases.append(OpCase(kind, [Spec(x.shape, "int8", scale=qi[0], zero_point=qi[1])],
                            [Spec(x.shape, "int8", scale=qo[0], zero_point=qo[1])]))
        inputs.append(x)
    return cases, inputs


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_unary_tflite_reference():
    """EXP, LOG, ABS x 4 quantizations, every defined input byte (12 tables)."""
    cases, inputs = unary_cases(["EXP", "LOG", "ABS"])
    check_bit_exact(multi_op_model(cases), records=[inputs], sanitize=False)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_unary_tflm():
    """ELU (no int8 ELU in TensorFlow 2.21's BUILTIN_REF resolver), ZEROS_LIKE (TFLite's is not
    int8) and ABS again, x 4 quantizations, all 256 input bytes, against tflite_micro with
    --rounding tflm."""
    from opmodels import tflm_oracle as _tflm
    cases, inputs = unary_cases(["ELU", "ZEROS_LIKE", "ABS"])
    model = multi_op_model(cases)
    records = [inputs]
    got = run_generated(model, records, sanitize=False, rounding="tflm")
    want = _tflm(model).run(records[0])
    for k, (g, w) in enumerate(zip(got[0], want)):
        assert np.asarray(g).tobytes() == np.asarray(w).tobytes(), f"output {k} ({cases[k].op})"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_prelu():
    """PRELU: constant alpha per channel ([C], [1,1,C]) and per element, and an activation
    alpha, 5 quantization sets, against TFLite's reference."""
    from opmodels import check_bit_exact as check
    rng = np.random.default_rng(3)
    cases = []
    for shape, ashape, qx, qa, qy in [((1, 4, 4, 3), (3,), (0.05, 3), (0.01, 0), (0.04, -5)),
                                      ((1, 3, 5, 8), (1, 1, 8), (0.1, -20), (0.004, 10), (0.08, 7)),
                                      ((2, 6), (2, 6), (0.02, 100), (0.02, -30), (0.03, 0)),
                                      ((1, 2, 2, 4), (1, 1, 4), (0.5, 0), (0.1, -128), (0.3, -100))]:
        alpha = rng.integers(-128, 128, size=ashape).astype(np.int8)
        cases.append(OpCase("PRELU", [Spec(shape, "int8", scale=qx[0], zero_point=qx[1]),
                                      Spec(ashape, "int8", scale=qa[0], zero_point=qa[1], data=alpha)],
                            [Spec(shape, "int8", scale=qy[0], zero_point=qy[1])]))
    cases.append(OpCase("PRELU", [Spec((3, 4), "int8", scale=0.05, zero_point=0),
                                  Spec((4,), "int8", scale=0.02, zero_point=5)],
                        [Spec((3, 4), "int8", scale=0.05, zero_point=2)]))
    check(multi_op_model(cases), count=3, sanitize=False)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_l2_normalization_both_runtimes():
    """L2_NORMALIZATION over the last axis: 5 shapes/zero points (depth 1 to 64, rows of zeros
    included via a constant-ish input), against TFLite's reference and tflite_micro."""
    from opgraph import case_records
    from opmodels import run_reference
    from opmodels import tflm_oracle as _tflm
    cases = [OpCase("L2_NORMALIZATION", [Spec(shape, "int8", scale=0.05, zero_point=zp)],
                    [Spec(shape, "int8", scale=1 / 128, zero_point=0)])
             for shape, zp in [((1, 16), 0), ((3, 7), -5), ((2, 4, 64), 12), ((1, 2, 2, 3), -128), ((5, 1), 3)]]
    model = multi_op_model(cases)
    records = case_records(cases, 3)
    records.append([np.full(tuple(c.inputs[0].shape), c.inputs[0].zero_point, np.int8) for c in cases])  # norm 0
    tflm = _tflm(model)
    for rounding, oracle in (("tflite", lambda rec: run_reference(model, rec)), ("tflm", tflm.run)):
        got = run_generated(model, records, sanitize=False, rounding=rounding)
        for r, rec in enumerate(records):
            for k, (g, w) in enumerate(zip(got[r], oracle(rec))):
                assert np.asarray(g).tobytes() == np.asarray(w).reshape(np.shape(g)).tobytes(), \
                    f"{rounding}: record {r} output {k}"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_div_both_runtimes():
    """DIV (int8): 5 shape/broadcast/quantization sets and a fused RELU, nonzero divisors
    (a zero divisor is undefined in TFLite), generated with --rounding tflite against TFLite's
    reference and with --rounding tflm against tflite_micro, each byte for byte. The runtimes
    differ by 1 LSB on exact .5 ties (the output multiplier from float32 vs double scale
    arithmetic); the count of such bytes is printed so a change on either side shows."""
    from opgraph import case_records
    from opmodels import run_reference
    from opmodels import tflm_oracle as _tflm
    sets = [((2, 3, 4), (2, 3, 4), (0.05, 3), (0.02, -10), (0.1, 0), 0),
            ((1, 4, 4, 3), (3,), (0.1, -20), (0.05, 40), (0.2, 5), 0),
            ((6,), (1,), (0.5, 0), (0.01, 0), (1.5, -100), 0),
            ((3, 5), (3, 5), (0.02, 127), (0.3, -128), (0.004, 7), 0),
            ((2, 1, 5), (1, 4, 1), (0.03, 0), (0.03, 0), (0.05, -3), 1)]
    cases = [OpCase("DIV", [Spec(s1, "int8", scale=q1[0], zero_point=q1[1]),
                            Spec(s2, "int8", scale=q2[0], zero_point=q2[1])],
                    [Spec(np.broadcast_shapes(s1, s2), "int8", scale=qo[0], zero_point=qo[1])],
                    options=("DivOptions", {"fusedActivationFunction": act}))
             for s1, s2, q1, q2, qo, act in sets]
    model = multi_op_model(cases)
    records = case_records(cases, 3)
    for rec in records:
        for k, (_, _, _, q2, _, _) in enumerate(sets):
            d = rec[2 * k + 1]
            d[d == q2[1]] = np.int8(q2[1] + 1 if q2[1] < 127 else q2[1] - 1)
    got = run_generated(model, records, sanitize=False)
    got_tflm = run_generated(model, records, sanitize=False, rounding="tflm")
    tflm = _tflm(model)
    off_by_one = 0
    for r, rec in enumerate(records):
        for k, (g, gm, w, m) in enumerate(zip(got[r], got_tflm[r], run_reference(model, rec), tflm.run(rec))):
            g, gm, w, m = (np.asarray(a).astype(int).ravel() for a in (g, gm, w, m))
            assert g.tobytes() == w.tobytes(), f"tflite: record {r} output {k}: {g[:8]} vs {w[:8]}"
            assert gm.tobytes() == m.tobytes(), f"tflm: record {r} output {k}: {gm[:8]} vs {m[:8]}"
            off_by_one += int((w != m).sum())
    assert off_by_one > 0           # the sets include ties: the two settings are really exercised
    print(f"DIV: {off_by_one} of {sum(np.asarray(a).size for a in got[0]) * len(records)} bytes 1 LSB apart between the runtimes")
