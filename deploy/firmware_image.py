"""Firmware files (.bin, Intel .hex, .elf) -> a list of (address, bytes) segments.

The flasher only ever sees `FirmwareImage`: segments sorted by address, no
overlaps, each padded outward to 4-byte alignment with 0xFF (the erased flash
value, so padding never changes a programmed byte).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

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


def load_firmware(path: str, address: int | None = None) -> FirmwareImage:
    """Read a firmware file; `address` places a raw .bin (ignored for .hex/.elf)."""
    if not os.path.isfile(path):
        raise FirmwareFileError(f"firmware file {path} does not exist", path,
                                "pass the .bin, .hex or .elf that `tinyml build` wrote")
    with open(path, "rb") as f:
        raw = f.read()
    if not raw:
        raise FirmwareFileError("firmware file is empty", path, "rebuild the firmware")
    ext = os.path.splitext(path)[1].lower()
    if raw[:4] == b"\x7fELF" or ext in (".elf", ".axf", ".out"):
        segs, entry = _from_elf(path, raw)
    elif ext in (".hex", ".ihex", ".ihx") or (raw[:1] == b":" and ext != ".bin"):
        segs, entry = _from_ihex(path, raw), None
    else:
        if address is None:
            raise FirmwareFileError("a raw .bin has no load address", path,
                                    "pass --address (or --board, to use its flash origin)")
        segs, entry = [Segment(address, raw)], None
    if not segs:
        raise FirmwareFileError("firmware file has no loadable bytes", path,
                                "check that the ELF has PT_LOAD segments / the HEX has data records")
    return FirmwareImage(path, _normalize(path, segs), entry)


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
