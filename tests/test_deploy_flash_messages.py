"""`tinyml flash` says what happened (issue 18, item 5): a folder is not a missing
file, a file that is not firmware is refused before anything is erased, a chip
with less flash than its board file is named as such, and a link lost mid-flash
says how much is written and how to recover. Judged by the simulated ROM
bootloader (tinyml/testing/bootloader_sim.py): its flash model and counters
show what really happened on the "board"."""
from __future__ import annotations

import os
import random
import shutil
import socket

import pytest
import serial

from tinyml import cli
from tinyml.boards import load_board
from tinyml.deploy.errors import FirmwareFileError, FlashSizeError, LinkLostError, NoAnswerError
from tinyml.deploy.firmware_image import load_firmware
from tinyml.deploy.serial_port import open_port
from tinyml.deploy.stm32_bootloader import Stm32Bootloader, flash_image
from tinyml.testing.bootloader_sim import BootloaderSim, Faults, vector_table

F7 = "stm32f746g-disco"
TIMEOUT = 0.2


def _fw(tmp_path, size: int, name: str = "fw.bin", seed: int = 1) -> tuple[str, bytes]:
    data = vector_table(load_board(F7)) + random.Random(seed).randbytes(size - 8)
    path = tmp_path / name
    path.write_bytes(data)
    return str(path), data


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = cli.main(["flash", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def _flash(sim: BootloaderSim, board, path: str, **kw):
    ser = open_port(sim.path, 115200, parity="E", timeout=TIMEOUT)
    try:
        bl = Stm32Bootloader(ser, retries=kw.pop("retries", 3), where=sim.path)
        return flash_image(bl, board, load_firmware(path, board.flash_origin), **kw)
    finally:
        ser.close()


@pytest.mark.timeout(60)
def test_folder_missing_and_special_files_are_one_line_before_the_port(tmp_path, capsys):
    build = tmp_path / "build"
    build.mkdir()
    (build / "firmware.elf").write_bytes(b"")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    no_port = str(tmp_path / "ttyUSB9")       # the port does not exist either: the file is judged first
    cases = {
        str(build): f"is a folder, not a firmware file (in {build}) -- pass the file, e.g. {build}/firmware.elf",
        str(tmp_path / "nope.bin"): "does not exist",
        str(fifo): "is a named pipe, not a file",
        "/dev/zero": "is a device, not a file",
        str(sock_path): "is a socket, not a file",
        str(empty): "firmware file is empty",
    }
    try:
        for path, expected in cases.items():
            rc, out, err = _cli(capsys, path, "--port", no_port, "--board", F7)
            line = _one_error_line(err)
            assert rc == 2 and out == "" and expected in line, (path, line)
    finally:
        sock.close()
    # a folder without a build in it: the fix names what to pass
    rc, _, err = _cli(capsys, str(tmp_path), "--port", no_port, "--board", F7)
    assert "pass the firmware file inside it (.elf, .hex or .bin)" in _one_error_line(err)


@pytest.mark.timeout(60)
def test_oversized_file_refused_unread(tmp_path, capsys):
    big = tmp_path / "disk.img"
    with open(big, "wb") as f:
        f.truncate(65 * 1024 * 1024)          # sparse: refused on its size, never read
    rc, _, err = _cli(capsys, str(big), "--port", str(tmp_path / "p"), "--board", F7)
    assert rc == 2 and "more than the 64 MiB allowed" in _one_error_line(err)


@pytest.mark.timeout(60)
def test_files_that_are_not_firmware_are_refused_before_erasing(tmp_path, capsys):
    board = load_board(F7)
    tflite = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tinyvit", "pretrained",
                          "vit_digits.tflite")
    text = tmp_path / "notes.bin"
    text.write_text("hello, this is not firmware\n" * 10)
    hex_as_bin = tmp_path / "fw_hex.bin"
    hex_as_bin.write_text(":0400000001020304F2\n:00000001FF\n")
    host_elf = tmp_path / "true.elf"
    shutil.copy(shutil.which("true"), host_elf)
    random_bin = tmp_path / "random.bin"
    random_bin.write_bytes(random.Random(3).randbytes(4096))
    cases = {
        tflite: "this is a TFLite model, not firmware",
        str(text): "this is a text file, not a firmware binary",
        str(hex_as_bin): "this is a text file (Intel HEX? name it .hex)",
        str(host_elf): "this ELF is for x86-64, not an ARM microcontroller",
        str(random_bin): "does not start with a Cortex-M vector table",
    }
    with BootloaderSim(board) as sim:
        for path, expected in cases.items():
            rc, out, err = _cli(capsys, path, "--port", sim.path, "--board", F7, "--reset-polarity", "none",
                                "--timeout", str(TIMEOUT))
            line = _one_error_line(err)
            assert rc == 2 and expected in line, (path, line)
        # nothing reached the board: not even a sync byte
        assert sim.stats["sync"] == 0 and sim.stats["sectors_erased"] == 0
    # the library refuses too (after connecting, before any erase), and the CLI
    # without --board (board from the chip id) as well
    with BootloaderSim(board) as sim:
        with pytest.raises(FirmwareFileError, match="reset handler 0x[0-9A-F]{8} is not a Thumb address"):
            _flash(sim, board, str(random_bin))
        rc, _, err = _cli(capsys, str(random_bin), "--port", sim.path, "--reset-polarity", "none",
                          "--timeout", str(TIMEOUT))
        assert rc == 2 and "nothing was erased" in _one_error_line(err)
        assert sim.stats["sectors_erased"] == 0 and sim.stats["mass_erase"] == 0
        assert sim.stats["bytes_programmed"] == 0


@pytest.mark.timeout(90)
def test_chip_smaller_than_board_file(tmp_path, capsys):
    board = load_board(F7)                     # the file says 1024 KiB
    big, _ = _fw(tmp_path, 600 * 1024, "big.bin")
    small, small_data = _fw(tmp_path, 100 * 1024, "small.bin")
    with BootloaderSim(board, flash_bytes=512 * 1024) as sim:
        rc, out, err = _cli(capsys, big, "--port", sim.path, "--board", F7, "--reset-polarity", "none",
                            "--timeout", str(TIMEOUT))
        line = _one_error_line(err)
        assert rc == 2 and "the chip has 512 KiB of flash" in line and "says 1024 KiB" in line
        assert "0x0807FFFF" in line and "nothing was erased" in line and "write protection" not in line
        assert sim.stats["sectors_erased"] == 0
        sim.reset()
        res = _flash(sim, board, small)        # an image that fits the real chip: flashed, with a warning
        assert sim.flash.read(board.flash_origin, len(small_data)) == small_data
        assert any("512 KiB" in w for w in res.warnings)
    # a chip whose flash size register cannot be read: the erase that fails says why it may
    with BootloaderSim(board, flash_bytes=512 * 1024) as sim:
        sim.sysmem = {}
        with pytest.raises(FlashSizeError) as exc:
            _flash(sim, board, big)
        msg = exc.value.line()
        assert "sector 6 (0x08080000..0x080BFFFF) may not exist on this chip" in msg
        assert "smaller than board stm32f746g-disco's file says (1024 KiB)" in msg
        assert "the old firmware is erased" in msg and "re-run flash" in msg
        assert sim.flash.erase_count == [1, 1, 1, 1, 1, 1]


@pytest.mark.timeout(90)
def test_pulled_cable_says_half_written_and_rerun_recovers(tmp_path, capsys):
    board = load_board(F7)
    path, data = _fw(tmp_path, 64 * 1024)
    with BootloaderSim(board, faults=Faults(cut_after_bytes=40_000)) as sim:
        rc, out, err = _cli(capsys, path, "--port", sim.path, "--board", F7, "--reset-polarity", "none",
                            "--timeout", str(TIMEOUT), "--retries", "2")
        line = _one_error_line(err)
        # 156 blocks of 256 B were acknowledged; the 157th crossed the 40,000-byte mark and its ACK was lost
        assert rc == 2 and "the flash is half-written: 39936 of 65536 bytes were written" in line, line
        assert "before the block at 0x08009C00 failed" in line
        assert "the ROM bootloader is still there" in line and "re-run `tinyml flash`" in line
        assert sim.stats["cable_pulled"] == 1 and sim.app_started_at is None
        assert sim.flash.read(board.flash_origin, 39936) == data[:39936]
        assert sim.flash.read(board.flash_origin + 40192, 256) == b"\xff" * 256
        sim.replug()
        rc, out, err = _cli(capsys, path, "--port", sim.path, "--board", F7, "--reset-polarity", "none",
                            "--timeout", str(TIMEOUT))
        assert rc == 0, err
        assert sim.flash.read(board.flash_origin, len(data)) == data
        assert sim.app_started_at == board.flash_origin


@pytest.mark.timeout(60)
def test_link_lost_during_erase_says_old_firmware_is_gone(tmp_path):
    board = load_board(F7)
    path, _ = _fw(tmp_path, 200 * 1024)       # sectors 0..4

    class _CutAtSector(BootloaderSim):
        def _erase_pages(self, pages, checksum_ok):
            if pages == [2]:
                self.cut = True
                return
            super()._erase_pages(pages, checksum_ok)

    sim = _CutAtSector(board)
    with sim:
        ser = open_port(sim.path, 115200, parity="E", timeout=TIMEOUT)
        try:
            bl = Stm32Bootloader(ser, retries=1, where=sim.path, erase_timeout=0.3)
            with pytest.raises(NoAnswerError) as exc:
                flash_image(bl, board, load_firmware(path, board.flash_origin))
        finally:
            ser.close()
        msg = exc.value.line()
        assert "after erasing 2 of 5 sector(s): the old firmware is erased" in msg, msg
        assert "re-run `tinyml flash`" in msg
        assert sim.flash.erase_count[:3] == [1, 1, 0]


class _VanishedPort:
    """A USB-UART adapter that was unplugged: every call fails like pyserial's."""

    timeout = 0.1
    port = "/dev/ttyUSB0"
    in_waiting = 0

    def write(self, data):
        raise serial.SerialException("write failed: [Errno 5] Input/output error")

    def flush(self):
        pass

    def read(self, n):
        raise serial.SerialException("device reports readiness to read but returned no data")

    def reset_input_buffer(self):
        pass


def test_vanished_adapter_is_a_link_error_not_a_traceback():
    bl = Stm32Bootloader(_VanishedPort(), retries=1)   # type: ignore[arg-type]
    with pytest.raises(LinkLostError) as exc:
        bl.connect()
    assert "the serial port stopped working" in exc.value.line()
    assert "Input/output error" in exc.value.line()
