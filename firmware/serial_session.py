"""Serial sessions: QEMU running a serial-mode build (MLPerf Tiny runner
protocol) with its console UART on a TCP server socket, for `tinyml emulate
--serial`, `tinyml run --port socket://...` and the runner."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from tinyml.boards import load_board
from tinyml.errors import TinymlError
from tinyml.firmware.build import load_build_meta, variant_dir
from tinyml.firmware.qemu import QEMU_SYSTICK_HZ, build_variant, firmware_elf, machine_note, qemu_command, stop_qemu

_LISTEN = re.compile(r"waiting for connection on: \S*?tcp:([^:,\s]+):(\d+)")
_BUSY = ("Address already in use", "Failed to find an available port")


@dataclass
class SerialSession:
    """A QEMU process running a serial-mode build with its console UART on a
    TCP server socket. `url` is what pyserial (`tinyml run --port`) opens."""
    proc: subprocess.Popen
    host: str
    port: int
    board: str
    machine: str
    variant: str
    model: str
    note: str
    elf: str
    output: list[str] = field(default_factory=list)
    # Instructions per `m-lap-us` unit the device reports under this machine
    # (None if unknown). The firmware converts SysTick ticks with the clock its
    # boot banner reports (QEMU models no RCC: the reset clock); QEMU's SysTick
    # runs at the machine's clock and -icount shift=0 makes one instruction 1 ns.
    instructions_per_lap_us: float | None = None
    banner: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    def tail(self, n: int = 10) -> list[str]:
        return [ln.rstrip() for ln in self.output[-n:]]


_BANNER_CLOCK = re.compile(r"^clock: (\d+(?:\.\d+)?) MHz")


def banner_cpu_hz(banner: list[str]) -> int | None:
    """The core clock the firmware's boot banner reports (`clock: 16 MHz (HSI, PLL not
    ready)`): the clock its micros() assume (None without that line)."""
    for ln in banner:
        m = _BANNER_CLOCK.match(ln)
        if m:
            return round(float(m.group(1)) * 1_000_000)
    return None


def instructions_per_lap_us(cpu_hz: int | None, machine: str) -> float | None:
    """lap-us -> instructions: us * cpu_hz/1e6 = SysTick ticks; ticks * 1e9 / systick_hz = ns = instructions."""
    systick_hz = QEMU_SYSTICK_HZ.get(machine)
    if not cpu_hz or not systick_hz:
        return None
    return cpu_hz / 1e6 * 1e9 / systick_hz


def _die_with_parent() -> None:
    """preexec_fn: the kernel kills QEMU if the process that started it dies
    (even by SIGKILL), so no emulator is ever left running on its own."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _check_port_free(host: str, port: int) -> None:
    import socket
    if port == 0:
        return
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as QEMU binds
        try:
            s.bind((host, port))
        except OSError as exc:
            raise TinymlError(f"TCP port {port} on {host} is busy ({exc.strerror})", f"{host}:{port}",
                              "pick another --port, or omit --port to use a free one") from None


def _await_banner(sess: SerialSession, timeout: float) -> list[str]:
    """Be the first client: QEMU (`wait=on`) starts the guest on this connect;
    read the boot banner up to `m-ready`, then disconnect (QEMU listens again).

    Needed because QEMU's STM32 USART drops bytes that arrive before the
    firmware has enabled it: a client that types right after connecting
    would lose its first command. After the banner the UART is on."""
    import socket
    deadline = time.monotonic() + timeout
    buf = b""
    with socket.create_connection((sess.host, sess.port), timeout=timeout) as s:
        while b"m-ready" not in buf:
            if sess.proc.poll() is not None:
                raise TinymlError(f"QEMU exited (code {sess.proc.returncode}) while the firmware booted: "
                                  + " | ".join(ln for ln in sess.tail(3) if ln), sess.elf,
                                  "run the self-test build of the same model to find the fault")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TinymlError(f"the firmware printed no boot banner (m-ready) within {timeout:g} s "
                                  f"(got {buf[-80:]!r})", sess.elf,
                                  "check that DIR is a serial-mode build of this tree; rebuild it")
            s.settimeout(min(left, 0.5))
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                raise TinymlError("QEMU closed the serial socket during boot", sess.elf,
                                  "check the QEMU output above")
            buf += chunk
    return [ln.strip() for ln in buf.decode("ascii", "replace").splitlines() if ln.strip()]


def start_serial_session(out_dir: str, port: int = 0, host: str = "127.0.0.1", timeout: float = 30.0,
                         progress=None, on_output=None, await_banner: bool = True) -> SerialSession:
    """Start QEMU on DIR's serial-mode firmware with the console UART on a TCP
    server socket (`port` 0 = any free port).

    QEMU waits for the first client before it starts the guest (`wait=on`).
    With `await_banner` (default) this function is that client: it reads the
    boot banner (`m-timestamp-mode-...`, `m-lap-us-...`, `m-init-done`, `m-ready`) and disconnects, so the session is
    returned with the firmware running and its UART enabled; later clients
    (`tinyml run`, MLPerf Tiny's runner) connect to the running firmware.
    Without it, it returns as soon as QEMU listens and the first client sees
    the banner. Console lines QEMU itself prints (semihosting, errors) go to
    `on_output` and `SerialSession.output`. Stop with `stop_serial_session`.
    """
    meta = load_build_meta(out_dir)
    if meta.get("mode") != "serial":
        raise TinymlError(f"{out_dir} was built in {meta.get('mode')} mode, which has no serial protocol",
                          out_dir, "rebuild with `tinyml build MODEL --board B -o DIR --mode serial`")
    if not 0 <= port <= 65535:
        raise TinymlError(f"--port {port} is not a TCP port", "tinyml emulate --serial", "use 1..65535 or 0")
    board = load_board(meta["board"])
    variant = build_variant(out_dir, board)
    elf = firmware_elf(out_dir, variant, progress)
    _check_port_free(host, port)
    cmd = qemu_command(board, elf, variant, f"tcp:{host}:{port},server=on,wait=on,nodelay=on")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_die_with_parent)
    sess = SerialSession(proc, host, port, board.name, board.qemu.machine, variant,
                         meta.get("model", ""), machine_note(board, variant), elf)
    listening = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            sess.output.append(line)
            m = _LISTEN.search(line)
            if m and not listening.is_set():
                sess.port = int(m.group(2))
                listening.set()
            elif on_output is not None:
                on_output(line.rstrip("\r\n"))
        listening.set()

    threading.Thread(target=reader, daemon=True).start()
    try:
        ok = listening.wait(timeout)
    except BaseException:
        stop_serial_session(sess, grace=0)
        raise
    if ok and proc.poll() is None and await_banner:
        try:
            sess.banner = _await_banner(sess, timeout)
            sess.instructions_per_lap_us = instructions_per_lap_us(banner_cpu_hz(sess.banner),
                                                                   board.qemu.machine)
        except BaseException:
            stop_serial_session(sess, grace=0)
            raise
    if not ok or proc.poll() is not None:
        stop_serial_session(sess, grace=0)
        text = "".join(sess.output)
        if any(b in text for b in _BUSY):
            raise TinymlError(f"TCP port {port} on {host} is busy", f"{host}:{port}",
                              "pick another --port, or omit --port to use a free one")
        if not ok:
            raise TinymlError(f"QEMU did not open its serial socket within {timeout:g} s", " ".join(cmd[:3]),
                              "check that qemu-system-arm runs (try it by hand) and the machine is not overloaded")
        last = next((ln.strip() for ln in reversed(sess.output) if ln.strip()), "no output")
        raise TinymlError(f"QEMU exited (code {proc.returncode}) before listening: {last}", elf,
                          "rebuild the firmware; check the QEMU version (7.2 is tested)")
    return sess


def stop_serial_session(sess: SerialSession, grace: float = 3.0) -> int | None:
    """Stop QEMU: SIGTERM (QEMU shuts down cleanly), SIGKILL after `grace` s.
    Returns QEMU's exit code (None if it had to be killed)."""
    proc = sess.proc
    if proc.poll() is None and grace > 0:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            pass
    killed = proc.poll() is None
    stop_qemu(proc)
    return None if killed else proc.returncode
