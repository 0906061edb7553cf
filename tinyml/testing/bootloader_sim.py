"""A simulated STM32 USART ROM bootloader (AN3155) on a pseudo-terminal.

Test support and demo device: it owns the master side of a pty and speaks
the bootloader protocol to whatever opens the slave path (our flasher,
`stm32flash`, a terminal). Flash is modelled the way STM32F4/F7 flash
behaves: erased state 0xFF, erase by sector (from the board's sector map) or
all at once, programming can only clear bits (new = old AND data; a byte that
would need a 0->1 transition makes the Write fail with NACK), and read-out
protection makes Read/Write/Erase/Go answer NACK after the command byte.

Fault injection (per byte or per answer, from a seeded RNG, optionally capped
by `max_faults`): dropped and corrupted received bytes, corrupted sent bytes,
spurious NACK in place of an ACK, answers delayed past the host's timeout,
and a wrong product id.

    python -m tinyml.testing.bootloader_sim --board stm32f746g-disco

prints the pty path (e.g. /dev/pts/5) and serves until Ctrl-C.
"""
from __future__ import annotations

import argparse
import collections
import fcntl
import os
import random
import select
import sys
import threading
import time
import tty
from dataclasses import dataclass
from typing import Any

# AN3155 bytes, shared with the flasher (the independent cross-check of the
# protocol is Debian's stm32flash driving this simulator, see the tests).
from tinyml.deploy.stm32_bootloader import (  # noqa: E402
    ACK, CMD_ERASE, CMD_EXT_ERASE, CMD_GET, CMD_GET_ID, CMD_GET_VERSION, CMD_GO, CMD_READ,
    CMD_READOUT_PROTECT, CMD_READOUT_UNPROTECT, CMD_WRITE, FLASH_SIZE_REG, NACK, SYNC)


def vector_table(board: Any, sp: int = 0x2001_0000, reset_offset: int = 0x1C1) -> bytes:
    """The 8 bytes a Cortex-M image starts with (initial SP, Thumb reset handler in
    the board's flash): what the flasher checks before erasing anything."""
    return sp.to_bytes(4, "little") + (int(board.flash_origin) + reset_offset).to_bytes(4, "little")


@dataclass
class Faults:
    """Probabilities of each fault; `max_faults` caps the total injected (None: no cap)."""

    drop_rx: float = 0.0       # a byte from the host is lost
    corrupt_rx: float = 0.0    # a byte from the host arrives with flipped bits
    corrupt_tx: float = 0.0    # a byte to the host arrives with flipped bits
    nack: float = 0.0          # an ACK is replaced by a NACK (and the command aborted)
    delay: float = 0.0         # an answer is held back for `delay_s`
    delay_s: float = 1.0
    max_faults: int | None = None
    seed: int = 0
    # a pulled cable: once this many flash bytes are programmed, the link goes dead
    # (nothing is received or sent, the block that crossed the mark is not ACKed)
    cut_after_bytes: int | None = None


class FlashModel:
    """Flash memory with sector erase and AND-programming."""

    def __init__(self, origin: int, sectors: list[tuple[int, int]]) -> None:
        self.origin = origin
        self.sectors = [(int(a), int(n)) for a, n in sectors]
        self.size = sum(n for _, n in self.sectors)
        self.mem = bytearray(b"\xff" * self.size)
        self.erase_count = [0] * len(self.sectors)

    def contains(self, address: int, n: int = 1) -> bool:
        return self.origin <= address and address + n <= self.origin + self.size

    def erase_sector(self, index: int) -> None:
        start, size = self.sectors[index]
        off = start - self.origin
        self.mem[off:off + size] = b"\xff" * size
        self.erase_count[index] += 1

    def erase_all(self) -> None:
        for i in range(len(self.sectors)):
            self.erase_sector(i)

    def program(self, address: int, data: bytes) -> bool:
        """new = old & data; False when some bit would have to go 0 -> 1 (not erased)."""
        off = address - self.origin
        old = self.mem[off:off + len(data)]
        new = bytes(o & d for o, d in zip(old, data))
        self.mem[off:off + len(data)] = new
        return new == bytes(data)

    def read(self, address: int, n: int) -> bytes:
        off = address - self.origin
        return bytes(self.mem[off:off + n])


class _Stop(Exception):
    pass


