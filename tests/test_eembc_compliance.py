"""MLPerf Tiny compliance on the emulator: the four reference models, built as
serial firmware with no option but the board, driven by an independent host
runner (tests/eembc_runner.py, written from the protocol description) in the
stock accuracy and performance scripts; every result equals what TensorFlow
Lite's reference interpreter gives for the same input.

Per model the runner sees what the stock runner needs: `m-model-[<id>]` for
its test-script lookup, the reference wire format (int8 features for kws01,
uint8 pixels for vww01/ic01, float32 windows for ad01) and `m-results-[...]`
(dequantized outputs; one anomaly score for ad01) with a `m-lap-us` pair
around the timed loop.
"""
from __future__ import annotations

import os
import shutil
import socket
import time
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from eembc_runner import PERFORMANCE, Dut
from serial_client import free_port
from tinyml import paths

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed"),
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed"),
]

MLPERF = os.path.join(paths.shared_models(), "mlperf-tiny")
MODELS = {"kws01": "kws_ref_model", "vww01": "vww_96_int8", "ic01": "pretrainedResnet_quant",
          "ad01": "ad01_int8"}
WIRE_BYTES = {"kws01": 490, "vww01": 27648, "ic01": 3072, "ad01": 2560}
# inputs per model in accuracy mode (vww01: one, its 27,648 bytes take ~900 `db` commands each)
ACCURACY_INPUTS = {"kws01": 2, "vww01": 1, "ic01": 2, "ad01": 2}


def _quant(model: str) -> tuple[float, int, float, int]:
    import tensorflow as tf
    it = tf.lite.Interpreter(model_path=model)
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    return float(i["quantization"][0]), int(i["quantization"][1]), float(o["quantization"][0]), \
        int(o["quantization"][1])


def _reference(model: str, x: np.ndarray) -> np.ndarray:
    from tinyml.codegen.oracle import reference_outputs
    outs, _ = reference_outputs(model, [[x]])
    return np.asarray(outs[0][0]).astype(np.int8).reshape(-1)


