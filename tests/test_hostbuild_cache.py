"""codegen/hostbuild.py: kernel objects shared between host builds through a
content-keyed cache (the kernels include only kernel headers, so one compiled
library serves every model with the same flags)."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import pytest

from tinyml import paths
from tinyml.codegen.hostbuild import compile_host

AD01 = os.path.join(paths.shared_models(), "mlperf-tiny", "ad01_int8.tflite")
pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")


def _generate(out: str, model: str = AD01) -> str:
    r = subprocess.run([sys.executable, "-m", "tinyml.cli", "generate", model, "-o", out],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def _objects(cache: str) -> dict[str, float]:
    return {p: os.path.getmtime(p) for p in glob.glob(os.path.join(cache, "*.o"))}


def test_second_model_links_cached_kernels_and_a_header_change_rebuilds(tmp_path):
    cache = str(tmp_path / "cache")
    a = _generate(str(tmp_path / "a"))
    b = _generate(str(tmp_path / "b"), os.path.join(paths.shared_models(), "mlperf-tiny", "kws_ref_model.tflite"))
    n_kernels = len(glob.glob(os.path.join(a, "kernels", "src", "*.c")))
    exe_a = compile_host(a, cache_dir=cache)
    first = _objects(cache)
    assert len(first) == n_kernels and os.access(exe_a, os.X_OK)
    compile_host(b, cache_dir=cache)                       # another model: the same objects
    assert _objects(cache) == first
    compile_host(a, sanitize=True, cache_dir=cache)        # other flags: another set
    assert len(_objects(cache)) == 2 * n_kernels
    with open(os.path.join(b, "kernels", "include", "tinyml", "common.h"), "a") as f:
        f.write("\n/* changed */\n")                       # every kernel sees the header
    compile_host(b, cache_dir=cache)
    assert len(_objects(cache)) == 3 * n_kernels


def test_kernel_with_a_model_header_is_not_cached(tmp_path):
    cache = str(tmp_path / "cache")
    a = _generate(str(tmp_path / "a"))
    src = sorted(glob.glob(os.path.join(a, "kernels", "src", "*.c")))[0]
    with open(src, "a") as f:
        f.write('\n#include "model.h"\n')
    compile_host(a, cache_dir=cache)
    assert _objects(cache) == {}


def test_compile_error_names_the_file_and_the_fix(tmp_path):
    from tinyml.errors import ToolchainError
    a = _generate(str(tmp_path / "a"))
    src = sorted(glob.glob(os.path.join(a, "kernels", "src", "*.c")))[0]
    with open(src, "a") as f:
        f.write("\nint broken( {\n")
    with pytest.raises(ToolchainError) as e:
        compile_host(a, cache_dir=str(tmp_path / "cache"))
    assert "host compile of generated C failed" in str(e.value) and "error" in str(e.value)
    assert not glob.glob(os.path.join(str(tmp_path / "cache"), "*.o"))
