"""Firmware project generation and arm-none-eabi-gcc build.

`build_firmware(model, board, out_dir)`:

1. generates the model library into DIR/model (codegen.emit.generate), unless
   a pre-generated library directory is given;
2. computes self-test vectors (seeded random int8 inputs, expected outputs
   from the TFLite reference interpreter via codegen.oracle) into DIR/vectors.c;
3. copies the runtime and app sources, renders DIR/board_config.h,
   DIR/linker.ld and DIR/Makefile from the board descriptor (Jinja2); for the
   "mps2" emulator variant the same files go to DIR/mps2/;
4. runs make; a region overflow becomes a `FitError` naming the region, the
   overflow in bytes and the largest symbols in it;
5. reads the ELF (pyelftools) for the size report and writes DIR/build.json.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field

import jinja2
import numpy as np

from tinyml.boards import Board, LinkRegion, load_board
from tinyml.errors import FitError, ToolchainError, TinymlError

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME_DIR = os.path.join(HERE, "runtime")
APP_DIR = os.path.join(HERE, "app")
TEMPLATE_DIR = os.path.join(HERE, "templates")

DEFAULT_STACK_BYTES = 8192
MODES = ("selftest", "serial")

# Per family: RCC register addresses for GPIO and UART clock enables, GPIO
# port base and stride, external interrupt count (RM0090, RM0385, RM0433, RM0432).
FAMILIES: dict[str, dict] = {
    "stm32f4": {"rcc": 0x4002_3800, "gpio_en": 0x30, "gpio_base": 0x4002_0000, "irqs": 82,
                "uart_en": {"USART1": (0x44, 4), "USART2": (0x40, 17), "USART3": (0x40, 18),
                            "UART4": (0x40, 19), "UART5": (0x40, 20), "USART6": (0x44, 5)}},
    "stm32f7": {"rcc": 0x4002_3800, "gpio_en": 0x30, "gpio_base": 0x4002_0000, "irqs": 98,
                "uart_en": {"USART1": (0x44, 4), "USART2": (0x40, 17), "USART3": (0x40, 18),
                            "UART4": (0x40, 19), "UART5": (0x40, 20), "USART6": (0x44, 5)}},
    "stm32h7": {"rcc": 0x5802_4400, "gpio_en": 0xE0, "gpio_base": 0x5802_0000, "irqs": 150,
                "uart_en": {"USART1": (0xF0, 4), "USART2": (0xE8, 17), "USART3": (0xE8, 18),
                            "UART4": (0xE8, 19), "UART5": (0xE8, 20), "USART6": (0xF0, 5)}},
    "stm32l4": {"rcc": 0x4002_1000, "gpio_en": 0x4C, "gpio_base": 0x4800_0000, "irqs": 95,
                "uart_en": {"USART1": (0x60, 14), "USART2": (0x58, 17), "USART3": (0x58, 18),
                            "LPUART1": (0x5C, 0)},
                "pwr_en": (0x58, 28), "pwr_cr2": 0x4000_7004},
}
MPS2_IRQS = 32


@dataclass
class SizeReport:
    text: int            # code + rodata in flash (weights included)
    data: int            # initialised RAM (its image is in flash too)
    bss: int             # zeroed RAM, arena and stack excluded
    arena: int
    stack: int           # stack reserve
    weights: int         # tinyml_w* constant tensors (part of text)
    flash_bytes: int     # text + data image
    static_ram_bytes: int  # data + bss
    ram_bytes: int       # data + bss + arena + stack reserve
    regions: list[dict] = field(default_factory=list)  # per linker region: name, size, used
    stack_estimate: int | None = None   # static worst case (firmware/stack_usage.py)
    stack_estimate_note: str = ""

    def lines(self) -> list[str]:
        out = [f"  text   {self.text:>9,} B  (weights {self.weights:,} B)",
               f"  data   {self.data:>9,} B",
               f"  bss    {self.bss:>9,} B",
               f"  arena  {self.arena:>9,} B",
               f"  stack  {self.stack:>9,} B  (reserve)"
               + (f"; {self.stack_estimate_note}" if self.stack_estimate is not None else ""),
               f"  flash  {self.flash_bytes:>9,} B   SRAM {self.ram_bytes:,} B (static {self.static_ram_bytes:,} B)"]
        if self.stack_estimate is not None and self.stack_estimate > self.stack:
            out.append(f"  warning: the stack estimate {self.stack_estimate:,} B exceeds the {self.stack:,} B "
                       f"reserve; raise --stack-bytes")
        for r in self.regions:
            pct = 100.0 * r["used"] / r["size"] if r["size"] else 0.0
            out.append(f"  region {r['name']:<24} {r['used']:>9,} / {r['size']:>9,} B  {pct:5.1f}%  {r['label']}")
        return out


@dataclass
class BuildResult:
    out_dir: str
    board: str
    mode: str
    variants: list[str]
    model: str
    vectors: int
    oracle: str
    sizes: dict[str, SizeReport]
    rounding: str = ""                               # of the kernels (a given model_dir: its config.h)
    notes: list[str] = field(default_factory=list)   # oracle fallback / rounding choice

    def elf(self, variant: str = "native") -> str:
        return os.path.join(variant_dir(self.out_dir, variant), "firmware.elf")


def variant_dir(out_dir: str, variant: str) -> str:
    return out_dir if variant == "native" else os.path.join(out_dir, variant)


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True)


def _pin(name: str) -> tuple[int, int]:
    m = re.fullmatch(r"P([A-K])(\d{1,2})", name)
    if not m:
        raise TinymlError(f"bad pin name {name!r}", "board descriptor uart", "use e.g. PA9")
    return ord(m.group(1)) - ord("A"), int(m.group(2))


def _pins(board: Board) -> dict:
    fam = FAMILIES.get(board.family)
    if fam is None:
        raise TinymlError(f"no runtime support for family {board.family!r}", board.path,
                          f"use one of {', '.join(FAMILIES)}")
    if board.uart.peripheral not in fam["uart_en"]:
        raise TinymlError(f"no clock-enable entry for {board.uart.peripheral} on {board.family}",
                          board.path, "pick a USART listed in firmware/build.py FAMILIES")
    tx_port, tx_pin = _pin(board.uart.tx_pin)
    rx_port, rx_pin = _pin(board.uart.rx_pin)
    en_off, en_bit = fam["uart_en"][board.uart.peripheral]
    vddio2 = board.family == "stm32l4" and "G" in (board.uart.tx_pin[1], board.uart.rx_pin[1])
    d = {"af": board.uart.af, "gpio_en_reg": fam["rcc"] + fam["gpio_en"],
         "tx_port": tx_port, "tx_pin": tx_pin, "tx_base": fam["gpio_base"] + 0x400 * tx_port,
         "rx_port": rx_port, "rx_pin": rx_pin, "rx_base": fam["gpio_base"] + 0x400 * rx_port,
         "uart_en_reg": fam["rcc"] + en_off, "uart_en_bit": en_bit, "vddio2": vddio2}
    if vddio2:
        d["pwr_en_reg"] = fam["rcc"] + fam["pwr_en"][0]
        d["pwr_en_bit"] = fam["pwr_en"][1]
        d["pwr_cr2"] = fam["pwr_cr2"]
    return d


def board_context(board: Board, variant: str, mode: str, stack_bytes: int) -> dict:
    """Template variables for board_config.h and linker.ld."""
    from tinyml.boards import MPS2_CPU_HZ, MPS2_UART0_BASE
    regions = board.linker_regions(variant)
    stack_region = board.region_for("stack", variant)
    if stack_bytes > stack_region.size:
        raise FitError(f"stack reserve {stack_bytes} B exceeds region {stack_region.label} "
                       f"({stack_region.size} B)", board.path, "lower --stack-bytes")
    ctx = {
        "board": board, "variant": variant, "mode": mode, "regions": regions,
        "stack_bytes": stack_bytes, "stack_region": stack_region.name,
        "data_region": board.region_for("data", variant).name,
        "arena_region": board.region_for("arena", variant).name,
        "enable_caches": True,
    }
    ctx["board"] = _BoardView(board)
    if variant == "native":
        ctx.update(variant_note="board memory map", num_irqs=FAMILIES[board.family]["irqs"],
                   try_dwt=True, cpu_hz=board.reset_clock_hz, uart_kind=board.uart.layout,
                   lpuart=board.uart.lpuart, uart_base=board.uart.base, baud=board.uart.baud,
                   pins=_pins(board),
                   uart_note=f"{board.uart.peripheral} TX {board.uart.tx_pin} RX {board.uart.rx_pin}")
    else:
        ctx.update(variant_note=f"QEMU {board.qemu.machine} variant: origins follow the MPS2 map, "
                                f"sizes are the board's",
                   num_irqs=MPS2_IRQS, try_dwt=False, cpu_hz=MPS2_CPU_HZ, uart_kind="cmsdk",
                   lpuart=False, uart_base=MPS2_UART0_BASE, baud=board.uart.baud, pins=None,
                   uart_note="CMSDK APB UART0 of QEMU's MPS2 machine")
    return ctx


class _BoardView:
    """Board plus a repository-relative descriptor path for generated headers."""

    def __init__(self, board: Board) -> None:
        self._b = board
        self.path_rel = os.path.join("boards", os.path.basename(board.path))

    def __getattr__(self, name):
        return getattr(self._b, name)


def render_board_files(board: Board, variant: str, mode: str, out_dir: str,
                       stack_bytes: int = DEFAULT_STACK_BYTES) -> None:
    env = _env()
    ctx = board_context(board, variant, mode, stack_bytes)
    vdir = variant_dir(out_dir, variant)
    os.makedirs(vdir, exist_ok=True)
    for tmpl, name in (("linker.ld.j2", "linker.ld"), ("board_config.h.j2", "board_config.h")):
        _write_if_changed(os.path.join(vdir, name), env.get_template(tmpl).render(**ctx))


def _write_if_changed(path: str, text: str) -> None:
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return
    with open(path, "w") as f:
        f.write(text)


def _c_bytes(b: bytes) -> str:
    vals = np.frombuffer(b, dtype=np.int8)
    rows = []
    for i in range(0, len(vals), 20):
        rows.append("    " + ", ".join(str(int(v)) for v in vals[i:i + 20]) + ",")
    return "\n".join(rows)


def write_vectors(out_dir: str, vectors: list[tuple[bytes, bytes]], model: str, oracle: str) -> None:
    vs = [{"input": a, "output": b, "input_c": _c_bytes(a), "output_c": _c_bytes(b)} for a, b in vectors]
    text = _env().get_template("vectors.c.j2").render(vectors=vs, model=model, oracle=oracle)
    _write_if_changed(os.path.join(out_dir, "vectors.c"), text)


def read_model_header(model_dir: str) -> dict:
    """TINYML_* integer/string macros from DIR/model.h."""
    path = os.path.join(model_dir, "model.h")
    try:
        text = open(path).read()
    except OSError:
        raise TinymlError("generated model library has no model.h", model_dir,
                          "regenerate it with `tinyml generate`") from None
    out: dict = {}
    for m in re.finditer(r"#define\s+(TINYML_\w+)\s+(\"[^\"]*\"|-?\d+)(?![\w.])", text):
        v = m.group(2)
        out[m.group(1)] = v.strip('"') if v.startswith('"') else int(v)
    for key in ("TINYML_ARENA_BYTES", "TINYML_INPUT_BYTES", "TINYML_OUTPUT_BYTES"):
        if key not in out:
            raise TinymlError(f"model.h lacks {key}", path, "regenerate the model library")
    return out


def _library_rounding(lib_dir: str) -> str:
    """"tflite" / "tflm" from a generated library's config.h ("" if it has none)."""
    try:
        text = open(os.path.join(lib_dir, "kernels", "include", "tinyml", "config.h")).read()
    except OSError:
        return ""
    m = re.search(r"#define\s+TINYML_SINGLE_ROUNDING\s+([01])", text)
    return "" if m is None else ("tflite" if m.group(1) == "1" else "tflm")


