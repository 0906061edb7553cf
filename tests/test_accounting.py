"""One accounting: inspect, plan, build and emulate --profile print the same flash and SRAM
figures for the same model (memory_planner.report.account), and those figures equal what
this test measures itself: the parameter bytes summed from the .tflite flatbuffer, the
weights.o array sections, and the linked ELF's sections (arm-none-eabi-size / objdump)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tinyml import paths

BOARD = "stm32f4-discovery"          # runs natively on QEMU netduinoplus2: the profile build is the board's
MODELS = ["mlperf-tiny/ad01_int8.tflite", "mlperf-tiny/kws_ref_model.tflite"]
KEYS = ("model_params_bytes", "weights_bytes", "arena_bytes")


def _cli_json(*args: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "tinyml.cli", *args, "--json"], capture_output=True, text=True,
                       timeout=480)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def _flatbuffer_param_bytes(path: str) -> int:
    """Bytes of the constant tensors the operators read, from the file's own buffers."""
    from tensorflow.lite.python import schema_py_generated as fb
    m = fb.Model.GetRootAsModel(open(path, "rb").read(), 0)
    sg = m.Subgraphs(0)
    seen, total = set(), 0
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        for j in range(op.InputsLength()):
            t = op.Inputs(j)
            if t < 0 or t in seen:
                continue
            buf = m.Buffers(sg.Tensors(t).Buffer())
            if buf.DataLength() > 0:
                seen.add(t)
                total += buf.DataLength()
    return total


def _size_sections(path: str) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-size", "-A", path], capture_output=True, text=True, check=True).stdout
    secs: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            secs[parts[0]] = secs.get(parts[0], 0) + int(parts[1])
    return secs


def _load_image_bytes(elf: str) -> int:
    """Bytes the ELF puts in flash: sections objdump flags LOAD (code, rodata, .data's image)."""
    out = subprocess.run(["arm-none-eabi-objdump", "-h", elf], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    total = 0
    for i, line in enumerate(lines):
        m = re.match(r"\s*\d+\s+(\S+)\s+([0-9a-f]+)\s", line)
        if m and i + 1 < len(lines) and "LOAD" in lines[i + 1]:
            total += int(m.group(2), 16)
    return total


def test_one_constant_and_reserve():
    """The planner judges the fit with the reserve the firmware links (was 4,096 vs 8,192 B)."""
    from tinyml.firmware.build import DEFAULT_STACK_BYTES
    from tinyml.memory_planner.report import STACK_RESERVE, account
    assert DEFAULT_STACK_BYTES == STACK_RESERVE
    a = account(100, 50, 30, code_estimate_bytes=1000)
    assert (a.flash_source, a.stack_source, a.stack_bytes, a.sram_bytes) == ("estimate", "reserve", STACK_RESERVE,
                                                                           30 + STACK_RESERVE)


def test_generated_arrays_count_their_c_type():
    """Multipliers are computed as int64 but declared int32_t: weights.c's bytes count 4 per element."""
    import numpy as np
    from tinyml.codegen.lowering import ConstArray
    assert ConstArray("m", "int32_t", np.zeros(10, dtype=np.int64)).nbytes == 40
    assert ConstArray("t", "int8_t", np.zeros(256, dtype=np.int64)).nbytes == 256


@pytest.mark.slow
@pytest.mark.emulator
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc and qemu-system-arm needed")
@pytest.mark.parametrize("rel", MODELS)
def test_inspect_plan_build_profile_print_one_accounting(tmp_path, rel):
    model = os.path.join(paths.shared_models(), rel)
    out = str(tmp_path / "fw")
    ins = _cli_json("inspect", model)["accounting"]
    plan = _cli_json("plan", model, "--board", BOARD)["accounting"]
    build = _cli_json("build", model, "--board", BOARD, "-o", out, "--vectors", "1")
    prof = _cli_json("emulate", out, "--profile")
    linked, profiled = build["accounting"], prof["accounting"]

    # the same figures everywhere (the code estimate is per core: inspect has no board and uses the
    # default board's Cortex-M7 table, plan the board's Cortex-M4 one; both bound the linked flash)
    drop = lambda d: {k: v for k, v in d.items() if k not in ("code_bytes", "flash_bytes")}
    assert drop(ins) == drop(plan)
    assert plan["flash_bytes"] >= linked["flash_bytes"] and ins["flash_source"] == "estimate"
    assert profiled == linked
    assert {k: plan[k] for k in KEYS} == {k: linked[k] for k in KEYS}
    assert plan["stack_bytes"] == plan["stack_reserve_bytes"] == linked["stack_reserve_bytes"] == 8192
    assert (plan["flash_source"], linked["flash_source"]) == ("estimate", "linked")

    # ... equal to what this test measures itself
    assert plan["model_params_bytes"] == _flatbuffer_param_bytes(model)
    weights_o = _size_sections(os.path.join(out, "obj", "model", "weights.o"))
    assert plan["weights_bytes"] == sum(v for k, v in weights_o.items() if k.startswith(".rodata"))
    elf = os.path.join(out, "firmware.elf")
    secs = _size_sections(elf)
    assert plan["arena_bytes"] == secs[".tinyml_arena"]
    assert linked["flash_bytes"] == _load_image_bytes(elf)
    assert linked["static_ram_bytes"] == secs.get(".data", 0) + secs.get(".bss", 0)
    assert linked["stack_reserve_bytes"] == secs[".stack"]
    assert linked["flash_bytes"] == linked["weights_bytes"] + linked["code_bytes"]
    assert linked["sram_bytes"] == linked["arena_bytes"] + linked["stack_bytes"] + linked["static_ram_bytes"]
    # the static estimate replaces the reserve once built, and bounds the measured stack
    native = build["variants"]["native"]
    assert linked["stack_source"] == "static estimate" and linked["stack_bytes"] == native["stack_estimate"]
    assert prof["stack_used_bytes"] <= linked["stack_bytes"]
    assert prof["passed"]


def test_text_output_prints_the_accounting_lines(tmp_path):
    """inspect and plan print the same two lines (flash, SRAM) for the same model."""
    model = os.path.join(paths.shared_models(), MODELS[0])
    run = lambda *a: subprocess.run([sys.executable, "-m", "tinyml.cli", *a], capture_output=True, text=True,
                                    timeout=120).stdout
    pick = lambda text: [l for l in text.splitlines() if l.startswith(("flash ", "SRAM "))]
    # plan on the default board: inspect (no board) estimates code with the default board's table
    a, b = pick(run("inspect", model)), pick(run("plan", model, "--board", "stm32f746g-disco"))
    assert len(a) == 2 and a == b
    assert "weights" in a[0] and "(estimate)" in a[0] and "stack 8,192 B (reserve)" in a[1]
