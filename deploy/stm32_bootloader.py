"""Host side of the STM32 USART ROM bootloader (ST application note AN3155).

Wire format (8 data bits, even parity, 1 stop bit):

- sync: host sends 0x7F once; the bootloader answers ACK (0x79).
- every command is two bytes, `cmd, cmd ^ 0xFF`; ACK or NACK (0x1F) follows.
- addresses are 4 bytes big-endian followed by their XOR; lengths are sent
  as N-1 (so 1..256 bytes per Read/Write); Write sends N-1, the data and
  the XOR of N-1 and all data bytes.
- a bootloader already synced takes a stray 0x7F as the first byte of a
  command, so a second 0x7F makes an invalid pair and gets a NACK: either
  answer means "in sync".

`Stm32Bootloader` implements single commands with retries and resync;
`flash_image` runs the whole job (identify, erase, write, verify, go) and
never returns unless every byte of the image was written (and, by default,
read back equal).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import serial

from .board_info import BoardLike, sector_index_range
from .errors import (BootloaderProtocolError, EraseError, EraseRefusedError, FirmwareFileError, FlashSizeError, LinkLostError,
                     NoAnswerError,
                     ReadoutProtectedError, SerialLinkError, VerifyMismatchError, WrongChipError,
                     WriteNackError)
from .firmware_image import FirmwareImage, check_vector_table
from .serial_port import set_lines

ACK = 0x79
NACK = 0x1F
SYNC = 0x7F

CMD_GET = 0x00
CMD_GET_VERSION = 0x01
CMD_GET_ID = 0x02
CMD_READ = 0x11
CMD_GO = 0x21
CMD_WRITE = 0x31
CMD_ERASE = 0x43
CMD_EXT_ERASE = 0x44
CMD_READOUT_PROTECT = 0x82
CMD_READOUT_UNPROTECT = 0x92

MAX_BLOCK = 256

# Filler fed to a bootloader stuck inside a command. 0x02 makes every phase end in a
# NACK without side effects: an address of 02 02 02 02 has checksum 0 (sent: 02); a
# Write length 02 + three 02s has checksum 0 (sent: 02); an Extended Erase count of
# 0x0202 pages (1031 bytes) has checksum 0 (sent: 02), never the 0xFFFx mass-erase
# codes; a pair 02 02 (or 02 7F) is not a command.
FILLER = 0x02

# AN2606 product ids, only for messages.
KNOWN_PIDS = {
    0x413: "STM32F40x/41x", 0x419: "STM32F42x/43x", 0x421: "STM32F446", 0x431: "STM32F411",
    0x449: "STM32F74x/75x", 0x451: "STM32F76x/77x", 0x452: "STM32F72x/73x", 0x450: "STM32H74x/75x",
    0x410: "STM32F10x medium density", 0x414: "STM32F10x high density", 0x415: "STM32L47x/48x",
}

# Flash size data register (16 bits, KiB) per product id, from the reference manuals
# (RM0090 F40x/F42x, RM0383/RM0390 F411/F446, RM0385/RM0410 F74x/F76x, RM0431 F72x,
# RM0433 H74x, RM0351/RM0432 L4). The ROM bootloader can read it.
FLASH_SIZE_REG = {
    0x413: 0x1FFF7A22, 0x419: 0x1FFF7A22, 0x421: 0x1FFF7A22, 0x431: 0x1FFF7A22,
    0x449: 0x1FF0F442, 0x451: 0x1FF0F442, 0x452: 0x1FF07A22, 0x450: 0x1FF1E880,
    0x415: 0x1FFF75E0, 0x470: 0x1FFF75E0,
}

ENTER_FIX = ("hold BOOT0 high and reset the board (or wire RTS->BOOT0, DTR->NRST and pick "
             "--reset-polarity); check TX/RX are crossed, GND is shared and --baud matches")

Progress = Callable[[str, int, int], None]


def pid_name(pid: int) -> str:
    return f"0x{pid:03X} ({KNOWN_PIDS.get(pid, 'unknown chip')})"


def xor(data: bytes | bytearray) -> int:
    x = 0
    for b in data:
        x ^= b
    return x


def _addr(address: int) -> bytes:
    a = address.to_bytes(4, "big")
    return a + bytes([xor(a)])


class _Nack(Exception):
    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


class _Timeout(Exception):
    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


class _Garbage(Exception):
    def __init__(self, stage: str, byte: int) -> None:
        super().__init__(f"{stage}: 0x{byte:02X}")
        self.stage = stage
        self.byte = byte


@dataclass
class LinkStats:
    retries: int = 0
    resyncs: int = 0
    nacks: int = 0
    timeouts: int = 0
    garbage: int = 0


@dataclass
class ResetControl:
    """BOOT0 and NRST driven by RTS and DTR.

    `normal` is the direct wiring to a TTL USB-UART adapter, whose control
    outputs go LOW when asserted: RTS -> BOOT0 (asserted = BOOT0 low, run from
    flash) and DTR -> NRST (asserted = held in reset). `inverted` swaps the
    meaning of both lines (adapters or boards with an inverter in between).
    `none` never touches them: put the board in bootloader mode by hand.
    """

    polarity: str = "normal"
    pulse_s: float = 0.1
    boot_s: float = 0.2

    def states(self, boot0_high: bool, in_reset: bool) -> tuple[bool, bool]:
        rts, dtr = (not boot0_high), in_reset
        if self.polarity == "inverted":
            rts, dtr = not rts, not dtr
        return rts, dtr

    def _set(self, ser: serial.SerialBase, boot0_high: bool, in_reset: bool) -> bool:
        rts, dtr = self.states(boot0_high, in_reset)
        return set_lines(ser, rts=rts, dtr=dtr)

    def enter_bootloader(self, ser: serial.SerialBase) -> bool:
        """BOOT0 high, pulse reset; False when the port has no modem lines."""
        if self.polarity == "none":
            return True
        if not self._set(ser, True, True):
            return False
        time.sleep(self.pulse_s)
        self._set(ser, True, False)
        time.sleep(self.boot_s)
        return True

    def run_mode(self, ser: serial.SerialBase) -> bool:
        """BOOT0 low, not in reset (the next reset starts the application)."""
        if self.polarity == "none":
            return True
        return self._set(ser, False, False)

    def reset_to_application(self, ser: serial.SerialBase) -> bool:
        if self.polarity == "none":
            return True
        if not self._set(ser, False, True):
            return False
        time.sleep(self.pulse_s)
        self._set(ser, False, False)
        return True


class Stm32Bootloader:
    """One AN3155 command per method, retried with resync on NACK/timeout."""

    def __init__(self, ser: serial.SerialBase, *, retries: int = 5,
                 erase_timeout: float = 20.0, where: str = "") -> None:
        # The port's own read timeout is the per-answer timeout. It is never changed
        # here: re-configuring a pty opened with parity fails (EINVAL) on Linux.
        self.ser = ser
        self.timeout = float(ser.timeout if ser.timeout is not None else 1.0)
        self.retries = retries
        self.erase_timeout = erase_timeout
        self.where = where or str(getattr(ser, "port", "") or "serial port")
        self.stats = LinkStats()
        self.commands: bytes = b""
        self.version: int | None = None
        self.connected = False

    # ---- bytes on the wire ---------------------------------------------------
    def _write(self, data: bytes) -> None:
        try:
            self.ser.write(data)
            self.ser.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkLostError(f"the serial port stopped working ({exc})", self.where,
                                "reconnect the adapter and retry") from None

    def _read(self, n: int, stage: str, timeout: float | None = None) -> bytes:
        """n bytes, waiting at least the port timeout and up to `timeout` in total."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        data = bytearray()
        while len(data) < n:
            try:
                data += self.ser.read(n - len(data))
            except (serial.SerialException, OSError) as exc:
                raise LinkLostError(f"the serial port stopped working ({exc})", self.where,
                                    "reconnect the adapter and retry") from None
            if len(data) < n and time.monotonic() >= deadline:
                self.stats.timeouts += 1
                raise _Timeout(stage)
        return bytes(data)

    def _ack(self, stage: str, timeout: float | None = None) -> None:
        b = self._read(1, stage, timeout)[0]
        if b == ACK:
            return
        if b == NACK:
            self.stats.nacks += 1
            raise _Nack(stage)
        self.stats.garbage += 1
        raise _Garbage(stage, b)

    def _cmd(self, code: int) -> None:
        self._write(bytes([code, code ^ 0xFF]))
        self._ack("command")

    def _drain(self, quiet: float | None = None) -> None:
        """Read until the line has been quiet for `quiet` seconds (max 2 s)."""
        quiet = min(0.05, self.timeout / 4) if quiet is None else quiet
        deadline = time.monotonic() + 2.0
        try:
            while time.monotonic() < deadline:
                time.sleep(quiet)
                waiting = self.ser.in_waiting
                if not waiting:
                    break
                self.ser.read(waiting)
            self.ser.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise LinkLostError(f"the serial port stopped working ({exc})", self.where,
                                "reconnect the adapter and retry") from None

    # ---- sync ------------------------------------------------------------------
    def connect(self, attempts: int = 4) -> None:
        """First contact: 0x7F until ACK/NACK, then a Get Version probe."""
        if not self._sync(attempts):
            raise NoAnswerError("the STM32 bootloader does not answer the 0x7F sync byte",
                                self.where, ENTER_FIX)
        self.connected = True

    def resync(self) -> None:
        self.stats.resyncs += 1
        # Flush whatever command the bootloader may be inside first (see _sync).
        self._write(bytes([FILLER]) * 8)
        if not self._sync(8):
            raise NoAnswerError("the STM32 bootloader stopped answering (resync failed)",
                                self.where, "check the cable and power, then run the command again")

    def _sync(self, attempts: int) -> bool:
        # Silence after 0x7F means the bootloader is inside a command waiting for more
        # bytes: an address, up to 258 bytes of a Write, or an Extended Erase page list
        # whose length came from the bytes we sent. Feed it growing bursts of FILLER
        # until it answers; the 0x7F after that pairs up cleanly.
        feed = (0, 8, 64, 1100)
        silent = 0
        for _ in range(attempts):
            self._drain()
            self._write(bytes([SYNC]))
            try:
                b = self._read(1, "sync")[0]
            except _Timeout:
                extra = feed[min(silent, len(feed) - 1)]
                silent += 1
                if extra:
                    self._write(bytes([FILLER]) * extra)
                continue
            if b not in (ACK, NACK):
                continue
            self._drain()
            if self._probe():
                return True
        return False

    def _probe(self) -> bool:
        try:
            self._cmd(CMD_GET_VERSION)
            self._read(3, "get version")
            self._ack("get version end")
        except (_Nack, _Timeout, _Garbage):
            return False
        return True

    # ---- retry loop --------------------------------------------------------------
    def _run(self, what: str, fn: Callable[[], object],
             fail: Callable[[Exception | None, int, int], Exception] | None = None) -> object:
        last: Exception | None = None
        command_nacks = 0
        attempts = self.retries + 1
        for attempt in range(attempts):
            if attempt:
                self.stats.retries += 1
                self.resync()
            try:
                return fn()
            except _Nack as exc:
                last = exc
                command_nacks += exc.stage == "command"
            except (_Timeout, _Garbage) as exc:
                last = exc
        if fail is not None:
            raise fail(last, command_nacks, attempts)
        raise self._default_failure(what, last)

    def _default_failure(self, what: str, last: Exception | None) -> Exception:
        if isinstance(last, _Timeout):
            return NoAnswerError(f"no answer to {what} ({last.stage}) after {self.retries + 1} attempts",
                                 self.where, "check the cable, power and --baud, then retry")
        if isinstance(last, _Garbage):
            return BootloaderProtocolError(f"unexpected byte 0x{last.byte:02X} in {what} ({last.stage})",
                                           self.where, "lower --baud or use a shorter cable; check GND")
        stage = last.stage if last else "?"
        return BootloaderProtocolError(f"bootloader refused {what} (NACK at {stage}) "
                                       f"{self.retries + 1} times", self.where,
                                       "reset the board into the bootloader and retry")

    def _protected_or(self, what: str, other: Callable[[Exception | None], Exception]):
        def fail(last: Exception | None, command_nacks: int, attempts: int) -> Exception:
            if command_nacks == attempts:
                return ReadoutProtectedError(
                    f"read-out protection is active: the bootloader refuses {what}", self.where,
                    "remove it with `stm32flash -k PORT` (this mass-erases the chip), power-cycle, retry")
            return other(last)
        return fail

    # ---- commands --------------------------------------------------------------------
    def get(self) -> tuple[int, bytes]:
        def fn() -> tuple[int, bytes]:
            self._cmd(CMD_GET)
            n = self._read(1, "get length")[0]
            data = self._read(n + 1, "get data")
            self._ack("get end")
            return data[0], bytes(data[1:])
        self.version, self.commands = self._run("Get", fn)  # type: ignore[misc]
        return self.version, self.commands

    def get_version(self) -> tuple[int, int, int]:
        def fn() -> tuple[int, int, int]:
            self._cmd(CMD_GET_VERSION)
            d = self._read(3, "get version")
            self._ack("get version end")
            return d[0], d[1], d[2]
        return self._run("Get Version", fn)  # type: ignore[return-value]

    def get_id(self) -> int:
        def fn() -> int:
            self._cmd(CMD_GET_ID)
            n = self._read(1, "get id length")[0]
            data = self._read(n + 1, "get id data")
            self._ack("get id end")
            return int.from_bytes(data[:2], "big")
        return self._run("Get ID", fn)  # type: ignore[return-value]

    def read_memory(self, address: int, n: int) -> bytes:
        assert 1 <= n <= MAX_BLOCK

        def fn() -> bytes:
            self._cmd(CMD_READ)
            self._write(_addr(address))
            self._ack("address")
            self._write(bytes([n - 1, (n - 1) ^ 0xFF]))
            self._ack("length")
            return self._read(n, "data")

        def other(last: Exception | None) -> Exception:
            return self._default_failure(f"Read Memory at 0x{address:08X}", last)
        return self._run(f"Read Memory at 0x{address:08X}", fn,
                         self._protected_or("Read Memory", other))  # type: ignore[return-value]

    def write_memory(self, address: int, data: bytes) -> None:
        n = len(data)
        assert 1 <= n <= MAX_BLOCK and n % 4 == 0 and address % 4 == 0
        payload = bytes([n - 1]) + data
        payload += bytes([xor(payload)])

        def fn() -> None:
            self._cmd(CMD_WRITE)
            self._write(_addr(address))
            self._ack("address")
            self._write(payload)
            self._ack("data")   # programming 256 bytes takes a few ms; the port timeout covers it

        def other(last: Exception | None) -> Exception:
            if isinstance(last, _Nack):
                return WriteNackError(
                    f"the bootloader refused Write Memory at 0x{address:08X} ({n} bytes, NACK at "
                    f"{last.stage}) {self.retries + 1} times", self.where,
                    "check that the address is inside flash and was erased; lower --baud; retry")
            return self._default_failure(f"Write Memory at 0x{address:08X}", last)
        self._run(f"Write Memory at 0x{address:08X}", fn, self._protected_or("Write Memory", other))

    def erase(self, sectors: list[int] | None) -> None:
        """Erase the listed sector indices, or everything (mass erase) for None."""
        ext = CMD_EXT_ERASE in self.commands or CMD_ERASE not in self.commands
        if ext:
            if sectors is None:
                body = b"\xff\xff\x00"
            else:
                body = (len(sectors) - 1).to_bytes(2, "big") + b"".join(s.to_bytes(2, "big") for s in sectors)
                body += bytes([xor(body)])
        else:
            if sectors is None:
                body = b"\xff\x00"
            else:
                if max(sectors) > 0xFF:
                    raise EraseError("legacy Erase (0x43) cannot address sector numbers above 255",
                                     self.where, "use --erase mass")
                body = bytes([len(sectors) - 1] + sectors)
                body += bytes([xor(body)])
        what = "mass erase" if sectors is None else f"erase of sector(s) {sectors}"
        timeout = self.erase_timeout * (4 if sectors is None else max(1, len(sectors)))

        def fn() -> None:
            self._cmd(CMD_EXT_ERASE if ext else CMD_ERASE)
            self._write(body)
            self._ack("erase", timeout)

        def other(last: Exception | None) -> Exception:
            if isinstance(last, _Timeout):
                return EraseError(f"{what} did not finish within {timeout:.0f} s", self.where,
                                  "power-cycle the board into the bootloader and retry")
            return EraseRefusedError(f"the bootloader refused the {what}", self.where,
                              "check write protection (stm32flash -u) and retry")
        self._run(what, fn, self._protected_or("Erase", other))

    def go(self, address: int) -> None:
        def fn() -> None:
            self._cmd(CMD_GO)
            self._write(_addr(address))
            self._ack("address")
        self._run(f"Go 0x{address:08X}", fn, self._protected_or("Go", lambda last: self._default_failure(
            f"Go 0x{address:08X}", last)))


