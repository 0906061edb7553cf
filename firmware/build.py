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
import tempfile
import sys
from dataclasses import asdict, dataclass, field

import jinja2
import numpy as np

from tinyml.boards import Board, LinkRegion, load_board
from tinyml.boards.clock import ClockTree
from tinyml.errors import FitError, ToolchainError, TinymlError
from tinyml.memory_planner.report import STACK_RESERVE, Accounting, Linked, account

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME_DIR = os.path.join(HERE, "runtime")
APP_DIR = os.path.join(HERE, "app")
TEMPLATE_DIR = os.path.join(HERE, "templates")

DEFAULT_STACK_BYTES = STACK_RESERVE      # the planner judges the fit with the same reserve
MODES = ("selftest", "serial")
# Compile and link flags of every firmware build (templates/Makefile.j2 renders them after the
# board's -mcpu/-mfpu flags, `arch_flags`); codegen/code_size.json is measured with them.
# -fstack-usage -fcallgraph-info=su: per-function frames and call edges next to each object,
# for the static stack estimate (firmware/stack_usage.py).
CFLAGS = ("-O2 -g -std=c99 -ffunction-sections -fdata-sections -fno-common -fstack-usage "
          "-fcallgraph-info=su -Wall -Wextra -Wno-unused-parameter")
LDFLAGS = "--specs=nano.specs -nostartfiles -Wl,--gc-sections"

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
    weights: int         # the model library's weights.c arrays as linked (part of text)
    flash_bytes: int     # text + data image
    static_ram_bytes: int  # data + bss
    ram_bytes: int       # data + bss + arena + stack reserve
    regions: list[dict] = field(default_factory=list)  # per linker region: name, size, used
    stack_estimate: int | None = None   # static worst case (firmware/stack_usage.py)
    stack_estimate_note: str = ""
    # an arena split over several RAM regions: symbol, region label, address, bytes of each part
    # (`arena` is their sum); empty = one arena
    arenas: list[dict] = field(default_factory=list)
    # --weights-region: region, address and bytes of the weights linked into external flash
    # (not counted in text / flash_bytes, which are the internal flash)
    external_weights: dict | None = None
    accounting: dict = field(default_factory=dict)   # memory_planner.report.Accounting of this build

    def lines(self) -> list[str]:
        where = f" in {self.external_weights['region']}, not in text" if self.external_weights else ""
        out = [f"  text   {self.text:>9,} B  (weights {self.weights:,} B{where})",
               f"  data   {self.data:>9,} B",
               f"  bss    {self.bss:>9,} B",
               f"  arena  {self.arena:>9,} B"
               + ("  (" + ", ".join(f"{a['region']} {a['bytes']:,} B" for a in self.arenas) + ")"
                  if self.arenas else ""),
               f"  stack  {self.stack:>9,} B  (reserve)"
               + (f"; {self.stack_estimate_note}" if self.stack_estimate is not None else ""),
               f"  flash  {self.flash_bytes:>9,} B   SRAM {self.ram_bytes:,} B (static {self.static_ram_bytes:,} B)"]
        if self.external_weights:
            w = self.external_weights
            out.append(f"  weights in {w['region']} at 0x{w['address']:08x}: {w['bytes']:,} B "
                       f"(memory-mapped external flash, mapped by runtime/qspi.c before main)")
        if self.stack_estimate is not None and self.stack_estimate > self.stack:
            out.append(f"  warning: the stack estimate {self.stack_estimate:,} B exceeds the {self.stack:,} B "
                       f"reserve; raise --stack-bytes")
        for r in self.regions:
            pct = 100.0 * r["used"] / r["size"] if r["size"] else 0.0
            out.append(f"  region {r['name']:<24} {r['used']:>9,} / {r['size']:>9,} B  {pct:5.1f}%  {r['label']}")
        if self.accounting:
            out += ["  " + line for line in Accounting(**self.accounting).lines()]
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
    clock: dict[str, dict] = field(default_factory=dict)   # per variant: ClockContext.summary()
    eembc: dict | None = None                        # serial builds: the MLPerf Tiny profile

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


