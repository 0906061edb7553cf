"""Issue 13's zoo, exported the standard way (tests/zoo_models.py): batch -1, Keras' shape
arithmetic and all. Every row of the issue's first table (ViT, DS-CNN, YOLO-style, Resizing
nearest, LSTM, GRU) and the item-4 models (MobileNet, MobileNetV3Small, a ResNet-style CNN, a
Conv1D model) verify byte for byte against TFLite's reference interpreter on the original
(dynamic) file, and are planned with their arena against TFLM's (printed: run with -s to see).
The ResNet-style CNN's 16x8 export (int16 and float I/O) verifies bit-exact too and passes
the emulated F746 self-test.
A model with a still-unsupported op (int8 SQRT) is rejected for that op only, in one line,
by every command."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from zoo_models import export

pytestmark = pytest.mark.timeout(600)

SHAPE_OPS = {"SHAPE", "PACK", "STRIDED_SLICE", "GATHER", "REDUCE_PROD", "CONCATENATION", "FILL"}

# model -> the ops tinyml lacks; once shapes are folded nothing else may be missing.
MISSING = {"sqrt_head": {"SQRT"}}

# the first table: model -> (output bytes per input, inputs compared, oracle note expected)
TABLE = {"vit": (10, 6, None), "ds_cnn": (12, 6, None), "yolo": (32 * 32 * 18, 2, "TILE v3 -> v2"),
         "resize_nearest": (4, 6, None), "lstm": (4, 6, None), "gru": (4, 6, None),
         "log_softmax": (6, 6, None)}
# issue 13 item 4: keras.applications and hand-written standard models (exported in the test)
ITEM4 = {"mobilenet": 10, "mobilenet_v3_small": 10, "resnet": 10, "conv1d": 4}
# zoo models whose verify fails for an op tinyml lacks (strict: passing flips it): none now
EXPECTED_FAILURES: dict[str, str] = {}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    d = tmp_path_factory.mktemp("zoo")
    return {name: export(name, d) for name in (*TABLE, *MISSING, "cnn_16x8")}


# models TFLM cannot run as exported (measured with tflite_micro), so no TFLM arena figure
TFLM_CANNOT = {"yolo": "TFLM has no TILE kernel",
               "vit": "TFLM has no REDUCE_PROD (Keras' Tensordot shape arithmetic)",
               "lstm": "TFLM's FILL needs constant dims (the zero state's batch is computed)",
               "gru": "TFLM's FILL needs constant dims (the zero state's batch is computed)"}


def _arena_vs_tflm(name: str, path: str) -> None:
    """Plan for the F746 with TFLM's arena beside ours; print both (the closing note's figures)."""
    from tinyml.codegen.pipeline import plan_model
    rep, _ = plan_model(path, "stm32f746g-disco", compare_tflm=True)
    assert rep.arena_bytes > 0
    if name in TFLM_CANNOT:
        assert rep.tflm_arena_bytes is None
        print(f"\nzoo {name}: arena {rep.arena_bytes:,} B; TFLM cannot run it ({TFLM_CANNOT[name]})")
        return
    assert rep.tflm_arena_bytes
    print(f"\nzoo {name}: arena {rep.arena_bytes:,} B, TFLM arena {rep.tflm_arena_bytes:,} B "
          f"({rep.arena_bytes / rep.tflm_arena_bytes:.2f}x)")
    assert rep.arena_bytes <= rep.tflm_arena_bytes, (rep.arena_bytes, rep.tflm_arena_bytes)


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=500)


def _one_error_line(p) -> str:
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
    errs = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errs) == 1, p.stderr[-2000:]
    return errs[0]


def _dynamic_in_file(path: str) -> list[int]:
    """Tensors whose shape signature in the file has a -1 (read with the tflite schema package)."""
    import tflite
    with open(path, "rb") as f:
        sg = tflite.Model.GetRootAs(f.read(), 0).Subgraphs(0)
    out = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        if t.ShapeSignatureLength() and any(d < 0 for d in t.ShapeSignatureAsNumpy()):
            out.append(i)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TABLE))
def test_standard_export_verifies_bit_exact(zoo, name):
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.verify import verify
    path = zoo[name]
    out_bytes, count, note = TABLE[name]
    assert _dynamic_in_file(path), "the export should carry a dynamic batch"
    g = import_tflite(path)
    if name in ("vit", "ds_cnn"):
        assert {k for _, k in g.folded} >= {"SHAPE", "PACK"}
    assert not {op.kind for op in g.ops} & {"SHAPE", "PACK", "GATHER", "REDUCE_PROD", "FILL"}
    assert all(d > 0 for t in g.tensors for d in t.shape)
    res = verify(path, count=count, seed=3)
    assert res.oracle == "tflite-reference" and res.rounding == "tflite"
    assert res.bit_exact, res.first_mismatch
    assert res.inputs_compared == count and res.output_bytes_compared == count * out_bytes
    if note is None:
        assert res.notes == []
    else:
        assert len(res.notes) == 1 and note in res.notes[0] and "model file unchanged" in res.notes[0]
    _arena_vs_tflm(name, path)


def _item4(name):
    if name in EXPECTED_FAILURES:
        return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=EXPECTED_FAILURES[name]))
    return name


@pytest.mark.slow
@pytest.mark.parametrize("name", [_item4(n) for n in ITEM4])
def test_item4_zoo_verifies_bit_exact(tmp_path, name):
    """keras.applications MobileNet (alpha 0.25, 96x96), MobileNetV3Small (alpha 0.75, 64x64,
    hard-swish and squeeze-excite; untrained BatchNorm leaves activation scales near 1e-8, where
    HARD_SWISH meets gemmlowp's int16 rounding edge), a ResNet-style CNN and a Conv1D model."""
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.verify import verify
    path = export(name, tmp_path)
    assert _dynamic_in_file(path)
    kinds = {op.kind for op in import_tflite(path).ops}
    if name == "mobilenet_v3_small":
        assert {"HARD_SWISH", "MUL", "MEAN"} <= kinds        # hard-swish and squeeze-excite
    res = verify(path, count=2, seed=1)
    assert res.oracle == "tflite-reference" and res.notes == []
    assert res.bit_exact, res.first_mismatch
    assert res.output_bytes_compared == 2 * ITEM4[name]
    _arena_vs_tflm(name, path)


@pytest.mark.slow
def test_mobilenet_v2_standard_export_still_verifies(tmp_path):
    """The table's first row (worked before shape folding) keeps working: bit-exact, and an
    arena smaller than TFLM's for the same file."""
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.pipeline import plan_model
    from tinyml.codegen.verify import verify
    path = export("mobilenet_v2", tmp_path)
    assert _dynamic_in_file(path) and import_tflite(path).folded == []
    res = verify(path, count=2, seed=1)
    assert res.bit_exact and res.output_bytes_compared == 20, res.first_mismatch
    rep, _ = plan_model(path, "stm32f746g-disco", compare_tflm=True)
    assert rep.tflm_arena_bytes and rep.arena_bytes < rep.tflm_arena_bytes


def test_vit_tensordot_and_flatten_get_static_shapes(zoo):
    """Tensordot's RESHAPE to [-1, -1] and Flatten's to [-1, 256] become [16, 16] / [16, 32] / [1, 256]
    (16 tokens of width 16, MLP width 32): the sizes the Keras model has at batch 1."""
    from tinyml.codegen.importer import import_tflite
    g = import_tflite(zoo["vit"])
    reshapes = [g.t(op.outputs[0]).shape for op in g.ops if op.kind == "RESHAPE"]
    assert (16, 16) in reshapes and (16, 32) in reshapes and (1, 256) in reshapes
    fcs = [g.t(op.outputs[0]).shape for op in g.ops if op.kind == "FULLY_CONNECTED"]
    assert (16, 32) in fcs and fcs[-1] == (1, 10)
    # file shapes were [1, 1] for the Tensordot reshapes: the file alone is not enough
    assert g.t(g.outputs[0]).shape == (1, 10)


@pytest.mark.parametrize("name", sorted(MISSING))
def test_after_folding_only_the_missing_op_is_rejected(zoo, name):
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.lower import unsupported_ops
    g = import_tflite(zoo[name])
    assert {k for _, k in unsupported_ops(g)} == MISSING[name]
    assert not {op.kind for op in g.ops} & {"SHAPE", "PACK", "FILL"}
    p = _cli("plan", zoo[name], "--board", "stm32f746g-disco")
    assert p.returncode == 2
    line = _one_error_line(p)
    assert "which tinyml does not support" in line and any(k in line for k in MISSING[name])


def test_upsampling_repeat_is_static_and_at_most_4d(zoo):
    """UpSampling2D's Repeat (EXPAND_DIMS -> TILE on 5 axes -> RESHAPE, sizes from SHAPE) becomes
    static and 2-D: rows [8, 128] -> [8, 256], columns [128, 16] -> [128, 32] (H 8, W 8, C 16);
    Conv2DTranspose's output_shape becomes the constant [1, 32, 32, 8]."""
    from tinyml.codegen.importer import import_tflite
    g = import_tflite(zoo["yolo"])
    assert not [t.index for t in g.tensors if len(t.shape) > 4 and not t.is_const]
    tiles = [(g.t(op.inputs[0]).shape, [int(v) for v in g.t(op.inputs[1]).data], g.t(op.outputs[0]).shape)
             for op in g.ops if op.kind == "TILE"]
    assert tiles == [((8, 128), [1, 2], (8, 256)), ((128, 16), [1, 2], (128, 32))]
    tc = next(op for op in g.ops if op.kind == "TRANSPOSE_CONV")
    assert [int(v) for v in g.t(tc.inputs[0]).data] == [1, 32, 32, 8]
    assert g.t(tc.outputs[0]).shape == (1, 32, 32, 8)


def test_every_command_names_the_op_before_any_oracle(zoo, tmp_path):
    path = zoo["sqrt_head"]
    want = _one_error_line(_cli("plan", path, "--board", "stm32f746g-disco"))
    assert "SQRT" in want
    for args in (["verify", path], ["generate", path, "-o", str(tmp_path / "gen")],
                 ["build", path, "--board", "stm32f746g-disco", "-o", str(tmp_path / "fw")]):
        p = _cli(*args)
        assert p.returncode == 2, args
        assert _one_error_line(p) == want, args
        assert "neither TFLite" not in p.stderr and "test vector" not in p.stderr
    assert not (tmp_path / "gen").exists() and not (tmp_path / "fw").exists()
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)     # no temporary folder left either