@dataclass
class FlashResult:
    board: str
    pid: int
    bootloader_version: str
    image: str
    address: int
    bytes_written: int
    sectors_erased: list[int] | None      # None for a mass erase
    verified: bool
    started: bool
    seconds: float
    retries: int
    resyncs: int
    repaired_blocks: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "ok": True, "board": self.board, "product_id": f"0x{self.pid:03X}",
            "bootloader_version": self.bootloader_version, "image": self.image,
            "address": f"0x{self.address:08X}", "bytes_written": self.bytes_written,
            "erase": "mass" if self.sectors_erased is None else "sectors",
            "sectors_erased": self.sectors_erased, "verified": self.verified, "started": self.started,
            "seconds": round(self.seconds, 3),
            "bytes_per_second": round(self.bytes_written / self.seconds) if self.seconds > 0 else None,
            "retries": self.retries, "resyncs": self.resyncs, "repaired_blocks": self.repaired_blocks,
            "warnings": self.warnings,
        }


def _blocks(image: FirmwareImage) -> list[tuple[int, bytes]]:
    out = []
    for seg in image.segments:
        for off in range(0, len(seg.data), MAX_BLOCK):
            out.append((seg.address + off, seg.data[off:off + MAX_BLOCK]))
    return out


def check_fits(image: FirmwareImage, board: BoardLike) -> None:
    lo, hi = board.flash_origin, board.flash_origin + board.flash_size
    for seg in image.segments:
        if seg.address < lo or seg.end > hi:
            raise FirmwareFileError(
                f"image bytes 0x{seg.address:08X}..0x{seg.end - 1:08X} lie outside {board.name}'s flash "
                f"0x{lo:08X}..0x{hi - 1:08X}", image.path,
                "build for this board (tinyml build --board), or pass the right --board/--address")