def board_context(board: Board, variant: str, mode: str, stack_bytes: int,
                  weights_region: str = "") -> dict:
    """Template variables for board_config.h and linker.ld. `weights_region`: the linker name of
    the external flash the weights (model/weights.c's constants) are linked into ("" = FLASH)."""
    from tinyml.boards import MPS2_CPU_HZ, MPS2_UART0_BASE
    regions = board.linker_regions(variant)
    stack_region = board.region_for("stack", variant)
    if stack_bytes > stack_region.size:
        raise FitError(f"stack reserve {stack_bytes} B exceeds region {stack_region.label} "
                       f"({stack_region.size} B)", board.path, "lower --stack-bytes")
    from tinyml.codegen.pipeline import arena_regions
    # the other regions' parts of the arena (symbol tinyml_arena_<region> in its section)
    extra = [{"out": "." + a.symbol, "section": a.section, "region": r.name, "label": r.label}
             for a, r in zip(arena_regions(board, stack_bytes, variant=variant)[1:],
                             board.arena_regions(variant)[1:])]
    ctx = {
        "board": board, "variant": variant, "mode": mode, "regions": regions,
        "stack_bytes": stack_bytes, "stack_region": stack_region.name,
        "data_region": board.region_for("data", variant).name,
        "arena_region": board.region_for("arena", variant).name,
        "extra_arenas": extra, "weights_region": weights_region,
        "enable_caches": True,
    }
    ctx["board"] = _BoardView(board)
    ctx["qspi"] = _qspi(board, weights_region) if weights_region else None
    ctx["clock"] = clock_context(board, variant)
    if variant in ("native", "remap"):
        note = "board memory map" if variant == "native" else (
            f"QEMU {board.qemu.machine} variant: " + ", ".join(f"{n} at 0x{o:08x}" for n, o in board.qemu.remap)
            + ", sizes and everything else the board's")
        ctx.update(variant_note=note, num_irqs=FAMILIES[board.family]["irqs"],
                   try_dwt=True, uart_kind=board.uart.layout,
                   lpuart=board.uart.lpuart, uart_base=board.uart.base, baud=board.uart.baud,
                   pins=_pins(board),
                   uart_note=f"{board.uart.peripheral} TX {board.uart.tx_pin} RX {board.uart.rx_pin}")
    else:
        ctx.update(variant_note=f"QEMU {board.qemu.machine} variant: origins follow the MPS2 map, "
                                f"sizes are the board's",
                   num_irqs=MPS2_IRQS, try_dwt=False, uart_kind="cmsdk",
                   lpuart=False, uart_base=MPS2_UART0_BASE, baud=board.uart.baud, pins=None,
                   uart_note="CMSDK APB UART0 of QEMU's MPS2 machine")
    return ctx


def _qspi(board: Board, region: str) -> dict:
    """board_config.h facts for runtime/qspi.c: the [qspi] table of the descriptor, pins resolved."""
    q = board.extra.get("qspi")
    if q is None:
        raise TinymlError(f"board {board.name} has no [qspi] table for its {region} region", board.path,
                          "add the QUADSPI pins and read command (see boards/stm32f746g-disco.toml)")
    fam = FAMILIES[board.family]
    size = next(r.size for r in board.linker_regions() if r.name == region)
    pins = []
    for name, af in q["pins"]:
        port, pin = _pin(name)
        pins.append({"name": name, "port": port, "pin": pin, "af": int(af),
                     "base": fam["gpio_base"] + 0x400 * port})
    return {"base": int(q["base"]), "rcc_reg": int(q["rcc_enable"][0]), "rcc_bit": int(q["rcc_enable"][1]),
            "gpio_en_reg": fam["rcc"] + fam["gpio_en"], "pins": pins,
            "fsize": size.bit_length() - 2, "read_command": int(q["read_command"]),
            "dummy": int(q["dummy_cycles"]), "prescaler": int(q["prescaler"]),
            "csht": int(q["cs_high_cycles"]), "region": region}


@dataclass(frozen=True)
class ClockContext:
    """What board_config.h says about the clock tree of one variant build."""
    setup: bool                    # the runtime starts the PLL (native builds of boards with [clock])
    family: str
    reset_hz: int                  # the clock that runs when it does not (or before it does)
    reset_name: str
    max_polls: int
    target_hz: int                 # the clock that runs when it does
    target_uart_hz: int
    tree: ClockTree | None = None
    no_setup_reason: str = ""
    note: str = ""

    def summary(self) -> dict:
        """build.json's "clock": the configured target and the fallback rule (the boot
        banner reports which one ran)."""
        if not self.setup:
            return {"target_hz": self.reset_hz, "setup": False, "reason": self.no_setup_reason,
                    "banner": f"clock: {self.reset_hz // 1_000_000} MHz ({self.reset_name}, "
                              f"{self.no_setup_reason})"}
        t = self.tree
        return {"target_hz": self.target_hz, "setup": True, "tree": t.describe(),
                "uart_clock_hz": self.target_uart_hz,
                "fallback_hz": self.reset_hz, "fallback_source": self.reset_name,
                "fallback_rule": t.fallback_rule(), "ready_waits": t.ready_waits(),
                "max_polls": self.max_polls}


def clock_context(board: Board, variant: str) -> ClockContext:
    from tinyml.boards import MPS2_CPU_HZ
    if variant not in ("native", "remap"):
        return ClockContext(False, board.family, MPS2_CPU_HZ, "MPS2 emulator", 1, MPS2_CPU_HZ, MPS2_CPU_HZ,
                            no_setup_reason="no RCC: the board's PLL setup is not run",
                            note=f"QEMU {board.qemu.machine}: fixed {MPS2_CPU_HZ // 1_000_000} MHz, no STM32 RCC")
    t = board.clock
    if t is None:
        return ClockContext(False, board.family, board.reset_clock_hz, "reset clock", 1,
                            board.reset_clock_hz, board.reset_clock_hz,
                            no_setup_reason=f"no [clock] table in {os.path.basename(board.path)}",
                            note="the board descriptor has no [clock] table: the reset clock runs")
    return ClockContext(True, board.family, t.reset_hz, t.reset_name, t.max_polls, t.sysclk_hz,
                        t.uart_hz(board.uart.peripheral), t,
                        note=f"{t.describe()}; else {t.reset_hz // 1_000_000} MHz {t.reset_name}")


