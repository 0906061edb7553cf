"""--rounding tflite|tflm: an explicit switch; commands with an oracle follow it unless told otherwise."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tinyml import paths
from tinyml.codegen.pipeline import DEFAULT_ROUNDING, ROUNDINGS, CompileOptions, compile
from tinyml.errors import TinymlError

MODELS = paths.shared_models()
AD01 = os.path.join(MODELS, "mlperf-tiny", "ad01_int8.tflite")
PERSON = os.path.join(MODELS, "tflm", "person_detect.tflite")


def _tinyml(*args):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], capture_output=True, text=True, timeout=900)


def test_default_is_tflite_and_values_are_checked(tmp_path):
    from tinyml.codegen.emit import generate
    assert ROUNDINGS == ("tflite", "tflm") and DEFAULT_ROUNDING == "tflite"
    assert CompileOptions().rounding == "tflite"
    for rounding, single in (("tflite", 1), ("tflm", 0)):
        gen = generate(AD01, str(tmp_path / rounding), rounding=rounding)
        text = open(os.path.join(gen.out_dir, "kernels", "include", "tinyml", "config.h")).read()
        assert f"#define TINYML_SINGLE_ROUNDING {single}" in text
    with pytest.raises(TinymlError) as e:
        compile(AD01, CompileOptions(rounding="auto"))
    assert "unknown rounding 'auto'" in str(e.value) and "tflite, tflm" in str(e.value)
    r = _tinyml("generate", AD01, "-o", str(tmp_path / "x"), "--rounding", "auto")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_choose_oracle_follows_the_oracle_unless_told():
    from tinyml.codegen.oracle import choose_oracle
    c = choose_oracle(AD01)
    assert (c.oracle.name, c.rounding, c.notes) == ("tflite-reference", "tflite", [])
    c = choose_oracle(PERSON)                       # TFLite refuses it: TFLM, and its rounding, said
    assert (c.oracle.name, c.rounding) == ("tflite-micro", "tflm")
    assert any("TFLite refuses this model" in n for n in c.notes)
    assert any("--rounding tflm" in n for n in c.notes)
    c = choose_oracle(PERSON, rounding="tflite")    # the user's explicit choice is kept, and noted
    assert (c.oracle.name, c.rounding) == ("tflite-micro", "tflite")
    assert any("differs from the tflite-micro oracle's rounding" in n for n in c.notes)
    c = choose_oracle(AD01, which="tflm")
    assert (c.oracle.name, c.rounding) == ("tflite-micro", "tflm")


def test_verify_person_detect_says_it_uses_tflm():
    r = _tinyml("verify", PERSON, "--inputs", "2", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(r.stdout)
    assert d["oracle"] == "tflite-micro" and d["rounding"] == "tflm" and d["bit_exact"]
    assert "note: TFLite refuses this model" in r.stderr


def test_explicit_rounding_against_the_other_oracle_is_reported():
    """ad01 depends on the rounding (FC): tflite rounding against TFLM mismatches, and verify says why."""
    r = _tinyml("verify", AD01, "--inputs", "3", "--oracle", "tflm", "--rounding", "tflite", "--json")
    assert r.returncode == 1
    d = json.loads(r.stdout)
    assert d["rounding"] == "tflite" and d["oracle"] == "tflite-micro" and d["mismatching_bytes"] > 0
    assert any("differs from the tflite-micro oracle's rounding" in n for n in d["notes"])
    assert "note: --rounding tflite differs" in r.stderr
