"""FUSED_STAGE (codegen/ops/fused_stage.py, kernels/src/fused_stage.c): a CNN's first
layers as one row pipeline, the image resident or streamed row by row.

Keras CNN stems converted by TFLiteConverter the standard way (per-channel quantization);
the models end at the stem's last layer, so every byte of the stage's output is compared
with TFLite's reference interpreter. Depths are forced with CompileOptions.stage_depth,
resident and streamed (one case under ASan/UBSan)."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from test_fuse_helpers import convert, perturb

from tinyml import paths

# (kind, kernel, stride, padding, depth multiplier); kind: conv / dw
STEM_A = [("conv", 3, 2, "same", 1), ("dw", 3, 1, "same", 1), ("conv", 1, 1, "same", 1),
          ("dw", 3, 2, "same", 1), ("conv", 1, 1, "same", 1), ("dw", 5, 1, "valid", 1),
          ("conv", 3, 1, "valid", 1)]
# person_detect's shape: a depthwise with multiplier 4 on the image first, stride 2
STEM_B = [("dw", 3, 2, "same", 4), ("dw", 3, 1, "same", 1), ("conv", 1, 1, "same", 1),
          ("dw", 3, 2, "valid", 1), ("conv", 1, 1, "same", 1)]
SHAPE_A, SHAPE_B = (33, 29, 3), (20, 15, 1)


def _model(keras, layers, shape):
    L = keras.layers
    inp = keras.Input(shape, batch_size=1)
    x, ch = inp, shape[2]
    for i, (kind, k, s, pad, mult) in enumerate(layers):
        if kind == "conv":
            ch = 8 + 4 * (i % 3)
            x = L.Conv2D(ch, k, strides=s, padding=pad)(x)
        else:
            x = L.DepthwiseConv2D(k, strides=s, padding=pad, depth_multiplier=mult)(x)
            ch *= mult
        x = L.ReLU(6.0)(L.BatchNormalization()(x))
    m = keras.Model(inp, x)
    perturb(m, sigma=0.2)
    return m


def _convert(model, shape, path: str) -> str:
    return convert(model, shape, path, samples=16)


@pytest.fixture(scope="module")
def stems(tmp_path_factory):
    import keras
    keras.utils.set_random_seed(0)
    d = tmp_path_factory.mktemp("stage")
    return {"A": (_convert(_model(keras, STEM_A, SHAPE_A), SHAPE_A, str(d / "a.tflite")), len(STEM_A)),
            "B": (_convert(_model(keras, STEM_B, SHAPE_B), SHAPE_B, str(d / "b.tflite")), len(STEM_B))}


def _run(path: str, work: str, depth: int, stream: bool, sanitize: bool, n: int = 3):
    """(generated C outputs, TFLite reference outputs, generated library) for `n` random inputs."""
    from tinyml.codegen.emit import generate
    from tinyml.codegen.hostbuild import compile_host, run_host
    from tinyml.codegen.oracle import reference_outputs
    from tinyml.codegen.pipeline import CompileOptions
    opts = CompileOptions(stream_input=stream, stage_depth=depth)
    gen = generate(path, os.path.join(work, "gen"), opts)
    g = gen.graph
    x = g.t(g.inputs[0])
    rng = np.random.default_rng(depth * 2 + stream)
    xs = [rng.integers(-128, 128, size=x.shape).astype(np.int8) for _ in range(n)]
    exe = compile_host(gen.out_dir, sanitize=sanitize)
    got = run_host(exe, b"".join(v.tobytes() for v in xs), n, g.t(g.outputs[0]).nbytes, work)
    outs, _ = reference_outputs(path, [[v] for v in xs])
    want = b"".join(np.asarray(o[0]).astype(np.int8).tobytes() for o in outs)
    return got, want, gen


# (stem, depth, streamed, ASan/UBSan): each host build takes ~15-30 s, so a spread of
# depths rather than all of them: a ring feeding a stride-2 depthwise (A, 4), every layer
# (A, 7: a 5x5 VALID depthwise and a 3x3 VALID conv at the end), a multiplier-4 depthwise on
# a mirrored streamed input ring (B, 2), the whole stem resident (B, 5)
CASES = [("A", 4, False, False), ("A", 7, True, True), ("B", 2, True, False), ("B", 5, False, False)]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("stem,depth,stream,sanitize", CASES,
                         ids=[f"{c[0]}-depth{c[1]}-{'streamed' if c[2] else 'resident'}" for c in CASES])
def test_stage_bit_exact(stems, stem, depth, stream, sanitize, tmp_path):
    """The first `depth` layers are one FUSED_STAGE step (in the plan's steps, the member
    ops gone), and every output byte equals TFLite's."""
    path, n = stems[stem]
    got, want, gen = _run(path, str(tmp_path), depth, stream, sanitize)
    kinds = [s.kind for s in gen.steps]
    assert kinds[0] == "FUSED_STAGE" and len(gen.steps[0].ops) == depth and len(kinds) == n - depth + 1
    assert len(got) == len(want) > 0
    bad = sum(a != b for a, b in zip(got, want))
    assert bad == 0, f"stem {stem} depth {depth} stream {stream}: {bad} of {len(want)} bytes differ"


