"""--stream-input: the patch-embedding conv reads the image in row stripes.

Numerics are checked against TensorFlow Lite's reference kernels (codegen.verify
runs the generated C on the host; the host harness serves each record's rows
through tinyml_read_input_rows and checks they are asked for in order). Models
are exported here from tinyvit / Keras (untrained weights, random calibration),
so nothing large is committed.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_convert import standard_int8

from tinyml.codegen.verify import verify
from tinyml import paths

SHARED_VIT = os.path.join(paths.shared_models(), "vit", "vit_relu_d64x4.tflite")
VWW = os.path.join(paths.shared_models(), "mlperf-tiny", "vww_96_int8.tflite")
AD01 = os.path.join(paths.shared_models(), "mlperf-tiny", "ad01_int8.tflite")
# VWW streams since FUSED_STAGE (tests/test_fuse_stage.py); ResNet-8's first conv feeds a
# residual block, so it neither is a patch embedding nor starts a stage
RESNET = os.path.join(paths.shared_models(), "mlperf-tiny", "pretrainedResnet_quant.tflite")


def tinyml(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def _convert(model, calib: np.ndarray) -> bytes:
    from tinyml.tinyvit.export import representative
    return standard_int8(model, representative(calib, len(calib)))


@pytest.fixture(scope="module")
def small_vit(tmp_path_factory):
    """64x64x3 ViT, 8x8 patches, low-rank patch embedding (8x8 conv to r=6, then FC to D)."""
    import keras

    from tinyml.tinyvit.config import ViTConfig
    from tinyml.tinyvit.export import to_int8_tflite
    from tinyml.tinyvit.model import build_model
    cfg = ViTConfig(name="stream_small", image_size=64, channels=3, patch_size=8, embed_dim=32, depth=2,
                    num_heads=2, mlp_ratio=2.0, activation="relu", patch_rank=6).validate()
    keras.utils.set_random_seed(1)
    calib = np.random.default_rng(0).random((32, 64, 64, 3)).astype(np.float32)
    path = tmp_path_factory.mktemp("stream") / "vit_stream_small.tflite"
    path.write_bytes(to_int8_tflite(build_model(cfg), cfg, calib, count=32))
    return str(path)


@pytest.fixture(scope="module")
def patch_conv_only(tmp_path_factory):
    """Only the patch embedding, so every conv output byte is compared: a 60x72x3 image
    (height not a multiple of the patch: the last 4 rows are never read), 8x8 patches,
    16 channels -> [1, 7, 9, 16]."""
    import keras
    keras.utils.set_random_seed(2)
    inp = keras.Input((60, 72, 3), batch_size=1)
    out = keras.layers.Conv2D(16, 8, strides=8, padding="valid")(inp)
    calib = np.random.default_rng(1).random((16, 60, 72, 3)).astype(np.float32)
    path = tmp_path_factory.mktemp("stream") / "patch_conv.tflite"
    path.write_bytes(_convert(keras.Model(inp, out), calib))
    return str(path)


@pytest.fixture(scope="module")
def vit_224(tmp_path_factory):
    """The tinyvit preset vit_224_stream: 224x224x3, 16x16 patches, D=64, 4 blocks (untrained)."""
    import keras

    from tinyml.tinyvit.config import preset
    from tinyml.tinyvit.export import to_int8_tflite
    from tinyml.tinyvit.model import build_model
    cfg = preset("vit_224_stream")
    keras.utils.set_random_seed(0)
    calib = np.random.default_rng(0).random((8,) + cfg.input_shape).astype(np.float32)
    path = tmp_path_factory.mktemp("stream") / "vit_224_stream.tflite"
    path.write_bytes(to_int8_tflite(build_model(cfg), cfg, calib, count=8))
    return str(path)


# ------------------------------------------------------------------ numerics


@pytest.mark.timeout(900)
def test_patch_conv_streamed_bit_exact(patch_conv_only, tmp_path):
    res = verify(patch_conv_only, count=8, seed=3, sanitize=True, stream_input=True,
                 work_dir=str(tmp_path))
    assert res.inputs_compared == 8 and res.output_bytes_compared == 8 * 7 * 9 * 16
    assert res.mismatching_bytes == 0, res.first_mismatch
    plan = json.load(open(tmp_path / "gen" / "plan.json"))
    assert plan["stream_input"]["stripes"] == 7 and plan["stream_input"]["image_rows"] == 60
    assert plan["stream_input"]["stripe_bytes"] == 8 * 72 * 3


@pytest.mark.timeout(900)
@pytest.mark.parametrize("stream", [True, False])
def test_small_vit_bit_exact_host(small_vit, stream):
    res = verify(small_vit, count=10, seed=4, sanitize=stream, stream_input=stream)
    assert res.inputs_compared == 10 and res.mismatching_bytes == 0, res.first_mismatch


@pytest.mark.timeout(900)
def test_shared_trained_vit_streamed_bit_exact_cli():
    """The reference ViT (trained, 28x28x1, patch 4) through `tinyml verify --stream-input --json`."""
    r = tinyml("verify", SHARED_VIT, "--stream-input", "--inputs", "20", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["bit_exact"] and d["stream_input"] is True and d["inputs_compared"] == 20


@pytest.mark.timeout(900)
@pytest.mark.parametrize("stream", [True, False])
def test_vit_224_bit_exact_host(vit_224, stream):
    res = verify(vit_224, count=3, seed=6, stream_input=stream)
    assert res.inputs_compared == 3 and res.mismatching_bytes == 0, res.first_mismatch
    assert (res.arena_bytes < 224 * 224 * 3) == stream


# ------------------------------------------------------------------ planner


def _plans(model):
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.lower import lower_graph
    from tinyml.codegen.stream import check_stream_input, stream_steps
    from tinyml.memory_planner.plan import check_plan, plan_steps
    graph = import_tflite(model)
    steps, _ = lower_graph(graph)
    full = plan_steps(graph, steps)
    info = check_stream_input(graph, steps)
    streamed = plan_steps(graph, stream_steps(graph, steps, info), stream_input_bytes=info.stripe_bytes)
    check_plan(streamed)
    return graph, info, full, streamed


@pytest.mark.timeout(600)
def test_streamed_plan_holds_one_stripe_not_the_image(vit_224):
    graph, info, full, streamed = _plans(vit_224)
    image = graph.t(graph.inputs[0]).nbytes
    assert image == 224 * 224 * 3 == info.image_bytes
    assert info.rows == 16 and info.stripes == 14 and info.stripe_bytes == 16 * 224 * 3
    buf = streamed.buffers[streamed.tensor_buffer[graph.inputs[0]]]
    assert buf.size == info.stripe_bytes and buf.first == buf.last == 0
    # the whole image cannot be in the streamed arena: it is smaller than the image
    assert streamed.arena_bytes < image <= full.arena_bytes
    assert all(b.size < image for b in streamed.buffers)
    # nothing may share the stripe's bytes while the conv runs (no overlap allowance)
    assert all(streamed.tensor_buffer[graph.inputs[0]] not in pair for pair in streamed.overlaps)
    # both fit the STM32F746's 320 KB (arena + 4 KB stack reserve)
    assert full.arena_bytes + 4096 <= 320 * 1024 and streamed.arena_bytes + 4096 <= 320 * 1024


@pytest.mark.timeout(600)
def test_plan_cli_reports_both_peaks(vit_224):
    r = tinyml("plan", vit_224, "--board", "stm32f746g-disco", "--stream-input", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["stream_input"] is True and d["fits"] is True
    assert d["stream_stripe_bytes"] == 16 * 224 * 3
    assert d["arena_bytes"] < 224 * 224 * 3 < d["full_image_arena_bytes"] <= 320 * 1024
    r2 = tinyml("plan", vit_224, "--board", "stm32f746g-disco", "--json")
    assert json.loads(r2.stdout)["arena_bytes"] == d["full_image_arena_bytes"]


# ------------------------------------------------------------------ bad input


@pytest.mark.timeout(600)
@pytest.mark.parametrize("cmd,model,what", [
    ("plan", RESNET, "operator 0 (CONV_2D) is a 3x3 conv with stride 1"),
    ("verify", AD01, "operator 0 (FULLY_CONNECTED)"),
    ("generate", RESNET, "SAME padding"),
])
def test_not_a_patch_conv_is_one_line_error(cmd, model, what, tmp_path):
    args = [cmd, model, "--stream-input"] + (["-o", str(tmp_path / "g")] if cmd == "generate" else [])
    r = tinyml(*args)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --stream-input:"), r.stderr
    assert what in lines[0] and "Traceback" not in r.stderr and r.stdout == ""
    assert not os.path.exists(tmp_path / "g" / "model.c")


# ------------------------------------------------------------------ emulator


@pytest.mark.emulator
@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.skipif(__import__("shutil").which("arm-none-eabi-gcc") is None
                    or __import__("shutil").which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc or qemu-system-arm not installed")
def test_vit_224_selftest_on_emulated_f746_both_modes(vit_224, tmp_path):
    """224x224x3 ViT on the STM32F746 (QEMU mps2-an500 with the board's SRAM and flash
    sizes) through the CLI, streamed (the self-test serves each vector's rows from
    flash as stripes) and with the whole image in the arena; both within 320 KB."""
    peaks = {}
    for mode in ("stream", "full"):
        out = str(tmp_path / mode)
        extra = ["--stream-input"] if mode == "stream" else []
        r = tinyml("build", vit_224, "--board", "stm32f746g-disco", "-o", out, "--emulator-variant",
                   "--vectors", "2", "--json", *extra, timeout=900)
        assert r.returncode == 0, r.stderr
        b = json.loads(r.stdout)
        native = b["variants"]["native"]
        assert native["ram_bytes"] <= 320 * 1024 and native["flash_bytes"] <= 1024 * 1024
        r = tinyml("emulate", out, "--json", "--timeout", "600", timeout=900)
        assert r.returncode == 0, r.stderr
        em = json.loads(r.stdout)
        assert em["passed"] and len(em["vectors"]) == 2 and all(v["passed"] for v in em["vectors"])
        assert em["machine"] == "mps2-an500"
        assert em["arena_used_bytes"] <= em["arena_bytes"] == native["arena"]
        assert em["peak_sram_bytes_measured"] <= 320 * 1024
        peaks[mode] = em
    image = 224 * 224 * 3
    # streamed: the arena cannot hold the image; full: it must
    assert peaks["stream"]["arena_bytes"] < image <= peaks["full"]["arena_bytes"]
    assert peaks["stream"]["peak_sram_bytes_measured"] < image
