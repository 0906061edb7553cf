"""Model fuzzing: the runner's outcome classes, the mutator, and a fixed-seed smoke campaign.

The smoke run mutates shared models and a test-made model with seed 0 and
runs every mutant through inspect and plan, the first accepted ones through
generate and `verify --sanitize` (TFLite byte for byte, ASan/UBSan), each in a
forked child with a timeout; any traceback, signal, hang, sanitizer report or
accepted-but-not-bit-exact mutant fails it. The long run is documented in
README.md (scripts/fuzz_models.py in chunks: 2,000 mutants, 300 verify).
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tinyml import paths
from tinyml.codegen.importer import import_bytes
from tinyml.errors import ModelError
from tinyml.testing.fuzz_models import (ERROR, FAILING, GENERATED_FAULT, HANG, NOT_BIT_EXACT, OK, SIGNAL,
                                        TRACEBACK, Mutator, classify, find_sites, run_forked)

from opmodels import Spec, single_op_model

MODELS = paths.shared_models()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AD01 = os.path.join(MODELS, "mlperf-tiny", "ad01_int8.tflite")


def _raise():
    raise KeyError("float128")


def _print_error():
    import sys
    print("error: something named -- do this", file=sys.stderr)
    return 2


@pytest.mark.parametrize("target,want", [
    (lambda: 0, OK),
    (_print_error, ERROR),
    (_raise, TRACEBACK),
    (lambda: os.abort(), SIGNAL),
    (lambda: os.kill(os.getpid(), 11), SIGNAL),
    (lambda: time.sleep(30), HANG),
    (lambda: 2, TRACEBACK),                  # a non-zero exit without the one 'error:' line is not clean
])
def test_runner_classifies_each_outcome(target, want):
    code, sig, out, err, secs = run_forked(target, timeout=2.0)
    outcome, detail = classify(code, sig, out, err)
    assert outcome == want, (code, sig, err)
    assert secs < 10
    if want == TRACEBACK and target is _raise:
        assert "KeyError" in detail


def test_classify_verify_results():
    assert classify(1, None, '{"bit_exact": false, "mismatching_bytes": 3}', "",
                    bit_exact=lambda o: False)[0] == NOT_BIT_EXACT
    line = "error: generated code crashed or failed (exit 1): runtime error: signed integer overflow (in x)"
    assert classify(1, None, "", line)[0] == GENERATED_FAULT
    assert classify(3, None, '{"fits": false}', "")[0] == OK                 # plan's 'does not fit' verdict
    assert classify(2, None, '{"ok": false, "error": "error: x"}', "error: x")[0] == ERROR
    assert set(FAILING) == {TRACEBACK, SIGNAL, HANG, NOT_BIT_EXACT, GENERATED_FAULT}


def test_mutator_finds_sites_and_changes_bytes():
    import random
    data = open(AD01, "rb").read()
    sites, op_entries = find_sites(data)
    kinds = {s.what for s in sites}
    assert {"type", "shape", "buffer", "scale", "zero_point", "op_input", "op_output",
            "option_enum", "graph_io", "offset"} <= kinds
    assert len(op_entries) == 10                                            # ad01: 10 FULLY_CONNECTED
    m = Mutator("ad01", data, random.Random(0))
    hows = set()
    for _ in range(60):
        mu = m.mutant()
        assert mu.data != data
        hows.add(mu.how.split()[0])
    assert {"flip", "truncate", "zero", "offset", "swap"} <= hows
    # an op-order swap is a valid flatbuffer that the validator refuses by name
    swap = m._order()
    with pytest.raises(ModelError) as e:
        import_bytes(swap.data, "swap.tflite")
    assert "execution order" in str(e.value)


@pytest.mark.slow
def test_fuzz_smoke_fixed_seed(tmp_path):
    made = tmp_path / "conv_test_made.tflite"
    made.write_bytes(single_op_model(
        "CONV_2D", [Spec((1, 6, 6, 3), scale=0.05, zero_point=-3),
                    Spec((4, 3, 3, 3), scale=[0.01, 0.02, 0.015, 0.03], axis=0,
                         data=np.random.default_rng(0).integers(-127, 128, (4, 3, 3, 3), dtype=np.int8)),
                    Spec((4,), "int32", scale=[0.0005, 0.001, 0.00075, 0.0015],
                         data=np.array([10, -20, 30, -40], np.int32))],
        [Spec((1, 6, 6, 4), scale=0.1, zero_point=5)],
        options=("Conv2DOptions", {"padding": 0, "strideH": 1, "strideW": 1, "fusedActivationFunction": 1})))
    models = [str(made)] + [os.path.join(MODELS, r) for r in (
        "mlperf-tiny/ad01_int8.tflite", "mlperf-tiny/kws_ref_model.tflite",
        "mlperf-tiny/pretrainedResnet_quant.tflite", "tflm/person_detect.tflite")]
    # in its own process: this one has TensorFlow's threads (it built the conv), the campaign forks
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "fuzz_models.py"), *models,
                        "--mutants", "200", "--generate", "24", "--verify", "4", "--seed", "0",
                        "--timeout", "60", "--verify-timeout", "240", "--json"],
                       capture_output=True, text=True, timeout=900)
    d = json.loads(r.stdout.strip().splitlines()[-1])
    counts = d["counts"]
    print(json.dumps(counts))
    assert d["failures"] == 0 and r.returncode == 0, json.dumps(d["examples"], indent=1)
    assert sum(counts["inspect"].values()) == 200 and sum(counts["plan"].values()) == 200
    assert sum(counts["generate"].values()) == 24
    assert sum(counts["verify --sanitize"].values()) == 4
    # the campaign exercised both sides: refused mutants and accepted ones
    assert counts["inspect"][ERROR] > 20 and counts["inspect"][OK] > 20