def test_build_checks_fit_before_vectors_and_leaves_nothing(zoo, tmp_path):
    # ds_cnn's arena (2,160 B) + a 326,000 B stack reserve > the F746's 327,680 B of contiguous
    # SRAM (one region: no other region could take part of the arena, as the F4's CCM would).
    out = tmp_path / "fw"
    p = _cli("build", zoo["ds_cnn"], "--board", "stm32f746g-disco", "-o", str(out), "--stack-bytes", "326000")
    assert p.returncode == 3
    line = _one_error_line(p)
    assert line.startswith("error: model does not fit stm32f746g-disco: SRAM region DTCM+SRAM1+SRAM2")
    assert "327,680 B" in line and "(stack reserve) 326,000 B" in line and "tinyml_arena 2,160 B" in line
    assert "overflowed by 480 bytes" in line           # 2,160 + 326,000 - 327,680
    assert "generating" not in p.stderr and "test vector" not in p.stderr and "compiling" not in p.stderr
    assert os.listdir(tmp_path) == []


def test_failed_build_keeps_the_previous_build(zoo, tmp_path):
    from tinyml.errors import UnsupportedOpError
    from tinyml.firmware.build import build_firmware
    out = tmp_path / "fw"
    out.mkdir()
    (out / "keep.txt").write_text("previous")
    with pytest.raises(UnsupportedOpError):
        build_firmware(zoo["sqrt_head"], "stm32f746g-disco", str(out))
    assert os.listdir(out) == ["keep.txt"] and (out / "keep.txt").read_text() == "previous"
    assert sorted(os.listdir(tmp_path)) == ["fw"]


