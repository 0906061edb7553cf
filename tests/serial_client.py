"""Test support for the serial-mode emulator tests: a raw pyserial client on
QEMU's TCP chardev that reads whole lines up to `m-ready` (deliberately not
deploy.runner, so the tests see the device's own lines, errors included)."""
from __future__ import annotations

import socket
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port: int) -> None:
        import serial
        deadline = time.monotonic() + 20
        while True:
            try:
                self.ser = serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=10)
                break
            except serial.SerialException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.buf = b""

    def until_ready(self, timeout: float = 60.0) -> list[str]:
        """Lines up to and including m-ready (bytes after it stay buffered)."""
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.buf += self.ser.read(self.ser.in_waiting or 1)
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                text = line.decode("ascii", "replace").strip()
                if text:
                    lines.append(text)
                if text == "m-ready":
                    return lines
        raise AssertionError(f"no m-ready within {timeout}s; got {lines!r} + {self.buf!r}")

    def cmd(self, text: str, timeout: float = 60.0) -> list[str]:
        self.ser.write(text.encode("ascii") + b"%")
        return self.until_ready(timeout)
