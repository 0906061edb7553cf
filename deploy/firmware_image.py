"""Firmware files (.bin, Intel .hex, .elf) -> a list of (address, bytes) segments.

The flasher only ever sees `FirmwareImage`: segments sorted by address, no
overlaps, each padded outward to 4-byte alignment with 0xFF (the erased flash
value, so padding never changes a programmed byte).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from tinyml.userfiles import read_bounded

from .errors import FirmwareFileError

ALIGN = 4


@dataclass
class Segment:
    address: int
    data: bytes

    @property
    def end(self) -> int:
        return self.address + len(self.data)


@dataclass
class FirmwareImage:
    path: str
    segments: list[Segment] = field(default_factory=list)
    entry: int | None = None        # ELF entry point, informational

    @property
    def size(self) -> int:
        return sum(len(s.data) for s in self.segments)

    @property
    def start(self) -> int:
        return self.segments[0].address

    @property
    def end(self) -> int:
        return self.segments[-1].end


# Larger than any STM32's flash, with room for an ELF's debug sections; the
# bound keeps a wrong path (a disk image, /dev/zero) from being read whole.
MAX_FILE_BYTES = 64 * 1024 * 1024
EM_ARM = 40
_ELF_MACHINES = {3: "x86", 62: "x86-64", 183: "AArch64", 243: "RISC-V", 8: "MIPS", 20: "PowerPC"}
# Cortex-M vector table: word 0 = initial stack pointer (in RAM), word 1 = reset handler
# (a Thumb address, bit 0 set, inside the flash being programmed).
RAM_LO, RAM_HI = 0x1000_0000, 0x4000_0000
ACCEPTED = ("an ARM .elf (PT_LOAD segments), an Intel .hex, or a raw .bin, each starting with "
            "a Cortex-M vector table")


def read_firmware_file(path: str) -> bytes:
    """The file's bytes, after refusing what cannot be firmware without reading it
    (missing path, folder, FIFO/device, oversized) or after a look at its content
    (empty, a TFLite model, an ELF for another machine)."""
    fix = "pass the firmware.elf (or .bin/.hex) that `tinyml build` wrote"
    if os.path.isdir(path):
        built = [n for n in ("firmware.elf", "firmware.hex", "firmware.bin") if os.path.isfile(os.path.join(path, n))]
        dir_fix = (f"pass the file, e.g. {os.path.join(path, built[0])}" if built
                   else "pass the firmware file inside it (.elf, .hex or .bin)")
        raise FirmwareFileError(f"{path} is a folder, not a firmware file", path, dir_fix)
    raw = read_bounded(path, "firmware file", fix, MAX_FILE_BYTES, FirmwareFileError)
    if not raw:
        raise FirmwareFileError("firmware file is empty", path, "rebuild the firmware")
    if raw[4:8] == b"TFL3":
        raise FirmwareFileError("this is a TFLite model, not firmware", path,
                                f"build it first (tinyml build {path} --board B -o DIR), then flash DIR/firmware.elf")
    if raw[:4] == b"\x7fELF" and len(raw) >= 20:
        machine = int.from_bytes(raw[18:20], "little" if raw[5:6] != b"\x02" else "big")
        if machine != EM_ARM:
            name = _ELF_MACHINES.get(machine, f"machine {machine}")
            raise FirmwareFileError(f"this ELF is for {name}, not an ARM microcontroller", path,
                                    "pass the firmware.elf built by arm-none-eabi-gcc (tinyml build)")
    return raw


def _looks_like_text(raw: bytes) -> bool:
    head = raw[:4096]
    return all(32 <= b < 127 or b in (9, 10, 13) for b in head)


def load_firmware(path: str, address: int | None = None) -> FirmwareImage:
    """Read a firmware file; `address` places a raw .bin (ignored for .hex/.elf)."""
    raw = read_firmware_file(path)
    ext = os.path.splitext(path)[1].lower()
    if raw[:4] == b"\x7fELF" or ext in (".elf", ".axf", ".out"):
        segs, entry = _from_elf(path, raw)
    elif ext in (".hex", ".ihex", ".ihx") or (raw[:1] == b":" and ext != ".bin"):
        segs, entry = _from_ihex(path, raw), None
    else:
        if _looks_like_text(raw):
            hint = " (Intel HEX? name it .hex)" if raw[:1] == b":" else ""
            raise FirmwareFileError(f"this is a text file{hint}, not a firmware binary", path,
                                    f"pass {ACCEPTED}")
        if address is None:
            raise FirmwareFileError("a raw .bin has no load address", path,
                                    "pass --address (or --board, to use its flash origin)")
        segs, entry = [Segment(address, raw)], None
    if not segs:
        raise FirmwareFileError("firmware file has no loadable bytes", path,
                                "check that the ELF has PT_LOAD segments / the HEX has data records")
    return FirmwareImage(path, _normalize(path, segs), entry)


def check_vector_table(image: FirmwareImage, flash_lo: int, flash_hi: int) -> None:
    """Refuse an image that does not begin with a Cortex-M vector table for a flash
    at [flash_lo, flash_hi): word 0 a stack pointer in RAM, word 1 a Thumb
    (odd) reset address inside that flash. Called before anything is erased."""
    first = image.segments[0]
    head = first.data[:8]
    if len(head) < 8:
        raise FirmwareFileError(f"image is {len(head)} bytes, too short for a vector table", image.path,
                                f"pass {ACCEPTED}")
    sp = int.from_bytes(head[:4], "little")
    reset = int.from_bytes(head[4:8], "little")
    problems = []
    if not RAM_LO < sp <= RAM_HI:
        problems.append(f"initial stack pointer 0x{sp:08X} is not in RAM")
    if not (reset & 1 and flash_lo <= reset - 1 < flash_hi):
        problems.append(f"reset handler 0x{reset:08X} is not a Thumb address in flash "
                        f"0x{flash_lo:08X}..0x{flash_hi - 1:08X}")
    if problems:
        raise FirmwareFileError(
            f"not firmware: the image at 0x{first.address:08X} does not start with a Cortex-M vector "
            f"table ({'; '.join(problems)}); nothing was erased", image.path,
            f"pass {ACCEPTED} (for a raw .bin, check --address)")


def _normalize(path: str, segs: list[Segment]) -> list[Segment]:
    """Sort, align outward to 4 bytes (0xFF fill), and merge touching segments."""
    segs = sorted((s for s in segs if s.data), key=lambda s: s.address)
    out: list[tuple[int, bytearray, bytearray]] = []   # (start, data, mask of real bytes)
    for s in segs:
        start = s.address - s.address % ALIGN
        end = s.end + (-s.end) % ALIGN
        data = bytearray(b"\xff" * (end - start))
        mask = bytearray(end - start)
        off = s.address - start
        data[off:off + len(s.data)] = s.data
        mask[off:off + len(s.data)] = b"\x01" * len(s.data)
        if out and start <= out[-1][0] + len(out[-1][1]):
            pstart, pdata, pmask = out[-1]
            grow = end - (pstart + len(pdata))
            if grow > 0:
                pdata.extend(b"\xff" * grow)
                pmask.extend(bytes(grow))
            base = start - pstart
            for i in range(len(data)):
                if not mask[i]:
                    continue
                j = base + i
                if pmask[j] and pdata[j] != data[i]:
                    raise FirmwareFileError(
                        f"two segments give different bytes for address 0x{pstart + j:08x}", path,
                        "fix the linker script or the HEX file")
                pdata[j] = data[i]
                pmask[j] = 1
        else:
            out.append((start, data, mask))
    return [Segment(a, bytes(d)) for a, d, _ in out]


def _from_elf(path: str, raw: bytes) -> tuple[list[Segment], int | None]:
    import io

    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    try:
        elf = ELFFile(io.BytesIO(raw))
        segs = []
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_LOAD" or seg["p_filesz"] == 0:
                continue
            # p_paddr is the load (flash) address; .data is stored there and copied at boot.
            segs.append(Segment(int(seg["p_paddr"]), seg.data()[: seg["p_filesz"]]))
        return segs, int(elf.header["e_entry"])
    except (ELFError, ValueError, KeyError) as exc:
        raise FirmwareFileError(f"not a readable ELF file ({exc})", path,
                                "pass the firmware.elf that arm-none-eabi-gcc wrote") from None


def _from_ihex(path: str, raw: bytes) -> list[Segment]:
    """Intel HEX: data (00), EOF (01), extended segment (02) and linear (04) address records."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise FirmwareFileError("HEX file is not ASCII text", path, "pass a valid Intel HEX file") from None
    segs: list[Segment] = []
    base = 0
    cur_addr: int | None = None
    cur = bytearray()
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        where = f"{path}:{lineno}"
        if not line.startswith(":"):
            raise FirmwareFileError("HEX line does not start with ':'", where, "pass a valid Intel HEX file")
        try:
            rec = bytes.fromhex(line[1:])
        except ValueError:
            raise FirmwareFileError("HEX line has a non-hex character", where, "pass a valid Intel HEX file") from None
        if len(rec) < 5 or len(rec) != rec[0] + 5:
            raise FirmwareFileError("HEX record length is wrong", where, "pass a valid Intel HEX file")
        if sum(rec) & 0xFF:
            raise FirmwareFileError("HEX record checksum is wrong", where, "the file is corrupt; rebuild it")
        n, off, kind, data = rec[0], (rec[1] << 8) | rec[2], rec[3], rec[4:4 + rec[0]]
        if kind == 0x00:
            addr = base + off
            if cur_addr is not None and addr == cur_addr + len(cur):
                cur.extend(data)
            else:
                if cur:
                    segs.append(Segment(cur_addr, bytes(cur)))  # type: ignore[arg-type]
                cur_addr, cur = addr, bytearray(data)
        elif kind == 0x01:
            break
        elif kind == 0x02 and n == 2:
            base = ((data[0] << 8) | data[1]) << 4
        elif kind == 0x04 and n == 2:
            base = ((data[0] << 8) | data[1]) << 16
        elif kind in (0x03, 0x05):
            pass  # start address records: the flasher starts at the vector table instead
        else:
            raise FirmwareFileError(f"unknown HEX record type {kind:02X}", where, "pass a valid Intel HEX file")
    if cur:
        segs.append(Segment(cur_addr, bytes(cur)))  # type: ignore[arg-type]
    return segs


def write_ihex(path: str, segments: list[Segment]) -> None:
    """Write segments as Intel HEX (used by tests and demos)."""
    lines = []
    upper = None
    for seg in segments:
        for i in range(0, len(seg.data), 16):
            addr = seg.address + i
            if addr >> 16 != upper:
                upper = addr >> 16
                lines.append(_hex_record(0, 0x04, bytes([upper >> 8, upper & 0xFF])))
            lines.append(_hex_record(addr & 0xFFFF, 0x00, seg.data[i:i + 16]))
    lines.append(_hex_record(0, 0x01, b""))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _hex_record(offset: int, kind: int, data: bytes) -> str:
    rec = bytes([len(data), offset >> 8, offset & 0xFF, kind]) + data
    return ":" + (rec + bytes([(-sum(rec)) & 0xFF])).hex().upper()
