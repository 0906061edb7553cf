"""--stream-input in serial mode: the firmware receives the image in row stripes
over QEMU's UART (`stream%`, app/serial_eembc.c) while the model runs, with no
image buffer in SRAM; results equal TensorFlow Lite's reference."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from serial_client import Client, free_port
from tinyml import paths

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed"),
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed"),
]

VIT = os.path.join(paths.shared_models(), "vit", "vit_relu_d64x4.tflite")   # 28x28x1, patch 4


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    from tinyml.firmware.build import build_firmware, read_model_header
    from tinyml.firmware.qemu import spawn_qemu, stop_qemu
    out = str(tmp_path_factory.mktemp("stream_serial"))
    res = build_firmware(VIT, "stm32f4-discovery", out, mode="serial", stream_input=True,
                         progress=lambda m: None)
    hdr = read_model_header(os.path.join(out, "model"))
    assert hdr["TINYML_STREAM_INPUT"] == 1
    # no image buffer: static RAM is far below the 784-byte image plus the arena
    assert res.sizes["native"].bss < hdr["TINYML_INPUT_BYTES"]
    port = free_port()
    proc = spawn_qemu(out, f"tcp:127.0.0.1:{port},server=on,wait=on")
    try:
        client = Client(port)
        assert "m-init-done" in client.until_ready()
        yield client, hdr
    finally:
        stop_qemu(proc)


def _reference(x: np.ndarray) -> np.ndarray:
    from tinyml.codegen.oracle import reference_outputs
    outs, _ = reference_outputs(VIT, [[x]])
    return np.asarray(outs[0][0]).astype(np.int64).reshape(-1)


def _stream(dev: Client, image: bytes, chunk: int = 48) -> list[str]:
    """Send `stream%`, then each requested stripe as `db <hex>%` chunks; the final lines."""
    lines = dev.cmd("stream")
    assert lines[0].startswith("m-stream-start-")
    sent = 0
    while True:
        req = [l for l in lines if l.startswith("m-stripe-")]
        if not req:
            return lines
        row0, nbytes = (int(v) for v in req[-1][len("m-stripe-"):].split("-"))
        start = row0 * (len(image) // 28)
        assert start == sent, (start, sent)       # stripes come in order, each once
        stripe = image[start:start + nbytes]
        for i in range(0, nbytes, chunk):
            lines = dev.cmd("db " + stripe[i:i + chunk].hex())
        sent += nbytes


@pytest.mark.timeout(600)
def test_streamed_uart_inference_matches_tflite(device):
    dev, hdr = device
    rng = np.random.default_rng(21)
    x = rng.integers(-128, 128, size=28 * 28).astype(np.int8)
    lines = _stream(dev, x.tobytes())
    assert hdr["TINYML_STREAM_STRIPES"] == 7 and hdr["TINYML_STREAM_STRIPE_BYTES"] == 112
    res = [l for l in lines if l.startswith("m-results-[")]
    assert len(res) == 1 and lines[-1] == "m-ready", lines
    vals = np.array([float(v) for v in res[0][len("m-results-["):-1].split(",")])
    from tinyml.codegen.importer import import_tflite
    g = import_tflite(VIT)
    q = g.t(g.outputs[0]).quant
    got = np.round(vals / q.s).astype(np.int64) + q.zp
    np.testing.assert_array_equal(got, _reference(x))


@pytest.mark.timeout(600)
def test_db_load_refused_and_bad_stripe_aborts(device):
    dev, _ = device
    r = dev.cmd("db load 784")
    assert r[0].startswith("e-[") and "stream" in r[0] and r[-1] == "m-ready"
    lines = dev.cmd("stream")
    assert any(l.startswith("m-stripe-0-") for l in lines)
    r = dev.cmd("name")                                 # not a db command: aborts the run
    assert any(l.startswith("e-[Stream aborted") for l in r)
    assert any(l.startswith("e-[tinyml_run returned") for l in r) and r[-1] == "m-ready"
    assert dev.cmd("name") == ["m-name-dut-[tinyml]", "m-ready"]   # device still serves


@pytest.mark.timeout(600)
def test_runner_stream_matches_tflite_and_rejects_a_short_input(device):
    """deploy.runner.DeviceRunner.stream (what `tinyml run --stream` uses) against
    the emulated device: TFLite's output; a too-short input is one clear error and
    leaves the device serving."""
    from tinyml.codegen.importer import import_tflite
    from tinyml.deploy.errors import DeviceProtocolError
    from tinyml.deploy.runner import DeviceRunner
    dev, _ = device
    runner = DeviceRunner(dev.ser, timeout=30, chunk=40)
    x = np.random.default_rng(5).integers(-128, 128, size=28 * 28).astype(np.int8)
    inf = runner.stream(x.tobytes(), name="x")
    q = import_tflite(VIT).t(import_tflite(VIT).outputs[0]).quant
    got = np.round(np.array(inf.results) / q.s).astype(np.int64) + q.zp
    np.testing.assert_array_equal(got, _reference(x))
    with pytest.raises(DeviceProtocolError, match="input size"):
        runner.stream(x.tobytes()[:100])
    assert runner.command("name") == ["m-name-dut-[tinyml]"]


@pytest.fixture(scope="module")
def stage_device(tmp_path_factory):
    """A CNN stem (test_fuse_stage's STEM_B: depthwise x4 stride 2 on the image, then
    dw/pw layers) built for serial --stream-input: its first layers run as a
    FUSED_STAGE that asks for image rows one at a time over the UART."""
    import json

    import keras

    from test_fuse_stage import SHAPE_B, STEM_B, _convert, _model
    from tinyml.firmware.build import build_firmware
    from tinyml.firmware.qemu import spawn_qemu, stop_qemu
    keras.utils.set_random_seed(3)
    d = tmp_path_factory.mktemp("stream_stage")
    path = _convert(_model(keras, STEM_B, SHAPE_B), SHAPE_B, str(d / "stem.tflite"))
    out = str(d / "fw")
    build_firmware(path, "stm32f4-discovery", out, mode="serial", stream_input=True, progress=lambda m: None)
    with open(os.path.join(out, "model", "plan.json")) as f:
        kinds = [s.get("kind") for s in json.load(f)["steps"]]
    assert "FUSED_STAGE" in kinds, kinds
    port = free_port()
    proc = spawn_qemu(out, f"tcp:127.0.0.1:{port},server=on,wait=on")
    try:
        client = Client(port)
        assert "m-init-done" in client.until_ready()
        yield client, path
    finally:
        stop_qemu(proc)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_runner_stream_through_a_cnn_stage_matches_tflite(stage_device):
    """`tinyml run --stream` (DeviceRunner.stream) on a CNN whose first layers are a
    FUSED_STAGE: the device requests the 20 image rows in order, each once, and the
    result equals TFLite's reference interpreter byte for byte."""
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.oracle import reference_outputs
    from tinyml.deploy.runner import DeviceRunner
    dev, path = stage_device
    runner = DeviceRunner(dev.ser, timeout=30, chunk=40)
    x = np.random.default_rng(8).integers(-128, 128, size=20 * 15).astype(np.int8)
    inf = runner.stream(x.tobytes(), name="x")
    g = import_tflite(path)
    q = g.t(g.outputs[0]).quant
    got = np.round(np.array(inf.results) / q.s).astype(np.int64) + q.zp
    outs, _ = reference_outputs(path, [[x.reshape(1, 20, 15, 1)]])
    np.testing.assert_array_equal(got, np.asarray(outs[0][0]).astype(np.int64).reshape(-1))
