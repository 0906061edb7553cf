"""Issue 13's first table, exported the standard way (tests/zoo_models.py): batch -1,
Keras' shape arithmetic and all. Rows whose ops exist verify byte for byte against
TFLite's reference interpreter on the original (dynamic) file; rows that need a new
op must be rejected for that op only, in one line, by every command."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from zoo_models import export

pytestmark = pytest.mark.timeout(600)

SHAPE_OPS = {"SHAPE", "PACK", "STRIDED_SLICE", "GATHER", "REDUCE_PROD", "CONCATENATION", "FILL"}

# row -> the ops tinyml lacks; once shapes are folded nothing else may be missing.
# (The op engineer adds these; the lead flips these rows to the verify test after merging.)
MISSING = {
    "yolo": {"TILE", "TRANSPOSE_CONV"},
    "resize_nearest": {"RESIZE_NEAREST_NEIGHBOR"},
    "lstm": {"UNPACK", "SPLIT"},
    "gru": {"UNPACK", "SPLIT"},
}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    d = tmp_path_factory.mktemp("zoo")
    return {name: export(name, d) for name in ("vit", "ds_cnn", *MISSING, "cnn_16x8")}


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
@pytest.mark.parametrize("name", ["vit", "ds_cnn"])
def test_standard_export_verifies_bit_exact(zoo, name):
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.verify import verify
    path = zoo[name]
    assert _dynamic_in_file(path), "the export should carry a dynamic batch"
    g = import_tflite(path)
    assert {k for _, k in g.folded} >= {"SHAPE", "PACK"}
    assert not {op.kind for op in g.ops} & {"SHAPE", "PACK", "GATHER", "REDUCE_PROD"}
    assert all(d > 0 for t in g.tensors for d in t.shape)
    res = verify(path, count=6, seed=3)
    assert res.oracle == "tflite-reference"
    assert res.bit_exact, res.first_mismatch
    assert res.inputs_compared == 6 and res.output_bytes_compared == 6 * {"vit": 10, "ds_cnn": 12}[name]


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
    assert g.folded or name == "resize_nearest"
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
    path = zoo["resize_nearest"]
    want = _one_error_line(_cli("plan", path, "--board", "stm32f746g-disco"))
    assert "RESIZE_NEAREST_NEIGHBOR" in want
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
        build_firmware(zoo["lstm"], "stm32f746g-disco", str(out))
    assert os.listdir(out) == ["keep.txt"] and (out / "keep.txt").read_text() == "previous"
    assert sorted(os.listdir(tmp_path)) == ["fw"]


def test_inspect_lists_every_op_with_its_status(zoo):
    p = _cli("inspect", zoo["yolo"])
    assert p.returncode == 1
    assert "quantization: int8" in p.stdout
    ops = [ln.split() for ln in p.stdout.splitlines() if ln.startswith("  op ")]
    status = {}
    for _, _, kind, st in ops:
        status.setdefault(kind, set()).add(st)
    assert status["TILE"] == {"unsupported"} and status["TRANSPOSE_CONV"] == {"unsupported"}
    assert status["CONV_2D"] == {"supported"}
    assert "folded at import" in p.stdout and "SHAPE (file op 4)" in p.stdout
    assert "TILE" in _one_error_line(p)

    ok = _cli("inspect", zoo["ds_cnn"], "--json")
    assert ok.returncode == 0
    import json
    info = json.loads(ok.stdout)
    assert info["quantization"] == "int8" and info["supported"] and info["error"] is None
    assert [f["kind"] for f in info["folded_ops"]] == ["SHAPE", "STRIDED_SLICE", "PACK"]
    assert all(o["status"] == "supported" for o in info["ops"])


def test_inspect_says_16x8_and_fails(zoo):
    p = _cli("inspect", zoo["cnn_16x8"])
    assert p.returncode == 1
    assert "quantization: 16x8" in p.stdout
    assert "int16" in _one_error_line(p)
    assert "all ops supported" not in p.stdout


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
