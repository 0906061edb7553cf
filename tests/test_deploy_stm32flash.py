"""Cross-check the bootloader simulator (and our flasher) with Debian's `stm32flash`.

stm32flash is an independent implementation of AN3155 with its own table of
chips (product id -> flash size and sector map). If it can write, verify and
read back through the simulator, the simulator speaks the protocol the way
real tools expect, and our flasher is not only tested against itself.
"""
from __future__ import annotations

import random
import shutil
import subprocess

import pytest

from tinyml.boards import load_board
from tinyml.testing.bootloader_sim import BootloaderSim, vector_table
from tinyml.deploy.firmware_image import load_firmware
from tinyml.deploy.serial_port import open_port
from tinyml.deploy.stm32_bootloader import Stm32Bootloader, flash_image

STM32FLASH = shutil.which("stm32flash") or "/usr/bin/stm32flash"
pytestmark = pytest.mark.skipif(shutil.which("stm32flash") is None,
                                reason="stm32flash binary not installed (apt-get install stm32flash)")


def _stm32flash(args: list[str], port: str) -> subprocess.CompletedProcess:
    """Run stm32flash as documented (8E1); on a pty whose kernel refuses parity, use 8N1.

    Linux ptys carry bytes without framing and recent kernels reject PARENB with
    EINVAL, which stm32flash reports as "Failed to set terminal flags"; the
    protocol bytes are the same either way.
    """
    cmd = [STM32FLASH, "-b", "115200", *args, port]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if res.returncode != 0 and "Failed to set terminal flags" in res.stdout + res.stderr:
        res = subprocess.run([STM32FLASH, "-m", "8n1", "-b", "115200", *args, port],
                             capture_output=True, text=True, timeout=120)
    return res


@pytest.mark.timeout(120)
@pytest.mark.parametrize("board_name,size", [("stm32f746g-disco", 220 * 1024 + 5),
                                             ("stm32f4-discovery", 205 * 1024)])
def test_stm32flash_writes_and_verifies_through_simulator(tmp_path, board_name, size):
    board = load_board(board_name)
    data = random.Random(size).randbytes(size)
    fw = tmp_path / "fw.bin"
    fw.write_bytes(data)
    with BootloaderSim(board) as sim:
        res = _stm32flash(["-w", str(fw), "-v", "-g", "0x0"], sim.path)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        assert f"0x{board.bootloader_pid:04x}" in res.stdout.lower()
        assert sim.flash.read(board.flash_origin, size) == data
        assert sim.app_started_at == board.flash_origin       # -g 0x0 = Go to the flash start
        assert sim.stats["cmd_44"] >= 1 and sim.stats["cmd_11"] > 0   # extended erase; -v reads back


@pytest.mark.timeout(120)
def test_stm32flash_reads_back_what_our_flasher_wrote(tmp_path):
    board = load_board("stm32f746g-disco")
    data = vector_table(board) + random.Random(7).randbytes(200 * 1024 + 56)
    fw = tmp_path / "ours.bin"
    fw.write_bytes(data)
    out = tmp_path / "read.bin"
    with BootloaderSim(board) as sim:
        ser = open_port(sim.path, 115200, parity="E", timeout=0.3)
        try:
            flash_image(Stm32Bootloader(ser), board, load_firmware(str(fw), board.flash_origin), go=False)
        finally:
            ser.close()
        sim.reset()            # stm32flash starts with a fresh 0x7F, like after a reset
        res = _stm32flash(["-r", str(out)], sim.path)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        got = out.read_bytes()
        assert len(got) == board.flash_size               # stm32flash's own chip table: 1 MB
        assert got[:len(data)] == data
        assert got[len(data):len(data) + 4096] == b"\xff" * 4096   # rest of the last sector erased
        assert got == bytes(sim.flash.mem)


@pytest.mark.timeout(60)
def test_simulator_cli_demo(tmp_path):
    """`python -m tinyml.testing.bootloader_sim` prints a pty path that stm32flash can flash; --dump saves flash."""
    import os
    import signal
    import sys
    data = random.Random(3).randbytes(20_000)
    fw = tmp_path / "fw.bin"
    fw.write_bytes(data)
    dump = tmp_path / "dump.bin"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen([sys.executable, "-m", "tinyml.testing.bootloader_sim", "--board", "stm32f4-discovery",
                             "--dump", str(dump)], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/pts/"), proc.stderr.read()
        res = _stm32flash(["-w", str(fw), "-v"], path)
        assert res.returncode == 0, res.stdout[-2000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert dump.read_bytes()[:len(data)] == data
