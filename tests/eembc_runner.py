"""An independent MLPerf Tiny / EEMBC host runner for the tests.

Written from the protocol as the MLPerf Tiny runner (mlcommons/tiny,
benchmark/runner) and the reference firmware's API describe it, not from
tinyml's own client (deploy/runner.py), so a shared misunderstanding of the
protocol cannot hide:

- a command is its text followed by `%`; the device answers lines ending in
  `\\n` (a `\\r` before it is dropped) and finishes every answer with a line
  containing `m-ready`;
- `name` -> `m-name-dut-[<name>]`; `profile` -> `m-profile-[...]` and
  `m-model-[<id>]`; the id selects the test script (kws01, vww01, ic01, ad01);
- `db load N`, then the bytes as `db <hex>` commands of at most 31 bytes
  (the stock runner's chunk without a power monitor); `m-load-done` after the
  last byte;
- `infer N W` -> `m-lap-us-<t0>` ... `m-lap-us-<t1>` around the N timed runs
  and `m-results-[v0,v1,...]`; elapsed = t1 - t0 microseconds, throughput =
  N / elapsed;
- stock scripts: accuracy = per input `download; infer 1 0`; performance =
  `download; infer N W` with N W = kws01 70 10, vww01 20 5, ic01 20 5,
  ad01 1500 10 (tests_performance.yaml); AD's download is one 2,560-byte
  float32 window.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

READY = "m-ready"
CHUNK = 31
PERFORMANCE = {"kws01": (70, 10), "vww01": (20, 5), "ic01": (20, 5), "ad01": (1500, 10)}


@dataclass
class InferResult:
    results: list[float]
    start_us: int | None
    end_us: int | None
    iterations: int
    lines: list[str] = field(default_factory=list)

    @property
    def elapsed_us(self) -> int | None:
        if self.start_us is None or self.end_us is None:
            return None
        return self.end_us - self.start_us

    @property
    def throughput(self) -> float | None:
        e = self.elapsed_us
        return self.iterations / (e / 1e6) if e else None


@dataclass
class Transcript:
    """Commands sent and lines received, for the report."""
    sent: int = 0
    received: int = 0
    bytes_loaded: int = 0
    log: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.sent} commands, {self.received} lines, {self.bytes_loaded:,} bytes loaded"


class Dut:
    """The device under test on a pyserial port (e.g. socket:// onto QEMU's UART)."""

    def __init__(self, port, timeout: float = 60.0) -> None:
        self.port = port
        self.timeout = timeout
        self.pending = b""
        self.transcript = Transcript()

    def _line(self, deadline: float) -> str:
        while b"\n" not in self.pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no complete line; have {self.pending[:80]!r}")
            self.pending += self.port.read(self.port.in_waiting or 1)
        raw, self.pending = self.pending.split(b"\n", 1)
        return raw.decode("ascii").rstrip("\r\0")

    def wait_ready(self, timeout: float | None = None) -> list[str]:
        """Lines up to and including the one that contains m-ready."""
        deadline = time.monotonic() + (timeout or self.timeout)
        lines = []
        while True:
            line = self._line(deadline)
            self.transcript.received += 1
            if line:
                lines.append(line)
            if READY in line:
                return lines

    def send(self, command: str, timeout: float | None = None) -> list[str]:
        self.port.write(command.encode("ascii") + b"%")
        self.transcript.sent += 1
        lines = self.wait_ready(timeout)
        if not command.startswith("db ") or command.startswith("db load"):
            self.transcript.log.append(f"> {command}%  < {' | '.join(lines[:4])}"
                                       + (" ..." if len(lines) > 4 else ""))
        return lines

    def name(self) -> str | None:
        for line in self.send("name"):
            m = re.match(r"^m-name-dut-\[([^]]+)]$", line)
            if m:
                return m.group(1)
        return None

    def profile(self) -> tuple[str | None, str | None]:
        prof = model = None
        for line in self.send("profile"):
            m = re.match(r"^m-(model|profile)-\[([^]]+)]$", line)
            if m and m.group(1) == "model":
                model = m.group(2)
            elif m:
                prof = m.group(2)
        return prof, model

    def load(self, data: bytes) -> list[str]:
        first = self.send(f"db load {len(data)}")
        assert first[0] == f"m-[Expecting {len(data)} bytes]", first
        last: list[str] = []
        for i in range(0, len(data), CHUNK):
            last = self.send("db " + data[i:i + CHUNK].hex())
        self.transcript.bytes_loaded += len(data)
        assert "m-load-done" in last, last
        return last

    def infer(self, n: int, w: int) -> InferResult:
        lines = self.send(f"infer {n} {w}", timeout=self.timeout + 120)
        res: list[float] | None = None
        laps: list[int] = []
        for line in lines:
            m = re.match(r"^m-results-\[([^]]+)\]$", line)
            if m:
                res = [float(v) for v in m.group(1).split(",") if v.strip()]
            m = re.match(r"^m-lap-us-([0-9]+)$", line)
            if m:
                laps.append(int(m.group(1)))
        assert res is not None, lines
        return InferResult(res, laps[0] if laps else None, laps[1] if len(laps) > 1 else None, n, lines)

    # ---- the stock scripts -----------------------------------------------------------
    def accuracy(self, inputs: list[bytes]) -> list[InferResult]:
        out = []
        for data in inputs:
            self.load(data)
            out.append(self.infer(1, 0))
        return out

    def performance(self, model_id: str, data: bytes, loops: int = 1) -> list[InferResult]:
        n, w = PERFORMANCE[model_id]
        out = []
        for _ in range(loops):
            self.load(data)
            out.append(self.infer(n, w))
        return out