class BootloaderSim:
    """The device. `start()` returns the pty path; `stop()` ends the thread."""

    def __init__(self, board: Any, *, pid: int | None = None, rdp: bool = False,
                 faults: Faults | None = None, extended_erase: bool = True, version: int = 0x31,
                 ram: tuple[int, int] = (0x20000000, 0x10000),
                 flash_bytes: int | None = None) -> None:
        """`flash_bytes`: the chip's real flash size when it is smaller than the board
        file's (sectors past it do not exist; the flash size register says so)."""
        self.board = board
        self.pid = int(board.bootloader_pid if pid is None else pid)
        self.rdp = rdp
        self.faults = faults or Faults()
        self.extended_erase = extended_erase
        self.version = version
        sectors = [(int(a), int(n)) for a, n in board.flash_sectors]
        if flash_bytes is not None:
            sectors = [(a, n) for a, n in sectors if a + n <= int(board.flash_origin) + flash_bytes]
        self.flash = FlashModel(int(board.flash_origin), sectors)
        # the flash size register (KiB, little-endian) in system memory, where the chip has one
        reg = FLASH_SIZE_REG.get(self.pid)
        self.sysmem = {} if reg is None else {reg: (self.flash.size // 1024).to_bytes(2, "little")}
        self.cut = False
        self.ram_origin, ram_size = ram
        self.ram = bytearray(ram_size)
        self.synced = False
        self.app_started_at: int | None = None
        self.stats: collections.Counter[str] = collections.Counter()
        self._rng = random.Random(self.faults.seed)
        self._rx: collections.deque[int] = collections.deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master = self._slave = -1
        self.path = ""

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> str:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)          # no echo, no line editing until a client configures it
        flags = fcntl.fcntl(self._master, fcntl.F_GETFL)
        fcntl.fcntl(self._master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self.path = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._serve, name="bootloader-sim", daemon=True)
        self._thread.start()
        return self.path

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    def __enter__(self) -> "BootloaderSim":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """A reset with BOOT0 high: back in the bootloader, waiting for 0x7F."""
        self.synced = False
        self.app_started_at = None
        self._rx.clear()

    def replug(self) -> None:
        """The cable is back and the board was reset into the bootloader."""
        self.cut = False
        self.faults.cut_after_bytes = None
        self.reset()

    def flash_bytes(self, address: int, n: int) -> bytes:
        return self.flash.read(address, n)

    # ---- fault dice --------------------------------------------------------------------
    def _fault(self, kind: str) -> bool:
        p = getattr(self.faults, kind)
        if p <= 0:
            return False
        cap = self.faults.max_faults
        if cap is not None and self.stats["faults"] >= cap:
            return False
        if self._rng.random() < p:
            self.stats["faults"] += 1
            self.stats[kind] += 1
            return True
        return False

    # ---- bytes -------------------------------------------------------------------------
    def _getc(self) -> int:
        while not self._rx:
            if self._stop.is_set():
                raise _Stop
            r, _, _ = select.select([self._master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self._master, 4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:          # no client has the slave open
                time.sleep(0.01)
                continue
            if self.app_started_at is not None or self.cut:
                continue             # the "application" runs (or the cable is out): the bootloader is gone
            for b in data:
                if self._fault("drop_rx"):
                    continue
                if self._fault("corrupt_rx"):
                    b ^= 1 << self._rng.randrange(8)
                self._rx.append(b)
        return self._rx.popleft()

    def _get(self, n: int) -> bytes:
        return bytes(self._getc() for _ in range(n))

    def _send(self, data: bytes) -> None:
        if self.cut:
            return
        if self._fault("delay"):
            time.sleep(self.faults.delay_s)
        out = bytearray(data)
        for i in range(len(out)):
            if self._fault("corrupt_tx"):
                out[i] ^= 1 << self._rng.randrange(8)
        view = memoryview(bytes(out))
        while view:
            if self._stop.is_set():
                raise _Stop
            try:
                n = os.write(self._master, view)
                view = view[n:]
            except (BlockingIOError, InterruptedError):
                select.select([], [self._master], [], 0.05)

    def _ack(self) -> bool:
        """Send ACK, or (fault) a NACK; False means the command is aborted."""
        if self._fault("nack"):
            self._send(bytes([NACK]))
            return False
        self._send(bytes([ACK]))
        return True

    def _nack(self) -> None:
        self._send(bytes([NACK]))

    # ---- protocol ----------------------------------------------------------------------
    def _serve(self) -> None:
        try:
            while True:
                b = self._getc()
                if not self.synced:
                    if b == SYNC:
                        self.synced = True
                        self.stats["sync"] += 1
                        self._ack()
                    continue
                c = self._getc()
                if b ^ c != 0xFF:
                    self.stats["bad_command"] += 1
                    self._nack()
                    continue
                handler = self._handlers().get(b)
                if handler is None:
                    self.stats["unknown_command"] += 1
                    self._nack()
                    continue
                self.stats[f"cmd_{b:02x}"] += 1
                handler()
        except _Stop:
            return

    def _handlers(self) -> dict:
        h = {CMD_GET: self._cmd_get, CMD_GET_VERSION: self._cmd_get_version, CMD_GET_ID: self._cmd_get_id,
             CMD_READ: self._cmd_read, CMD_GO: self._cmd_go, CMD_WRITE: self._cmd_write,
             CMD_READOUT_PROTECT: self._cmd_rp, CMD_READOUT_UNPROTECT: self._cmd_runp}
        h[CMD_EXT_ERASE if self.extended_erase else CMD_ERASE] = (
            self._cmd_ext_erase if self.extended_erase else self._cmd_erase)
        return h

    def command_list(self) -> bytes:
        return bytes(sorted(self._handlers()))

    def _cmd_get(self) -> None:
        if not self._ack():
            return
        cmds = self.command_list()
        self._send(bytes([len(cmds), self.version]) + cmds)
        self._ack()

    def _cmd_get_version(self) -> None:
        if not self._ack():
            return
        self._send(bytes([self.version, 0, 0]))
        self._ack()

    def _cmd_get_id(self) -> None:
        if not self._ack():
            return
        self._send(bytes([1, self.pid >> 8, self.pid & 0xFF]))
        self._ack()

    def _address(self) -> int | None:
        a = self._get(5)
        if a[0] ^ a[1] ^ a[2] ^ a[3] != a[4]:
            self.stats["bad_address_checksum"] += 1
            return None
        return int.from_bytes(a[:4], "big")

    def _in_ram(self, address: int, n: int) -> bool:
        return self.ram_origin <= address and address + n <= self.ram_origin + len(self.ram)

    def _readable(self, address: int, n: int = 1) -> bool:
        return self.flash.contains(address, n) or self._in_ram(address, n)

    def _sysmem_read(self, address: int, n: int) -> bytes | None:
        for reg, value in self.sysmem.items():
            if reg <= address and address + n <= reg + len(value):
                return value[address - reg:address - reg + n]
        return None

    def _cmd_read(self) -> None:
        if self.rdp:
            self._nack()
            return
        if not self._ack():
            return
        address = self._address()
        if address is None or not (self._readable(address) or self._sysmem_read(address, 1) is not None):
            self._nack()
            return
        if not self._ack():
            return
        n, nc = self._get(2)
        sysmem = self._sysmem_read(address, n + 1)
        if n ^ nc != 0xFF or not (self._readable(address, n + 1) or sysmem is not None):
            self._nack()
            return
        if not self._ack():
            return
        if sysmem is not None:
            data = sysmem
        elif self.flash.contains(address, n + 1):
            data = self.flash.read(address, n + 1)
        else:
            off = address - self.ram_origin
            data = bytes(self.ram[off:off + n + 1])
        self._send(data)

    def _cmd_write(self) -> None:
        if self.rdp:
            self._nack()
            return
        if not self._ack():
            return
        address = self._address()
        if address is None or address % 4 or not self._readable(address):
            self._nack()
            return
        if not self._ack():
            return
        n = self._getc()
        data = self._get(n + 1)
        check = self._getc()
        x = n
        for b in data:
            x ^= b
        if x != check:
            self.stats["bad_data_checksum"] += 1
            self._nack()
            return
        if not self._readable(address, len(data)):
            self._nack()
            return
        if self._fault("nack"):      # spurious NACK: the block is not written
            self._nack()
            return
        if self.flash.contains(address, len(data)):
            ok = self.flash.program(address, data)
            self.stats["bytes_programmed"] += len(data)
            cut = self.faults.cut_after_bytes
            if cut is not None and self.stats["bytes_programmed"] >= cut:
                self.cut = True          # the ACK of this block is lost with the cable
                self.stats["cable_pulled"] += 1
                return
            if not ok:
                self.stats["program_error"] += 1
                self._nack()
                return
        else:
            off = address - self.ram_origin
            self.ram[off:off + len(data)] = data
        self._send(bytes([ACK]))

    def _cmd_ext_erase(self) -> None:
        if self.rdp:
            self._nack()
            return
        if not self._ack():
            return
        hi, lo = self._get(2)
        n = (hi << 8) | lo
        if n >= 0xFFF0:
            check = self._getc()
            if check != hi ^ lo or n not in (0xFFFF, 0xFFFE, 0xFFFD):
                self._nack()
                return
            self._mass_erase()           # one bank: bank 1/2 erase are the whole flash here
            return
        raw = self._get(2 * (n + 1))
        check = self._getc()
        x = hi ^ lo
        for b in raw:
            x ^= b
        self._erase_pages([(raw[i] << 8) | raw[i + 1] for i in range(0, len(raw), 2)], x == check)

    def _mass_erase(self) -> None:
        self.flash.erase_all()
        self.stats["mass_erase"] += 1
        self._ack()

    def _erase_pages(self, pages, checksum_ok: bool) -> None:
        """Erase (0x43) / extended erase (0x44) of a page list: NACK on a bad checksum
        or a page beyond the flash, else erase each page and ACK."""
        if not checksum_ok or any(p >= len(self.flash.sectors) for p in pages):
            self._nack()
            return
        for p in pages:
            self.flash.erase_sector(p)
        self.stats["sectors_erased"] += len(pages)
        self._ack()

    def _cmd_erase(self) -> None:
        if self.rdp:
            self._nack()
            return
        if not self._ack():
            return
        n = self._getc()
        if n == 0xFF:
            if self._getc() != 0x00:
                self._nack()
                return
            self._mass_erase()
            return
        pages = self._get(n + 1)
        check = self._getc()
        x = n
        for b in pages:
            x ^= b
        self._erase_pages(list(pages), x == check)

    def _cmd_go(self) -> None:
        if self.rdp:
            self._nack()
            return
        if not self._ack():
            return
        address = self._address()
        if address is None or not self._readable(address):
            self._nack()
            return
        self.app_started_at = address    # set before the ACK: the host may look right after it
        if not self._ack():
            self.app_started_at = None
            return
        self.stats["go"] += 1

    def _cmd_rp(self) -> None:
        if not self._ack():
            return
        self.rdp = True
        self._ack()
        self.reset()

    def _cmd_runp(self) -> None:
        if not self._ack():
            return
        self.flash.erase_all()
        self.rdp = False
        self._ack()
        self.reset()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tinyml.testing.bootloader_sim",
                                description="Simulated STM32 ROM bootloader on a pty.")
    p.add_argument("--board", default="stm32f746g-disco")
    p.add_argument("--pid", type=lambda s: int(s, 0), help="report this product id instead of the board's")
    p.add_argument("--rdp", action="store_true", help="start with read-out protection active")
    p.add_argument("--legacy-erase", action="store_true", help="offer Erase (0x43) instead of Extended Erase")
    for name in ("drop-rx", "corrupt-rx", "corrupt-tx", "nack", "delay"):
        p.add_argument(f"--{name}", type=float, default=0.0, help="fault probability")
    p.add_argument("--delay-s", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--load", help="preload flash from this .bin at the flash origin")
    p.add_argument("--dump", help="write the flash to this file on exit")
    args = p.parse_args(argv)
    from tinyml.deploy.board_info import load
    from tinyml.errors import TinymlError
    try:
        board = load(args.board)
    except TinymlError as exc:
        print(exc.line(), file=sys.stderr)
        return exc.exit_code
    faults = Faults(drop_rx=args.drop_rx, corrupt_rx=args.corrupt_rx, corrupt_tx=args.corrupt_tx,
                    nack=args.nack, delay=args.delay, delay_s=args.delay_s, seed=args.seed)
    sim = BootloaderSim(board, pid=args.pid, rdp=args.rdp, faults=faults,
                        extended_erase=not args.legacy_erase)
    if args.load:
        with open(args.load, "rb") as f:
            data = f.read()
        sim.flash.mem[:len(data)] = data
    import signal
    signal.signal(signal.SIGUSR1, lambda *_: sim.reset())
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    path = sim.start()
    print(path, flush=True)
    print(f"simulated {board.name} bootloader (product id 0x{sim.pid:03X}) on {path}; "
          f"`kill -USR1 {os.getpid()}` = reset into the bootloader (after Go); Ctrl-C to stop",
          file=sys.stderr)
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        if args.dump:
            with open(args.dump, "wb") as f:
                f.write(sim.flash.mem)
        print(f"stats: {dict(sim.stats)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