# ---- what the reference firmware does to the wire bytes, written out here -------------
def _ad_quantize(window: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """QuantizeFloatToInt8: round(x / scale) (float quotient, ties away from zero) + zp, clamped."""
    t = (window.astype(np.float32) / np.float32(scale)).astype(np.float64)
    r = np.sign(t) * np.floor(np.abs(t) + 0.5)
    return np.clip(r + zp, -128, 127).astype(np.int8)


def _ad_score(out: np.ndarray, window: np.ndarray, scale: float, zp: int) -> np.float32:
    """calculate_result: float32 sum, in index order, of (dequantized output - input)^2, / 640."""
    s, sc = np.float32(0.0), np.float32(scale)
    for q, x in zip(out.astype(np.int32), window.astype(np.float32)):
        d = np.float32(np.float32(q - zp) * sc) - x
        s = np.float32(s + np.float32(d * d))
    return np.float32(s / np.float32(len(out)))


def _fixed3(v: np.float32) -> str:
    return str(Decimal(float(v)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


def _inputs(model_id: str, scale: float, zp: int, count: int) -> list[tuple[bytes, np.ndarray]]:
    """(wire bytes, the int8 tensor TFLite gets) per input."""
    rng = np.random.default_rng({"kws01": 1, "vww01": 2, "ic01": 3, "ad01": 4}[model_id])
    out = []
    for _ in range(count):
        if model_id == "kws01":
            x = rng.integers(-128, 128, 490).astype(np.int8)
            out.append((x.tobytes(), x))
        elif model_id in ("vww01", "ic01"):
            px = rng.integers(0, 256, WIRE_BYTES[model_id]).astype(np.uint8)
            out.append((px.tobytes(), (px.astype(np.int16) - 128).astype(np.int8)))    # th_load_tensor
        else:
            lo, hi = (-128 - zp) * scale, (127 - zp) * scale
            w = rng.uniform(lo, hi, 640).astype(np.float32)
            w[:32] = ((rng.integers(-140, 60, 32) + 0.5) * scale).astype(np.float32)    # near ties
            w[32:40] = np.float32([200.0, -200.0, hi + 3, lo - 3, hi + 0.2, lo - 0.2, 0.0, -0.0])  # clamped
            out.append((w.astype("<f4").tobytes(), _ad_quantize(w, scale, zp)))
    return out


@pytest.fixture(scope="module", params=list(MODELS))
def dut(request, tmp_path_factory):
    from tinyml.firmware.build import build_firmware
    from tinyml.firmware.qemu import spawn_qemu, stop_qemu
    model_id = request.param
    model = os.path.join(MLPERF, MODELS[model_id] + ".tflite")
    out = str(tmp_path_factory.mktemp(model_id))
    res = build_firmware(model, "stm32f4-discovery", out, mode="serial", progress=lambda m: None)
    assert res.eembc["model_id"] == model_id and res.eembc["db_bytes"] == WIRE_BYTES[model_id]
    # the DUT baud of the stock devices_kws_ic_vww.yaml / devices_ad.yaml (QEMU ignores it)
    baud = 921600 if model_id == "ad01" else 115200
    assert f"#define TINYML_UART_BAUD {baud}u" in open(os.path.join(out, "board_config.h")).read()
    port = free_port()
    proc = spawn_qemu(out, f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on")
    try:
        import serial
        deadline = time.monotonic() + 20
        while True:
            try:
                ser = serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=1)
                break
            except serial.SerialException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        ser._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # one command per segment
        d = Dut(ser)
        boot = d.wait_ready()
        # the runtime's clock line comes first (QEMU: the reset clock, RCC not modelled);
        # a runner skips lines that are not `m-` messages
        assert boot[0] == "clock: 16 MHz (HSI, HSE not ready)", boot
        boot = [line for line in boot if line.startswith("m-")]
        assert boot[0] == "m-timestamp-mode-performance" and boot[1].startswith("m-lap-us-"), boot
        assert boot[-2:] == ["m-init-done", "m-ready"]
        yield model_id, model, d
        print(f"\n{model_id} transcript: {d.transcript.summary()}")
        for line in d.transcript.log:
            print("   ", line[:150])
        ser.close()
    finally:
        stop_qemu(proc)


@pytest.mark.timeout(600)
def test_stock_runner_session(dut):
    """name / profile / help, accuracy mode (download; infer 1 0) and performance mode
    (download; infer N W of tests_performance.yaml), each result against TFLite."""
    model_id, model, d = dut
    assert d.name() == "tinyml"
    profile, reported = d.profile()
    assert reported == model_id and profile
    helptext = d.send("help")
    assert any(line.startswith("m-help-db load") for line in helptext) and helptext[-1] == "m-ready"

    in_scale, in_zp, out_scale, out_zp = _quant(model)
    inputs = _inputs(model_id, in_scale, in_zp, ACCURACY_INPUTS[model_id])
    expected = []
    for wire, tensor in inputs:
        ref = _reference(model, tensor)
        if model_id == "ad01":
            window = np.frombuffer(wire, dtype="<f4")
            expected.append(_ad_score(ref, window, out_scale, out_zp))
        else:
            expected.append(ref)

    acc = d.accuracy([w for w, _ in inputs])
    for k, (res, exp) in enumerate(zip(acc, expected)):
        assert res.elapsed_us is not None and res.elapsed_us > 0
        if model_id == "ad01":
            assert len(res.results) == 1
            line = next(ln for ln in res.lines if ln.startswith("m-results-["))
            assert line == f"m-results-[{_fixed3(exp)}]", (line, float(exp))
        else:
            q = np.round(np.asarray(res.results) / out_scale).astype(np.int64) + out_zp
            np.testing.assert_array_equal(q, exp.astype(np.int64), err_msg=f"{model_id} input {k}")

    n, w = PERFORMANCE[model_id]
    perf = d.performance(model_id, inputs[0][0])[0]
    assert perf.results == acc[0].results            # the same input gives the same results
    assert perf.iterations == n and f"m-warmup-start-{w}" in perf.lines and f"m-infer-start-{n}" in perf.lines
    # -icount: every run costs the same instructions, so N timed runs take N single runs' time
    per_run = perf.elapsed_us / n
    assert per_run == pytest.approx(acc[0].elapsed_us, rel=0.01), (per_run, acc[0].elapsed_us)
    print(f"\n{model_id}: accuracy {len(acc)} inputs equal TFLite; performance infer {n} {w}: "
          f"{perf.elapsed_us:,} us, {perf.throughput:.2f} inf/s (emulated time)")


@pytest.mark.timeout(300)
def test_db_load_bounds(dut):
    model_id, _, d = dut
    limit = WIRE_BYTES[model_id]
    assert d.send("db load 99999999999") == [
        f"e-[db load 99999999999 is out of range: the input takes 1 to {limit} bytes]", "m-ready"]
    assert d.send(f"db load {limit + 1}")[0].startswith("e-[db load")
    assert d.send("db 00")[0].startswith("e-[No buffer")           # nothing to write after a refusal
    assert d.send("db load 0")[0].startswith("e-[")
    assert d.send("db load 12ab") == [
        f"e-[db load 12ab is not a number of bytes: the input takes 1 to {limit} bytes]", "m-ready"]
    assert d.send(f"db load {limit}") == [f"m-[Expecting {limit} bytes]", "m-ready"]
    assert d.send("infer 1 0")[0].startswith("e-[Input not loaded: have 0 of")
    assert d.name() == "tinyml"


def test_ad_score_is_sensitive_to_every_output_step():
    """The printed 3-decimal AD score would show a one-step error in almost any output
    element of the test windows (so comparing scores checks the int8 outputs)."""
    model = os.path.join(MLPERF, "ad01_int8.tflite")
    in_scale, in_zp, out_scale, out_zp = _quant(model)
    wire, tensor = _inputs("ad01", in_scale, in_zp, 1)[0]
    window = np.frombuffer(wire, dtype="<f4").astype(np.float64)
    ref = _reference(model, tensor).astype(np.int64)
    c = (ref - out_zp) * out_scale
    visible = 0
    for step in (-1, 1):
        delta = np.abs(((c + step * out_scale - window) ** 2 - (c - window) ** 2) / 640)
        visible += int(np.sum(delta > 0.0015))
    print(f"\na one-step change shows in the AD score for {visible} of {2 * len(c)} (element, +-1) cases")
    assert visible >= 0.9 * 2 * len(c), visible


@pytest.mark.timeout(300)
def test_tinyml_run_client_sends_the_device_format(dut, tmp_path):
    """tinyml's own client (deploy.runner + tinyml.eembc.wire_payload, what `tinyml run`
    does) on the same device: an int8 tensor goes out as uint8 pixels (ic01) or a
    float32 window (ad01) and the device's answer is TFLite's for that tensor."""
    model_id, model, d = dut
    if model_id not in ("ic01", "ad01"):
        pytest.skip("one image and one window model keep the emulator time down")
    from tinyml.deploy.runner import DeviceRunner, model_id as reported_id
    from tinyml.eembc import wire_payload
    in_scale, in_zp, out_scale, out_zp = _quant(model)
    n = 3072 if model_id == "ic01" else 640
    tensor = np.random.default_rng(9).integers(-128, 128, n).astype(np.int8)
    client = DeviceRunner(d.port, timeout=60, chunk=32)
    assert reported_id(client.profile()) == model_id
    wire = wire_payload(model_id, tensor.tobytes(), n, in_scale, in_zp, tensor=True)
    assert len(wire) == WIRE_BYTES[model_id]
    client.load(wire)
    inf = client.infer(1, 0)
    ref = _reference(model, tensor)
    if model_id == "ic01":
        q = np.round(np.asarray(inf.results) / out_scale).astype(np.int64) + out_zp
        np.testing.assert_array_equal(q, ref.astype(np.int64))
    else:
        window = np.frombuffer(wire, dtype="<f4")
        assert inf.results == [float(_fixed3(_ad_score(ref, window, out_scale, out_zp)))]
