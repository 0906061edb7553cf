"""The serial command parser (firmware/app/serial_eembc.c) under libFuzzer with
ASan + UBSan on the host (firmware/fuzz/serial_fuzz.c, tinyml.testing.serial_fuzz).

The smoke run is the CI part of the fuzzing: a fixed seed and a fixed number
of inputs per build variant, so every submission is judged on the same
inputs; the 10-minute run is documented in docs/architecture.md. A planted
overflow shows the harness turns a real bug into a failure with a reproducer.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tinyml.testing import serial_fuzz

pytestmark = pytest.mark.skipif(
    shutil.which("clang") is None,
    reason="clang with libFuzzer not installed (bash scripts/install.sh installs clang, libclang-rt-14-dev)")


@pytest.mark.slow
def test_smoke_fuzz_finds_nothing(tmp_path):
    results = serial_fuzz.fuzz(list(serial_fuzz.VARIANTS), str(tmp_path), runs=150_000, seed=1)
    assert [r.variant for r in results] == ["plain", "stream", "stream-buffer"]
    for r in results:
        assert r.ok, (r.variant, r.returncode, r.findings, r.artifacts)
        assert r.execs >= 150_000
        # the seed corpus alone reaches every command handler; the floor
        # catches a harness that stops feeding bytes (e.g. a broken stub)
        assert r.cov >= 100, (r.variant, r.cov)
    # the streamed builds reach the stripe receiver the plain build has not
    assert results[2].cov > results[0].cov


def test_planted_overflow_is_reported_with_a_reproducer(tmp_path):
    exe = serial_fuzz.build("plain", str(tmp_path), planted_bug=True)
    r = serial_fuzz.run(exe, "plain", str(tmp_path), runs=0, seed=1)
    assert not r.ok
    assert any("global-buffer-overflow" in f for f in r.findings), r.findings
    assert len(r.artifacts) == 1
    # the reproducer replays the overflow; the fixed build survives it
    replay = subprocess.run([exe, r.artifacts[0]], capture_output=True, text=True)
    assert replay.returncode != 0 and "print_results" in replay.stderr
    good = serial_fuzz.build("plain", str(tmp_path))
    assert subprocess.run([good, r.artifacts[0]], capture_output=True).returncode == 0


def test_protocol_invariants_hold_on_the_seed_corpus(tmp_path):
    """Every seed replays cleanly on every build (framing, m-ready, buffer bounds)."""
    for variant in serial_fuzz.VARIANTS:
        exe = serial_fuzz.build(variant, str(tmp_path))
        seeds = sorted(os.listdir(serial_fuzz.CORPUS))
        assert {"name", "profile", "load_infer", "stream", "help", "errors"} <= set(seeds)
        proc = subprocess.run([exe, *(os.path.join(serial_fuzz.CORPUS, s) for s in seeds)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]


def test_missing_clang_is_one_line(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "tinyml.testing.serial_fuzz", "--runs", "1"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "clang not found" in lines[0] and "install.sh" in lines[0], proc.stderr


@pytest.mark.slow
def test_a_large_parent_process_is_not_an_out_of_memory(tmp_path):
    """CI's failure: started from a pytest worker whose peak RSS was 2.3 GB, the
    fuzzer inherited that peak (ru_maxrss survives exec) and libFuzzer's RSS
    watchdog called the empty input an out-of-memory. The parent here peaks at
    2.3 GB, then fuzzes for 3 s (the watchdog ticks every second)."""
    exe = serial_fuzz.build("plain", str(tmp_path))
    script = (
        "import sys\n"
        "from tinyml.testing import serial_fuzz\n"
        "ballast = b'\\x01' * (2300 << 20)\n"
        "del ballast\n"
        f"r = serial_fuzz.run({exe!r}, 'plain', {str(tmp_path)!r}, seconds=3, seed=1)\n"
        "print(r.ok, r.returncode, r.findings[:2])\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("True 0 []"), proc.stdout