def chip_flash_bytes(bl: Stm32Bootloader, pid: int) -> int | None:
    """The chip's own flash size from its flash size register, or None when the
    product id has no known register or the bootloader does not answer the read
    (two tries at most: a refused read must not cost all the retries)."""
    reg = FLASH_SIZE_REG.get(pid)
    if reg is None or CMD_READ not in bl.commands:
        return None
    saved = bl.retries
    bl.retries = min(saved, 1)
    try:
        kib = int.from_bytes(bl.read_memory(reg, 2), "little")
    except SerialLinkError:
        bl.resync()
        return None
    finally:
        bl.retries = saved
    return kib * 1024 if 0 < kib < 0xFFFF else None


def recover_fix() -> str:
    return ("the ROM bootloader is still there: reconnect the cable (and power), then re-run "
            "`tinyml flash` (it erases and writes the whole image again)")


def flash_image(bl: Stm32Bootloader, board: BoardLike, image: FirmwareImage, *, erase: str = "sectors",
                verify: bool = True, go: bool = True, force: bool = False,
                progress: Progress | None = None, log: Callable[[str], None] | None = None) -> FlashResult:
    """Identify the chip, erase, write, verify and start `image`; raise on any failure."""
    t0 = time.monotonic()
    progress = progress or (lambda phase, done, total: None)
    log = log or (lambda msg: None)
    warnings: list[str] = []
    check_fits(image, board)
    check_vector_table(image, board.flash_origin, board.flash_origin + board.flash_size)

    if not bl.connected:
        bl.connect()
    version, commands = bl.get()
    for need, name in ((CMD_WRITE, "Write Memory"), (CMD_GET_ID, "Get ID")) + (
            ((CMD_READ, "Read Memory"),) if verify else ()):
        if need not in commands:
            raise BootloaderProtocolError(f"the bootloader does not offer {name} (0x{need:02X})", bl.where,
                                          "this is not an AN3155 USART bootloader we can drive")
    if CMD_EXT_ERASE not in commands and CMD_ERASE not in commands:
        raise BootloaderProtocolError("the bootloader offers neither Erase nor Extended Erase", bl.where,
                                      "this is not an AN3155 USART bootloader we can drive")
    pid = bl.get_id()
    if pid != board.bootloader_pid:
        msg = (f"the chip reports product id {pid_name(pid)}, but board {board.name} ({board.mcu}) "
               f"has {pid_name(board.bootloader_pid)}")
        if not force:
            raise WrongChipError(msg, bl.where, "pick the right --board, or pass --force to flash anyway")
        warnings.append(msg + " (--force)")
        log("warning: " + msg + " (--force)")

    chip_bytes = chip_flash_bytes(bl, pid)
    if chip_bytes is not None and chip_bytes < board.flash_size:
        chip_end = board.flash_origin + chip_bytes
        msg = (f"the chip has {chip_bytes // 1024} KiB of flash (its flash size register), board "
               f"{board.name}'s file says {board.flash_size // 1024} KiB")
        if image.end > chip_end:
            raise FlashSizeError(
                f"{msg}: the image ends at 0x{image.end - 1:08X}, past the chip's flash end "
                f"0x{chip_end - 1:08X}; nothing was erased", bl.where,
                "flash a board file that matches the chip (--board), or build a smaller image for it")
        warnings.append(msg)
        log(f"warning: {msg}; the image fits the chip's flash")

    blocks = _blocks(image)
    total = sum(len(d) for _, d in blocks)
    sectors: list[int] | None = None
    if erase == "mass":
        progress("erase", 0, 1)
        bl.erase(None)
        progress("erase", 1, 1)
    else:
        sectors = sorted({i for seg in image.segments
                          for i in sector_index_range(board, seg.address, seg.end)})
        for k, s in enumerate(sectors):
            progress("erase", k, len(sectors))
            try:
                bl.erase([s])
            except EraseRefusedError as exc:
                if k == 0:
                    raise
                start, size = board.flash_sectors[s]
                raise FlashSizeError(
                    f"{exc.cause} after sectors {sectors[:k]} erased: sector {s} "
                    f"(0x{start:08X}..0x{start + size - 1:08X}) may not exist on this chip, whose flash "
                    f"is then smaller than board {board.name}'s file says ({board.flash_size // 1024} KiB); "
                    "the old firmware is erased", exc.where,
                    "check the chip's marking against --board and flash a board file that matches it "
                    "(if it does match, remove write protection: stm32flash -u PORT), then re-run flash") from None
            except SerialLinkError as exc:
                if k == 0:
                    raise
                raise type(exc)(
                    f"{exc.cause}; the link was lost after erasing {k} of {len(sectors)} sector(s): "
                    "the old firmware is erased, nothing of the new one is written", exc.where,
                    recover_fix()) from None
        progress("erase", len(sectors), len(sectors))

    done = 0
    for addr, data in blocks:
        try:
            bl.write_memory(addr, data)
        except ReadoutProtectedError:
            raise
        except SerialLinkError as exc:
            raise type(exc)(
                f"{exc.cause}; the flash is half-written: {done} of {total} bytes were written "
                f"before the block at 0x{addr:08X} failed, and the board will not run this image",
                exc.where, recover_fix()) from None
        done += len(data)
        progress("write", done, total)

    repaired = 0
    if verify:
        bad = _verify(bl, blocks, progress)
        if bad:
            # Flash cannot be rewritten in place: erase what the bad blocks touch and write it again once.
            repaired = len(bad)
            log(f"warning: {len(bad)} block(s) read back wrong; erasing and rewriting them")
            redo = _repair(bl, board, blocks, bad, mass=erase == "mass")
            bad = _verify(bl, redo, progress)
            if bad:
                addr, data, got = bad[0]
                first = next(i for i in range(len(data)) if data[i] != got[i])
                raise VerifyMismatchError(
                    f"flash differs from the image at 0x{addr + first:08X} (wrote 0x{data[first]:02X}, "
                    f"read 0x{got[first]:02X}; {len(bad)} block(s) bad)", bl.where,
                    "the firmware on the board is NOT valid: retry with --erase mass at a lower --baud")

    started = False
    if go:
        bl.go(image.start)
        started = True
    return FlashResult(
        board=board.name, pid=pid, bootloader_version=f"{version >> 4}.{version & 0xF}",
        image=image.path, address=image.start, bytes_written=total, sectors_erased=sectors,
        verified=verify, started=started, seconds=time.monotonic() - t0,
        retries=bl.stats.retries, resyncs=bl.stats.resyncs, repaired_blocks=repaired, warnings=warnings)