def make_vectors(model_path: str, input_bytes: int, count: int, seed: int = 0, oracle=None
                 ) -> tuple[list[tuple[bytes, bytes]], str]:
    """Seeded random int8 inputs and the reference interpreter's outputs
    (`oracle`: a codegen.oracle.Oracle, default the auto choice)."""
    from tinyml.codegen.oracle import reference_outputs
    rng = np.random.default_rng(seed)
    inputs = [rng.integers(-128, 128, size=input_bytes, dtype=np.int64).astype(np.int8)
              for _ in range(count)]
    outs, oracle = reference_outputs(model_path, [[x] for x in inputs], oracle)
    vectors = [(x.tobytes(), np.asarray(o[0]).astype(np.int8).tobytes()) for x, o in zip(inputs, outs)]
    return vectors, oracle


def copy_sources(out_dir: str) -> None:
    for src, name in ((RUNTIME_DIR, "runtime"), (APP_DIR, "app")):
        dst = os.path.join(out_dir, name)
        os.makedirs(dst, exist_ok=True)
        for f in sorted(os.listdir(src)):
            if f.endswith((".c", ".h")):
                with open(os.path.join(src, f)) as fh:
                    _write_if_changed(os.path.join(dst, f), fh.read())


def write_makefile(board: Board, mode: str, out_dir: str, extra_cflags: str = "") -> None:
    text = _env().get_template("Makefile.j2").render(board=board, mode=mode, extra_cflags=extra_cflags)
    _write_if_changed(os.path.join(out_dir, "Makefile"), text)


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        raise ToolchainError(f"{tool} not found on PATH", "firmware build",
                             "install gcc-arm-none-eabi and libnewlib-arm-none-eabi (apt)")


