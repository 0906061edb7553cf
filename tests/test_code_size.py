"""The code estimate (codegen/code_size.py) before a build: its table is current, and on every
reference model it is at least the linked flash of the serial firmware and at most 3% (or
2 KiB) above it.

The table is re-measured from real objects (firmware/code_table.py); the accuracy test links
real firmware with arm-none-eabi-gcc and reads the flash image from the ELF's program headers."""
from __future__ import annotations

import glob
import json
import os
import shutil

import pytest

from tinyml import paths

BOARD = "stm32f746g-disco"
needs_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc needed")


def _shipped() -> list[str]:
    return sorted(glob.glob(os.path.join(paths.package_dir("tinyvit.pretrained"), "*.tflite")))


def _shared() -> list[str]:
    return sorted(glob.glob(os.path.join(paths.shared_models(), "*", "*.tflite")))


def test_closure_counts_shared_callees_once():
    """Two functions calling the same helper: the closure of both holds the helper once, and
    each alone holds it too (the table is of real sections, read here, not recomputed)."""
    from tinyml.codegen.code_size import load_table
    t = load_table()
    fc, pairs = "tinyml_fc_s8", "tinyml_fc_s8_pairs"
    both, _ = t.closure([fc, pairs])
    a, _ = t.closure([fc])
    b, _ = t.closure([pairs])
    assert both == a | b and a & b, "fc_s8 and fc_s8_pairs share their row loops"
    assert t.kernel_bytes([fc, pairs]) < t.kernel_bytes([fc]) + t.kernel_bytes([pairs])
    assert t.data["cpu"] == "cortex-m7" and "-mfpu=fpv5-sp-d16" in t.data["flags"]


def test_estimate_counts_calls_modes_and_vectors():
    from tinyml.codegen.code_size import estimate, load_table
    from tinyml.steps import Call, Step
    t = load_table()
    one = [Step(0, "FULLY_CONNECTED", [0], [1], calls=[Call("tinyml_fc_s8", [])])]
    decl = "static const tinyml_fc_layer op1_layer = {\n    .accum_depth = 64,\n};"
    two = one + [Step(1, "FULLY_CONNECTED", [1], [2], calls=[Call("tinyml_fc_s8", ["a", "b", "c"])],
                      decls=[decl])]
    a, b = estimate(one, table=t), estimate(two, table=t)
    assert (a.functions, b.functions) == (1, 1) and a.kernels == b.kernels
    m = t.data["model"]
    # one call of three arguments and one parameter struct (its measured sizeof, up to 3 B of padding)
    assert b.bytes - a.bytes == m["per_call"] + 3 * m["per_arg"] + t.data["types"]["tinyml_fc_layer"] + 3
    assert t.data["types"]["tinyml_fc_layer"] >= 4 * 4 + 3 * 4       # four ints and three pointers at least
    s = estimate(one, "selftest", vectors_bytes=3 * 100, table=t)
    assert s.bytes - a.bytes == t.data["runtime"]["selftest"] - t.data["runtime"]["serial"] + 300
    from tinyml.codegen.code_size import step_model_bytes
    cached = [one[0], Step(1, "FULLY_CONNECTED", [1], [2], call_funcs=["tinyml_fc_s8"],
                           model_c_bytes=step_model_bytes(two[1], t))]
    assert estimate(cached, table=t) == b
    unknown = estimate([Step(0, "X", [0], [1], calls=[Call("tinyml_no_such_kernel", [])])], table=t)
    assert unknown.kernels == t.largest_function()


@pytest.mark.slow
@needs_gcc
@pytest.mark.parametrize("board", ["stm32f746g-disco", "stm32f4-discovery"])
def test_table_is_current(board):
    """Kernel, runtime, app or model.c edits change the sizes: re-measure and compare."""
    from tinyml.firmware.code_table import measure, table_file, table_text
    if not _shared():
        pytest.skip("the shared reference models are part of the measured corpus")
    fresh = json.loads(table_text(measure(board)))
    path = table_file(board)
    with open(path) as f:
        committed = json.load(f)
    stale = sorted(k for k in set(fresh) | set(committed) if fresh.get(k) != committed.get(k))
    assert not stale, (f"codegen/{os.path.basename(path)} is stale ({', '.join(stale)} differ from a fresh "
                       "measurement): run .venv/bin/python scripts/measure_code_size.py and commit the tables")


