"""generate, plan, inspect and serial builds never import TensorFlow.

Each command runs in a child process whose PYTHONPATH starts with a stub
`tensorflow` package: importing it records a marker file and raises
ImportError (as on a machine without TensorFlow). The commands must succeed,
never touch the stub, and write the same files as a normal run. A self-test
build needs expected outputs: without TensorFlow it uses tflite_micro when
asked for --rounding tflm (that oracle's own rounding, no TF needed), and
otherwise stops with one line naming the cause and the fix.
"""
from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys

import pytest

from tinyml import paths

MODELS = paths.shared_models()
AD01 = os.path.join(MODELS, "mlperf-tiny", "ad01_int8.tflite")
KWS = os.path.join(MODELS, "mlperf-tiny", "kws_ref_model.tflite")
VIT = os.path.join(paths.package_dir("tinyvit"), "pretrained", "vit_digits.tflite")
BOARD = "stm32f4-discovery"

STUB = '''import os
marker = os.environ.get("TINYML_TF_MARKER")
if marker:
    with open(marker, "a") as f:
        f.write("tensorflow imported\\n")
raise ImportError("No module named 'tensorflow' (test stub)")
'''


@pytest.fixture(scope="module")
def no_tf(tmp_path_factory):
    """(env for a TensorFlow-less child, marker path)."""
    root = tmp_path_factory.mktemp("notf")
    (root / "tensorflow").mkdir()
    (root / "tensorflow" / "__init__.py").write_text(STUB)
    marker = root / "imported.txt"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in [env.get("PYTHONPATH")] if p])
    env["TINYML_TF_MARKER"] = str(marker)
    return env, marker


def _tinyml(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=900)


def _same_tree(a: str, b: str) -> list[str]:
    """Relative paths that differ (or exist on one side only) between two directory trees."""
    diff = []
    cmp = filecmp.dircmp(a, b)

    def walk(c, rel):
        diff.extend(os.path.join(rel, f) for f in c.left_only + c.right_only + c.funny_files)
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        diff.extend(os.path.join(rel, f) for f in mismatch + errors)
        for name, sub in c.subdirs.items():
            walk(sub, os.path.join(rel, name))
    walk(cmp, "")
    return diff


def test_the_stub_really_blocks_tensorflow(no_tf):
    env, marker = no_tf
    r = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "ImportError" in r.stderr and marker.exists()
    marker.unlink()


@pytest.mark.parametrize("model,extra", [(AD01, []), (AD01, ["--rounding", "tflm"]), (KWS, []),
                                         (VIT, ["--stream-input"])],
                         ids=["ad01", "ad01-tflm", "kws", "vit-stream"])
def test_generate_without_tensorflow_writes_the_same_files(no_tf, tmp_path, model, extra):
    env, marker = no_tf
    a, b = str(tmp_path / "without"), str(tmp_path / "with")
    r = _tinyml("generate", model, "-o", a, *extra, env=env)
    assert r.returncode == 0, r.stderr
    assert not marker.exists(), "generate imported tensorflow"
    r2 = _tinyml("generate", model, "-o", b, *extra)
    assert r2.returncode == 0, r2.stderr
    assert _same_tree(a, b) == []
    config = open(os.path.join(a, "kernels", "include", "tinyml", "config.h")).read()
    assert f"TINYML_SINGLE_ROUNDING {0 if 'tflm' in extra else 1}" in config


def test_plan_and_inspect_without_tensorflow(no_tf):
    env, marker = no_tf
    for model in (AD01, VIT):
        r = _tinyml("plan", model, "--json", env=env)
        assert r.returncode == 0, r.stderr
        r2 = _tinyml("plan", model, "--json")
        a, b = json.loads(r.stdout), json.loads(r2.stdout)
        for d in (a, b):
            d.pop("plan_seconds", None)
        assert a == b
        i = _tinyml("inspect", model, "--json", env=env)
        assert i.returncode == 0, i.stderr
        assert json.loads(i.stdout) == json.loads(_tinyml("inspect", model, "--json").stdout)
    assert not marker.exists(), "plan or inspect imported tensorflow"


@pytest.mark.timeout(900)
def test_serial_build_without_tensorflow(no_tf, tmp_path):
    env, marker = no_tf
    a, b = str(tmp_path / "without"), str(tmp_path / "with")
    r = _tinyml("build", AD01, "--board", BOARD, "-o", a, "--mode", "serial", "--json", env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not marker.exists(), "build --mode serial imported tensorflow"
    d = json.loads(r.stdout)
    assert d["mode"] == "serial" and d["rounding"] == "tflite" and d["oracle"] == ""
    r2 = _tinyml("build", AD01, "--board", BOARD, "-o", b, "--mode", "serial", "--json")
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert _same_tree(os.path.join(a, "model"), os.path.join(b, "model")) == []
    assert filecmp.cmp(os.path.join(a, "firmware.bin"), os.path.join(b, "firmware.bin"), shallow=False)


def test_selftest_build_without_tensorflow_fails_in_one_line(no_tf, tmp_path):
    env, marker = no_tf
    r = _tinyml("build", AD01, "--board", BOARD, "-o", str(tmp_path / "fw"), env=env)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr
    assert lines[-1].startswith("error: TensorFlow is not importable")
    assert "pass --rounding tflm" in lines[-1] and "tensorflow-cpu>=2.21,<2.22" in lines[-1]
    assert not os.path.exists(tmp_path / "fw" / "firmware.elf")
    v = _tinyml("verify", AD01, "--inputs", "1", env=env)
    assert v.returncode == 2 and v.stderr.strip().splitlines()[-1].startswith("error: TensorFlow is not importable")
    marker.unlink(missing_ok=True)


@pytest.mark.timeout(900)
def test_selftest_build_without_tensorflow_uses_tflm_when_asked(no_tf, tmp_path):
    env, marker = no_tf
    out = str(tmp_path / "fw")
    r = _tinyml("build", AD01, "--board", BOARD, "-o", out, "--rounding", "tflm", "--vectors", "2", "--json",
                env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(r.stdout)
    assert d["oracle"] == "tflite-micro" and d["rounding"] == "tflm" and d["vectors"] == 2
    assert any("TensorFlow is not importable" in n for n in d["notes"])
    assert "TINYML_SINGLE_ROUNDING 0" in open(os.path.join(out, "model", "kernels", "include", "tinyml",
                                                           "config.h")).read()
    marker.unlink(missing_ok=True)    # choose_oracle tried TensorFlow (and was refused) before falling back