_OVERFLOW = re.compile(r"region [`']([^']+)' overflowed by (\d+) bytes")
_NOFIT = re.compile(r"will not fit in region [`']([^']+)'")


def run_make(board: Board, out_dir: str, variant: str, stack_bytes: int, log=None) -> None:
    _need("arm-none-eabi-gcc")
    _need("make")
    jobs = str(max(1, min(4, os.cpu_count() or 1)))
    proc = subprocess.run(["make", "-j", jobs, f"VARIANT={variant}"], cwd=out_dir,
                          capture_output=True, text=True)
    if log is not None:
        log.write(proc.stdout)
    if proc.returncode == 0:
        return
    err = proc.stderr + proc.stdout
    overflows = [(m.group(1), int(m.group(2))) for m in _OVERFLOW.finditer(err)]
    if overflows or _NOFIT.search(err):
        raise overflow_error(board, out_dir, variant, stack_bytes, overflows)
    first = [l for l in err.splitlines() if "error" in l.lower()][:5] or err.splitlines()[-5:]
    raise ToolchainError("arm-none-eabi-gcc failed: " + " | ".join(first),
                         os.path.join(variant_dir(out_dir, variant), "Makefile"),
                         "see the full log by running make in that directory")


def overflow_error(board: Board, out_dir: str, variant: str, stack_bytes: int,
                   overflows: list[tuple[str, int]]) -> FitError:
    """Relink with every region enlarged to find what fills the overflowing ones."""
    regions = board.linker_regions(variant)
    fake = [LinkRegion(r.name, r.label, 0x1000_0000 * (i + 1), 0x0800_0000, r.kind, r.roles, r.parts)
            for i, r in enumerate(regions)]
    vdir = variant_dir(out_dir, variant)
    relaxed = os.path.join(vdir, "linker.relaxed.ld")
    ctx = board_context(board, variant, "selftest", stack_bytes)
    ctx["regions"] = fake
    with open(relaxed, "w") as f:
        f.write(_env().get_template("linker.ld.j2").render(**ctx))
    elf = os.path.join(vdir, "firmware.relaxed.elf")
    used: dict[str, int] = {}
    contributors: dict[str, list[tuple[str, int]]] = {}
    objs = [os.path.join(vdir, "obj", s[:-2] + ".o") for s in _sources(out_dir)]
    if all(os.path.exists(o) for o in objs):
        link = subprocess.run(["arm-none-eabi-gcc", *_arch_flags(board), "--specs=nano.specs",
                               "-nostartfiles", "-Wl,--gc-sections", "-T", relaxed, *objs, "-o", elf],
                              cwd=out_dir, capture_output=True, text=True)
        if link.returncode == 0:
            used, contributors = _region_usage(elf, fake)
            # Report against the real regions: same names, real sizes.
    parts = []
    names = [o[0] for o in overflows] or [r.name for r in regions if used.get(r.name, 0) > r.size]
    for name in names:
        reg = next((r for r in regions if r.name == name), None)
        if reg is None:
            continue
        over = dict(overflows).get(name) or max(0, used.get(name, 0) - reg.size)
        if name in used:
            over = max(0, used[name] - reg.size)
        top = ", ".join(f"{s} {n:,} B" for s, n in contributors.get(name, [])[:4])
        kind = "flash" if reg.kind == "flash" else "SRAM"
        parts.append(f"{kind} region {reg.label} ({name}, {reg.size:,} B) overflowed by {over:,} bytes"
                     + (f"; largest: {top}" if top else ""))
    for f in (elf, relaxed):
        if os.path.exists(f):
            os.remove(f)
    if not parts:
        parts = ["a memory region overflowed (see the linker output)"]
    flash_only = all(r.kind == "flash" for r in regions if r.name in names)
    fix = ("use a smaller model (fewer weights) or a board with more flash" if flash_only and names else
           "use a smaller model (smaller arena), a lower --stack-bytes, or a board with more SRAM")
    return FitError(f"model does not fit {board.name}: " + "; ".join(parts), board.path, fix)