def test_inspect_lists_every_op_with_its_status(zoo):
    p = _cli("inspect", zoo["sqrt_head"])
    assert p.returncode == 1
    assert "quantization: int8" in p.stdout
    ops = [ln.split() for ln in p.stdout.splitlines() if ln.startswith("  op ")]
    status = {}
    for _, _, kind, st in ops:
        status.setdefault(kind, set()).add(st)
    assert status["SQRT"] == {"unsupported"} and status["FULLY_CONNECTED"] == {"supported"}
    assert "SQRT" in _one_error_line(p)

    yolo = _cli("inspect", zoo["yolo"])       # TILE and TRANSPOSE_CONV now supported; folding listed
    assert yolo.returncode == 0, yolo.stderr[-2000:]
    kinds = {ln.split()[2]: ln.split()[3] for ln in yolo.stdout.splitlines() if ln.startswith("  op ")}
    assert kinds["TILE"] == kinds["TRANSPOSE_CONV"] == kinds["CONV_2D"] == "supported"
    assert "folded at import" in yolo.stdout and "SHAPE (file op 4)" in yolo.stdout

    ok = _cli("inspect", zoo["ds_cnn"], "--json")
    assert ok.returncode == 0
    import json
    info = json.loads(ok.stdout)
    assert info["quantization"] == "int8" and info["supported"] and info["error"] is None
    assert [f["kind"] for f in info["folded_ops"]] == ["SHAPE", "STRIDED_SLICE", "PACK"]
    assert all(o["status"] == "supported" for o in info["ops"])


