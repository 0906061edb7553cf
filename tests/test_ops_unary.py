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
    from tinyml.codegen.oracle import _tflm
    cases, inputs = unary_cases(["ELU", "ZEROS_LIKE", "ABS"])
    model = multi_op_model(cases)
    records = [inputs]
    got = run_generated(model, records, sanitize=False, rounding="tflm")
    want = _tflm(model).run(records[0])
    for k, (g, w) in enumerate(zip(got[0], want)):
        assert np.asarray(g).tobytes() == np.asarray(w).tobytes(), f"output {k} ({cases[k].op})"