def _arch_flags(board: Board) -> list[str]:
    return [f"-mcpu={board.core}", "-mthumb", f"-mfpu={board.fpu}", "-mfloat-abi=hard"]


def _sources(out_dir: str) -> list[str]:
    """The C files the Makefile compiles, relative to DIR (same globs)."""
    import glob
    srcs = []
    for pat in ("runtime/*.c", "app/*.c"):
        srcs += sorted(os.path.relpath(p, out_dir) for p in glob.glob(os.path.join(out_dir, pat)))
    srcs += ["vectors.c", "model/model.c", "model/weights.c"]
    srcs += sorted(os.path.relpath(p, out_dir)
                   for p in glob.glob(os.path.join(out_dir, "model/kernels/src/*.c")))
    return srcs


def _region_usage(elf_path: str, regions: list[LinkRegion]
                  ) -> tuple[dict[str, int], dict[str, list[tuple[str, int]]]]:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection
    used = {r.name: 0 for r in regions}
    contrib: dict[str, list[tuple[str, int]]] = {r.name: [] for r in regions}

    def region_of(addr: int) -> str | None:
        for r in regions:
            if r.origin <= addr < r.origin + r.size:
                return r.name
        return None

    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_LOAD":
                continue
            # Flash holds file-backed bytes at the LMA; RAM holds memsz at the VMA.
            lma = region_of(seg["p_paddr"])
            vma = region_of(seg["p_vaddr"])
            if lma and seg["p_filesz"]:
                end = seg["p_paddr"] + seg["p_filesz"]
                used[lma] = max(used[lma], end - _origin(regions, lma))
            if vma and vma != lma and seg["p_memsz"]:
                end = seg["p_vaddr"] + seg["p_memsz"]
                used[vma] = max(used[vma], end - _origin(regions, vma))
            elif vma and seg["p_memsz"] > seg["p_filesz"]:
                end = seg["p_vaddr"] + seg["p_memsz"]
                used[vma] = max(used[vma], end - _origin(regions, vma))
        symtab = elf.get_section_by_name(".symtab")
        if isinstance(symtab, SymbolTableSection):
            for sym in symtab.iter_symbols():
                if sym["st_size"] <= 0 or sym["st_info"]["type"] not in ("STT_OBJECT", "STT_FUNC"):
                    continue
                r = region_of(sym["st_value"] & ~1)
                if r:
                    contrib[r].append((sym.name, sym["st_size"]))
        stack = elf.get_section_by_name(".stack")
        if stack is not None and stack["sh_size"]:
            r = region_of(stack["sh_addr"])
            if r:
                contrib[r].append(("(stack reserve)", stack["sh_size"]))
    for r in contrib:
        contrib[r].sort(key=lambda x: -x[1])
    return used, contrib


