"""Board descriptors: one TOML file per board in this folder.

`load_board(name)` returns a `Board` with the memory map, core, FPU, console
UART, ROM-bootloader identity and flash sector map, and the emulator mapping.
The linker script, the firmware's board header and the Renode scripts are all
generated from this object (see firmware/build.py, firmware/emulate.py).

`linker_regions(variant)` turns the descriptor's regions into the regions the
linker script declares: contiguous SRAM regions that share roles are merged
(the F746's DTCM+SRAM1+SRAM2 are one 320 KB block), and the "mps2" variant
moves origins to QEMU's MPS2 map (flash at 0x0, SRAM from 0x20000000) while
every size stays the board's; the "remap" variant moves only the regions
listed in `[emulator.qemu] remap` (the F4's CCM, which QEMU's netduinoplus2
does not map at 0x10000000) to where the machine has RAM.

Regions with the `arena` role besides the main one (`arena_regions`) may hold
part of a split arena (memory_planner/regions.py); a flash region with the
`weights` role is external memory-mapped flash (`weights_region`, the
F746-DISCO's QSPI), whose QUADSPI setup is the descriptor's `[qspi]` table.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace

from tinyml.boards.clock import ClockError, ClockTree, parse_clock
from tinyml.errors import TinymlError

BOARDS_DIR = os.path.dirname(os.path.abspath(__file__))

CORES = {"cortex-m4", "cortex-m7"}
FPUS = {"fpv4-sp-d16", "fpv5-d16", "fpv5-sp-d16"}
VARIANTS = ("native", "mps2", "remap")

# QEMU's MPS2 boards (AN385/AN386/AN500): 4 MB of code SSRAM at 0x0 and
# 4 MB of data SSRAM at 0x20000000; console is the CMSDK APB UART0.
MPS2_FLASH_ORIGIN = 0x0000_0000
MPS2_FLASH_LIMIT = 0x0040_0000
MPS2_SRAM_ORIGIN = 0x2000_0000
MPS2_SRAM_LIMIT = 0x0040_0000
MPS2_UART0_BASE = 0x4000_4000
MPS2_CPU_HZ = 25_000_000


@dataclass(frozen=True)
class MemoryRegion:
    name: str
    origin: int
    size: int
    kind: str                      # "flash" | "sram"
    roles: tuple[str, ...] = ()    # "data", "arena", "stack" (sram only); "weights" (flash)
    section: str = ""              # arena regions: input section of the region's arena symbol

    @property
    def end(self) -> int:
        return self.origin + self.size


@dataclass(frozen=True)
class LinkRegion:
    """A MEMORY entry of the generated linker script (one or more merged board regions)."""
    name: str                      # linker name, e.g. "RAM_DTCM_SRAM1_SRAM2"
    label: str                     # human name, e.g. "DTCM+SRAM1+SRAM2"
    origin: int
    size: int
    kind: str
    roles: tuple[str, ...]
    parts: tuple[str, ...]
    section: str = ""              # arena regions other than the main one: their arena's section


@dataclass(frozen=True)
class Uart:
    peripheral: str
    layout: str                    # "sr" (F4: SR/DR) | "isr" (F7/H7/L4: ISR/TDR/RDR)
    base: int
    tx_pin: str
    rx_pin: str
    af: int
    baud: int
    lpuart: bool = False


@dataclass(frozen=True)
class QemuMapping:
    machine: str
    variant: str                   # "native" | "mps2"
    # regions the machine maps elsewhere than the board (name -> origin); a build that
    # puts an arena there runs on QEMU as the "remap" variant (origins moved, sizes kept)
    remap: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class RenodeMapping:
    platform: str
    uart: str


@dataclass(frozen=True)
class Board:
    name: str
    mcu: str
    family: str
    core: str
    fpu: str
    clock_hz: int
    reset_clock_hz: int
    memory: tuple[MemoryRegion, ...]
    uart: Uart
    bootloader_pid: int
    flash_origin: int
    flash_size: int
    flash_sectors: tuple[tuple[int, int], ...]
    qemu: QemuMapping
    renode: RenodeMapping
    path: str = ""
    clock: ClockTree | None = None     # the [clock] table: PLL setup of the firmware runtime
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    # ---- budgets -------------------------------------------------------
    @property
    def sram_regions(self) -> list[MemoryRegion]:
        return [m for m in self.memory if m.kind == "sram"]

    @property
    def sram_bytes(self) -> int:
        return sum(m.size for m in self.sram_regions)

    @property
    def usable_sram_bytes(self) -> int:
        """SRAM the firmware's linker script actually uses (regions with roles)."""
        return sum(m.size for m in self.sram_regions if m.roles)

    @property
    def flash_bytes(self) -> int:
        return self.flash_size

    @property
    def has_fpu_double(self) -> bool:
        return self.fpu == "fpv5-d16"

    def region(self, name: str) -> MemoryRegion:
        for m in self.memory:
            if m.name == name:
                return m
        raise KeyError(name)

    # ---- linker view ---------------------------------------------------
    def linker_regions(self, variant: str = "native") -> list[LinkRegion]:
        if variant not in VARIANTS:
            raise TinymlError(f"unknown memory-map variant {variant!r}", "boards",
                              f"use one of {', '.join(VARIANTS)}")
        regions = list(self.memory)
        if variant == "mps2":
            regions = _relocate_mps2(self, regions)
        elif variant == "remap":
            moved = dict(self.qemu.remap)
            regions = [replace(m, origin=moved.get(m.name, m.origin)) for m in regions]
        out: list[LinkRegion] = []
        for m in regions:
            prev = out[-1] if out else None
            if (prev is not None and m.kind == "sram" and prev.kind == "sram"
                    and prev.origin + prev.size == m.origin and prev.roles == m.roles and m.roles):
                parts = prev.parts + (m.name,)
                out[-1] = LinkRegion(_link_name(parts, m.kind), "+".join(parts), prev.origin,
                                     prev.size + m.size, m.kind, m.roles, parts, prev.section)
            else:
                out.append(LinkRegion(_link_name((m.name,), m.kind, m.roles), m.name, m.origin, m.size,
                                      m.kind, m.roles, (m.name,), m.section))
        return out

    def region_for(self, role: str, variant: str = "native") -> LinkRegion:
        """The largest linker region that may hold `role` (data, arena or stack)."""
        cands = [r for r in self.linker_regions(variant) if role in r.roles]
        if not cands:
            raise TinymlError(f"board {self.name} has no SRAM region with role {role!r}",
                              self.path, "add the role to one [[memory]] entry")
        return max(cands, key=lambda r: r.size)

    def arena_regions(self, variant: str = "native") -> list[LinkRegion]:
        """Linker regions that may hold the arena: the main one (`region_for("arena")`, where
        `tinyml_arena` goes) first, then the others in descriptor order."""
        main = self.region_for("arena", variant)
        return [main] + [r for r in self.linker_regions(variant)
                         if "arena" in r.roles and r.name != main.name]

    def flash_region(self, variant: str = "native") -> LinkRegion:
        return [r for r in self.linker_regions(variant) if r.kind == "flash" and "weights" not in r.roles][0]

    def weights_region(self, name: str, variant: str = "native") -> LinkRegion:
        """The external memory-mapped flash region `name` (role "weights"), e.g. the F746-DISCO's QSPI."""
        cands = [r for r in self.linker_regions(variant) if "weights" in r.roles]
        for r in cands:
            if r.label.lower() == name.lower():
                return r
        raise TinymlError(f"board {self.name} has no weights region {name!r}", self.path,
                          "use one of: " + (", ".join(r.label.lower() for r in cands) or
                                            "(none: omit --weights-region)"))

    def summary(self) -> dict:
        return {
            "name": self.name, "mcu": self.mcu, "core": self.core, "fpu": self.fpu,
            "clock_hz": self.clock_hz, "clock": self.clock.describe() if self.clock else None,
            "sram_bytes": self.sram_bytes,
            "usable_sram_bytes": self.usable_sram_bytes, "flash_bytes": self.flash_bytes,
            "bootloader_pid": f"0x{self.bootloader_pid:03x}",
            "memory": [{"name": m.name, "kind": m.kind, "origin": f"0x{m.origin:08x}",
                        "size": m.size, "roles": list(m.roles)} for m in self.memory],
            "uart": {"peripheral": self.uart.peripheral, "tx": self.uart.tx_pin,
                     "rx": self.uart.rx_pin, "baud": self.uart.baud},
            "qemu": {"machine": self.qemu.machine, "variant": self.qemu.variant,
                     "remap": {n: f"0x{o:08x}" for n, o in self.qemu.remap}},
            "renode": {"platform": self.renode.platform},
        }


