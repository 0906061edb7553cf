"""`tinyml run` / deploy.runner against a fake MLPerf Tiny device on a pty (and over a socket)."""
from __future__ import annotations

import json
import os
import select
import socket
import threading

import numpy as np
import pytest
from PIL import Image

from tinyml.deploy.errors import DeviceProtocolError, NoAnswerError
from tinyml.testing.fake_dut import FakeDut
from tinyml.deploy.inputs import input_spec, load_input
from tinyml.deploy.runner import DeviceRunner, parse_inference
from tinyml.deploy.serial_port import open_port
from tinyml import cli
from tinyml.paths import shared_models

PERSON_MODEL = os.path.join(shared_models(), "tflm", "person_detect.tflite")
VWW_MODEL = os.path.join(shared_models(), "mlperf-tiny", "vww_96_int8.tflite")
DATA = os.path.join(os.path.dirname(shared_models()), "data", "person_detection")
needs_models = pytest.mark.skipif(not os.path.exists(PERSON_MODEL), reason="shared models not present")


def mean_model(data: bytes) -> list[float]:
    """Results that depend on every byte: [mean/255 of uint8 view, 1 - that]."""
    m = float(np.frombuffer(data, np.uint8).mean()) / 255.0
    return [m, 1.0 - m]


@pytest.mark.timeout(30)
def test_runner_loads_bytes_and_parses_results(tmp_path):
    data = bytes(range(256)) * 3 + b"\x07"
    with FakeDut(mean_model, us_per_inference=2500) as dut:
        ser = open_port(dut.path, 115200, timeout=0.1)
        try:
            dev = DeviceRunner(ser, timeout=3, chunk=32)
            assert dev.hello() == "m-name-dut-[fake-dut]"
            dev.load(data)
            inf = dev.infer(4, 1)
        finally:
            ser.close()
    assert bytes(dut.buffer) == data
    db_cmds = [c for c in dut.commands if c.startswith("db ") and not c.startswith("db load")]
    assert len(db_cmds) == -(-len(data) // 32) and all(len(c) <= 3 + 64 for c in db_cmds)
    assert "infer 4 1" in dut.commands
    m = np.frombuffer(data, np.uint8).mean() / 255.0
    assert inf.results == pytest.approx([round(m, 3), round(1 - m, 3)])
    assert inf.top == (0 if m > 0.5 else 1)
    assert inf.latency_us == 2500 and len(inf.lap_us) == 2


def test_parse_inference_reference_format():
    # Lines as the MLPerf Tiny reference firmware prints them (ee_infer + th_results).
    lines = ["m-warmup-start-1", "m-warmup-done", "m-infer-start-10", "m-lap-us-1000", "m-lap-us-51000",
             "m-infer-done", "m-results-[0.012,0.988]"]
    inf = parse_inference(lines, 10)
    assert inf.results == [0.012, 0.988] and inf.top == 1 and inf.latency_us == 5000.0
    with pytest.raises(DeviceProtocolError):
        parse_inference(["m-infer-done"], 1)


@needs_models
def test_image_quantization_person_detect():
    spec = input_spec(PERSON_MODEL)
    assert spec.shape == (1, 96, 96, 1) and spec.dtype == "int8"
    bmp = os.path.join(DATA, "person.bmp")
    px = np.asarray(Image.open(bmp).convert("L"), dtype=np.int16)
    # person_detect's input covers [-1, 1] (scale 2/255, zero point -1): pixel p -> p - 128.
    got = np.frombuffer(load_input(bmp, spec), np.int8).reshape(96, 96)
    assert np.array_equal(got, (px - 128).astype(np.int8))
    raw = load_input(bmp, spec, pixels="raw")
    assert raw == px.astype(np.uint8).tobytes()


@needs_models
def test_image_resize_and_channels(tmp_path):
    spec = input_spec(VWW_MODEL)      # [1,96,96,3], input range [0,1] (scale 1/255, zp -128)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (150, 200, 3), dtype=np.uint8))
    path = tmp_path / "in.png"
    img.save(path)
    got = np.frombuffer(load_input(str(path), spec), np.int8).reshape(96, 96, 3)
    want = np.asarray(img.resize((96, 96), Image.BILINEAR), dtype=np.int16) - 128
    assert np.array_equal(got, want.astype(np.int8))
    # A pixel range given by hand: [0, 255] real with scale 1/255 saturates above pixel 0.
    sat = np.frombuffer(load_input(str(path), spec, pixels="0,255"), np.int8)
    assert sat.max() == 127


@pytest.mark.timeout(60)
@needs_models
def test_cli_run_json_with_images(tmp_path, capsys):
    bmps = [os.path.join(DATA, f) for f in ("person.bmp", "no_person.bmp")]
    raw = tmp_path / "x.bin"
    raw.write_bytes(bytes(96 * 96))
    with FakeDut(mean_model, input_bytes=96 * 96) as dut:
        rc = cli.main(["run", "--port", dut.path, "--model", PERSON_MODEL, *bmps, str(raw),
                       "--iterations", "3", "--json", "--timeout", "3"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["ok"] and doc["device"].startswith("m-name") and len(doc["inputs"]) == 3
    for entry, path in zip(doc["inputs"], bmps):
        px = np.asarray(Image.open(path).convert("L"), dtype=np.int16) - 128
        m = float((px.astype(np.int8).view(np.uint8)).mean()) / 255.0
        assert entry["results"] == pytest.approx([round(m, 3), round(1 - m, 3)])
        assert entry["latency_us"] == 1234.0
    assert doc["inputs"][2]["results"] == [0.0, 1.0]


@pytest.mark.timeout(30)
def test_silent_noisy_and_error_devices(tmp_path, capsys):
    raw = tmp_path / "x.bin"
    raw.write_bytes(b"\x01\x02\x03\x04")
    with FakeDut(mean_model, mode="silent") as dut:
        ser = open_port(dut.path, timeout=0.1)
        with pytest.raises(NoAnswerError, match="no answer"):
            DeviceRunner(ser, timeout=0.5).hello()
        ser.close()
        rc = cli.main(["run", "--port", dut.path, str(raw), "--timeout", "0.5"])
        err = capsys.readouterr().err
        assert rc != 0 and err.count("error:") == 1 and "Traceback" not in err
    with FakeDut(mean_model, mode="noise") as dut:
        rc = cli.main(["run", "--port", dut.path, str(raw), "--timeout", "1"])
        err = capsys.readouterr().err
        assert rc != 0 and "garbage" in err and err.count("\n") == 1
    with FakeDut(mean_model, input_bytes=10) as dut:        # wrong input size -> device e- line
        ser = open_port(dut.path, timeout=0.1)
        dev = DeviceRunner(ser, timeout=2)
        dev.hello()
        dev.load(b"\x01\x02\x03\x04")
        with pytest.raises(DeviceProtocolError, match="e-\\[input has 4 bytes"):
            dev.infer()
        ser.close()


def _bridge(pty_path: str) -> tuple[int, threading.Event]:
    """A TCP server that relays one client to the pty (like an emulator's UART socket)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    stop = threading.Event()

    def serve() -> None:
        conn, _ = srv.accept()
        fd = os.open(pty_path, os.O_RDWR | os.O_NOCTTY)
        import tty
        tty.setraw(fd)
        try:
            while not stop.is_set():
                r, _, _ = select.select([conn, fd], [], [], 0.05)
                if conn in r:
                    data = conn.recv(4096)
                    if not data:
                        break
                    os.write(fd, data)
                if fd in r:
                    conn.sendall(os.read(fd, 4096))
        finally:
            os.close(fd)
            conn.close()
            srv.close()
    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1], stop


@pytest.mark.timeout(30)
def test_run_over_socket_url(tmp_path, capsys):
    raw = tmp_path / "x.bin"
    raw.write_bytes(bytes([200]) * 100)
    with FakeDut(mean_model) as dut:
        port, stop = _bridge(dut.path)
        rc = cli.main(["run", "--port", f"socket://127.0.0.1:{port}", str(raw), "--json", "--timeout", "3"])
        stop.set()
    out, err = capsys.readouterr()
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["inputs"][0]["results"] == [round(200 / 255, 3), round(1 - 200 / 255, 3)]
    assert doc["inputs"][0]["top"] == 0
