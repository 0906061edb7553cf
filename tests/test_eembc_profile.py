"""MLPerf Tiny profiles without the emulator: which id a model gets, the wire
formats the id implies, and the one-line errors of `--eembc-id` / `--eembc-energy`
(nothing written when they are refused)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tinyml import paths
from tinyml.errors import TinymlError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MLPERF = os.path.join(paths.shared_models(), "mlperf-tiny")
REFERENCE = {"kws_ref_model": "kws01", "vww_96_int8": "vww01", "pretrainedResnet_quant": "ic01",
             "ad01_int8": "ad01"}


def _io_bytes(model: str) -> tuple[int, int]:
    import tensorflow as tf
    it = tf.lite.Interpreter(model_path=model)
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    return int(np.prod(i["shape"])), int(np.prod(o["shape"]))


def _tinyml(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("stem", list(REFERENCE))
def test_reference_models_get_their_benchmark_id(stem):
    from tinyml.eembc import resolve
    n_in, n_out = _io_bytes(os.path.join(MLPERF, stem + ".tflite"))
    p = resolve(stem, n_in, n_out)
    assert p.model_id == REFERENCE[stem] and p.source == "reference model" and not p.note
    # the reference firmware's th_load_tensor: int8 features, uint8 pixels, float32 window
    want = {"kws01": ("int8", n_in), "vww01": ("uint8", n_in), "ic01": ("uint8", n_in),
            "ad01": ("float32", 4 * n_in)}[p.model_id]
    assert (p.input, p.db_bytes) == want
    assert p.result == ("mse" if p.model_id == "ad01" else "values")
    assert p.baud == (921600 if p.model_id == "ad01" else 115200)     # the stock devices_*.yaml


def test_lookalikes_and_others_keep_their_name():
    from tinyml.eembc import resolve
    p = resolve("my_person_model", 96 * 96 * 3, 2)
    assert p.model_id == "my_person_model" and p.input == "int8" and "--eembc-id vww01" in p.note
    p = resolve("vww_96_int8", 96 * 96 * 1, 2)        # the name alone does not make it vww01
    assert p.model_id == "vww_96_int8" and p.input == "int8"
    assert resolve("a b]c", 10, 2).model_id == "a_b_c"  # carried by m-model-[...] and a -D flag
    p = resolve("mine", 27648, 2, "vww01")
    assert (p.model_id, p.input, p.source) == ("vww01", "uint8", "--eembc-id")
    p = resolve("ad01_int8", 640, 640, "none")
    assert (p.model_id, p.input, p.result, p.db_bytes) == ("ad01_int8", "int8", "values", 640)


def test_bad_ids_are_one_line_errors():
    from tinyml.eembc import resolve
    with pytest.raises(TinymlError, match="unknown --eembc-id 'kws02'.*kws01, vww01, ic01, ad01"):
        resolve("m", 490, 12, "kws02")
    with pytest.raises(TinymlError, match="maps 490 input bytes to 12 output bytes"):
        resolve("m", 490, 12, "ad01")


def test_wire_payload_matches_the_reference_conversions():
    from tinyml.eembc import wire_payload
    t = np.arange(-128, 128, dtype=np.int8)
    # vww01 / ic01: the device subtracts 128 from each uint8 pixel
    u = np.frombuffer(wire_payload("ic01", t.tobytes(), 256, 1.0, -128, tensor=True), np.uint8)
    np.testing.assert_array_equal(u.astype(np.int16) - 128, t)
    # ad01: the device quantizes round(x / scale) + zp (float quotient, ties away from zero)
    scale, zp = 0.3910152316093445, 89
    f = np.frombuffer(wire_payload("ad01", t.tobytes(), 256, scale, zp, tensor=True), "<f4")
    q = (f / np.float32(scale)).astype(np.float64)
    back = np.clip(np.sign(q) * np.floor(np.abs(q) + 0.5) + zp, -128, 127)
    np.testing.assert_array_equal(back, t)
    # raw files are the wire format already (the MLPerf Tiny dataset files)
    raw = bytes(range(256)) * 10
    assert wire_payload("vww01", raw, 2560, None, None, tensor=False) == raw
    assert wire_payload("ad01", raw, 640, None, None, tensor=False) == raw
    assert wire_payload("kws_ref_model", t.tobytes(), 256, None, None, tensor=True) == t.tobytes()
    with pytest.raises(TinymlError, match="needs the model's input quantization"):
        wire_payload("ad01", t.tobytes(), 256, None, None, tensor=True)
    with pytest.raises(TinymlError, match="not a multiple of 4"):
        wire_payload("ad01", b"\0" * 7, None, None, None, tensor=False)


def test_library_header_round_trip(tmp_path):
    from tinyml.eembc import HEADER, header_id, header_text, resolve
    assert header_id(str(tmp_path)) is None
    (tmp_path / HEADER).write_text(header_text(resolve("x", 3072, 10, "ic01"), "ic01"))
    assert header_id(str(tmp_path)) == "ic01"
    (tmp_path / HEADER).write_text(header_text(resolve("x", 640, 640, "none"), "none"))
    assert header_id(str(tmp_path)) == "none"


@pytest.mark.parametrize("args, message", [
    (["--mode", "serial", "--eembc-id", "kws99"], "unknown --eembc-id 'kws99'"),
    (["--mode", "serial", "--eembc-id", "ad01"], "maps 490 input bytes to 12 output bytes"),
    (["--eembc-id", "kws01"], "apply to the MLPerf Tiny serial protocol"),
    (["--mode", "serial", "--eembc-energy", "PZ99"], "bad timestamp pin 'PZ99'"),
    (["--mode", "serial", "--eembc-energy", "PA2"], "the console UART's"),
    (["--mode", "serial", "--eembc-energy"], "has no Arduino D7"),
])
def test_build_refuses_bad_eembc_options(tmp_path, args, message):
    out = tmp_path / "fw"
    r = _tinyml("build", os.path.join(MLPERF, "kws_ref_model.tflite"), "--board", "stm32f4-discovery",
                "-o", str(out), *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert not out.exists()


def test_generate_records_the_id(tmp_path):
    out = tmp_path / "lib"
    r = _tinyml("generate", os.path.join(MLPERF, "pretrainedResnet_quant.tflite"), "-o", str(out),
                "--eembc-id", "ic01")
    assert r.returncode == 0, r.stderr
    text = (out / "eembc.h").read_text()
    assert '#define TINYML_EEMBC_ID "ic01"' in text and "#define TINYML_EEMBC_INPUT 1" in text
    bad = tmp_path / "bad"
    r = _tinyml("generate", os.path.join(MLPERF, "pretrainedResnet_quant.tflite"), "-o", str(bad),
                "--eembc-id", "ad01")
    assert r.returncode == 2 and "output bytes" in r.stderr and not bad.exists()


@pytest.mark.parametrize("board, flags", [
    # RM0432: GPIOF 0x4800_1400, RCC_AHB2ENR 0x4002_104C, GPIOFEN bit 5 (PF13 = the L4R5ZI reference's D7)
    ("nucleo-l4r5zi", ("0x48001400u", "13u", "0x4002104cu", "5u")),
    # RM0433: GPIOF 0x5802_1400, RCC_AHB4ENR 0x5802_44E0, bit 5
    ("nucleo-h743zi", ("0x58021400u", "13u", "0x580244e0u", "5u")),
    # RM0385: GPIOI 0x4002_2000, RCC_AHB1ENR 0x4002_3830, GPIOIEN bit 8 (PI3 = the DISCO's D7)
    ("stm32f746g-disco", ("0x40022000u", "3u", "0x40023830u", "8u")),
])
def test_energy_pin_defaults_to_arduino_d7(board, flags):
    from tinyml.boards import load_board
    from tinyml.firmware.build import eembc_energy_cflags
    got = eembc_energy_cflags(load_board(board), "D7")
    base, pin, reg, bit = flags
    for want in (f"-DTINYML_EEMBC_TS_GPIO_BASE={base}", f"-DTINYML_EEMBC_TS_PIN={pin}",
                 f"-DTINYML_EEMBC_TS_RCC_REG={reg}", f"-DTINYML_EEMBC_TS_RCC_BIT={bit}"):
        assert want in got, (want, got)
    with pytest.raises(TinymlError, match="has no Arduino D7"):
        eembc_energy_cflags(load_board("stm32f4-discovery"), "D7")


@pytest.mark.emulator
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed")
def test_energy_mode_build_on_qemu(tmp_path):
    """An energy-mode build: console at the runner's 9600 baud, `timestamp%` drives the
    pin instead of printing. QEMU shows the protocol side only: its netduinoplus2 does
    not model the GPIO port (the pin writes go nowhere) or the baud rate."""
    from serial_client import Client, free_port
    from tinyml.firmware.build import build_firmware
    from tinyml.firmware.qemu import spawn_qemu, stop_qemu
    out = str(tmp_path / "energy")
    res = build_firmware(os.path.join(MLPERF, "kws_ref_model.tflite"), "stm32f4-discovery", out,
                         mode="serial", eembc_energy_pin="PD12", progress=lambda m: None)
    assert res.eembc["model_id"] == "kws01"
    cfg = open(os.path.join(out, "board_config.h")).read()
    assert "#define TINYML_UART_BAUD 9600u" in cfg
    # the pin: GPIOD (0x40020C00), pin 12, clock enable RCC_AHB1ENR (0x40023830) bit 3 (RM0090)
    mk = open(os.path.join(out, "Makefile")).read()
    for flag in ("-DTINYML_EEMBC_ENERGY=1", "-DTINYML_EEMBC_TS_GPIO_BASE=0x40020c00u", "-DTINYML_EEMBC_TS_PIN=12u",
                 "-DTINYML_EEMBC_TS_RCC_REG=0x40023830u", "-DTINYML_EEMBC_TS_RCC_BIT=3u"):
        assert flag in mk, flag
    port = free_port()
    proc = spawn_qemu(out, f"tcp:127.0.0.1:{port},server=on,wait=on")
    try:
        dev = Client(port)
        boot = dev.until_ready()
        assert boot[-3:] == ["m-timestamp-mode-energy", "m-init-done", "m-ready"], boot
        assert dev.cmd("timestamp") == ["m-ready"]
        assert dev.cmd("db load 490")[0] == "m-[Expecting 490 bytes]"
        for i in range(0, 490, 31):
            dev.cmd("db " + bytes(min(31, 490 - i)).hex())
        r = dev.cmd("infer 2 1", timeout=120)
        assert not any(ln.startswith("m-lap-us") for ln in r), r
        assert r[-3].startswith("m-infer-done") and r[-2].startswith("m-results-[") and r[-1] == "m-ready"
    finally:
        stop_qemu(proc)
