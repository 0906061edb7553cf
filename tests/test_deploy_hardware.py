"""Real-board checks, skipped unless a port is given.

    TINYML_PORT=/dev/ttyUSB0 [TINYML_BOARD=stm32f746g-disco] [TINYML_RESET_POLARITY=normal] \
        .venv/bin/pytest -m hardware tests/test_deploy_hardware.py

Read-only by default (sync, Get, Get ID, one Read). Set TINYML_FIRMWARE=path/to/firmware.elf
to also flash and verify it (this replaces what is on the board), and TINYML_DUT_PORT to run
`name%` against the firmware over the MLPerf Tiny protocol. Wiring: deploy/WIRING.md.
"""
from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.hardware,
              pytest.mark.skipif(not os.environ.get("TINYML_PORT"),
                                 reason="no real board: set TINYML_PORT=/dev/ttyUSB0 (see deploy/WIRING.md)")]

PORT = os.environ.get("TINYML_PORT", "")
BOARD = os.environ.get("TINYML_BOARD", "stm32f746g-disco")
POLARITY = os.environ.get("TINYML_RESET_POLARITY", "normal")


@pytest.fixture
def bootloader():
    from tinyml.deploy.serial_port import open_port
    from tinyml.deploy.stm32_bootloader import ResetControl, Stm32Bootloader
    reset = ResetControl(POLARITY)
    ser = open_port(PORT, 115200, parity="E", timeout=1.0)
    reset.enter_bootloader(ser)
    try:
        yield Stm32Bootloader(ser, where=PORT)
    finally:
        reset.run_mode(ser)
        ser.close()


@pytest.mark.timeout(60)
def test_board_identifies(bootloader):
    from tinyml.boards import load_board
    board = load_board(BOARD)
    bootloader.connect()
    version, commands = bootloader.get()
    assert 0x31 in commands and (0x44 in commands or 0x43 in commands)
    assert bootloader.get_id() == board.bootloader_pid
    vectors = bootloader.read_memory(board.flash_origin, 8)
    assert len(vectors) == 8


@pytest.mark.timeout(300)
@pytest.mark.skipif(not os.environ.get("TINYML_FIRMWARE"), reason="set TINYML_FIRMWARE to flash a board")
def test_flash_firmware(bootloader):
    from tinyml.boards import load_board
    from tinyml.deploy.firmware_image import load_firmware
    from tinyml.deploy.stm32_bootloader import flash_image
    board = load_board(BOARD)
    res = flash_image(bootloader, board, load_firmware(os.environ["TINYML_FIRMWARE"], board.flash_origin))
    assert res.verified and res.started


@pytest.mark.timeout(60)
@pytest.mark.skipif(not os.environ.get("TINYML_DUT_PORT"), reason="set TINYML_DUT_PORT to talk to the firmware")
def test_firmware_answers_runner_protocol():
    from tinyml.deploy.runner import DeviceRunner
    from tinyml.deploy.serial_port import open_port
    ser = open_port(os.environ["TINYML_DUT_PORT"], 115200, timeout=0.1)
    try:
        assert DeviceRunner(ser, timeout=5).hello().startswith("m-name")
    finally:
        ser.close()
