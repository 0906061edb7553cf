"""Flasher (deploy/stm32_bootloader.py) against the simulated ROM bootloader on a pty.

The simulator's flash model is the judge: after every run the test reads the
model directly, so "success" is only accepted when the bytes are really there.
"""
from __future__ import annotations

import json
import os
import random

import pytest
import serial

from tinyml.boards import load_board
from tinyml.testing.bootloader_sim import BootloaderSim, Faults, vector_table
from tinyml.deploy.errors import (NoAnswerError, PortBusyError, PortMissingError, ReadoutProtectedError,
                           SerialLinkError, VerifyMismatchError, WrongChipError, WriteNackError)
from tinyml.deploy.firmware_image import load_firmware
from tinyml.deploy.serial_port import open_port
from tinyml.deploy.stm32_bootloader import ResetControl, Stm32Bootloader, flash_image
from tinyml import cli

F7 = "stm32f746g-disco"
F4 = "stm32f4-discovery"
TIMEOUT = 0.2


def _image(tmp_path, size: int, seed: int = 1, name: str = "fw.bin") -> tuple[str, bytes]:
    # random bytes behind a Cortex-M vector table (the flasher refuses anything else)
    data = vector_table(load_board(F7)) + random.Random(seed).randbytes(size - 8)
    path = tmp_path / name
    path.write_bytes(data)
    return str(path), data


def _flash(sim: BootloaderSim, board, path: str, **kw):
    ser = open_port(sim.path, 115200, parity="E", timeout=kw.pop("timeout", TIMEOUT))
    try:
        bl = Stm32Bootloader(ser, retries=kw.pop("retries", 5), where=sim.path)
        image = load_firmware(path, board.flash_origin)
        return flash_image(bl, board, image, **kw)
    finally:
        ser.close()


def _sector_of(board, addr: int) -> int:
    return next(i for i, (s, n) in enumerate(board.flash_sectors) if s <= addr < s + n)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("board_name,size", [(F7, 230 * 1024), (F4, 210 * 1024 + 12)])
def test_flash_large_image_verified(tmp_path, board_name, size):
    board = load_board(board_name)
    path, data = _image(tmp_path, size)
    with BootloaderSim(board) as sim:
        # Sectors the image does not touch must survive a sector erase.
        tail = board.flash_sectors[-1]
        sim.flash.program(tail[0], b"\x00" * 16)
        res = _flash(sim, board, path)
        assert sim.flash.read(board.flash_origin, size) == data
        assert sim.flash.read(tail[0], 16) == b"\x00" * 16
        last = _sector_of(board, board.flash_origin + size - 1)
        assert res.sectors_erased == list(range(last + 1))
        assert sim.flash.erase_count[last + 1:] == [0] * (len(board.flash_sectors) - last - 1)
        # Bytes after the image in its last sector are erased (0xFF), not leftovers.
        end = board.flash_origin + size
        assert sim.flash.read(end, 64) == b"\xff" * 64
        assert res.verified and res.started and sim.app_started_at == board.flash_origin
        assert res.bytes_written >= size       # (retries may happen on a loaded machine: 0.2 s timeouts)
        assert sim.stats["cmd_11"] >= size // 256     # read-back really happened


@pytest.mark.timeout(60)
def test_mass_erase_and_legacy_erase(tmp_path):
    board = load_board(F4)
    path, data = _image(tmp_path, 40_000)
    with BootloaderSim(board, extended_erase=False) as sim:
        sim.flash.program(board.flash_sectors[-1][0], b"\x00" * 4)
        res = _flash(sim, board, path, erase="mass")
        assert res.sectors_erased is None and sim.stats["mass_erase"] == 1
        assert sim.flash.read(board.flash_origin, len(data)) == data
        assert sim.flash.read(board.flash_sectors[-1][0], 4) == b"\xff" * 4
    with BootloaderSim(board, extended_erase=False) as sim:
        res = _flash(sim, board, path)                   # legacy Erase (0x43), per sector
        assert sim.stats["cmd_43"] == 3 and sim.stats["cmd_44"] == 0
        assert sim.flash.read(board.flash_origin, len(data)) == data