def _verify(bl: Stm32Bootloader, blocks: list[tuple[int, bytes]],
            progress: Progress) -> list[tuple[int, bytes, bytes]]:
    """Blocks whose read-back differs from the image on two reads in a row."""
    bad = []
    total = sum(len(d) for _, d in blocks)
    done = 0
    for addr, data in blocks:
        got = bl.read_memory(addr, len(data))
        if got != data:
            # A read has no checksum: a corrupted byte on the wire is not a bad flash byte.
            reads = [got]
            for _ in range(3):
                again = bl.read_memory(addr, len(data))
                if again == data:
                    reads = []
                    break
                if again == reads[-1]:
                    break
                reads.append(again)
            if reads:
                bad.append((addr, data, reads[-1]))
        done += len(data)
        progress("verify", done, total)
    return bad


def _repair(bl: Stm32Bootloader, board: BoardLike, blocks: list[tuple[int, bytes]],
            bad: list[tuple[int, bytes, bytes]], mass: bool) -> list[tuple[int, bytes]]:
    if mass:
        bl.erase(None)
        redo = blocks
    else:
        sectors = {i for a, d, _ in bad for i in sector_index_range(board, a, a + len(d))}
        while True:
            redo = [(a, d) for a, d in blocks if set(sector_index_range(board, a, a + len(d))) & sectors]
            grown = sectors | {i for a, d in redo for i in sector_index_range(board, a, a + len(d))}
            if grown == sectors:
                break
            sectors = grown
        for s in sorted(sectors):
            bl.erase([s])
    for addr, data in redo:
        bl.write_memory(addr, data)
    return redo
