"""A fake MLPerf Tiny device under test on a pty (test support and demos).

It implements the runner protocol the way the reference firmware API does
(`name`, `profile`, `db load N`, `db <hex>`, `db print`, `infer N W`,
`results`, each answered and closed with `m-ready`), and computes results
with a Python callable on the loaded bytes. `mode="silent"` never answers;
`mode="noise"` answers every command with binary junk (a wrong baud rate).
"""
from __future__ import annotations

import os
import random
import select
import threading
import tty
from typing import Callable

Model = Callable[[bytes], list[float]]


class FakeDut:
    def __init__(self, model: Model, *, input_bytes: int | None = None, us_per_inference: int = 1234,
                 mode: str = "ok", max_buffer: int = 1 << 20, name: str = "fake-dut",
                 clock: str | None = None) -> None:
        self.model = model
        self.input_bytes = input_bytes
        self.us_per_inference = us_per_inference
        self.mode = mode
        self.max_buffer = max_buffer
        self.name = name
        self.clock = clock              # the `clock%` answer line (None: unknown command)
        self.buffer = bytearray()
        self.expect = 0
        self.last_results: list[float] = []
        self.commands: list[str] = []
        self.clock_us = 1_000_000
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master = self._slave = -1
        self.path = ""

    def start(self) -> str:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._serve, name="fake-dut", daemon=True)
        self._thread.start()
        self._out("m-init-done\r\nm-ready\r\n")
        return self.path

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    def __enter__(self) -> "FakeDut":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _out(self, text: str) -> None:
        if self.mode == "silent":
            return
        data = text.encode("ascii")
        if self.mode == "noise":
            rng = random.Random(len(self.commands))
            data = bytes(rng.randrange(256) for _ in range(40)) + b"\r\n"
        os.write(self._master, data)

    def _serve(self) -> None:
        cmd = bytearray()
        while not self._stop.is_set():
            r, _, _ = select.select([self._master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                continue
            for b in data:
                if b == ord("%"):
                    self._handle(cmd.decode("ascii", "replace"))
                    cmd.clear()
                elif len(cmd) < 4096:
                    cmd.append(b)

    def _handle(self, line: str) -> None:
        self.commands.append(line)
        tok = line.split()
        out: list[str] = []
        if not tok:
            pass
        elif tok[0] == "name":
            out.append(f"m-name-dut-[{self.name}]")
        elif tok[0] == "profile":
            out += ["m-profile-[tinyml fake]", "m-model-[fake]"]
        elif tok[0] == "clock" and self.clock is not None:
            out.append(self.clock)
        elif tok[0] == "db" and len(tok) >= 2 and tok[1] == "load":
            n = int(tok[2]) if len(tok) > 2 and tok[2].isdigit() else 0
            if n <= 0:
                out.append("e-[Command 'db load' must be >0 bytes]")
            elif n > self.max_buffer:
                out.append(f"e-[Supplied buffer size {n} exceeds maximum of {self.max_buffer}]")
            else:
                self.expect = n
                self.buffer = bytearray()
                out.append(f"m-[Expecting {n} bytes]")
        elif tok[0] == "db" and len(tok) >= 2 and tok[1] == "print":
            out += [f"m-buffer-{self.buffer[i:i + 8].hex('-')}" for i in range(0, len(self.buffer), 8)]
        elif tok[0] == "db" and len(tok) >= 2:
            hexs = tok[1]
            if len(hexs) % 2:
                out.append("e-[Insufficent number of hex digits]")
            else:
                try:
                    chunk = bytes.fromhex(hexs)
                except ValueError:
                    chunk = None
                    out.append("e-[Invalid hex digit]")
                if chunk is not None:
                    room = self.expect - len(self.buffer)
                    self.buffer += chunk[:room]
                    if len(self.buffer) == self.expect and room > 0:
                        out.append("m-load-done")
        elif tok[0] == "infer":
            n = int(tok[1]) if len(tok) > 1 else 1
            w = int(tok[2]) if len(tok) > 2 else 10
            if self.input_bytes is not None and len(self.buffer) != self.input_bytes:
                out.append(f"e-[input has {len(self.buffer)} bytes, model needs {self.input_bytes}]")
            else:
                out += [f"m-warmup-start-{w}", "m-warmup-done", f"m-infer-start-{n}"]
                out.append(f"m-lap-us-{self.clock_us}")
                self.clock_us += n * self.us_per_inference
                out.append(f"m-lap-us-{self.clock_us}")
                out.append("m-infer-done")
                self.last_results = list(self.model(bytes(self.buffer)))
                out.append(self._results())
        elif tok[0] == "results":
            out.append(self._results())
        else:
            out.append(f"e-[Unknown command: {tok[0]}]")
        self._out("".join(ln + "\r\n" for ln in out) + "m-ready\r\n")

    def _results(self) -> str:
        return "m-results-[" + ",".join(f"{v:0.3f}" for v in self.last_results) + "]"
