"""The search's instruction estimate against QEMU instruction counts of built firmware."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VIT_DIGITS = os.path.join(ROOT, "tinyvit", "pretrained", "vit_digits")


def _vit_digits_config():
    from tinyml.tinyvit.config import ViTConfig
    with open(VIT_DIGITS + ".json") as f:
        return ViTConfig(**json.load(f))


def test_fast_path_features_equal_the_exported_models():
    """MACs, step-output elements and softmax elements of the fast path (vit_ir + cached
    lowering, depth-family copy) equal those of the exported .tflite lowered for real."""
    from tinyml.memory_planner.search.cost import evaluate
    from tinyml.memory_planner.search.instructions import instruction_features
    cost = evaluate(_vit_digits_config())
    assert (cost.macs, cost.step_elements, cost.softmax_elements) == \
        instruction_features(VIT_DIGITS + ".tflite")


def test_constants_are_the_fit_of_the_recorded_measurements():
    """The shipped coefficients come from CALIBRATION_SAMPLES (QEMU counts) and fit each
    within the stated FIT_MAX_ERROR (8% with issue 15 round 5's kernels, 13% with round 4's
    shape-dependent attention paths; 3% before)."""
    from tinyml.memory_planner.search import instructions as S
    samples = [s[1:] for s in S.CALIBRATION_SAMPLES]
    got = S.calibrate_instructions(samples)
    want = (S.INSTR_PER_MAC, S.INSTR_PER_ELEMENT, S.INSTR_PER_SOFTMAX)
    assert all(abs(g - w) / w < 0.002 for g, w in zip(got, want)), got
    for name, macs, el, sm, measured in S.CALIBRATION_SAMPLES:
        est = S.INSTR_PER_MAC * macs + S.INSTR_PER_ELEMENT * el + S.INSTR_PER_SOFTMAX * sm
        assert abs(est / measured - 1) < S.FIT_MAX_ERROR, name


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_estimate_within_10_percent_of_qemu(tmp_path):
    """Build the shipped vit_digits for stm32f746g-disco, count instructions on QEMU
    (-icount), compare with the estimate the search ranks latency by."""
    from tinyml.memory_planner.search.candidates import Candidate
    from tinyml.memory_planner.search.cost import evaluate
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    out = tmp_path / "fw"
    b = subprocess.run([sys.executable, "-m", "tinyml.cli", "build", VIT_DIGITS + ".tflite",
                        "--board", "stm32f746g-disco", "-o", str(out)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert b.returncode == 0, b.stderr[-2000:]
    e = subprocess.run([sys.executable, "-m", "tinyml.cli", "emulate", str(out), "--json"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert e.returncode == 0, e.stderr[-2000:]
    measured = json.loads(e.stdout)["instructions_per_inference"]
    cfg = _vit_digits_config()
    est = Candidate(cfg, evaluate(cfg)).instructions
    assert abs(est / measured - 1) < 0.10, (est, measured)
