"""Board descriptors carry the datasheet sizes and load cleanly."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tinyml.boards import list_boards, load_board
from tinyml.errors import TinymlError

KB = 1024

# (board, core, fpu, SRAM bytes, flash bytes, ROM bootloader PID) from the reference manuals / AN2606.
EXPECTED = [
    ("stm32f746g-disco", "cortex-m7", "fpv5-sp-d16", 320 * KB, 1024 * KB, 0x449),
    ("stm32f4-discovery", "cortex-m4", "fpv4-sp-d16", 192 * KB, 1024 * KB, 0x413),
    ("nucleo-h743zi", "cortex-m7", "fpv5-d16", 992 * KB, 2048 * KB, 0x450),
    ("nucleo-l4r5zi", "cortex-m4", "fpv4-sp-d16", 640 * KB, 2048 * KB, 0x470),
    ("netduinoplus2", "cortex-m4", "fpv4-sp-d16", 192 * KB, 1024 * KB, 0x413),
]


def test_all_boards_listed():
    assert set(list_boards()) >= {e[0] for e in EXPECTED}


@pytest.mark.parametrize("name,core,fpu,sram,flash,pid", EXPECTED)
def test_board_sizes(name, core, fpu, sram, flash, pid):
    b = load_board(name)
    assert (b.core, b.fpu, b.sram_bytes, b.flash_size, b.bootloader_pid) == (core, fpu, sram, flash, pid)
    assert sum(size for _, size in b.flash_sectors) == flash
    assert b.flash_sectors[0][0] == b.flash_origin == 0x0800_0000


def test_sector_maps():
    f7 = load_board("stm32f746g-disco").flash_sectors
    assert [s for _, s in f7] == [32 * KB] * 4 + [128 * KB] + [256 * KB] * 3
    f4 = load_board("stm32f4-discovery").flash_sectors
    assert [s for _, s in f4] == [16 * KB] * 4 + [64 * KB] + [128 * KB] * 7
    h7 = load_board("nucleo-h743zi").flash_sectors
    assert [s for _, s in h7] == [128 * KB] * 16


def test_f746_sram_merges_into_one_link_region():
    regions = load_board("stm32f746g-disco").linker_regions()
    ram = [r for r in regions if r.kind == "sram"]
    assert len(ram) == 1 and ram[0].size == 320 * KB and ram[0].parts == ("DTCM", "SRAM1", "SRAM2")


def test_mps2_variant_moves_origins_keeps_sizes():
    b = load_board("nucleo-h743zi")
    native = {r.name: r for r in b.linker_regions("native")}
    mps2 = {r.name: r for r in b.linker_regions("mps2")}
    assert mps2["FLASH"].origin == 0 and mps2["FLASH"].size == native["FLASH"].size
    assert mps2["RAM_DTCM"].origin == 0x2000_0000
    assert mps2["RAM_AXI"].origin == 0x2000_0000 + 128 * KB
    assert mps2["RAM_AXI"].size == native["RAM_AXI"].size == 512 * KB


def test_unknown_board_is_a_user_error():
    with pytest.raises(TinymlError, match="unknown board"):
        load_board("stm32-nonexistent")


def test_bad_descriptor_is_a_user_error(tmp_path):
    src = open(load_board("stm32f746g-disco").path).read()
    p = tmp_path / "bad.toml"
    p.write_text(src.replace('core = "cortex-m7"', 'core = "cortex-m0"'))
    with pytest.raises(TinymlError, match="core"):
        load_board(str(p))


@pytest.mark.timeout(60)
def test_cli_boards_json():
    out = subprocess.run([sys.executable, "-m", "tinyml.cli", "boards", "--json"],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    by_name = {b["name"]: b for b in data["boards"]}
    assert by_name["stm32f746g-disco"]["sram_bytes"] == 320 * KB
    assert by_name["nucleo-l4r5zi"]["flash_bytes"] == 2048 * KB
    # The clock tree the firmware starts (boards/*.toml [clock]).
    assert by_name["stm32f746g-disco"]["clock"].startswith("216 MHz = HSE 25 MHz crystal / 25 * 432 / 2 (PLL)")
    assert by_name["nucleo-h743zi"]["clock_hz"] == 400_000_000
