"""Firmware file loading (.bin/.hex/.elf) checked against arm-none-eabi-objcopy's own conversions,
and a .hex/.elf flashed into the simulator lands where objcopy says it should."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tinyml.boards import load_board
from tinyml.testing.bootloader_sim import BootloaderSim
from tinyml.deploy.errors import FirmwareFileError
from tinyml.deploy.firmware_image import load_firmware
from tinyml.deploy.serial_port import open_port
from tinyml.deploy.stm32_bootloader import Stm32Bootloader, flash_image

GCC = shutil.which("arm-none-eabi-gcc")
OBJCOPY = shutil.which("arm-none-eabi-objcopy")
needs_gcc = pytest.mark.skipif(not (GCC and OBJCOPY), reason="arm-none-eabi-gcc/objcopy not installed")

SRC = r"""
#include <stdint.h>
extern uint32_t _estack;
void Reset_Handler(void);
__attribute__((section(".isr_vector"))) const void *vectors[] = { &_estack, (void *)Reset_Handler };
const uint8_t table[5001] = { 1, 2, 3, [5000] = 0x5a };   /* odd size: padding must not leak */
volatile uint32_t counter = 0x12345678;                    /* .data: stored in flash, copied to RAM */
void Reset_Handler(void) { for (;;) counter += table[counter % 5001]; }
"""

LD = """
MEMORY { FLASH (rx) : ORIGIN = 0x08000000, LENGTH = 1024K
         RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 320K }
_estack = ORIGIN(RAM) + LENGTH(RAM);
SECTIONS {
  .isr_vector : { KEEP(*(.isr_vector)) } > FLASH
  .text : { *(.text*) *(.rodata*) . = ALIGN(4); } > FLASH
  .data : { *(.data*) . = ALIGN(4); } > RAM AT > FLASH
  .bss : { *(.bss*) *(COMMON) } > RAM
}
"""


@pytest.fixture(scope="module")
def elf(tmp_path_factory):
    d = tmp_path_factory.mktemp("fw")
    (d / "main.c").write_text(SRC)
    (d / "link.ld").write_text(LD)
    out = d / "fw.elf"
    subprocess.run([GCC, "-mcpu=cortex-m7", "-mthumb", "-O1", "-nostdlib", "-T", str(d / "link.ld"),
                    str(d / "main.c"), "-o", str(out)], check=True, capture_output=True)
    subprocess.run([OBJCOPY, "-O", "binary", str(out), str(d / "fw.bin")], check=True)
    subprocess.run([OBJCOPY, "-O", "ihex", str(out), str(d / "fw.hex")], check=True)
    return d


def _flat(image) -> bytes:
    """The image as one flat buffer from its lowest address, gaps 0x00 (as objcopy -O binary fills them)."""
    base = image.start
    buf = bytearray(image.end - base)
    for s in image.segments:
        buf[s.address - base:s.end - base] = s.data
    return bytes(buf)


@needs_gcc
def test_elf_and_hex_match_objcopy_binary(elf):
    ref = (elf / "fw.bin").read_bytes()
    for name in ("fw.elf", "fw.hex"):
        img = load_firmware(str(elf / name))
        assert img.start == 0x08000000
        flat = _flat(img)
        # Our segments are padded to 4 bytes with 0xFF; objcopy's binary ends at the last byte.
        assert flat[:len(ref)] == ref, name
        assert set(flat[len(ref):]) <= {0xFF}
    assert load_firmware(str(elf / "fw.elf")).entry is not None
    bin_img = load_firmware(str(elf / "fw.bin"), 0x08000000)
    assert _flat(bin_img)[:len(ref)] == ref


@needs_gcc
@pytest.mark.timeout(60)
def test_flash_hex_into_simulator(elf):
    board = load_board("stm32f746g-disco")
    ref = (elf / "fw.bin").read_bytes()
    with BootloaderSim(board) as sim:
        ser = open_port(sim.path, 115200, parity="E", timeout=0.3)
        try:
            flash_image(Stm32Bootloader(ser), board, load_firmware(str(elf / "fw.hex")))
        finally:
            ser.close()
        assert sim.flash.read(0x08000000, len(ref)) == ref


def test_bad_files(tmp_path):
    with pytest.raises(FirmwareFileError, match="does not exist"):
        load_firmware(str(tmp_path / "none.bin"))
    p = tmp_path / "bad.hex"
    p.write_text(":0400000001020304F1\n")       # wrong checksum (should be F2)
    with pytest.raises(FirmwareFileError, match="checksum"):
        load_firmware(str(p))
    p.write_text(":0400000001020304F2\n:00000001FF\n")
    img = load_firmware(str(p))
    assert img.segments[0].address == 0 and img.segments[0].data == b"\x01\x02\x03\x04"
    e = tmp_path / "x.elf"
    e.write_bytes(b"\x7fELF" + bytes(20))
    with pytest.raises(FirmwareFileError, match="ELF"):
        load_firmware(str(e))
    b = tmp_path / "x.bin"
    b.write_bytes(b"\x00" * 10)
    with pytest.raises(FirmwareFileError, match="address"):
        load_firmware(str(b))
    img = load_firmware(str(b), 0x08000002)          # unaligned start: padded with 0xFF to 4 bytes
    assert img.start == 0x08000000 and img.segments[0].data == b"\xff\xff" + b"\x00" * 10