def _link_name(parts: tuple[str, ...], kind: str, roles: tuple[str, ...] = ()) -> str:
    if kind == "flash":
        return parts[0] if "weights" in roles else "FLASH"
    return "RAM_" + "_".join(parts)


def _relocate_mps2(board: Board, regions: list[MemoryRegion]) -> list[MemoryRegion]:
    out: list[MemoryRegion] = []
    flash_at = MPS2_FLASH_ORIGIN
    sram_at = MPS2_SRAM_ORIGIN
    for m in regions:
        if "weights" in m.roles:
            continue        # external flash (QSPI): not mapped by QEMU's MPS2 machines
        if m.kind == "flash":
            if flash_at + m.size > MPS2_FLASH_ORIGIN + MPS2_FLASH_LIMIT:
                raise TinymlError(f"{board.name} flash does not fit QEMU's MPS2 code memory",
                                  board.path, "use a board with at most 4 MB of flash")
            out.append(MemoryRegion(m.name, flash_at, m.size, m.kind, m.roles))
            flash_at += m.size
        elif m.roles:
            # Only regions the firmware uses are mapped; they are packed in order.
            if sram_at + m.size > MPS2_SRAM_ORIGIN + MPS2_SRAM_LIMIT:
                raise TinymlError(f"{board.name} SRAM does not fit QEMU's MPS2 data memory",
                                  board.path, "reduce the SRAM regions with roles")
            out.append(MemoryRegion(m.name, sram_at, m.size, m.kind, m.roles))
            sram_at += m.size
    return out


