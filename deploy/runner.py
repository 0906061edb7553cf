"""Host side of the MLPerf Tiny / EEMBC runner protocol.

Commands end with `%`; the device answers lines and ends every command with
`m-ready`. Used here:

    name%              -> m-name-...
    profile%           -> m-profile-[...], m-model-[<id>] (kws01/vww01/ic01/ad01: the MLPerf
                          Tiny wire formats of tinyml.eembc; else the model name, raw int8)
    db load N%         -> m-[Expecting N bytes]
    db <hex>%          -> (per chunk) ... m-load-done after the last byte
    infer N W%         -> m-warmup-..., m-infer-start-N, m-lap-us-T0, m-lap-us-T1,
                          m-infer-done, m-results-[v0,v1,...]
    results%           -> m-results-[...]
    clock%             -> m-clock-[216 MHz (PLL); hz=...; timer=...; board=...; variant=...]
    stream%            -> (--stream-input builds) m-stream-start-<stripes>-<bytes>, then per
                          stripe m-stripe-<row0>-<bytes>, answered with `db <hex>%` chunks;
                          after the last stripe m-lap-us-T1, m-results-[...]

Lines starting `e-` are device errors. A port that stays silent, or that
delivers bytes which are not text lines (wrong baud rate, bootloader mode),
ends in one specific error.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import serial

from .errors import DeviceProtocolError, NoAnswerError

READY = "m-ready"
_RESULTS = re.compile(r"m-results-\[([^\]]*)\]")
_LAP = re.compile(r"m-lap-us-(\d+)")
_EXPECT = re.compile(r"m-\[Expecting (\d+) bytes\]")
_STREAM_START = re.compile(r"m-stream-start-(\d+)-(\d+)")
_STRIPE = re.compile(r"m-stripe-(\d+)-(\d+)")
_MODEL = re.compile(r"^m-model-\[([^\]]+)\]$")
_PRINTABLE = set(range(0x20, 0x7F)) | {0x09}
# Longest line accepted: an m-results line prints every output value (up to
# ~10 characters each, e.g. 640 values for ad01 = ~4.5 KB), so allow 64 K values.
MAX_LINE_BYTES = 1 << 19

SILENT_FIX = ("check the port and --baud, that the firmware is running (not the ROM bootloader: "
              "BOOT0 low, reset) and that TX/RX are crossed")


@dataclass
class Inference:
    input: str
    results: list[float]
    lap_us: list[int]
    iterations: int
    latency_us: float | None
    top: int | None
    lines: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"input": self.input, "results": self.results, "top": self.top,
                "latency_us": self.latency_us, "iterations": self.iterations, "lap_us": self.lap_us}


class DeviceRunner:
    def __init__(self, ser: serial.SerialBase, *, timeout: float = 10.0, chunk: int = 32,
                 where: str = "") -> None:
        self.ser = ser
        self.timeout = timeout
        self.chunk = chunk
        self.where = where or str(getattr(ser, "port", "") or "serial port")
        self._buf = bytearray()

    # ---- lines ---------------------------------------------------------------------
    def _readline(self, deadline: float, command: str) -> str:
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                raw = bytes(self._buf[:nl]).rstrip(b"\r")
                del self._buf[:nl + 1]
                if any(b not in _PRINTABLE for b in raw):
                    raise DeviceProtocolError(
                        f"garbage on the serial line after `{command}%` ({raw[:24].hex(' ')}...)",
                        self.where, "check --baud (115200 8N1), the wiring and that the firmware is running")
                return raw.decode("ascii")
            if len(self._buf) > MAX_LINE_BYTES:
                raise DeviceProtocolError(f"{len(self._buf)} bytes without a line end after `{command}%`",
                                          self.where, "check --baud and that the firmware is ours")
            if time.monotonic() > deadline:
                if self._buf:
                    raise DeviceProtocolError(
                        f"incomplete answer to `{command}%`: {bytes(self._buf[:32])!r}", self.where,
                        "check --baud (115200 8N1) and that the firmware speaks the MLPerf Tiny protocol")
                raise NoAnswerError(f"no answer to `{command}%` within {self.timeout:g} s", self.where, SILENT_FIX)
            data = self.ser.read(self.ser.in_waiting or 1)
            self._buf += data

    def command(self, cmd: str, timeout: float | None = None) -> list[str]:
        """Send `cmd%`; the lines up to (not including) m-ready. `e-` lines raise."""
        self.ser.write(cmd.encode("ascii") + b"%")
        self.ser.flush()
        return self._answer(cmd, timeout)

    def _answer(self, cmd: str, timeout: float | None = None) -> list[str]:
        deadline = time.monotonic() + (timeout or self.timeout)
        lines: list[str] = []
        while True:
            line = self._readline(deadline, cmd if len(cmd) <= 24 else cmd[:20] + "...")
            if line == READY:
                break
            if not line:
                continue
            if line.startswith("e-"):
                raise DeviceProtocolError(f"device error after `{cmd[:40]}%`: {line}", self.where,
                                          "check the input size against the model; reset the board")
            lines.append(line)
            if len(lines) > 1000:
                raise DeviceProtocolError(f"more than 1000 lines after `{cmd[:40]}%` and no m-ready",
                                          self.where, "check that the firmware speaks the MLPerf Tiny protocol")
        return lines

    def hello(self) -> str:
        """Drop stale output, then `name%`; the device name line."""
        time.sleep(0.05)
        self.ser.reset_input_buffer()
        self._buf.clear()
        lines = self.command("name")
        if "m-init-done" in lines and not any(ln.startswith("m-name") for ln in lines):
            # The boot banner (m-init-done, m-ready) arrived after the flush, e.g. an
            # emulator that starts the firmware when the client connects: the answer
            # to `name%` follows the banner's m-ready.
            lines = self._answer("name")
        names = [ln for ln in lines if ln.startswith("m-name")]
        if not names:
            raise DeviceProtocolError(f"`name%` gave no m-name line (got {lines[:3]})", self.where,
                                      "check that the firmware speaks the MLPerf Tiny protocol")
        return names[0]

    def profile(self) -> list[str]:
        return self.command("profile")

    def clock(self):
        """The clock the firmware runs at (`clock%`, deploy/latency.py), or None when the
        firmware does not know the command."""
        from .latency import parse_clock
        self.ser.write(b"clock%")
        self.ser.flush()
        deadline = time.monotonic() + self.timeout
        lines: list[str] = []
        # Read to m-ready even after an e-[Unknown command] line, so the next command's
        # answer starts clean.
        while len(lines) < 100 and (line := self._readline(deadline, "clock")) != READY:
            lines.append(line)
        return parse_clock(lines)

    def load(self, data: bytes) -> None:
        lines = self.command(f"db load {len(data)}")
        m = next((_EXPECT.search(ln) for ln in lines if _EXPECT.search(ln)), None)
        if m is None or int(m.group(1)) != len(data):
            raise DeviceProtocolError(f"device did not accept a {len(data)}-byte input ({lines[:3]})",
                                      self.where, "the input is larger than the firmware's buffer?")
        done = False
        for off in range(0, len(data), self.chunk):
            lines = self.command("db " + data[off:off + self.chunk].hex())
            done = done or any("m-load-done" in ln for ln in lines)
        if not done:
            raise DeviceProtocolError("device never reported m-load-done", self.where,
                                      "reset the board and retry")

    def infer(self, iterations: int = 1, warmup: int = 0, name: str = "") -> Inference:
        lines = self.command(f"infer {iterations} {warmup}", timeout=self.timeout + 60)
        return parse_inference(lines, iterations, name, self.where)


    def stream(self, data: bytes, name: str = "") -> Inference:
        """One inference on a --stream-input serial build: `stream%`, then each stripe
        the device requests (m-stripe-<row0>-<bytes>, in row order) as `db <hex>%`
        chunks; the device never holds the whole image. Latency includes the UART."""
        slow = self.timeout + 60
        lines = self.command("stream", timeout=slow)
        if not any(_STREAM_START.search(ln) for ln in lines):
            raise DeviceProtocolError(f"`stream%` was not answered with m-stream-start ({lines[:3]})", self.where,
                                      "build the firmware with --mode serial --stream-input, or run without "
                                      "--stream")
        sent, last_row = 0, -1
        while (req := [m for ln in lines if (m := _STRIPE.search(ln))]):
            row0, nbytes = int(req[-1].group(1)), int(req[-1].group(2))
            if row0 <= last_row or sent + nbytes > len(data):
                self._abort_stream()
                raise DeviceProtocolError(
                    f"device asked for {nbytes} bytes from row {row0} after {sent} of the "
                    f"{len(data)} input bytes", self.where,
                    "the input does not match the model's input size (check --model)")
            last_row = row0
            stripe = data[sent:sent + nbytes]
            sent += nbytes
            for off in range(0, nbytes, self.chunk):
                lines = self.command("db " + stripe[off:off + self.chunk].hex(), timeout=slow)
        if sent != len(data):
            raise DeviceProtocolError(f"device read {sent} of the {len(data)} input bytes", self.where,
                                      "the input does not match the model's input size (check --model)")
        return parse_inference(lines, 1, name, self.where)


    def _abort_stream(self) -> None:
        """Any command but `db` ends a stream on the device (e-[Stream aborted...],
        then m-ready); leave the device serving commands again."""
        self.ser.write(b"abort%")
        self.ser.flush()
        deadline = time.monotonic() + self.timeout
        try:
            while self._readline(deadline, "abort") != READY:
                pass
        except (DeviceProtocolError, NoAnswerError):
            pass


def model_id(profile_lines: list[str]) -> str | None:
    """The benchmark id from a `profile%` answer (m-model-[<id>]): kws01, vww01, ic01,
    ad01 select the MLPerf Tiny wire formats (tinyml.eembc); any other is the model name."""
    return next((m.group(1) for ln in profile_lines if (m := _MODEL.match(ln))), None)


def parse_inference(lines: list[str], iterations: int, name: str = "", where: str = "") -> Inference:
    laps = [int(m.group(1)) for ln in lines if (m := _LAP.search(ln))]
    res = [m for ln in lines if (m := _RESULTS.search(ln))]
    if not res:
        raise DeviceProtocolError(f"no m-results line in the answer to infer ({lines[-3:]})", where,
                                  "check that the firmware speaks the MLPerf Tiny protocol")
    body = res[-1].group(1).strip()
    try:
        values = [float(v) for v in body.split(",")] if body else []
    except ValueError:
        raise DeviceProtocolError(f"unparsable results: {res[-1].group(0)}", where,
                                  "check the firmware's th_results()") from None
    latency = (laps[-1] - laps[0]) / iterations if len(laps) >= 2 and iterations > 0 else None
    top = max(range(len(values)), key=values.__getitem__) if values else None
    return Inference(name, values, laps, iterations, latency, top, lines)