class _BoardView:
    """Board plus a repository-relative descriptor path for generated headers."""

    def __init__(self, board: Board) -> None:
        self._b = board
        self.path_rel = os.path.join("boards", os.path.basename(board.path))

    def __getattr__(self, name):
        return getattr(self._b, name)


def render_board_files(board: Board, variant: str, mode: str, out_dir: str,
                       stack_bytes: int = DEFAULT_STACK_BYTES, weights_region: str = "",
                       baud: int | None = None) -> None:
    env = _env()
    ctx = board_context(board, variant, mode, stack_bytes, weights_region)
    if baud is not None:
        ctx["baud"] = baud          # MLPerf Tiny: the stock runner's baud for the benchmark / energy mode
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


def library_prefix(model_dir: str) -> str:
    """The --prefix a generated library was made with (its plan.json; `tinyml` if it says none)."""
    try:
        with open(os.path.join(model_dir, "plan.json")) as f:
            return str(json.load(f).get("prefix", "tinyml"))
    except (OSError, ValueError):
        return "tinyml"


def read_model_header(model_dir: str) -> dict:
    """The library's integer/string macros from DIR/model.h, keyed by their default
    (TINYML_*) names whatever --prefix the library was generated with."""
    path = os.path.join(model_dir, "model.h")
    try:
        text = open(path).read()
    except OSError:
        raise TinymlError("generated model library has no model.h", model_dir,
                          "regenerate it with `tinyml generate`") from None
    macro = library_prefix(model_dir).upper()
    out: dict = {}
    for m in re.finditer(rf"#define\s+{re.escape(macro)}_(\w+)\s+(\"[^\"]*\"|-?\d+)(?![\w.])", text):
        v = m.group(2)
        out["TINYML_" + m.group(1)] = v.strip('"') if v.startswith('"') else int(v)
    for key in ("TINYML_ARENA_BYTES", "TINYML_INPUT_BYTES", "TINYML_OUTPUT_BYTES"):
        if key not in out:
            raise TinymlError(f"model.h lacks {key}", path, "regenerate the model library")
    return out


# What the firmware app (app/*.c) calls the model library; with --prefix they are
# #defined onto the library's own names in model/app_names.h.
APP_FUNCTIONS = ("arena", "input_ptr", "output_ptr", "run", "invoke", "read_input_rows",
                 "input_info", "output_info")


def write_app_names(lib_dir: str) -> None:
    """model/app_names.h for a library generated with a --prefix other than `tinyml` (removed
    otherwise): maps the app's tinyml_* / TINYML_* names onto the library's, forwards the per-op
    hooks, and keeps the arena in the section the firmware's linker script places."""
    prefix = library_prefix(lib_dir)
    path = os.path.join(lib_dir, "app_names.h")
    if prefix == "tinyml":
        if os.path.exists(path):
            os.remove(path)
        return
    P = prefix.upper()
    text = open(os.path.join(lib_dir, "model.h")).read()
    macros = sorted(set(re.findall(rf"#define\s+{P}_(\w+)", text)) - {"MODEL_H"})
    lines = [f"/* Generated by tinyml build: the firmware app's names for the model library",
             f" * generated with --prefix {prefix}. Do not edit. */",
             "#ifndef TINYML_APP_NAMES_H", "#define TINYML_APP_NAMES_H"]
    lines += [f"#define TINYML_{m} {P}_{m}" for m in macros]
    lines += [f"#define tinyml_{f} {prefix}_{f}" for f in APP_FUNCTIONS]
    lines += ["#ifdef TINYML_OP_BEGIN", f"#define {P}_OP_BEGIN(index, kind) TINYML_OP_BEGIN(index, kind)",
              f"#define {P}_OP_END(index) TINYML_OP_END(index)", "#endif",
              f'#define {P}_ARENA_SECTION ".bss.tinyml_arena"', "#endif", ""]
    _write_if_changed(path, "\n".join(lines))


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
    """Seeded random inputs and the reference interpreter's outputs (`oracle`: a
    codegen.oracle.Oracle, default the auto choice). int8 models: random bytes; other input
    types (16x8 int16, float32 around QUANTIZE): codegen.verify.random_inputs, and the
    output's bytes in its own type."""
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.oracle import reference_outputs
    from tinyml.codegen.verify import random_inputs
    graph = import_tflite(model_path)
    if [graph.t(i).dtype for i in graph.inputs] == ["int8"]:
        rng = np.random.default_rng(seed)
        inputs = [rng.integers(-128, 128, size=input_bytes, dtype=np.int64).astype(np.int8)
                  for _ in range(count)]
    else:
        inputs = [rec[0] for rec in random_inputs(graph, count, seed)]
    outs, oracle = reference_outputs(model_path, [[x] for x in inputs], oracle)
    out_type = np.int8 if graph.t(graph.outputs[0]).dtype == "int8" else None
    vectors = [(np.ascontiguousarray(x).tobytes(), np.asarray(o[0], dtype=out_type).tobytes())
               for x, o in zip(inputs, outs)]
    return vectors, oracle


