"""`tinyml emulate DIR --profile`: per-op instruction counts from the
generated code's TINYML_OP_BEGIN/END hooks on QEMU. The per-op figures must
add up to the ordinary (hook-free) build's instructions per inference, name
every step of the generated model.c, and the profile build must still pass
its bit-exact self-test."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tinyml import paths

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed"),
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed"),
]

AD01 = os.path.join(paths.shared_models(), "mlperf-tiny", "ad01_int8.tflite")


def _tinyml(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], capture_output=True, text=True)


@pytest.mark.timeout(600)
def test_profile_ad01_sums_to_inference_and_names_every_step(tmp_path):
    fw = str(tmp_path / "fw")
    b = _tinyml("build", AD01, "--board", "stm32f746g-disco", "-o", fw)
    assert b.returncode == 0, b.stderr
    plain = _tinyml("emulate", fw, "--json")
    assert plain.returncode == 0, plain.stdout + plain.stderr
    total = json.loads(plain.stdout)["instructions_per_inference"]

    p = _tinyml("emulate", fw, "--profile", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    d = json.loads(p.stdout)          # exactly one JSON object on stdout
    assert d["passed"] is True
    ops = d["profile"]["ops"]
    # One entry per non-alias step of the generated model.c, in order.
    with open(os.path.join(fw, "model", "model.c")) as f:
        hooks = re.findall(r'TINYML_OP_BEGIN\((\d+), "(\w+)"\)', f.read())
    assert [(o["op"], o["kind"]) for o in ops] == [(int(i), k) for i, k in hooks]
    assert all(o["instructions"] > 0 for o in ops)
    s = d["profile"]["sum_of_ops_instructions"]
    # SysTick resolution is 40 instructions per op; the hooks add a little.
    assert abs(s - total) <= 0.02 * total + 40 * len(ops), (s, total)
    kinds = d["profile"]["kinds"]
    assert kinds[0]["kind"] == "FULLY_CONNECTED" and kinds[0]["steps"] == 10
    assert os.path.exists(os.path.join(fw, "profile", "mps2", "firmware.elf"))

    # Human-readable form: one row per op and a per-kind summary.
    t = _tinyml("emulate", fw, "--profile")
    assert t.returncode == 0, t.stdout + t.stderr
    assert "FULLY_CONNECTED" in t.stdout and "sum of ops" in t.stdout and "PASSED" in t.stdout


@pytest.mark.timeout(120)
def test_profile_rejects_non_build_dir(tmp_path):
    p = _tinyml("emulate", str(tmp_path), "--profile")
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    assert "build.json" in (p.stderr + p.stdout)
