"""Serial mode: the MLPerf Tiny / EEMBC runner protocol over QEMU's UART,
driven by a pyserial client (socket:// URL onto QEMU's TCP chardev)."""
from __future__ import annotations

import os
import re
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

AD01 = os.path.join(paths.shared_models(), "mlperf-tiny", "ad01_int8.tflite")


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    from tinyml.codegen.emit import generate
    from tinyml.firmware.build import build_firmware
    from tinyml.firmware.qemu import spawn_qemu, stop_qemu
    from tinyml.errors import UnsupportedOpError
    out = str(tmp_path_factory.mktemp("serial"))
    try:
        generate(AD01, os.path.join(out, "model"))
    except UnsupportedOpError as exc:
        pytest.skip(f"codegen cannot generate ad01 yet: {exc.cause}")
    # the raw protocol (int8 input bytes, every output value); the MLPerf Tiny ad01 formats are
    # tests/test_eembc_compliance.py's
    build_firmware(AD01, "stm32f4-discovery", out, model_dir=os.path.join(out, "model"), mode="serial",
                   eembc_id="none")
    port = free_port()
    proc = spawn_qemu(out, f"tcp:127.0.0.1:{port},server=on,wait=on")
    try:
        client = Client(port)
        boot = client.until_ready()
        assert "m-init-done" in boot
        yield client
    finally:
        stop_qemu(proc)


def _reference(x: np.ndarray) -> np.ndarray:
    from tinyml.codegen.oracle import reference_outputs
    outs, _ = reference_outputs(AD01, [[x]])
    return np.asarray(outs[0][0]).astype(np.int8).reshape(-1)


def _load(dev: Client, data: bytes, chunk: int = 32) -> list[str]:
    r = dev.cmd(f"db load {len(data)}")
    assert r[0] == f"m-[Expecting {len(data)} bytes]"
    last: list[str] = []
    for i in range(0, len(data), chunk):
        last = dev.cmd("db " + data[i:i + chunk].hex())
    return last


@pytest.mark.timeout(300)
def test_name_and_profile(device):
    assert device.cmd("name") == ["m-name-dut-[tinyml]", "m-ready"]
    prof = device.cmd("profile")
    assert prof[-1] == "m-ready" and "m-model-[ad01_int8]" in prof


@pytest.mark.timeout(300)
def test_infer_matches_tflite_reference(device):
    rng = np.random.default_rng(11)
    x = rng.integers(-128, 128, size=640).astype(np.int8)
    done = _load(device, x.tobytes())
    assert done == ["m-load-done", "m-ready"]
    r = device.cmd("infer 2 1", timeout=60)
    assert r[:3] == ["m-warmup-start-1", "m-warmup-done", "m-infer-start-2"]
    laps = [int(l[len("m-lap-us-"):]) for l in r if l.startswith("m-lap-us-")]
    assert len(laps) == 2 and laps[1] > laps[0]
    assert "m-infer-done" in r
    res = [l for l in r if l.startswith("m-results-[")]
    assert len(res) == 1
    vals = np.array([float(v) for v in res[0][len("m-results-["):-1].split(",")])
    from tinyml.codegen.importer import import_tflite  # noqa: F401  (scale/zp come from model.h below)
    scale, zp = _output_quant()
    q = np.round(vals / scale).astype(np.int64) + zp
    np.testing.assert_array_equal(q, _reference(x).astype(np.int64))
    again = device.cmd("results")
    assert again[0] == res[0]


def _output_quant() -> tuple[float, int]:
    import tensorflow as tf
    interp = tf.lite.Interpreter(model_path=AD01)
    d = interp.get_output_details()[0]
    scale, zp = d["quantization"]
    return float(scale), int(zp)


@pytest.mark.timeout(300)
def test_bad_commands_are_answered_and_device_survives(device):
    r = device.cmd("bogus")
    assert r == ["e-[Unknown command: bogus]", "m-ready"]
    assert device.cmd("db")[0].startswith("e-[")
    assert device.cmd("db load")[0].startswith("e-[")
    assert device.cmd("db load abc")[0].startswith("e-[")
    assert device.cmd("infer 0")[0].startswith("e-[")
    device.cmd("db load 4")
    assert device.cmd("db 0g0h")[0] == "e-[Invalid hex digit]"
    assert device.cmd("db 123")[0] == "e-[Odd number of hex digits]"
    assert device.cmd("db print") == ["m-ready"]   # nothing was stored by the bad chunks
    # A command longer than the 128-byte buffer is discarded whole.
    r = device.cmd("db " + "00" * 400)
    assert r[0].startswith("e-[Command too long: limit 128") and r[-1] == "m-ready"
    assert device.cmd("name") == ["m-name-dut-[tinyml]", "m-ready"]


@pytest.mark.timeout(300)
def test_oversize_loads_are_rejected(device):
    r = device.cmd("db load 641")
    assert r == ["e-[db load 641 is out of range: the input takes 1 to 640 bytes]", "m-ready"]
    r = device.cmd("db load 99999999999")
    assert r == ["e-[db load 99999999999 is out of range: the input takes 1 to 640 bytes]", "m-ready"]
    # Sending data after a rejected load is refused, not written.
    assert device.cmd("db 00")[0] == "e-[No buffer: send 'db load N' first]"
    device.cmd("db load 2")
    assert device.cmd("db 0102")[0] == "m-load-done"
    r = device.cmd("db 03")
    assert r[0] == "e-[Too many bytes: buffer holds 2, would reach 3]"
    assert device.cmd("db print") == ["m-buffer-01-02", "m-ready"]
    # infer needs a full input-sized buffer.
    assert device.cmd("infer 1 0")[0] == "e-[Input not loaded: have 2 of 640]"
    assert device.cmd("name")[-1] == "m-ready"
