"""Open a serial port (device path, pty, or pyserial URL) with clear errors.

`socket://host:port`, `rfc2217://...` and `loop://` go through pyserial's
`serial_for_url`; plain paths are opened exclusively so that a second program
on the same port is reported as "busy" instead of corrupting the transfer.
"""
from __future__ import annotations

import errno
import os
import stat
import termios

import serial

from .errors import PortBusyError, PortError, PortMissingError

_LIST_FIX = "list ports with `python -m serial.tools.list_ports`; check the USB cable"


def open_port(port: str, baud: int = 115200, *, parity: str = serial.PARITY_NONE,
              timeout: float = 1.0, rts: bool | None = None, dtr: bool | None = None,
              exclusive: bool = True) -> serial.SerialBase:
    """Open `port`; `rts`/`dtr` (if not None) are the line states applied at open.

    A pseudo-terminal has no framing, and recent Linux kernels refuse parity
    settings on one (EINVAL): a pty is opened 8N1 instead, which carries the
    same bytes.
    """
    try:
        return _open(port, baud, parity, timeout, rts, dtr, exclusive)
    except PortError:
        if parity != serial.PARITY_NONE and is_pty(port):
            return _open(port, baud, serial.PARITY_NONE, timeout, rts, dtr, exclusive)
        raise


def is_pty(port: str) -> bool:
    """True for a Unix98 pty slave (/dev/pts/N): character device majors 136-143."""
    try:
        st = os.stat(port)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and 136 <= os.major(st.st_rdev) <= 143


def _open(port: str, baud: int, parity: str, timeout: float, rts: bool | None, dtr: bool | None,
          exclusive: bool) -> serial.SerialBase:
    is_url = "://" in port
    if not is_url and not os.path.exists(port):
        raise PortMissingError(f"serial port {port} does not exist", port, _LIST_FIX)
    try:
        ser = serial.serial_for_url(port, do_not_open=True) if is_url else serial.Serial()
        if not is_url:
            ser.port = port
            ser.exclusive = exclusive
        ser.baudrate = baud
        ser.parity = parity
        ser.stopbits = serial.STOPBITS_ONE
        ser.bytesize = serial.EIGHTBITS
        ser.timeout = timeout
        ser.write_timeout = max(timeout, 2.0)
        if rts is not None:
            ser.rts = rts
        if dtr is not None:
            ser.dtr = dtr
        ser.open()
    except (serial.SerialException, OSError, ValueError, termios.error) as exc:
        raise _classify(port, exc) from None
    return ser


def _classify(port: str, exc: BaseException) -> PortError:
    text = str(exc)
    code = getattr(exc, "errno", None)
    if code is None and isinstance(exc, termios.error) and exc.args:
        code = exc.args[0]
    low = text.lower()
    if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "lock" in low or "busy" in low:
        return PortBusyError(f"serial port {port} is busy ({text})", port,
                             "close the other program using it (screen, minicom, a running `tinyml run`)")
    if code == errno.EACCES or "permission" in low:
        return PortError(f"no permission to open {port} ({text})", port,
                         "add yourself to the `dialout` group (then log in again) or fix the udev rule")
    if code == errno.ENOENT or "no such file" in low:
        return PortMissingError(f"serial port {port} does not exist", port, _LIST_FIX)
    if "connection refused" in low or code == errno.ECONNREFUSED:
        return PortMissingError(f"nothing listens at {port} ({text})", port,
                                "start the emulator with `tinyml emulate DIR --serial` and use the URL it prints")
    return PortError(f"cannot open serial port {port} ({text})", port, _LIST_FIX)


def set_lines(ser: serial.SerialBase, *, rts: bool | None = None, dtr: bool | None = None) -> bool:
    """Set modem lines; False if the port has none (a pty, a socket)."""
    try:
        if rts is not None:
            ser.rts = rts
        if dtr is not None:
            ser.dtr = dtr
    except (OSError, serial.SerialException, ValueError, NotImplementedError):
        return False
    return True
