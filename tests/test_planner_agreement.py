"""Issue 5 item 8: planned bytes, linked bytes and measured bytes agree.

For a few shared models: the memory plan (memory_planner, planned here
independently of the generated files), the `tinyml_arena` symbol in the linked
ELF (read with pyelftools) and the emulator's measured arena / stack
high-water marks (QEMU self-test, which also checks the outputs bit-exactly
against the reference interpreter).
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from tinyml import paths

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed"),
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed"),
]

MODELS = [
    "mlperf-tiny/ad01_int8.tflite",
    "mlperf-tiny/kws_ref_model.tflite",
    "mlperf-tiny/vww_96_int8.tflite",
    "vit/vit_relu_d64x4.tflite",
]
# netduinoplus2 runs the board binary itself: one ELF per build.
BOARD = "stm32f4-discovery"


def _elf_symbol_size(elf_path: str, name: str) -> int:
    from elftools.elf.elffile import ELFFile
    with open(elf_path, "rb") as f:
        syms = ELFFile(f).get_section_by_name(".symtab")
        found = syms.get_symbol_by_name(name)
        assert found, f"{name} not in {elf_path}"
        return int(found[0]["st_size"])


@pytest.fixture(scope="module", params=MODELS)
def built(request, tmp_path_factory):
    """(plan, graph, build dir, emulation result) for one model, built and run once."""
    from tinyml.codegen.emit import generate
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.pipeline import CompileOptions, compile
    from tinyml.codegen.oracle import reference_outputs
    from tinyml.firmware.build import build_firmware, read_model_header
    from tinyml.firmware.emulate import emulate

    model = os.path.join(paths.shared_models(), request.param)
    graph = import_tflite(model)
    plan = compile(graph, CompileOptions()).plan       # the pipeline's plan (FUSED_STAGE depth chosen there)

    root = tmp_path_factory.mktemp("agree")
    lib = str(root / "model")
    generate(model, lib)
    hdr = read_model_header(lib)
    rng = np.random.default_rng(11)
    xs = [rng.integers(-128, 128, size=hdr["TINYML_INPUT_BYTES"]).astype(np.int8) for _ in range(2)]
    outs, _ = reference_outputs(model, [[x] for x in xs])
    vecs = [(x.tobytes(), np.asarray(o[0]).astype(np.int8).tobytes()) for x, o in zip(xs, outs)]
    out = str(root / "fw")
    build_firmware(model, BOARD, out, model_dir=lib, vectors=vecs, progress=lambda m: None)
    res = emulate(out, timeout=300)
    return plan, graph, lib, out, res


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_linked_arena_symbol_equals_planned_arena(built):
    plan, _, lib, out, res = built
    with open(os.path.join(lib, "plan.json")) as f:
        assert json.load(f)["arena_bytes"] == plan.arena_bytes
    assert _elf_symbol_size(os.path.join(out, "firmware.elf"), "tinyml_arena") == plan.arena_bytes
    assert res.arena_bytes == plan.arena_bytes          # what the firmware itself reports


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_measured_peak_within_planned_arena_plus_stack_estimate(built):
    from tinyml.memory_planner.report import STACK_RESERVE
    plan, graph, _, _, res = built
    assert res.passed, res.output[-2000:]                # bit-exact on the emulator
    assert res.arena_used_bytes is not None and res.stack_used_bytes is not None
    assert res.arena_used_bytes <= plan.arena_bytes
    assert res.arena_used_bytes + res.stack_used_bytes <= plan.arena_bytes + STACK_RESERVE
    # The firmware really uses the planned offsets up to the top: every tensor
    # buffer is written whole by its producer (inputs by the self-test's copy),
    # so the measured high-water reaches the highest planned tensor end.
    top = max(plan.offset_of(t) + graph.t(t).nbytes for t in plan.tensor_buffer)
    assert res.arena_used_bytes >= top


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_measured_stack_within_the_static_estimate(built):
    """The stack high-water the emulator measures (painted stack) never exceeds the
    static estimate from GCC's call graph (firmware/stack_usage.py), which is bounded
    (no recursion, dynamic frames or indirect calls) and fits the reserve."""
    from tinyml.firmware.build import load_build_meta
    _, _, _, out, res = built
    sizes = load_build_meta(out)["sizes"]["native"]
    assert sizes["stack_estimate"] is not None and "lower bound" not in sizes["stack_estimate_note"]
    assert res.stack_estimate_bytes == sizes["stack_estimate"]
    assert 0 < res.stack_used_bytes <= res.stack_estimate_bytes <= sizes["stack"]
