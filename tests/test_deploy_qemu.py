"""The host tools against the emulated board: `tinyml emulate DIR --serial`
serves a serial-mode build on QEMU's TCP chardev and `tinyml run --port
socket://...` drives it with the MLPerf Tiny protocol, exactly as a user
would (both as subprocesses). Outputs are compared with the model's oracle
(TFLM for person_detect, TFLite's reference kernels for ad01) on the same
input bytes `codegen.verify.load_input_file` produces."""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np
import pytest

from tinyml import paths

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed"),
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed"),
]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = paths.shared_models()
PERSON = os.path.join(MODELS, "tflm", "person_detect.tflite")
AD01 = os.path.join(MODELS, "mlperf-tiny", "ad01_int8.tflite")
IMAGES = [os.path.join(os.path.dirname(MODELS), "data", "person_detection", f"{n}.bmp")
          for n in ("person", "no_person")]


def _tinyml(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


_BUILDS: dict[tuple[str, str], str] = {}


def _serial_build(tmp_path_factory, model: str, board: str) -> str:
    """One serial-mode build per (model, board) for the whole session, via the CLI."""
    key = (model, board)
    if key not in _BUILDS:
        out = str(tmp_path_factory.mktemp(f"{os.path.basename(model).split('.')[0]}-{board}"))
        # serial builds run no oracle: person_detect (TFLite refuses it) is checked against TFLM,
        # so its C is built with TFLM's rounding
        rounding = ["--rounding", "tflm"] if model == PERSON else []
        # ad01 as the raw protocol (640 int8 bytes in, 640 outputs back), not the MLPerf Tiny
        # ad01 formats (float32 window in, one score back; tests/test_eembc_compliance.py)
        raw = ["--eembc-id", "none"] if model == AD01 else []
        r = _tinyml("build", model, "--board", board, "-o", out, "--mode", "serial", "--json", *rounding, *raw)
        assert r.returncode == 0, r.stderr[-2000:]
        assert json.loads(r.stdout)["mode"] == "serial"
        _BUILDS[key] = out
    return _BUILDS[key]


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    """First stdout line of `proc` within `timeout` s (fails with its stderr otherwise)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.poll() is not None and proc.stderr else ""
            raise AssertionError(f"no line from `tinyml emulate --serial` (rc={proc.poll()}): {buf!r} {err}")
        r, _, _ = select.select([fd], [], [], min(left, 0.5))
        if r:
            chunk = os.read(fd, 4096)
            if not chunk and proc.poll() is not None:
                continue
            buf += chunk
    line, rest = buf.split(b"\n", 1)
    assert rest.strip() == b"", f"more than one line on stdout: {buf!r}"
    return line.decode()


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


@contextmanager
def serial_emulator(out_dir: str, *extra: str):
    """`tinyml emulate DIR --serial --json` as a subprocess; yields its JSON
    object; on exit sends SIGTERM and checks that it and QEMU are gone."""
    proc = subprocess.Popen([sys.executable, "-m", "tinyml.cli", "emulate", out_dir, "--serial", "--json",
                             *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    info = None
    try:
        info = json.loads(_read_line(proc, 300))
        yield info
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError("tinyml emulate --serial did not stop on SIGTERM")
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "stopped" in err.decode()
    assert _gone(info["qemu_pid"]), f"QEMU pid {info['qemu_pid']} still running"


def _output_quant(model: str) -> tuple[float, int]:
    """Output scale / zero point as TFLM reads them from the file."""
    from tflite_micro.python.tflite_micro import runtime
    q = runtime.Interpreter.from_file(model).get_output_details(0)["quantization_parameters"]
    return float(q["scales"][0]), int(q["zero_points"][0])


def _assert_matches_oracle(model: str, results: list[float], ref: np.ndarray) -> int:
    """Device results (dequantized, 3 decimals) equal the oracle's int8 output."""
    scale, zp = _output_quant(model)
    assert scale > 0.002, "3-decimal results cannot identify int8 values at this scale"
    vals = np.asarray(results, dtype=np.float64)
    ref = ref.astype(np.int64).reshape(-1)
    assert vals.shape == ref.shape
    q = np.round(vals / scale).astype(np.int64) + zp
    np.testing.assert_array_equal(q, ref)
    np.testing.assert_allclose(vals, (ref - zp) * scale, rtol=0, atol=0.0005 + 1e-6)
    return int(ref.size)


def _run(url: str, inputs: list[str], model: str, *extra: str) -> dict:
    r = _tinyml("run", "--port", url, *inputs, "--model", model, "--json", *extra, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


# ---------------------------------------------------------------- end to end

@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("board,machine", [("stm32f746g-disco", "mps2-an500"),
                                           ("stm32f4-discovery", "netduinoplus2")])
def test_person_detect_bmps_over_emulated_serial(tmp_path_factory, board, machine):
    from tinyml.codegen.oracle import make_oracle
    from tinyml.codegen.verify import load_input_file
    from tinyml.deploy.inputs import input_spec, load_input

    out = _serial_build(tmp_path_factory, PERSON, board)
    oracle = make_oracle(PERSON)
    assert oracle.name == "tflite-micro"   # TFLite refuses person_detect; double rounding in the C
    spec = input_spec(PERSON)
    refs = []
    for img in IMAGES:
        x = load_input_file(img, spec.shape, "int8")
        # `tinyml run --pixels raw` sends exactly these bytes.
        assert load_input(img, spec, "raw") == x.tobytes()
        refs.append(np.asarray(oracle.run([x])[0]))
    with serial_emulator(out) as info:
        assert info["url"] == f"socket://127.0.0.1:{info['port']}"
        assert info["board"] == board and info["machine"] == machine and info["model"] == "person_detect"
        # The boot banner names the clock that runs (QEMU models no STM32 RCC: netduinoplus2:
        # the HSE never reports ready; MPS2: no RCC at all, the setup is not compiled in), then
        # the MLPerf Tiny banner: timestamp mode, a first timestamp, m-init-done, m-ready.
        clock = {"mps2-an500": "clock: 25 MHz (MPS2 emulator, no RCC: the board's PLL setup is not run)",
                 "netduinoplus2": "clock: 16 MHz (HSI, HSE not ready)"}[machine]
        assert info["banner"][0] == clock
        assert info["banner"][1] == "m-timestamp-mode-performance" and info["banner"][2].startswith("m-lap-us-")
        assert info["banner"][3:] == ["m-init-done", "m-ready"]
        if machine.startswith("mps2"):   # firmware and QEMU agree on a 25 MHz SysTick: 1 us = 1000 ns
            assert info["instructions_per_lap_us"] == pytest.approx(1000.0)
        res = _run(info["url"], IMAGES, PERSON, "--pixels", "raw")
    # Emulator latency is labelled in guest instructions, not ms (no clock under QEMU).
    assert res["clock"]["emulated"] and res["clock"]["board"] == board
    for inf in res["inputs"]:
        assert inf["latency"] == f"{inf['instructions']:,} instructions (emulator: no clock)"
        assert inf["instructions"] == round(inf["latency_us"] * info["instructions_per_lap_us"])
    assert res["device"] == "m-name-dut-[tinyml]"
    assert f"m-profile-[tinyml MLPerf Tiny runner, board {board}]" in res["profile"]
    compared = 0
    for inf, ref, img in zip(res["inputs"], refs, IMAGES):
        assert inf["input"].endswith(os.path.basename(img))
        compared += _assert_matches_oracle(PERSON, inf["results"], ref)
        assert inf["top"] == int(np.argmax(ref))
        assert isinstance(inf["latency_us"], float) and inf["latency_us"] > 0
        assert len(inf["lap_us"]) == 2 and inf["latency_us"] == inf["lap_us"][1] - inf["lap_us"][0]
    assert compared == 4
    # The TFLM example's images: person scores higher on person.bmp, lower on no_person.bmp.
    assert res["inputs"][0]["top"] == 1 and res["inputs"][1]["top"] == 0
    print(f"{board}: person_detect latency under QEMU {[i['latency_us'] for i in res['inputs']]} us, "
          f"{compared} output bytes compared")


@pytest.fixture(scope="module")
def ad01_f4(tmp_path_factory):
    return _serial_build(tmp_path_factory, AD01, "stm32f4-discovery")


@pytest.mark.timeout(600)
def test_ad01_random_bin_over_emulated_serial(ad01_f4, tmp_path):
    from tinyml.codegen.oracle import make_oracle
    from tinyml.codegen.verify import load_input_file

    oracle = make_oracle(AD01)
    assert oracle.name == "tflite-reference"   # single rounding in the C
    paths_ = []
    refs = []
    rng = np.random.default_rng(7)
    for i in range(2):
        p = tmp_path / f"x{i}.bin"
        rng.integers(-128, 128, size=640).astype(np.int8).tofile(p)
        x = load_input_file(str(p), (1, 640), "int8")
        refs.append(np.asarray(oracle.run([x])[0]))
        paths_.append(str(p))
    with serial_emulator(ad01_f4) as info:
        assert info["machine"] == "netduinoplus2" and info["variant"] == "native"
        first = _run(info["url"], paths_[:1], AD01, "--iterations", "3", "--warmup", "1")
        # A second client on the same session: QEMU re-listens, the firmware keeps running.
        second = _run(info["url"], paths_[1:], AD01)
    compared = 0
    for inf, ref in zip(first["inputs"] + second["inputs"], refs):
        compared += _assert_matches_oracle(AD01, inf["results"], ref)
    assert compared == 1280
    a = first["inputs"][0]
    assert a["iterations"] == 3 and len(a["lap_us"]) == 2
    assert a["latency_us"] == pytest.approx((a["lap_us"][1] - a["lap_us"][0]) / 3)
    assert a["latency_us"] > 0 and second["inputs"][0]["latency_us"] > 0
    print(f"ad01 latency under QEMU: {a['latency_us']:.1f} us (mean of 3), {compared} bytes compared")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_lap_us_converts_to_the_selftest_instruction_count(ad01_f4, tmp_path_factory):
    """netduinoplus2: the native firmware times with its 16 MHz reset clock (the clock
    setup's fallback: QEMU models no RCC) but
    QEMU's SysTick runs at 168 MHz, so one reported us is 16/168*1000 guest
    instructions; converted, the serial latency equals the self-test's count."""
    st = str(tmp_path_factory.mktemp("ad01-selftest"))
    r = _tinyml("build", AD01, "--board", "stm32f4-discovery", "-o", st, "--vectors", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    r = _tinyml("emulate", st, "--json", timeout=300)
    assert r.returncode == 0, r.stdout[-2000:]
    selftest = json.loads(r.stdout)["instructions_per_inference"]
    x = np.random.default_rng(3).integers(-128, 128, size=640).astype(np.int8)
    p = tmp_path_factory.mktemp("ad01-bin") / "x.bin"
    x.tofile(p)
    with serial_emulator(ad01_f4) as info:
        res = _run(info["url"], [str(p)], AD01, "--iterations", "4")
    factor = info["instructions_per_lap_us"]
    assert factor == pytest.approx(16e6 / 1e6 * 1e9 / 168e6)
    serial_instr = res["inputs"][0]["latency_us"] * factor
    # Serial mode adds a 640-byte memcpy per inference; laps are whole us.
    assert serial_instr == pytest.approx(selftest, rel=0.01)
    # `tinyml run` makes the same conversion from the device's `clock%` answer.
    assert res["inputs"][0]["instructions"] == pytest.approx(selftest, rel=0.01)
    assert res["inputs"][0]["latency"].endswith(" instructions (emulator: no clock)")
    print(f"ad01 on netduinoplus2: self-test {selftest:,} instructions/inference, serial "
          f"{res['inputs'][0]['latency_us']} us reported = {serial_instr:,.0f} instructions")


# ---------------------------------------------------------------- lifecycle and errors

@pytest.mark.timeout(300)
def test_duration_stops_qemu_by_itself(ad01_f4):
    proc = subprocess.run([sys.executable, "-m", "tinyml.cli", "emulate", ad01_f4, "--serial", "--json",
                           "--duration", "2"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    info = json.loads(lines[0])
    assert info["ok"] and info["url"] == f"socket://127.0.0.1:{info['port']}"
    assert info["qemu_pid"] > 0 and info["pid"] != info["qemu_pid"]
    assert "--duration 2 s elapsed" in proc.stderr
    assert _gone(info["qemu_pid"])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_ctrl_c_and_kill_leave_no_qemu(ad01_f4, sig):
    """Ctrl-C stops QEMU cleanly (exit 0); even SIGKILL of `tinyml emulate`
    takes QEMU down with it (PR_SET_PDEATHSIG)."""
    proc = subprocess.Popen([sys.executable, "-m", "tinyml.cli", "emulate", ad01_f4, "--serial", "--json"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        info = json.loads(_read_line(proc, 120))
        assert info["pid"] == proc.pid
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if sig == signal.SIGINT:
        assert proc.returncode == 0, err.decode()
        assert "Ctrl-C: QEMU" in err.decode() and "Traceback" not in err.decode()
    assert _gone(info["qemu_pid"]), f"QEMU pid {info['qemu_pid']} outlived `tinyml emulate`"


def _lose_ctrl_c():
    """What a parent can hand down: SIGINT ignored (Python then installs no handler) and blocked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


@pytest.mark.timeout(300)
def test_ctrl_c_stops_even_when_the_parent_ignored_and_blocked_sigint(ad01_f4):
    """`tinyml emulate --serial` installs its own SIGINT handler and unblocks it: started with
    SIGINT ignored and blocked it served forever after Ctrl-C (how
    test_ctrl_c_and_kill_leave_no_qemu[SIGINT] can time out under a test worker)."""
    proc = subprocess.Popen([sys.executable, "-m", "tinyml.cli", "emulate", ad01_f4, "--serial", "--json"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_lose_ctrl_c)
    try:
        info = json.loads(_read_line(proc, 120))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and "Ctrl-C: QEMU" in err.decode(), err.decode()[-2000:]
    assert _gone(info["qemu_pid"])


@pytest.mark.timeout(300)
def test_busy_port_is_one_line_error(ad01_f4):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = _tinyml("emulate", ad01_f4, "--serial", "--port", str(port), timeout=120)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("error: TCP port") and "busy" in lines[-1] and "--port" in lines[-1]
    assert "Traceback" not in r.stderr


@pytest.mark.timeout(120)
def test_selftest_build_is_refused(tmp_path):
    # A self-test build directory (build.json is what `tinyml build` writes).
    (tmp_path / "build.json").write_text(json.dumps({"board": "stm32f4-discovery", "mode": "selftest"}))
    r = _tinyml("emulate", str(tmp_path), "--serial", timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0
    assert "selftest mode" in r.stderr and "--mode serial" in r.stderr
    r = _tinyml("emulate", str(tmp_path), "--duration", "3", timeout=60)
    assert r.returncode == 2 and "--serial" in r.stderr


@pytest.mark.timeout(120)
def test_serial_build_without_serial_flag_points_to_it(tmp_path):
    (tmp_path / "build.json").write_text(json.dumps({"board": "stm32f4-discovery", "mode": "serial"}))
    r = _tinyml("emulate", str(tmp_path), timeout=60)
    assert r.returncode == 2 and "--serial" in r.stderr and "Traceback" not in r.stderr


def test_hello_tolerates_boot_banner_after_connect():
    """An emulator that boots the firmware when the client connects sends its
    banner (m-init-done, m-ready) after the runner flushed its input."""
    from tinyml.deploy.runner import DeviceRunner

    class LateBanner:
        in_waiting = 0

        def __init__(self) -> None:
            self.out = b""

        def reset_input_buffer(self) -> None:
            self.out = b""

        def write(self, data: bytes) -> int:
            assert data == b"name%"
            self.out += b"\r\nm-init-done\r\nm-ready\r\nm-name-dut-[tinyml]\r\nm-ready\r\n"
            return len(data)

        def flush(self) -> None:
            pass

        def read(self, n: int) -> bytes:
            data, self.out = self.out[:n], self.out[n:]
            return data

    assert DeviceRunner(LateBanner(), timeout=2).hello() == "m-name-dut-[tinyml]"
