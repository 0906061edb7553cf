"""The self-test's console report: run an emulator until the firmware's RESULT
line, and parse what it printed into an `EmulationResult`.

A run ends when the firmware exits via semihosting, prints its RESULT line,
faults (the HardFault handler prints PC/LR/CFSR and RESULT FAIL), or the
timeout expires; the emulator process is always killed. Used by the QEMU
(`firmware/qemu.py`), Renode (`firmware/renode.py`) and per-op profile
(`firmware/profile.py`) runs.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from dataclasses import asdict, dataclass, field


@dataclass
class VectorResult:
    index: int
    passed: bool
    ticks: int
    detail: str = ""


@dataclass
class EmulationResult:
    passed: bool
    instructions_per_inference: int | None
    peak_sram_bytes_measured: int | None
    flash_bytes: int | None
    emulator: str
    machine: str
    variant: str
    board: str
    model: str
    note: str
    vectors: list[VectorResult] = field(default_factory=list)
    arena_bytes: int | None = None
    arena_used_bytes: int | None = None
    stack_bytes: int | None = None
    stack_used_bytes: int | None = None
    stack_estimate_bytes: int | None = None   # static worst case of the build (firmware/stack_usage.py)
    static_ram_bytes: int | None = None
    timer: str = ""
    clock: str = ""                 # the boot banner's clock line, e.g. "16 MHz (HSI, PLL not ready)"
    fault: str | None = None
    error: str | None = None
    timed_out: bool = False
    seconds: float = 0.0
    output: str = ""

    def to_json(self) -> dict:
        d = asdict(self)
        d["vectors"] = [asdict(v) for v in self.vectors]
        return d


def run_capture(cmd: list[str], timeout: float) -> tuple[str, bool, int | None]:
    """Run until exit, a RESULT line (+ grace), or timeout. Returns (output, timed_out, rc)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    chunks: list[bytes] = []
    done = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, b""):
            chunks.append(line)
            if line.startswith(b"RESULT "):
                done.set()
        done.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    timed_out = not done.wait(timeout)
    rc = None
    try:
        rc = proc.wait(timeout=0 if timed_out else 3)
    except subprocess.TimeoutExpired:
        pass
    kill_group(proc)
    t.join(timeout=2)
    return b"".join(chunks).decode("utf-8", "replace"), timed_out, rc


_VEC = re.compile(r"^vector (\d+) (PASS|FAIL)(.*?)ticks=(\d+)", re.M)
_RUN = re.compile(r"^run rc=(-?\d+) ticks=(\d+)", re.M)
_MEM = re.compile(r"^memory arena_bytes=(\d+) arena_used=(\d+) stack_bytes=(\d+) stack_used=(\d+) "
                  r"static_ram=(\d+)", re.M)
TIMER_LINE = re.compile(r"^timer source=(\w+) hz=(\d+)", re.M)
CLOCK_LINE = re.compile(r"^clock: (\d+(?:\.\d+)? MHz \(.*\))$", re.M)
_FAULT = re.compile(r"^FAULT .*$", re.M)
RESULT_LINE = re.compile(r"^RESULT (PASS|FAIL)", re.M)


def parse_selftest(text: str, systick_hz: int, res: EmulationResult) -> None:
    text = text.replace("\r", "")
    for m in _VEC.finditer(text):
        res.vectors.append(VectorResult(int(m.group(1)), m.group(2) == "PASS", int(m.group(4)),
                                        m.group(3).strip()))
    ticks = [v.ticks for v in res.vectors]
    if not ticks:
        ticks = [int(m.group(2)) for m in _RUN.finditer(text)]
    cm = CLOCK_LINE.search(text)
    if cm:
        res.clock = cm.group(1)
    tm = TIMER_LINE.search(text)
    if tm:
        res.timer = tm.group(1)
    if ticks and tm:
        hz = systick_hz if tm.group(1) == "systick" else int(tm.group(2))
        res.instructions_per_inference = round(sum(ticks) / len(ticks) * 1e9 / hz)
    mm = _MEM.search(text)
    if mm:
        a, au, s, su, st = (int(x) for x in mm.groups())
        res.arena_bytes, res.arena_used_bytes, res.stack_bytes = a, au, s
        res.stack_used_bytes, res.static_ram_bytes = su, st
        res.peak_sram_bytes_measured = st + su + au
    fm = _FAULT.search(text)
    if fm:
        res.fault = fm.group(0)
    rm = RESULT_LINE.search(text)
    res.passed = bool(rm and rm.group(1) == "PASS" and not res.fault
                      and all(v.passed for v in res.vectors))


def kill_group(proc: subprocess.Popen) -> None:
    """Kill an emulator started with start_new_session=True (its whole process group) and reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