def _parse(path: str) -> Board:
    try:
        with open(path, "rb") as fh:
            d = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TinymlError(f"cannot read board descriptor: {exc}", path,
                          "fix the TOML syntax") from None
    try:
        memory = tuple(MemoryRegion(m["name"], int(m["origin"]), int(m["size"]), m["kind"],
                                    tuple(m.get("roles", ())), str(m.get("section", "")))
                       for m in d["memory"])
        u = d["uart"]
        uart = Uart(u["peripheral"], u["layout"], int(u["base"]), u["tx_pin"], u["rx_pin"],
                    int(u["af"]), int(u["baud"]), bool(u.get("lpuart", False)))
        sectors = [tuple(int(x) for x in s) for s in d.get("flash_sectors", [])]
        if not sectors and d.get("flash_page_size"):
            page = int(d["flash_page_size"])
            sectors = [(d["flash_origin"] + i * page, page) for i in range(d["flash_size"] // page)]
        q = d["emulator"]["qemu"]
        r = d["emulator"]["renode"]
        board = Board(
            name=d["name"], mcu=d["mcu"], family=d["family"], core=d["core"], fpu=d["fpu"],
            clock_hz=int(d["clock_hz"]), reset_clock_hz=int(d["reset_clock_hz"]),
            memory=memory, uart=uart, bootloader_pid=int(d["bootloader_pid"]),
            flash_origin=int(d["flash_origin"]), flash_size=int(d["flash_size"]),
            flash_sectors=tuple(sectors),
            qemu=QemuMapping(q["machine"], q.get("variant", "native"),
                             tuple((k, int(v)) for k, v in q.get("remap", {}).items())),
            renode=RenodeMapping(r["platform"], r.get("uart", "")),
            path=path,
            extra={"qspi": d["qspi"]} if "qspi" in d else {},
            clock=(parse_clock(d["clock"], d["family"], int(d["clock_hz"]), int(d["reset_clock_hz"]))
                   if "clock" in d else None),
        )
    except ClockError as exc:
        raise TinymlError(f"bad clock tree: {exc}", path,
                          "fix the [clock] table (limits from the reference manual: boards/clock.py)") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise TinymlError(f"board descriptor is missing or has a bad field: {exc}", path,
                          "compare with boards/stm32f746g-disco.toml") from None
    _validate(board)
    return board


def _validate(b: Board) -> None:
    def bad(msg: str) -> None:
        raise TinymlError(msg, b.path, "fix the board descriptor")
    if b.core not in CORES:
        bad(f"core {b.core!r} is not one of {sorted(CORES)}")
    if b.fpu not in FPUS:
        bad(f"fpu {b.fpu!r} is not one of {sorted(FPUS)}")
    if b.qemu.variant not in VARIANTS:
        bad(f"emulator.qemu.variant {b.qemu.variant!r} is not one of {VARIANTS}")
    if b.uart.layout not in ("sr", "isr"):
        bad(f"uart.layout {b.uart.layout!r} must be 'sr' or 'isr'")
    for m in b.memory:
        if m.kind not in ("flash", "sram"):
            bad(f"memory region {m.name} has kind {m.kind!r} (flash or sram)")
    if sum(s for _, s in b.flash_sectors) != b.flash_size:
        bad("flash_sectors do not add up to flash_size")
    pos = b.flash_origin
    for start, size in b.flash_sectors:
        if start != pos:
            bad(f"flash sector at 0x{start:08x} is not contiguous (expected 0x{pos:08x})")
        pos += size
    for name, _ in b.qemu.remap:
        if not any(m.name == name for m in b.memory):
            bad(f"emulator.qemu.remap names {name!r}, which is not a [[memory]] region")
    for role in ("data", "arena", "stack"):
        if not any(role in m.roles for m in b.memory):
            bad(f"no SRAM region has role {role!r}")


def list_boards() -> list[str]:
    return sorted(f[:-5] for f in os.listdir(BOARDS_DIR) if f.endswith(".toml"))


def load_board(name: str) -> Board:
    """Load `boards/<name>.toml` (or a path to a .toml file)."""
    if name.endswith(".toml") and os.path.exists(name):
        return _parse(name)
    path = os.path.join(BOARDS_DIR, f"{name}.toml")
    if not os.path.exists(path):
        raise TinymlError(f"unknown board {name!r}", "boards/",
                          f"use one of: {', '.join(list_boards())}")
    return _parse(path)
