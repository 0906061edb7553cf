"""Renode scripts generated from the board descriptor; the run itself needs a
`renode` binary on PATH and is skipped otherwise."""
from __future__ import annotations

import os
import shutil

import pytest

from tinyml.boards import load_board


def test_renode_scripts_from_descriptor(tmp_path):
    from tinyml.firmware.renode import write_renode_files
    elf = str(tmp_path / "firmware.elf")
    files = write_renode_files(str(tmp_path), load_board("stm32f746g-disco"), elf, timeout=30)
    repl = open(files["repl"]).read()
    resc = open(files["resc"]).read()
    robot = open(files["robot"]).read()
    assert 'using "platforms/cpus/stm32f746.repl"' in repl
    assert "SRAM1: 245760 bytes at 0x20010000" in repl
    assert f"LoadPlatformDescription @{files['repl']}" in resc and f"LoadELF @{elf}" in resc
    assert "sysbus.usart1" in robot and "RESULT PASS" in robot


def test_board_without_renode_platform_is_a_user_error(tmp_path):
    from tinyml.firmware.renode import write_renode_files
    from tinyml.errors import TinymlError
    with pytest.raises(TinymlError, match="no Renode platform"):
        write_renode_files(str(tmp_path), load_board("nucleo-l4r5zi"), "x.elf")


@pytest.mark.emulator
@pytest.mark.timeout(600)
@pytest.mark.skipif(shutil.which("renode") is None, reason="renode is not on PATH")
def test_renode_selftest_passes(tmp_path):
    from tinyml.firmware.build import build_firmware
    from tinyml.firmware.emulate import emulate
    from tinyml import paths
    model = os.path.join(paths.shared_models(), "mlperf-tiny", "ad01_int8.tflite")
    out = str(tmp_path / "fw")
    build_firmware(model, "stm32f4-discovery", out, num_vectors=2)
    res = emulate(out, emulator="renode", timeout=300)
    assert res.passed, res.output[-2000:]