def copy_sources(out_dir: str) -> None:
    for src, name in ((RUNTIME_DIR, "runtime"), (APP_DIR, "app")):
        dst = os.path.join(out_dir, name)
        os.makedirs(dst, exist_ok=True)
        for f in sorted(os.listdir(src)):
            if f.endswith((".c", ".h")):
                with open(os.path.join(src, f)) as fh:
                    _write_if_changed(os.path.join(dst, f), fh.read())


def write_makefile(board: Board, mode: str, out_dir: str, extra_cflags: str = "",
                   weights_region: str = "") -> None:
    text = _env().get_template("Makefile.j2").render(board=board, mode=mode, extra_cflags=extra_cflags,
                                                     weights_region=weights_region, cflags=CFLAGS,
                                                     ldflags=LDFLAGS)
    _write_if_changed(os.path.join(out_dir, "Makefile"), text)


# The MLPerf Tiny energy setup wires the DUT's timestamp to the Arduino D7 pin (the L4R5ZI
# reference firmware drives PF13). D7 per board, from the boards' user manuals (UM2179
# Nucleo-144 L4, UM1974 Nucleo-144 MB1137 incl. NUCLEO-H743ZI -- the H743ZI2, MB1364, has
# PG12 --, UM1907 32F746GDISCOVERY). The F4-Discovery has no Arduino header.
ARDUINO_D7 = {"nucleo-l4r5zi": "PF13", "nucleo-h743zi": "PF13", "stm32f746g-disco": "PI3"}