def test_inspect_says_16x8_and_supported(zoo):
    p = _cli("inspect", zoo["cnn_16x8"])
    assert p.returncode == 0, p.stderr[-2000:]
    assert "quantization: 16x8" in p.stdout
    assert "all ops supported" in p.stdout
    kinds = {ln.split()[2]: " ".join(ln.split()[3:]) for ln in p.stdout.splitlines() if ln.startswith("  op ")}
    # every op runs on int16 activations, and each line says so
    assert kinds == {"CONV_2D": "(16x8) supported", "MEAN": "(16x8) supported",
                     "FULLY_CONNECTED": "(16x8) supported"}


@pytest.fixture(scope="module")
def resnet_16x8(tmp_path_factory):
    """The ResNet-style CNN exported with 16x8 quantization (int16 I/O), its float-I/O
    16x8 export and its int8 export."""
    d = tmp_path_factory.mktemp("zoo16")
    return {"int16": export("resnet", d, int16=True), "float": export("resnet", d, int16=True, float_io=True),
            "int8": export("resnet", d)}


@pytest.mark.slow
@pytest.mark.parametrize("io", ["int16", "float"])
def test_resnet_16x8_verifies_bit_exact_and_plans_int16_at_two_bytes(resnet_16x8, io):
    """16x8 ResNet: CONV_2D, ADD (general int16 path), MEAN, FULLY_CONNECTED in int16 (plus
    QUANTIZE float32 -> int16 and DEQUANTIZE with float I/O), bit-exact against TFLite's
    reference; every int16 activation planned at 2 bytes per element; arena printed beside
    the int8 export's."""
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.pipeline import plan_model
    from tinyml.codegen.verify import verify
    from tinyml.commands.inspect import quantization_kind
    path = resnet_16x8[io]
    g = import_tflite(path)
    assert quantization_kind(g) == "16x8"
    kinds = [op.kind for op in g.ops]
    assert kinds.count("CONV_2D") == 6 and kinds.count("ADD") == 2
    assert {"MEAN", "FULLY_CONNECTED"} <= set(kinds)
    if io == "float":
        assert kinds[0] == "QUANTIZE" and kinds[-1] == "DEQUANTIZE"
    res = verify(path, count=3, seed=2)
    assert res.oracle == "tflite-reference" and res.notes == []
    assert res.bit_exact, res.first_mismatch
    assert res.output_bytes_compared == 3 * 10 * (2 if io == "int16" else 4)
    rep, compiled = plan_model(path, "stm32f746g-disco")
    acts = [t for t in g.tensors if t.dtype == "int16" and not t.is_const]
    assert acts and all(t.nbytes == 2 * t.numel for t in acts)
    assert rep.arena_bytes >= max(t.nbytes for t in acts)
    rep8, _ = plan_model(resnet_16x8["int8"], "stm32f746g-disco")
    print(f"\nzoo resnet 16x8 ({io} I/O): arena {rep.arena_bytes:,} B; int8 export: {rep8.arena_bytes:,} B "
          f"({rep.arena_bytes / rep8.arena_bytes:.2f}x)")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_resnet_16x8_selftest_on_emulated_f746(resnet_16x8, tmp_path):
    """build (self-test vectors from TFLite's reference, int16 in and out) + emulate on the
    F746's QEMU stand-in (mps2-an500): every vector passes; instructions printed."""
    from tinyml.firmware.build import build_firmware
    from tinyml.firmware.emulate import emulate
    out = str(tmp_path / "fw")
    build_firmware(resnet_16x8["int16"], "stm32f746g-disco", out, emulator_variant=True, num_vectors=2)
    res = emulate(out, timeout=600)
    assert res.passed, res.output[-2000:]
    print(f"\nzoo resnet 16x8 on mps2-an500: {res.instructions_per_inference:,} instructions per inference")