def _origin(regions: list[LinkRegion], name: str) -> int:
    return next(r.origin for r in regions if r.name == name)


def add_stack_estimate(rep: SizeReport, variant_out: str) -> None:
    """Fill the static worst-case stack from GCC's call-graph files (if the build has them)."""
    from tinyml.firmware.stack_usage import estimate
    est = estimate(os.path.join(variant_out, "obj"), elf_path=os.path.join(variant_out, "firmware.elf"))
    if est is not None:
        rep.stack_estimate = est.bytes
        rep.stack_estimate_note = est.line()


def size_report(elf_path: str, board: Board, variant: str) -> SizeReport:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection
    sizes: dict[str, int] = {}
    weights = 0
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        for sec in elf.iter_sections():
            if sec["sh_flags"] & 0x2:  # SHF_ALLOC
                sizes[sec.name] = sec["sh_size"]
        symtab = elf.get_section_by_name(".symtab")
        if isinstance(symtab, SymbolTableSection):
            for sym in symtab.iter_symbols():
                if re.fullmatch(r"tinyml_w\d+", sym.name) and sym["st_info"]["type"] == "STT_OBJECT":
                    weights += sym["st_size"]
    ram_names = {".data", ".bss", ".tinyml_arena", ".stack"}
    text = sum(v for k, v in sizes.items() if k not in ram_names)
    data, bss = sizes.get(".data", 0), sizes.get(".bss", 0)
    arena, stack = sizes.get(".tinyml_arena", 0), sizes.get(".stack", 0)
    regions = board.linker_regions(variant)
    used, _ = _region_usage(elf_path, regions)
    reg = [{"name": r.name, "label": r.label, "kind": r.kind, "origin": r.origin, "size": r.size,
            "used": used.get(r.name, 0)} for r in regions]
    return SizeReport(text=text, data=data, bss=bss, arena=arena, stack=stack, weights=weights,
                      flash_bytes=text + data, static_ram_bytes=data + bss,
                      ram_bytes=data + bss + arena + stack, regions=reg)