def eembc_energy_cflags(board: Board, pin: str) -> str:
    """-D flags for app/eembc_timestamp.c: the timestamp pin's GPIO port, number and clock
    enable. `pin` is a GPIO name (PF13) or "D7" (the board's Arduino D7)."""
    if pin.upper() == "D7":
        if board.name not in ARDUINO_D7:
            raise TinymlError(f"{board.name} has no Arduino D7 pin", "--eembc-energy",
                              "name the GPIO pin wired to the energy monitor's timestamp input, e.g. "
                              "--eembc-energy PD12")
        pin = ARDUINO_D7[board.name]
    if board.family not in FAMILIES:
        raise TinymlError(f"no runtime support for family {board.family!r}", board.path,
                          f"use one of {', '.join(FAMILIES)}")
    try:
        port, num = _pin(pin)
    except TinymlError:
        raise TinymlError(f"bad timestamp pin {pin!r}", "--eembc-energy",
                          "name a GPIO pin such as PF13 (Arduino D7 on a Nucleo-144)") from None
    if num > 15 or pin in (board.uart.tx_pin, board.uart.rx_pin):
        raise TinymlError(f"timestamp pin {pin} is " + ("not a GPIO pin" if num > 15 else "the console UART's"),
                          "--eembc-energy", "pick a free GPIO pin, e.g. the board's Arduino D7")
    fam = FAMILIES[board.family]
    return (f"-DTINYML_EEMBC_ENERGY=1 -DTINYML_EEMBC_TS_GPIO_BASE=0x{fam['gpio_base'] + 0x400 * port:08x}u "
            f"-DTINYML_EEMBC_TS_PIN={num}u -DTINYML_EEMBC_TS_RCC_REG=0x{fam['rcc'] + fam['gpio_en']:08x}u "
            f"-DTINYML_EEMBC_TS_RCC_BIT={port}u")


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
        link = subprocess.run(["arm-none-eabi-gcc", *_arch_flags(board), *LDFLAGS.split(), "-T", relaxed, *objs,
                               "-o", elf],
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
    srcs += sorted(os.path.relpath(p, out_dir) for pat in ("model_*/model.c", "model_*/weights.c")
                   for p in glob.glob(os.path.join(out_dir, pat)))
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


def add_accounting(rep: SizeReport, lib_dir: str) -> None:
    """The build's Accounting: the library's compile-time figures (plan.json) with the linked
    flash, weights, static RAM and stack estimate measured in the ELF."""
    try:
        with open(os.path.join(lib_dir, "plan.json")) as f:
            planned = json.load(f).get("accounting", {})
    except (OSError, ValueError):
        planned = {}
    linked = Linked(flash_bytes=rep.flash_bytes, weights_bytes=rep.weights, static_ram_bytes=rep.static_ram_bytes,
                    stack_reserve_bytes=rep.stack, stack_estimate_bytes=rep.stack_estimate)
    rep.accounting = account(planned.get("model_params_bytes", 0), rep.weights, rep.arena, linked,
                             state_bytes=planned.get("state_bytes", 0)).to_dict()


_WEIGHT_DECL = re.compile(r"^extern const \w+ (\w+)\[\d+\];", re.M)


def weight_symbols(lib_dir: str) -> set[str]:
    """The arrays a generated library's weights.c defines (declared in its weights.h)."""
    try:
        with open(os.path.join(lib_dir, "weights.h")) as f:
            return set(_WEIGHT_DECL.findall(f.read()))
    except OSError:
        return set()


def size_report(elf_path: str, board: Board, variant: str, lib_dir: str | None = None) -> SizeReport:
    """Section sizes, region use and the linked weights (the symbols of `lib_dir`'s weights.h;
    default: the build's model/ beside the variant directory)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection
    if lib_dir is None:
        vdir = os.path.dirname(os.path.abspath(elf_path))
        lib_dir = os.path.join(vdir if variant == "native" else os.path.dirname(vdir), "model")
    wsyms = weight_symbols(lib_dir)
    sizes: dict[str, int] = {}
    addrs: dict[str, int] = {}
    weights = 0
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        for sec in elf.iter_sections():
            if sec["sh_flags"] & 0x2:  # SHF_ALLOC
                sizes[sec.name] = sec["sh_size"]
                addrs[sec.name] = sec["sh_addr"]
        symtab = elf.get_section_by_name(".symtab")
        if isinstance(symtab, SymbolTableSection):
            for sym in symtab.iter_symbols():
                if sym.name in wsyms and sym["st_info"]["type"] == "STT_OBJECT":
                    weights += sym["st_size"]
    arenas = [k for k in sizes if k == ".tinyml_arena" or k.startswith(".tinyml_arena_")]
    external = [k for k in sizes if k == ".tinyml_weights"]     # --weights-region: not internal flash
    ram_names = {".data", ".bss", ".stack", *arenas, *external}
    text = sum(v for k, v in sizes.items() if k not in ram_names)
    data, bss = sizes.get(".data", 0), sizes.get(".bss", 0)
    arena, stack = sum(sizes[k] for k in arenas), sizes.get(".stack", 0)
    regions = board.linker_regions(variant)
    used, _ = _region_usage(elf_path, regions)
    reg = [{"name": r.name, "label": r.label, "kind": r.kind, "origin": r.origin, "size": r.size,
            "used": used.get(r.name, 0)} for r in regions]

    def label(addr: int) -> str:
        return next((r.label for r in regions if r.origin <= addr < r.origin + r.size), "?")
    per_region = [{"symbol": k[1:], "region": label(addrs[k]), "address": addrs[k], "bytes": sizes[k]}
                  for k in sorted(arenas, key=len)]
    ext = sum(sizes[k] for k in external)
    return SizeReport(text=text, data=data, bss=bss, arena=arena, stack=stack, weights=weights,
                      flash_bytes=text + data, static_ram_bytes=data + bss,
                      ram_bytes=data + bss + arena + stack, regions=reg,
                      arenas=per_region if len(per_region) > 1 else [],
                      external_weights={"region": label(addrs[external[0]]), "address": addrs[external[0]],
                                        "bytes": ext} if external else None)


def prepare_project(board: Board, out_dir: str, mode: str, variants: list[str], stack_bytes: int,
                    extra_cflags: str = "", weights_region: str = "", baud: int | None = None) -> None:
    copy_sources(out_dir)
    write_makefile(board, mode, out_dir, extra_cflags, weights_region)
    for v in variants:
        render_board_files(board, v, mode, out_dir, stack_bytes, weights_region, baud)


def build_firmware(model_path: str | None, board_name: str, out_dir: str, *,
                   mode: str = "selftest", emulator_variant: bool = False,
                   stack_bytes: int = DEFAULT_STACK_BYTES, num_vectors: int = 3, seed: int = 0,
                   vectors: list[tuple[bytes, bytes]] | None = None, oracle: str = "",
                   model_dir: str | None = None, extra_cflags: str = "",
                   progress=None, stream_input: bool = False, rounding: str | None = None,
                   weights_region: str | None = None, prefix: str = "tinyml",
                   eembc_id: str | None = None, eembc_energy_pin: str | None = None,
                   stage: bool = True) -> BuildResult:
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
    The arena is planned over the board's arena regions (codegen.pipeline.arena_regions):
    a model whose arena exceeds the main region is split over the others (F4: CCM).
    `weights_region`: link the weights into that external memory-mapped flash region of
    the board (e.g. "qspi" on the F746-DISCO); the firmware must be run where that memory
    is mapped (QEMU does not model it).
    `prefix`: the generated library's --prefix (model/app_names.h maps the
    app's names onto it). `stage`: False keeps the first CNN layers layer by
    layer (no FUSED_STAGE; the baseline of its instruction overhead).
    `eembc_id` (serial builds): the MLPerf Tiny model id `profile%` reports, which
    also fixes the wire formats (tinyml/eembc.py); None = recognise the four
    reference models, "none" = raw int8 protocol. `eembc_energy_pin` (e.g. "PF13"):
    an energy-mode build, `timestamp%` pulses that pin and the console runs at
    the runner's energy-mode 9600 baud.
    """
    say = progress or (lambda msg: print(msg, file=sys.stderr))
    if model_dir is None:
        from tinyml.codegen.emit import check_prefix
        check_prefix(prefix)
    if mode not in MODES:
        raise TinymlError(f"unknown firmware mode {mode!r}", "tinyml build", f"use one of {MODES}")
    if mode != "serial" and (eembc_id is not None or eembc_energy_pin is not None):
        raise TinymlError("--eembc-id and --eembc-energy apply to the MLPerf Tiny serial protocol",
                          "tinyml build", "add --mode serial")
    if eembc_id is not None:            # checked before anything is written
        from tinyml.eembc import check_id, resolve
        check_id(eembc_id)
        if model_dir is None and model_path is not None and os.path.exists(model_path):
            from tinyml.codegen.importer import import_tflite
            g = import_tflite(model_path)
            resolve(os.path.splitext(os.path.basename(model_path))[0], g.t(g.inputs[0]).nbytes,
                    g.t(g.outputs[0]).nbytes, eembc_id, model_path)
    board = load_board(board_name)
    wreg = board.weights_region(weights_region).name if weights_region else ""
    if wreg and emulator_variant:
        raise TinymlError(f"--weights-region {weights_region} puts the weights in external flash, which "
                          f"QEMU's {board.qemu.machine} does not map", "tinyml build",
                          "drop --emulator-variant (or --weights-region to emulate)")
    energy = eembc_energy_cflags(board, eembc_energy_pin) if eembc_energy_pin is not None else ""
    if model_dir is None and model_path is not None and os.path.exists(model_path):
        # Compile and check the fit first: an unsupported op or a model that cannot fit
        # is named before any oracle runs or anything is generated and compiled.
        from tinyml.codegen.importer import import_tflite
        from tinyml.codegen.pipeline import CompileOptions, arena_regions, compile as compile_model
        from tinyml.memory_planner.report import STATIC_RAM_RESERVE
        g = import_tflite(model_path)
        static = STATIC_RAM_RESERVE + (g.t(g.inputs[0]).nbytes if mode == "serial" and not stream_input else 0)
        opts = CompileOptions(stream_input=stream_input, regions=arena_regions(board, stack_bytes, static),
                              stage=stage)
        nvec = (len(vectors) if vectors is not None else num_vectors) if mode == "selftest" else 0
        precheck_fit(board, compile_model(g, opts), stack_bytes, wreg, mode, nvec)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise TinymlError(f"output path {out_dir} exists and is not a folder", "tinyml build",
                          "pass a new or existing folder with -o")
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    # Build in a temporary sibling folder, moved into place on success: a failed build
    # leaves `out_dir` as it was (absent, or the previous build).
    work = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out_dir))}.tmp-", dir=parent)
    try:
        if os.path.isdir(out_dir):
            shutil.copytree(out_dir, work, symlinks=True, dirs_exist_ok=True)
        if model_dir is not None and os.path.abspath(model_dir) == os.path.abspath(os.path.join(out_dir, "model")):
            model_dir = os.path.join(work, "model")
        result = _build_in(model_path, board, work, mode=mode, emulator_variant=emulator_variant,
                           stack_bytes=stack_bytes, num_vectors=num_vectors, seed=seed, vectors=vectors,
                           oracle=oracle, model_dir=model_dir, extra_cflags=extra_cflags, say=say,
                           stream_input=stream_input, rounding=rounding, wreg=wreg, energy=energy,
                           prefix=prefix, eembc_id=eembc_id, eembc_energy_pin=eembc_energy_pin, stage=stage)
        _move_into_place(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    result.out_dir = out_dir
    return result


def _move_into_place(work: str, out_dir: str) -> None:
    """`work` becomes `out_dir` (a rename when `out_dir` does not exist; else entry by entry)."""
    if not os.path.exists(out_dir):
        os.rename(work, out_dir)
        return
    for name in os.listdir(work):
        dst = os.path.join(out_dir, name)
        if os.path.isdir(dst) and not os.path.islink(dst):
            shutil.rmtree(dst)
        elif os.path.lexists(dst):
            os.remove(dst)
        os.rename(os.path.join(work, name), dst)
    os.rmdir(work)


def precheck_fit(board: Board, compiled, stack_bytes: int, weights_region: str = "", mode: str = "serial",
                 vectors: int = 0) -> None:
    """Raise the FitError the linker would, from the plan, when the arena plus the stack
    reserve exceed the arena's region or the weights alone exceed flash (lower bounds of
    what the link needs), or when the weights plus the code estimate of a `mode` firmware
    with `vectors` self-test vectors (codegen.pipeline.code_estimate: at least what links,
    at most 3% or 2 KiB more on the reference models) exceed the internal flash. An arena
    the planner split over several RAM regions fits each by construction; weights linked
    into an external region (`weights_region`) are judged against it."""
    parts, flash_only = [], True
    reg = board.region_for("arena")
    arena = compiled.plan.arena_bytes + compiled.plan.state_bytes   # the state block sits beside the arena
    if not compiled.plan.regions and arena + stack_bytes > reg.size:
        flash_only = False
        parts.append(f"SRAM region {reg.label} ({reg.name}, {reg.size:,} B) overflowed by "
                     f"{arena + stack_bytes - reg.size:,} bytes; largest: tinyml_arena {arena:,} B, "
                     f"(stack reserve) {stack_bytes:,} B")
    flash = board.weights_region(weights_region) if weights_region else board.flash_region()
    weights = compiled.constant_bytes
    if weights > flash.size:
        g = compiled.graph
        from tinyml.steps import call_constants
        syms = {f"tinyml_w{i}": g.t(i).nbytes for st in compiled.steps for i in call_constants(st, g)}
        syms.update({a.symbol: int(a.values.nbytes) for a in compiled.ctx.arrays})
        top = ", ".join(f"{n} {b:,} B" for n, b in sorted(syms.items(), key=lambda kv: -kv[1])[:4])
        parts.append(f"flash region {flash.label} ({flash.name}, {flash.size:,} B) overflowed by at least "
                     f"{weights - flash.size:,} bytes (weights {weights:,} B)" + (f"; largest: {top}" if top else ""))
    else:
        from tinyml.codegen.code_size import load_table
        from tinyml.codegen.pipeline import code_estimate
        code = code_estimate(compiled, mode, vectors, load_table(board.core))
        internal = board.flash_region()
        need = code.bytes + (0 if weights_region else weights)
        if need > internal.size:
            what = (f"weights {weights:,} B + " if not weights_region else "") + code.line()
            parts.append(f"flash region {internal.label} ({internal.name}, {internal.size:,} B) would overflow "
                         f"by about {need - internal.size:,} bytes ({what}"
                         + (f", {vectors} self-test vector(s) {code.vectors:,} B" if vectors else "") + ")")
    if parts:
        fix = ("use a smaller model (fewer weights)" + (", fewer --vectors" if vectors else "")
               + " or a board with more flash" if flash_only else
               "use a smaller model (smaller arena), a lower --stack-bytes, or a board with more SRAM")
        raise FitError(f"model does not fit {board.name}: " + "; ".join(parts), board.path, fix)


def _build_in(model_path: str | None, board: Board, out_dir: str, *, mode: str, emulator_variant: bool,
              stack_bytes: int, num_vectors: int, seed: int, vectors: list[tuple[bytes, bytes]] | None,
              oracle: str, model_dir: str | None, extra_cflags: str, say, stream_input: bool,
              rounding: str | None, wreg: str, energy: str, prefix: str, eembc_id: str | None,
              eembc_energy_pin: str | None, stage: bool = True) -> BuildResult:
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
        from tinyml.codegen.pipeline import arena_regions
        say(f"generating C library for {os.path.basename(model_path)}")
        from tinyml.memory_planner.report import STATIC_RAM_RESERVE
        static = STATIC_RAM_RESERVE
        model = model_path
        if mode == "serial" and not stream_input:   # app/serial_eembc.c keeps the input in .bss
            from tinyml.codegen.importer import import_tflite
            model = import_tflite(model_path)
            static += model.t(model.inputs[0]).nbytes
        generate(model, lib_dir, stream_input=stream_input, rounding=rounding, prefix=prefix,
                 regions=arena_regions(board, stack_bytes, static), stage=stage)
    write_app_names(lib_dir)
    hdr = read_model_header(lib_dir)
    if model_dir is not None:      # the library's own setting (kernels/include/tinyml/config.h)
        rounding = _library_rounding(lib_dir)
    if mode == "serial" and hdr.get("TINYML_STREAM_INPUT", 0):
        # streamed input over the UART (`stream%` in app/serial_eembc.c): no image buffer
        extra_cflags = (extra_cflags + " -DTINYML_SERIAL_IMAGE_BYTES=0").strip()
    model_name = str(hdr.get("TINYML_MODEL_NAME", os.path.basename(model_path or lib_dir)))
    eembc = None
    if mode == "serial":
        from tinyml.eembc import HEADER, header_id, header_text, resolve
        if eembc_id is None:
            eembc_id = header_id(lib_dir)       # a library from `tinyml generate --eembc-id`
        if hdr.get("TINYML_STREAM_INPUT", 0) and eembc_id is None:
            eembc_id = "none"       # streamed builds take the int8 tensor rows as they come
        eembc = resolve(model_name, hdr["TINYML_INPUT_BYTES"], hdr["TINYML_OUTPUT_BYTES"], eembc_id,
                        model_path or lib_dir)
        if hdr.get("TINYML_STREAM_INPUT", 0) and eembc.input != "int8":
            raise TinymlError(f"--eembc-id {eembc_id} sends {eembc.input} inputs, a --stream-input build "
                              f"takes the int8 rows as they come", "tinyml build",
                              "drop --stream-input or --eembc-id")
        if eembc_id is not None:
            _write_if_changed(os.path.join(lib_dir, HEADER), header_text(eembc, eembc_id))
        if eembc.note:
            say(f"note: {eembc.note}")
        say(f"MLPerf Tiny profile: model id {eembc.model_id}, {eembc.db_bytes:,} {eembc.input} input bytes, "
            f"results: {eembc.result}" + (", energy mode: timestamp pin " + str(eembc_energy_pin) + ", 9600 baud"
                                          if energy else f", {eembc.baud} baud" if eembc.baud else ""))
        extra_cflags = " ".join(f for f in (extra_cflags, eembc.cflags(), energy) if f)
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
    lib_regions = library_regions(lib_dir)
    qvariant = qemu_variant(board, lib_regions)
    variants = ["native"]
    if emulator_variant and qvariant != "native":
        variants.append(qvariant)
    baud = None                 # the board's console baud, unless the MLPerf Tiny runner expects another
    if eembc is not None:
        from tinyml.eembc import ENERGY_BAUD
        baud = ENERGY_BAUD if energy else eembc.baud
    prepare_project(board, out_dir, mode, variants, stack_bytes, extra_cflags, wreg, baud)
    sizes: dict[str, SizeReport] = {}
    for v in variants:
        say(f"compiling {board.name} firmware ({v} memory map) with arm-none-eabi-gcc")
        run_make(board, out_dir, v, stack_bytes)
        sizes[v] = size_report(os.path.join(variant_dir(out_dir, v), "firmware.elf"), board, v, lib_dir)
        add_stack_estimate(sizes[v], variant_dir(out_dir, v))
        add_accounting(sizes[v], lib_dir)
    result = BuildResult(out_dir=out_dir, board=board.name, mode=mode, variants=variants,
                         model=model_name, vectors=len(vectors) if mode == "selftest" else 0,
                         oracle=oracle, sizes=sizes, rounding=rounding or "", notes=notes,
                         clock={v: clock_context(board, v).summary() for v in variants},
                         eembc=eembc.as_dict() if eembc else None)
    meta = {"board": board.name, "mode": mode, "model": model_name, "prefix": library_prefix(lib_dir),
            "model_path": os.path.abspath(model_path) if model_path else None,
            "variants": variants, "vectors": result.vectors, "oracle": oracle,
            "rounding": rounding, "notes": notes,
            "stack_bytes": stack_bytes, "arena_bytes": hdr["TINYML_ARENA_BYTES"],
            "input_bytes": hdr["TINYML_INPUT_BYTES"], "output_bytes": hdr["TINYML_OUTPUT_BYTES"],
            "extra_cflags": extra_cflags, "stream_input": bool(hdr.get("TINYML_STREAM_INPUT", 0)),
            "arena_regions": lib_regions, "qemu_variant": qvariant, "weights_region": wreg,
            "accounting": sizes["native"].accounting,
            "eembc": dict(eembc.as_dict(), energy_pin=eembc_energy_pin, baud=baud)
            if eembc else None,
            "sizes": {v: asdict(s) for v, s in sizes.items()},
            "clock": result.clock}
    with open(os.path.join(out_dir, "build.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return result


def library_regions(lib_dir: str) -> list[dict]:
    """The RAM regions a generated library's arena is split over (plan.json "regions":
    name, symbol, section, bytes); [] for one arena."""
    try:
        with open(os.path.join(lib_dir, "plan.json")) as f:
            regions = json.load(f).get("regions", [])
    except (OSError, ValueError):
        return []
    return [{"name": r["name"], "symbol": r["symbol"], "section": r["section"], "bytes": r["arena_bytes"]}
            for r in regions]


def qemu_variant(board: Board, lib_regions: list[dict]) -> str:
    """The memory-map variant QEMU runs: the board's (`emulator.qemu.variant`), or "remap" when
    a part of the arena lies in a region QEMU's machine maps elsewhere (the F4's CCM)."""
    moved = {name for name, _ in board.qemu.remap}
    if board.qemu.variant == "native" and any(
            r["bytes"] > 0 and set(r["name"].split("+")) & moved for r in lib_regions[1:]):
        return "remap"
    return board.qemu.variant


def ensure_variant(out_dir: str, variant: str, progress=None) -> str:
    """Build DIR's firmware for `variant` if it is not there yet; returns the ELF path."""
    meta = load_build_meta(out_dir)
    elf = os.path.join(variant_dir(out_dir, variant), "firmware.elf")
    if variant in meta["variants"] and os.path.exists(elf):
        return elf
    board = load_board(meta["board"])
    say = progress or (lambda msg: print(msg, file=sys.stderr))
    say(f"building the {variant} emulator variant of {board.name} in {variant_dir(out_dir, variant)}")
    render_board_files(board, variant, meta["mode"], out_dir, meta["stack_bytes"],
                       meta.get("weights_region", ""), (meta.get("eembc") or {}).get("baud"))
    run_make(board, out_dir, variant, meta["stack_bytes"])
    meta["variants"].append(variant)
    rep = size_report(elf, board, variant, os.path.join(out_dir, "model"))
    add_stack_estimate(rep, variant_dir(out_dir, variant))
    add_accounting(rep, os.path.join(out_dir, "model"))
    meta["sizes"][variant] = asdict(rep)
    meta.setdefault("clock", {})[variant] = clock_context(board, variant).summary()
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
