"""The MLPerf Tiny anomaly-detection autoencoder (FULLY_CONNECTED x10), end to end."""
import os

import pytest

from tinyml.codegen.verify import verify
from tinyml import paths

AD01 = os.path.join(paths.shared_models(), "mlperf-tiny", "ad01_int8.tflite")


@pytest.mark.timeout(600)
def test_ad01_bit_exact_100_inputs_sanitized():
    res = verify(AD01, count=100, seed=7, sanitize=True)
    assert res.inputs_compared == 100 and res.output_bytes_compared == 100 * 640
    assert res.mismatching_bytes == 0, res.first_mismatch


@pytest.mark.timeout(600)
def test_ad01_bit_exact_with_greedy_policy():
    res = verify(AD01, count=10, seed=3, policy="greedy")
    assert res.bit_exact