FAULTS = {
    "drop_rx": Faults(drop_rx=0.002, max_faults=6, seed=3),
    "corrupt_rx": Faults(corrupt_rx=0.002, max_faults=6, seed=4),
    "corrupt_tx": Faults(corrupt_tx=0.002, max_faults=6, seed=5),
    "nack": Faults(nack=0.01, max_faults=6, seed=6),
    "delay": Faults(delay=0.01, delay_s=0.5, max_faults=3, seed=7),
    "mixed": Faults(drop_rx=0.001, corrupt_rx=0.001, corrupt_tx=0.001, nack=0.005, delay=0.002,
                    delay_s=0.5, max_faults=10, seed=8),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_injected_faults_recover_or_fail_specifically(tmp_path, kind):
    """Each fault ends in a verified success (flash == image) or a specific error, never a false success."""
    board = load_board(F7)
    path, data = _image(tmp_path, 64 * 1024, seed=11)
    with BootloaderSim(board, faults=FAULTS[kind]) as sim:
        try:
            res = _flash(sim, board, path)
        except SerialLinkError as exc:
            assert type(exc) is not SerialLinkError      # a specific subclass
            print("OUTCOME", kind, type(exc).__name__, exc)
            return
        assert sim.stats[kind if kind != "mixed" else "faults"] > 0, "no fault was injected"
        assert sim.flash.read(board.flash_origin, len(data)) == data
        assert res.verified and (res.retries > 0 or res.repaired_blocks > 0 or kind == "corrupt_tx")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_heavy_faults_never_report_false_success(tmp_path):
    """Uncapped noise: whatever happens, success implies the flash holds the image."""
    board = load_board(F4)
    path, data = _image(tmp_path, 16 * 1024, seed=12)
    outcomes = []
    for seed in range(3):
        faults = Faults(drop_rx=0.0007, corrupt_rx=0.0007, corrupt_tx=0.0007, nack=0.02, seed=seed)
        with BootloaderSim(board, faults=faults) as sim:
            try:
                _flash(sim, board, path)
            except SerialLinkError as exc:
                outcomes.append(type(exc).__name__)
                continue
            assert sim.flash.read(board.flash_origin, len(data)) == data
            outcomes.append("ok")
    print("OUTCOMES", outcomes)
    assert outcomes


@pytest.mark.timeout(30)
def test_wrong_chip_refused_unless_forced(tmp_path):
    board = load_board(F7)
    path, data = _image(tmp_path, 4096)
    with BootloaderSim(board, pid=0x413) as sim:
        with pytest.raises(WrongChipError, match="0x413"):
            _flash(sim, board, path)
        assert sim.stats["bytes_programmed"] == 0 and sim.stats["sectors_erased"] == 0
        res = _flash(sim, board, path, force=True)
        assert res.warnings and sim.flash.read(board.flash_origin, 4096) == data


@pytest.mark.timeout(30)
def test_readout_protection_is_reported(tmp_path):
    board = load_board(F4)
    path, _ = _image(tmp_path, 4096)
    with BootloaderSim(board, rdp=True) as sim:
        sim.flash.program(board.flash_origin, b"\x12\x34\x56\x78")
        with pytest.raises(ReadoutProtectedError, match="read-out protection"):
            _flash(sim, board, path, retries=2)
        assert sim.flash.read(board.flash_origin, 4) == b"\x12\x34\x56\x78"


class _StuckWriteSim(BootloaderSim):
    """Refuses every Write Memory at one address (a damaged flash word)."""

    bad_address = 0

    def _cmd_write(self) -> None:  # noqa: D401
        # Peek at the address by wrapping _address().
        orig = self._address

        def spy() -> int | None:
            a = orig()
            if a == self.bad_address:
                self.stats["refused"] += 1
                return None          # -> NACK after the address
            return a
        self._address = spy          # type: ignore[method-assign]
        try:
            super()._cmd_write()
        finally:
            self._address = orig     # type: ignore[method-assign]


@pytest.mark.timeout(30)
def test_nack_on_write_is_a_write_error_not_success(tmp_path):
    board = load_board(F7)
    path, data = _image(tmp_path, 8192)
    sim = _StuckWriteSim(board)
    sim.bad_address = board.flash_origin + 4096
    with sim:
        with pytest.raises(WriteNackError, match="0x08001000"):
            _flash(sim, board, path, retries=2)
        assert sim.stats["refused"] == 3
        assert sim.app_started_at is None
        assert sim.flash.read(board.flash_origin + 4096, 256) != data[4096:4352]


class _BitRotSim(BootloaderSim):
    """Programs one bit wrong at one address: `times` times, then correctly."""

    rot_address = 0
    times = 1

    def _cmd_write(self) -> None:
        before = self.stats["bytes_programmed"]
        super()._cmd_write()
        a = self.rot_address
        if self.times > 0 and self.stats["bytes_programmed"] > before and self.flash.read(a, 1) != b"\xff":
            off = a - self.flash.origin
            if self.flash.mem[off] & 1:
                self.flash.mem[off] &= 0xFE
                self.times -= 1
                self.stats["rotted"] += 1


@pytest.mark.timeout(30)
def test_verify_mismatch_repairs_once_then_fails(tmp_path):
    board = load_board(F7)
    size = 8192
    path = tmp_path / "ff.bin"
    data = vector_table(board) + bytes(((i * 7 + 1) & 0xFF) | 1 for i in range(8, size))
    path.write_bytes(data)
    sim = _BitRotSim(board)
    sim.rot_address = board.flash_origin + 1000
    sim.times = 1
    with sim:
        res = _flash(sim, board, str(path))
        assert res.repaired_blocks == 1 and sim.stats["rotted"] == 1
        assert sim.flash.read(board.flash_origin, size) == data
    sim = _BitRotSim(board)
    sim.rot_address = board.flash_origin + 1000
    sim.times = 99
    with sim:
        with pytest.raises(VerifyMismatchError, match="0x080003E8"):
            _flash(sim, board, str(path))
        assert sim.app_started_at is None   # never started a bad image


@pytest.mark.timeout(30)
def test_no_answer(tmp_path):
    board = load_board(F7)
    path, _ = _image(tmp_path, 1024)
    with BootloaderSim(board) as sim:
        sim.app_started_at = 0x08000000      # the application runs: the ROM bootloader is not there
        with pytest.raises(NoAnswerError, match="does not answer"):
            _flash(sim, board, path)


@pytest.mark.timeout(30)
def test_port_missing_and_busy(tmp_path):
    with pytest.raises(PortMissingError):
        open_port(str(tmp_path / "ttyUSB9"))
    board = load_board(F7)
    with BootloaderSim(board) as sim:
        holder = serial.Serial(sim.path, exclusive=True)
        try:
            with pytest.raises(PortBusyError, match="busy"):
                open_port(sim.path)
        finally:
            holder.close()


class _Lines:
    """Records RTS/DTR assignments like a pyserial port."""

    def __init__(self) -> None:
        self.log: list[tuple[str, bool]] = []

    def __setattr__(self, name, value):
        if name in ("rts", "dtr"):
            self.log.append((name, value))
        object.__setattr__(self, name, value)


def test_reset_sequences():
    rc = ResetControl("normal", pulse_s=0, boot_s=0)
    port = _Lines()
    assert rc.enter_bootloader(port)
    # normal: BOOT0 high = RTS released (False); reset held = DTR asserted (True)
    assert port.log == [("rts", False), ("dtr", True), ("rts", False), ("dtr", False)]
    port = _Lines()
    ResetControl("inverted", pulse_s=0, boot_s=0).enter_bootloader(port)
    assert port.log == [("rts", True), ("dtr", False), ("rts", True), ("dtr", True)]
    port = _Lines()
    ResetControl("none").enter_bootloader(port)
    ResetControl("none").run_mode(port)
    assert port.log == []
    port = _Lines()
    rc.run_mode(port)
    assert port.log == [("rts", True), ("dtr", False)]


@pytest.mark.timeout(60)
def test_cli_flash_json_and_errors(tmp_path, capsys):
    board = load_board(F4)
    path, data = _image(tmp_path, 50_000)
    with BootloaderSim(board) as sim:
        rc = cli.main(["flash", path, "--port", sim.path, "--board", F4, "--reset-polarity", "none",
                       "--timeout", "0.2", "--json"])
        out, err = capsys.readouterr()
        assert rc == 0, err
        doc = json.loads(out)
        assert doc["ok"] and doc["verified"] and doc["product_id"] == "0x413"
        assert doc["bytes_written"] == 50_000 and doc["sectors_erased"] == [0, 1, 2, 3]
        assert sim.flash.read(board.flash_origin, len(data)) == data
    # Board found from the product id when --board is omitted; wrong chip is one line + non-zero exit.
    with BootloaderSim(load_board(F7)) as sim:
        rc = cli.main(["flash", path, "--port", sim.path, "--reset-polarity", "none", "--timeout", "0.2"])
        out, err = capsys.readouterr()
        assert rc == 0 and "stm32f746g-disco" in out
    with BootloaderSim(load_board(F7), pid=0x413) as sim:
        rc = cli.main(["flash", path, "--port", sim.path, "--board", F7, "--timeout", "0.2"])
        out, err = capsys.readouterr()
        assert rc != 0 and "product id 0x413" in err and "Traceback" not in err
        assert len([ln for ln in err.splitlines() if ln.startswith("error:")]) == 1
        assert sim.stats["bytes_programmed"] == 0
    rc = cli.main(["flash", path, "--port", str(tmp_path / "nope"), "--board", F7])
    assert rc != 0 and "does not exist" in capsys.readouterr().err