_BOUNDED = ("vit_digits.tflite", "ad01_int8", "vww_96_int8")


def _linked_flash(elf: str) -> int:
    from elftools.elf.elffile import ELFFile
    with open(elf, "rb") as f:
        return sum(seg["p_filesz"] for seg in ELFFile(f).iter_segments() if seg["p_type"] == "PT_LOAD")


@pytest.mark.slow
@needs_gcc
@pytest.mark.parametrize("model,board", [pytest.param(m, b, id=os.path.basename(m)[:-7] + ("" if b is None else "-" + b))
                                         for m, b in [(m, None) for m in _shipped() + _shared()
                                                      if any(k in m for k in _BOUNDED)]
                                         + [(m, "stm32f4-discovery") for m in _shared() if "kws" in m]])
def test_estimate_bounds_the_linked_serial_firmware(tmp_path, model, board):
    """plan's flash (weights + code estimate) >= the linked serial firmware's flash image, and
    at most max(2 KiB, 3%) above it: one model per kernel family on the default board (the ViT,
    AD's fully connected layers, VWW's depthwise / pointwise convolutions) and KWS on a
    Cortex-M4 board (its own table). All nine reference models were measured when the table
    was made (+318 .. +1,324 B; README); four builds keep CI short."""
    from tinyml.codegen.pipeline import plan_model
    from tinyml.firmware.build import build_firmware
    if board is None:
        board = "nucleo-h743zi" if os.path.getsize(model) > 1_200_000 else BOARD
    rep, _ = plan_model(model, board)
    build_firmware(model, board, str(tmp_path / "fw"), mode="serial", progress=lambda m: None)
    linked = _linked_flash(str(tmp_path / "fw" / "firmware.elf"))
    est = rep.flash_bytes
    print(f"{os.path.basename(model)} on {board}: estimate {est:,} B linked {linked:,} B error {est - linked:+,} B")
    assert est >= linked, f"estimate {est:,} B below the linked {linked:,} B"
    assert est <= linked + max(2048, 0.03 * linked), f"estimate {est:,} B far above the linked {linked:,} B"


def _dense_model(path: str, n_in: int, n_out: int) -> str:
    """A real int8 TFLite model (one FULLY_CONNECTED) from the TFLite converter."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf
    inp = tf.keras.Input((n_in,), batch_size=1)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(n_out)(inp))
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: ([rng.standard_normal((1, n_in)).astype(np.float32)] for _ in range(4))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    with open(path, "wb") as f:
        f.write(conv.convert())
    return path


def test_selftest_vectors_count_in_the_build_fit_check(tmp_path):
    """900 KB of weights fit the F4's 1 MiB as a serial firmware (plan says so), but a
    self-test build with 80 vectors of 1,900 B each would not: the build names the vectors and
    the fix in one line before computing any vector, and leaves nothing behind."""
    import subprocess
    import sys
    from tinyml.errors import FitError
    model = _dense_model(str(tmp_path / "dense.tflite"), 900, 1000)
    plan = subprocess.run([sys.executable, "-m", "tinyml.cli", "plan", model, "--board", "stm32f4-discovery",
                           "--json"], capture_output=True, text=True, timeout=300)
    rep = json.loads(plan.stdout)
    assert plan.returncode == 0 and rep["fits"], plan.stderr[-500:]
    assert any("serial firmware" in d for d in rep["fit_detail"])
    code = rep["flash_bytes"] - rep["weights_bytes"]
    assert rep["flash_bytes"] + 80 * 1900 > rep["flash_budget_bytes"]
    out = tmp_path / "fw"
    p = subprocess.run([sys.executable, "-m", "tinyml.cli", "build", model, "--board", "stm32f4-discovery",
                        "-o", str(out), "--vectors", "80"], capture_output=True, text=True, timeout=300)
    assert p.returncode == FitError.exit_code and "Traceback" not in p.stderr
    line = p.stderr.strip().splitlines()[-1]
    assert line.startswith("error: model does not fit stm32f4-discovery: flash region FLASH")
    assert "80 self-test vector(s) 152,000 B" in line and "fewer --vectors" in line
    est = int(line.split("code estimate ")[1].split(" B")[0].replace(",", ""))
    # the self-test runtime replaces the serial one (smaller: no MLPerf Tiny protocol)
    assert code < est - 152_000 + 8192 and est - 152_000 < code
    assert not out.exists() and not list(tmp_path.glob(".fw.tmp-*"))