@pytest.mark.parametrize("kind", ["float", "dynamic-range"])
def test_inspect_says_float_and_dynamic_range_and_fails(tmp_path, kind):
    import numpy as np
    import tensorflow as tf

    from tinyml.tinyvit.export import _quiet_stdout
    inp = tf.keras.Input((64,))      # >= 1,024 weights: the converter quantizes them (dynamic range)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(4)(tf.keras.layers.Dense(64, activation="relu")(inp)))
    model.set_weights([np.full(w.shape, 0.1, np.float32) for w in model.get_weights()])
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if kind == "dynamic-range":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]     # no representative dataset
    with _quiet_stdout():
        blob = conv.convert()
    path = tmp_path / f"{kind}.tflite"
    path.write_bytes(blob)
    p = _cli("inspect", str(path))
    assert p.returncode == 1
    assert f"quantization: {kind}" in p.stdout
    assert "not fully int8" in _one_error_line(p) or "float" in _one_error_line(p)


@pytest.mark.slow
@pytest.mark.emulator
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_ds_cnn_standard_export_runs_on_the_emulated_board(zoo, tmp_path):
    """Issue 13 item 4, first row: the standard-export DS-CNN builds for the F407 and its
    self-test (expected outputs from TFLite on the original dynamic file) passes on QEMU."""
    from tinyml.firmware.build import build_firmware
    from tinyml.firmware.emulate import emulate
    out = str(tmp_path / "fw")
    res = build_firmware(zoo["ds_cnn"], "stm32f4-discovery", out, num_vectors=3, progress=lambda m: None)
    assert res.oracle == "tflite-reference" and res.vectors == 3
    run = emulate(out, timeout=120)
    assert run.passed and len(run.vectors) == 3 and all(v.passed for v in run.vectors), run.output
    # ~180 k MACs (conv 10x4 stride 2: 80,000; 2 depthwise 3x3: 36,000; 2 pointwise: 64,000)
    assert 180_000 < run.instructions_per_inference < 5_000_000
    assert run.arena_used_bytes == run.arena_bytes == 2_160    # the planned arena, all of it touched