def test_planner_choice_and_both_peaks(stems):
    """The pipeline plans every depth and keeps the smallest arena (the shallower on a tie);
    the recorded candidates are the arenas of those plans."""
    from tinyml.codegen.pipeline import CompileOptions, compile
    path, n = stems["A"]
    c = compile(path, CompileOptions())
    st = c.stage
    assert st is not None and st.chain == n and sorted(st.arenas) == [0] + list(range(2, n + 1))
    best = min(st.arenas.values())
    assert c.plan.arena_bytes == best == st.arenas[st.depth]
    assert all(st.arenas[d] > best for d in st.arenas if d < st.depth)
    for d in (0, 2, n):                        # the table's entries are real plans of that depth
        forced = compile(path, CompileOptions(stage_depth=d if d else None, stage=d != 0))
        assert forced.plan.arena_bytes == st.arenas[d]
    s = compile(path, CompileOptions(stream_input=True))
    assert 0 not in s.stage.arenas             # layer by layer cannot stream this model
    assert s.plan.arena_bytes == min(s.stage.arenas.values())
    assert s.full_image_arena_bytes == best and s.plan.arena_bytes < best


def test_stage_overlap_replay_matches_a_brute_force_schedule():
    """overlap_down_bytes from an independent replay: walk the schedule, track the lowest
    input row a later layer-0 row reads, and the output bytes written so far."""
    from tinyml.codegen.ops.fused_stage import LayerGeom, overlap_down_bytes, schedule
    g0 = LayerGeom(False, 96, 48, 2, 0, 2, 1, 3, 288, 384)
    g1 = LayerGeom(True, 48, 48, 1, 1, 2, 1, 3, 384, 384)
    g2 = LayerGeom(False, 48, 48, 1, 0, 0, 1, 1, 384, 768)
    g3 = LayerGeom(True, 48, 24, 2, 0, 2, 1, 3, 768, 384)
    chain = [g0, g1, g2, g3]
    order = list(schedule(chain))
    # every row of every layer exactly once, each after the rows it reads
    done = [0] * 4
    for i, r in order:
        assert r == done[i]
        if i:
            assert done[i - 1] > chain[i].need(r)
        done[i] += 1
    assert done == [g.out_h for g in chain]
    worst = 0
    for k, (i, r) in enumerate(order):
        if i != 3:
            continue
        later = [rr for ii, rr in order[k + 1:] if ii == 0]
        if later:
            first_read = max(0, later[0] * 2 - 0)
            worst = max(worst, (r + 1) * 384 - first_read * 288)
    assert overlap_down_bytes(chain) == worst


def test_bad_stage_depth_is_one_line(stems, tmp_path):
    import subprocess
    import sys
    from tinyml.codegen.pipeline import CompileOptions, compile
    from tinyml.errors import TinymlError
    path, n = stems["A"]
    with pytest.raises(TinymlError) as e:
        compile(path, CompileOptions(stage_depth=n + 1))
    assert f"from 2 to {n}" in str(e.value)
    r = subprocess.run([sys.executable, "-m", "tinyml.cli", "plan", path, "--stage-depth", str(n + 1)],
                       capture_output=True, text=True, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and "stage depth" in lines[0] and "Traceback" not in r.stderr


VWW = os.path.join(paths.shared_models(), "mlperf-tiny", "vww_96_int8.tflite")
PERSON = os.path.join(paths.shared_models(), "tflm", "person_detect.tflite")


@pytest.mark.parametrize("model", [VWW, PERSON], ids=["vww", "person_detect"])
def test_shared_models_streamed_under_24000(model):
    """Issue 17's targets: <= 24,000 B streamed; the printed lower bound covers the stage."""
    from tinyml.codegen.pipeline import CompileOptions, compile
    c = compile(model, CompileOptions(stream_input=True))
    assert c.steps[0].kind == "FUSED_STAGE"
    assert c.plan.arena_bytes <= 24000 and c.plan.lower_bound <= c.plan.arena_bytes
    assert c.stage.resident_arenas[0] == 37248             # layer by layer, whole image


def test_plan_says_when_streaming_costs_more():
    """KWS: its 49x10 input is small, so the streamed stage (10,432 B) plans above the
    resident layer-by-layer arena (8,640 B): `plan --stream-input` must say so and by how much."""
    import subprocess
    import sys
    kws = os.path.join(paths.shared_models(), "mlperf-tiny", "kws_ref_model.tflite")
    r = subprocess.run([sys.executable, "-m", "tinyml.cli", "plan", kws, "--stream-input"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    note = [ln for ln in r.stdout.splitlines() if "streaming costs" in ln]
    assert note == ["  note: streaming costs 1,792 B more than keeping the whole input in the arena "
                    "on this model: drop --stream-input"]
    r = subprocess.run([sys.executable, "-m", "tinyml.cli", "plan", VWW, "--stream-input"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "streaming costs" not in r.stdout


@pytest.mark.emulator
@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc or qemu-system-arm not installed")
def test_vww_streamed_on_emulator_planned_linked_measured(tmp_path):
    """VWW streamed on the emulated F746: the self-test is bit-exact with TFLite, and the
    planned arena = the linked tinyml_arena symbol = the firmware's measured high-water."""
    from elftools.elf.elffile import ELFFile

    from tinyml.codegen.pipeline import CompileOptions, compile
    from tinyml.firmware.build import build_firmware
    from tinyml.firmware.emulate import emulate
    plan = compile(VWW, CompileOptions(stream_input=True)).plan
    out = str(tmp_path / "fw")
    build_firmware(VWW, "stm32f746g-disco", out, emulator_variant=True, num_vectors=2, stream_input=True,
                   progress=lambda m: None)
    res = emulate(out, timeout=300)
    assert res.passed, res.output[-2000:]
    with open(os.path.join(out, "firmware.elf"), "rb") as f:
        sym = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name("tinyml_arena")
    assert int(sym[0]["st_size"]) == plan.arena_bytes == res.arena_bytes == res.arena_used_bytes == 19968
