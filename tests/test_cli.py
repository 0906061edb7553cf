"""CLI contract: --json gives one object on stdout; bad input gives one line and a non-zero exit."""
import json
import os
import subprocess
import sys

import pytest

from tinyml import paths

AD01 = os.path.join(paths.shared_models(), "mlperf-tiny", "ad01_int8.tflite")


def tinyml(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_inspect_json():
    r = tinyml("inspect", AD01, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["op_counts"] == {"FULLY_CONNECTED": 10} and d["supported"] is True
    assert d["param_bytes"] == sum(t["bytes"] for t in d["tensors"] if t["const"])


def test_verify_json_bit_exact():
    r = tinyml("verify", AD01, "--inputs", "5", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["bit_exact"] and d["inputs_compared"] == 5 and d["mismatching_bytes"] == 0


def test_verify_human_last_line():
    r = tinyml("verify", AD01, "--inputs", "3")
    assert r.returncode == 0
    assert r.stdout.strip().splitlines()[-1].startswith("BIT-EXACT: 3 inputs compared")


def test_plan_json_contract():
    r = tinyml("plan", AD01, "--board", "stm32f746g-disco", "--compare-tflm", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for k in ("arena_bytes", "peak_sram_bytes", "flash_bytes", "fits", "tflm_arena_bytes", "lower_bound_bytes"):
        assert k in d
    assert d["fits"] is True and d["tflm_arena_bytes"] == 3984 and d["arena_bytes"] <= d["tflm_arena_bytes"]


def test_plan_plot(tmp_path):
    png = tmp_path / "plan.png"
    r = tinyml("plan", AD01, "--plot", str(png))
    assert r.returncode == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generate_writes_library(tmp_path):
    r = tinyml("generate", AD01, "-o", str(tmp_path / "gen"))
    assert r.returncode == 0, r.stderr
    for f in ("model.h", "model.c", "weights.c", "weights.h", "plan.json", "CMakeLists.txt"):
        assert (tmp_path / "gen" / f).exists()
    plan = json.loads((tmp_path / "gen" / "plan.json").read_text())
    header = (tmp_path / "gen" / "model.h").read_text()
    assert f"#define TINYML_ARENA_BYTES {plan['arena_bytes']}" in header


@pytest.mark.parametrize("case", ["missing", "empty", "garbage", "truncated"])
def test_bad_models_one_line_nonzero(tmp_path, case):
    p = tmp_path / "bad.tflite"
    if case == "empty":
        p.write_bytes(b"")
    elif case == "garbage":
        p.write_bytes(os.urandom(3000))
    elif case == "truncated":
        p.write_bytes(open(AD01, "rb").read()[:5000])
    for cmd in (["inspect"], ["verify"], ["plan"], ["generate", "-o", str(tmp_path / "o")]):
        r = tinyml(cmd[0], str(p), *cmd[1:])
        assert r.returncode != 0
        lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
        assert "Traceback" not in r.stderr


def test_json_error_is_one_object(tmp_path):
    r = tinyml("inspect", str(tmp_path / "nope.tflite"), "--json")
    assert r.returncode != 0
    d = json.loads(r.stdout)
    assert d["ok"] is False and "not found" in d["error"]


def test_verify_against_tflm_uses_double_rounding():
    """TFLM's wheel rounds differently from TFLite's; the generated C follows the chosen oracle."""
    r = tinyml("verify", AD01, "--inputs", "5", "--oracle", "tflm", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["oracle"] == "tflite-micro" and d["bit_exact"]


def test_rounding_flavours_differ_on_ad01(tmp_path):
    """Guard that the two oracles really disagree, so the test above can fail."""
    import numpy as np
    from tinyml.codegen.oracle import make_oracle
    a, b = make_oracle(AD01, "tflite"), make_oracle(AD01, "tflm")
    x = np.random.default_rng(0).integers(-128, 128, size=(1, 640)).astype(np.int8)
    assert (a.run([x])[0] != b.run([x])[0]).any()