# the zoo's board run on the F746: the YOLO-style detector (TRANSPOSE_CONV, TILE, RESIZE) and the
# Conv1D model; DS-CNN with Flatten runs on the F407 in the test above (adding it here measured
# +75 s under load). The op sweeps cover the other kernels on the host.
EMULATE_SET = ("yolo", "conv1d")


@pytest.mark.slow
@pytest.mark.emulator
@pytest.mark.timeout(400)
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_zoo_builds_and_emulates_on_the_f746(zoo, tmp_path):
    """Issue 13 item 4: standard-export zoo models (verified bit-exact above) are built for the
    STM32F746G-DISCO (QEMU's mps2-an500 Cortex-M7 stand-in) and their self-test, with expected
    outputs from the oracle on the original dynamic file, passes; a model too large for the board
    would have to say "does not fit" with its figure. Prints arena vs TFLM per model."""
    from tinyml.codegen.pipeline import plan_model
    from tinyml.errors import TinymlError
    from tinyml.firmware.build import build_firmware
    from tinyml.firmware.emulate import emulate
    paths = {n: zoo[n] if n in zoo else export(n, tmp_path) for n in EMULATE_SET}
    rows = []
    for name, path in paths.items():
        out = str(tmp_path / f"fw_{name}")
        try:
            res = build_firmware(path, "stm32f746g-disco", out, num_vectors=1, progress=lambda m: None)
        except TinymlError as e:                  # the only acceptable failure: a clear no-fit
            assert "does not fit" in str(e), str(e)
            rows.append(f"{name:12s} does not fit: {e}")
            continue
        assert res.vectors == 1
        run = emulate(out, timeout=120)
        assert run.passed and run.vectors and all(v.passed for v in run.vectors), run.output[-2000:]
        assert run.fault is None and not run.timed_out
        rep, _ = plan_model(path, "stm32f746g-disco", compare_tflm=name not in TFLM_CANNOT)
        assert run.arena_bytes == rep.arena_bytes and 0 < run.arena_used_bytes <= run.arena_bytes
        tflm = f"{rep.tflm_arena_bytes:,} B" if rep.tflm_arena_bytes else f"n/a ({TFLM_CANNOT[name]})"
        rows.append(f"{name:12s} emulated: pass, {run.instructions_per_inference:,} instructions, "
                    f"arena {run.arena_bytes:,} B, TFLM {tflm}")
    print("\nzoo on the F746 (QEMU mps2-an500):\n" + "\n".join(rows))
    assert any("emulated: pass" in r for r in rows)      # a no-fit is reported, not an error


# the ops of the keras.io ViT's 16x8 export that run on int16 activations, and the float island
VIT_16X8_OPS = {"CONV_2D", "RESHAPE", "ADD", "MEAN", "SQUARED_DIFFERENCE", "RSQRT", "MUL", "FULLY_CONNECTED",
                "TRANSPOSE", "BATCH_MATMUL", "SOFTMAX", "GELU", "QUANTIZE", "DEQUANTIZE"}