def prepare_project(board: Board, out_dir: str, mode: str, variants: list[str], stack_bytes: int,
                    extra_cflags: str = "") -> None:
    copy_sources(out_dir)
    write_makefile(board, mode, out_dir, extra_cflags)
    for v in variants:
        render_board_files(board, v, mode, out_dir, stack_bytes)


def build_firmware(model_path: str | None, board_name: str, out_dir: str, *,
                   mode: str = "selftest", emulator_variant: bool = False,
                   stack_bytes: int = DEFAULT_STACK_BYTES, num_vectors: int = 3, seed: int = 0,
                   vectors: list[tuple[bytes, bytes]] | None = None, oracle: str = "",
                   model_dir: str | None = None, extra_cflags: str = "",
                   progress=None, stream_input: bool = False, rounding: str | None = None) -> BuildResult:
    """Generate (or take) the model library, write the firmware project, compile it.

    `emulator_variant` also builds DIR/mps2/firmware.elf for boards whose QEMU
    machine is an MPS2 board (Cortex-M7 boards, L4). Vectors: given pairs of
    (input bytes, expected output bytes), or `num_vectors` computed with the
    reference interpreter from `model_path`. `stream_input`: generate with
    --stream-input (codegen.stream); the self-test app then serves each
    vector's image to the model stripe by stripe (app/selftest.c).
    `rounding`: of the generated C ("tflite" / "tflm"); None = "tflite", except
    for a self-test build that computes its vectors: there it follows the
    oracle (TFLM's for models TFLite refuses, said in `notes`). Serial builds
    and builds from `model_dir` or given vectors run no oracle and never
    import TensorFlow.
    """
    say = progress or (lambda msg: print(msg, file=sys.stderr))
    if mode not in MODES:
        raise TinymlError(f"unknown firmware mode {mode!r}", "tinyml build", f"use one of {MODES}")
    board = load_board(board_name)
    os.makedirs(out_dir, exist_ok=True)
    lib_dir = os.path.join(out_dir, "model")
    choice, notes = None, []
    if vectors is None and mode == "selftest" and num_vectors > 0 and model_path is not None \
            and os.path.exists(model_path):
        from tinyml.codegen.oracle import choose_oracle
        choice = choose_oracle(model_path, rounding)      # before generating: it may pick the rounding
        rounding, notes = choice.rounding, choice.notes
        for note in notes:
            say(f"note: {note}")
    if model_dir is None:
        from tinyml.codegen.pipeline import DEFAULT_ROUNDING
        rounding = rounding or DEFAULT_ROUNDING
    if model_dir is not None:
        if os.path.abspath(model_dir) != os.path.abspath(lib_dir):
            if os.path.exists(lib_dir):
                shutil.rmtree(lib_dir)
            shutil.copytree(model_dir, lib_dir)
    else:
        if model_path is None or not os.path.exists(model_path):
            raise TinymlError(f"model file not found: {model_path}", "tinyml build",
                              "pass the path of an int8 .tflite model")
        from tinyml.codegen.emit import generate
        say(f"generating C library for {os.path.basename(model_path)}")
        generate(model_path, lib_dir, stream_input=stream_input, rounding=rounding)
    hdr = read_model_header(lib_dir)
    if model_dir is not None:      # the library's own setting (kernels/include/tinyml/config.h)
        rounding = _library_rounding(lib_dir)
    if mode == "serial" and hdr.get("TINYML_STREAM_INPUT", 0):
        # streamed input over the UART (`stream%` in app/serial_eembc.c): no image buffer
        extra_cflags = (extra_cflags + " -DTINYML_SERIAL_IMAGE_BYTES=0").strip()
    model_name = str(hdr.get("TINYML_MODEL_NAME", os.path.basename(model_path or lib_dir)))
    if vectors is None:
        if choice is not None:
            say(f"computing {num_vectors} test vector(s) with the reference interpreter ({choice.oracle.name})")
            vectors, oracle = make_vectors(model_path, hdr["TINYML_INPUT_BYTES"], num_vectors, seed,
                                           choice.oracle)
            choice.oracle.close()                         # its interpreter's child process
        else:
            vectors = []
    for i, (a, b) in enumerate(vectors):
        if len(a) != hdr["TINYML_INPUT_BYTES"] or len(b) != hdr["TINYML_OUTPUT_BYTES"]:
            raise TinymlError(f"test vector {i} has {len(a)}/{len(b)} bytes, model needs "
                              f"{hdr['TINYML_INPUT_BYTES']}/{hdr['TINYML_OUTPUT_BYTES']}",
                              "firmware build", "pass vectors matching the model's input/output")
    write_vectors(out_dir, vectors if mode == "selftest" else [], model_name, oracle or "caller")
    variants = ["native"]
    if emulator_variant and board.qemu.variant != "native":
        variants.append(board.qemu.variant)
    prepare_project(board, out_dir, mode, variants, stack_bytes, extra_cflags)
    sizes: dict[str, SizeReport] = {}
    for v in variants:
        say(f"compiling {board.name} firmware ({v} memory map) with arm-none-eabi-gcc")
        run_make(board, out_dir, v, stack_bytes)
        sizes[v] = size_report(os.path.join(variant_dir(out_dir, v), "firmware.elf"), board, v)
        add_stack_estimate(sizes[v], variant_dir(out_dir, v))
    result = BuildResult(out_dir=out_dir, board=board.name, mode=mode, variants=variants,
                         model=model_name, vectors=len(vectors) if mode == "selftest" else 0,
                         oracle=oracle, sizes=sizes, rounding=rounding or "", notes=notes)
    meta = {"board": board.name, "mode": mode, "model": model_name,
            "model_path": os.path.abspath(model_path) if model_path else None,
            "variants": variants, "vectors": result.vectors, "oracle": oracle,
            "rounding": rounding, "notes": notes,
            "stack_bytes": stack_bytes, "arena_bytes": hdr["TINYML_ARENA_BYTES"],
            "input_bytes": hdr["TINYML_INPUT_BYTES"], "output_bytes": hdr["TINYML_OUTPUT_BYTES"],
            "extra_cflags": extra_cflags, "stream_input": bool(hdr.get("TINYML_STREAM_INPUT", 0)),
            "sizes": {v: asdict(s) for v, s in sizes.items()}}
    with open(os.path.join(out_dir, "build.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return result


def ensure_variant(out_dir: str, variant: str, progress=None) -> str:
    """Build DIR's firmware for `variant` if it is not there yet; returns the ELF path."""
    meta = load_build_meta(out_dir)
    elf = os.path.join(variant_dir(out_dir, variant), "firmware.elf")
    if variant in meta["variants"] and os.path.exists(elf):
        return elf
    board = load_board(meta["board"])
    say = progress or (lambda msg: print(msg, file=sys.stderr))
    say(f"building the {variant} emulator variant of {board.name} in {variant_dir(out_dir, variant)}")
    render_board_files(board, variant, meta["mode"], out_dir, meta["stack_bytes"])
    run_make(board, out_dir, variant, meta["stack_bytes"])
    meta["variants"].append(variant)
    rep = size_report(elf, board, variant)
    add_stack_estimate(rep, variant_dir(out_dir, variant))
    meta["sizes"][variant] = asdict(rep)
    with open(os.path.join(out_dir, "build.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return elf


def load_build_meta(out_dir: str) -> dict:
    path = os.path.join(out_dir, "build.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        raise TinymlError(f"{out_dir} is not a tinyml firmware build (no readable build.json)",
                          out_dir, "run `tinyml build MODEL --board B -o DIR` first") from None