@pytest.fixture(scope="module")
def vit_16x8(tmp_path_factory):
    """The keras.io-style ViT exported with the 16x8 recipe, int16 I/O, TFLITE_BUILTINS as the float
    fallback (the strict recipe stops at LayerNormalization's NEG)."""
    return export("vit", tmp_path_factory.mktemp("zoo16vit"), int16=True)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_vit_16x8_verifies_bit_exact_and_passes_on_emulated_f746(vit_16x8, zoo, tmp_path):
    """16x8 ViT: every op but the LayerNorm NEG (float32 between DEQUANTIZE and QUANTIZE) on int16
    activations. Neither runtime runs it whole (TensorFlow 2.21's TFLite has no int16
    SQUARED_DIFFERENCE, tflite_micro no GELU), so the oracle is the per-op one; verify is bit-exact
    and the F746 self-test (QEMU mps2-an500) passes; arena and instructions printed."""
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.lowering import is_16x8
    from tinyml.codegen.pipeline import plan_model
    from tinyml.codegen.verify import verify
    from tinyml.commands.inspect import quantization_kind
    from tinyml.firmware.build import build_firmware
    from tinyml.firmware.emulate import emulate
    g = import_tflite(vit_16x8)
    assert quantization_kind(g) == "16x8"
    assert {op.kind for op in g.ops if is_16x8(op, g)} == VIT_16X8_OPS
    assert {op.kind for op in g.ops if not is_16x8(op, g)} == {"NEG"}
    p = _cli("inspect", vit_16x8)
    assert p.returncode == 0 and "all ops supported" in p.stdout, p.stdout[-2000:]
    res = verify(vit_16x8, count=4, seed=3)
    assert res.oracle == "tflite-per-op" and res.rounding == "tflite"
    assert len(res.notes) == 1 and "SQUARED_DIFFERENCE (int16) in tflite_micro" in res.notes[0], res.notes
    assert res.bit_exact, res.first_mismatch
    assert res.output_bytes_compared == 4 * 10 * 2
    rep, _ = plan_model(vit_16x8, "stm32f746g-disco", compare_tflm=True)
    assert rep.tflm_arena_bytes is None                       # TFLM has no GELU kernel
    rep8, _ = plan_model(zoo["vit"], "stm32f746g-disco")
    out = str(tmp_path / "fw")
    build_firmware(vit_16x8, "stm32f746g-disco", out, emulator_variant=True, num_vectors=2)
    run = emulate(out, timeout=600)
    assert run.passed, run.output[-2000:]
    print(f"\nzoo vit 16x8: arena {rep.arena_bytes:,} B (int8 export {rep8.arena_bytes:,} B; TFLM cannot run "
          f"it: no GELU kernel); mps2-an500 {run.instructions_per_inference:,} instructions per inference")


@pytest.mark.slow
@pytest.mark.emulator
@pytest.mark.timeout(500)
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_fused_lstm_row_verifies_and_runs_on_the_emulated_f746(tmp_path):
    """The fused LSTM row: Keras 2 (tf_keras) LSTM(12) over 8 steps with Input(batch_size=1),
    the standard int8 recipe -> UNIDIRECTIONAL_SEQUENCE_LSTM (int8 weights, int16 cell state).
    verify: bit-exact with TFLite's reference over 6 consecutive inputs (state carried); the
    arena against TFLM's for the same file; build + emulate on the F746 (self-test passes)."""
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.pipeline import plan_model
    from tinyml.codegen.verify import verify
    from tinyml.firmware.build import build_firmware
    from tinyml.firmware.emulate import emulate
    path = export("lstm_fused", tmp_path)
    g = import_tflite(path)
    assert [op.kind for op in g.ops] == ["UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "FULLY_CONNECTED"]
    res = verify(path, count=6, seed=3)
    assert res.oracle == "tflite-reference" and res.notes == []
    assert res.bit_exact and res.output_bytes_compared == 6 * 4, res.first_mismatch
    rep, _ = plan_model(path, "stm32f746g-disco", compare_tflm=True)
    out = str(tmp_path / "fw")
    build = build_firmware(path, "stm32f746g-disco", out, num_vectors=2, progress=lambda m: None)
    assert build.vectors == 2
    run = emulate(out, timeout=120)
    assert run.passed and len(run.vectors) == 2 and all(v.passed for v in run.vectors), run.output[-2000:]
    assert run.fault is None and not run.timed_out and run.arena_bytes == rep.arena_bytes
    state = rep.accounting["state_bytes"]
    assert state == 48                          # output state 12 B + cell state 24 B, each 16-aligned
    print(f"\nzoo lstm_fused: arena {rep.arena_bytes:,} B + state {state} B, "
          f"TFLM arena {rep.tflm_arena_bytes:,} B; emulated: pass, "
          f"{run.instructions_per_inference:,} instructions per inference")
    assert rep.tflm_arena_bytes and rep.arena_bytes <= rep.tflm_arena_bytes
