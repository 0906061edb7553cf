"""Measure codegen/code_size.json: linked code bytes per kernel function, the runtime base
per build mode and the generated model.c per kernel call, for the default board's flags.

`measure()` builds real firmware (firmware.build, arm-none-eabi-gcc with build.CFLAGS /
LDFLAGS) for one small model in each mode and reads the objects it compiled:

- kernels: every allocated section of each kernel object (-ffunction-sections
  -fdata-sections: one per function or object) with its size and alignment, and the
  sections or library symbols its relocations reference; a kernel function is its
  section, and the closure of a set of functions counts shared callees once
  (codegen.code_size.closure);
- runtime (per mode): the firmware linked without the kernels
  (`--unresolved-symbols=ignore-all`), minus model.o and weights.o as the link map places
  them: startup, vector table, clock, UART, app and the newlib-nano / libgcc pieces they
  pull. Serial builds: the largest over the MLPerf Tiny input and result formats
  (app/serial_eembc.c is compiled per format), `serial_mse` with the MSE score (anomaly
  detection: float32 input, output of the input's size) too;
- library: per symbol the kernels reference outside themselves (memcpy, __aeabi_*), the
  flash that runtime link grows by when the symbol is required (`--undefined`);
- types: sizeof of the kernel headers' types (what model.c's parameter structs occupy);
- model: generated model.c of every model in `corpus()` compiled alone; per step the
  instructions of tinyml_run on its lines (-g line table) and the literal words they load:
  `per_call` is the largest such bytes of one call beyond `PER_ARG` per argument; `base`
  the largest rest of model.o besides the steps' code and objects (I/O tables,
  tinyml_input_ptr, tinyml_invoke, ...).

`scripts/measure_code_size.py` writes the table; tests/test_code_size.py re-measures it.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from tinyml import paths
from tinyml.boards import load_board

from . import build as fw

DEFAULT_BOARD = "stm32f746g-disco"
# One table per core: the default board's (codegen/code_size.json) and a Cortex-M4 board's
# (codegen/code_size_cortex-m4.json, for the F4 and L4 boards).
TABLE_BOARDS = (DEFAULT_BOARD, "stm32f4-discovery")


def table_file(board_name: str) -> str:
    """Where the table measured on `board_name` is committed."""
    from tinyml.codegen.code_size import TABLE
    if board_name == DEFAULT_BOARD:
        return TABLE
    return os.path.join(os.path.dirname(TABLE), f"code_size_{load_board(board_name).core}.json")
PER_ARG = 8        # bytes of tinyml_run per call argument: a literal-pool load (2 + 4) and a stack store
KERNEL_DIR = "model/kernels/src"


def corpus() -> list[str]:
    """Models whose model.c calibrates the per-call figures: the shipped ViTs and the shared
    reference models present (TINYML_SHARED_MODELS or ../shared/models)."""
    out = sorted(glob.glob(os.path.join(paths.package_dir("tinyvit.pretrained"), "*.tflite")))
    shared = paths.shared_models()
    if shared and os.path.isdir(shared):
        out += sorted(glob.glob(os.path.join(shared, "*", "*.tflite")))
    return out


@dataclass
class Section:
    name: str            # object:section
    size: int            # bytes in the flash image (0 for .bss)
    align: int
    refs: list[str]      # sections (object:section) and library symbols ("lib:" prefix)


def _sections(obj_path: str, tag: str) -> tuple[dict[str, Section], dict[str, str], list[str]]:
    """Sections of one object, its global definitions (symbol -> section key) and its
    functions (name -> section key, locals included)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection
    secs: dict[str, Section] = {}
    glob_defs: dict[str, str] = {}
    funcs: dict[str, str] = {}
    undefined: dict[int, str] = {}
    with open(obj_path, "rb") as f:
        elf = ELFFile(f)
        names = {}
        for i, s in enumerate(elf.iter_sections()):
            if s["sh_flags"] & 0x2 and s["sh_size"] > 0:   # SHF_ALLOC
                key = f"{tag}:{s.name}"
                names[i] = key
                size = 0 if s["sh_type"] == "SHT_NOBITS" else s["sh_size"]
                secs[key] = Section(key, size, max(1, s["sh_addralign"]), [])
        symtab = elf.get_section_by_name(".symtab")
        syms = list(symtab.iter_symbols()) if isinstance(symtab, SymbolTableSection) else []
        for k, sym in enumerate(syms):
            ndx = sym["st_shndx"]
            if ndx == "SHN_UNDEF":
                if sym.name:
                    undefined[k] = sym.name
                continue
            if not isinstance(ndx, int) or ndx not in names:
                continue
            if sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK") and sym.name:
                glob_defs[sym.name] = names[ndx]
            if sym["st_info"]["type"] == "STT_FUNC" and sym.name:
                funcs[sym.name] = names[ndx]
        for rs in elf.iter_sections():
            if not isinstance(rs, RelocationSection):
                continue
            target = names.get(rs["sh_info"])
            if target is None:
                continue
            for r in rs.iter_relocations():
                k = r["r_info_sym"]
                sym = syms[k]
                if k in undefined:
                    ref = "lib:" + undefined[k]
                elif isinstance(sym["st_shndx"], int) and sym["st_shndx"] in names:
                    ref = names[sym["st_shndx"]]
                else:
                    continue
                if ref != target and ref not in secs[target].refs:
                    secs[target].refs.append(ref)
    return secs, glob_defs, funcs


def kernel_graph(obj_dir: str) -> tuple[dict[str, Section], dict[str, str]]:
    """Sections of every kernel object (library references resolved to kernel definitions
    where a kernel object defines them) and the kernel functions (global name -> section)."""
    secs: dict[str, Section] = {}
    defs: dict[str, str] = {}
    funcs: dict[str, str] = {}
    for obj in sorted(glob.glob(os.path.join(obj_dir, "*.o"))):
        tag = os.path.basename(obj)[:-2]
        s, d, fn = _sections(obj, tag)
        secs.update(s)
        defs.update(d)
        funcs.update({n: k for n, k in fn.items() if n in d})
    for s in secs.values():
        s.refs = sorted({defs.get(r[4:], r) if r.startswith("lib:") else r for r in s.refs})
    return secs, funcs


def _make(out_dir: str, *targets: str) -> None:
    r = subprocess.run(["make", "-j", "2", *targets], cwd=out_dir, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"make {' '.join(targets)} failed in {out_dir}: {r.stderr[-2000:]}")


def _flash_of_elf(elf_path: str) -> int:
    """Bytes of the flash image (allocated sections with file contents, not RAM-only ones)."""
    from elftools.elf.elffile import ELFFile
    total = 0
    with open(elf_path, "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] == "PT_LOAD":
                total += seg["p_filesz"]
    return total


def _link_base(out_dir: str, board, undefined: tuple[str, ...] = ()) -> int:
    """Flash of the firmware in `out_dir` linked without kernels, minus model.o and weights.o."""
    from .mapfile import _entries, _in_flash_image
    objs = [os.path.join("obj", s[:-2] + ".o") for s in fw._sources(out_dir) if "/kernels/" not in s]
    elf, mp = os.path.join(out_dir, "base.elf"), os.path.join(out_dir, "base.map")
    cmd = ["arm-none-eabi-gcc", *fw._arch_flags(board), *fw.LDFLAGS.split(), "-Wl,--unresolved-symbols=ignore-all",
           *[f"-Wl,--undefined={u}" for u in undefined], "-T", "linker.ld", f"-Wl,-Map={mp}", *objs, "-lm",
           "-o", elf]
    r = subprocess.run(cmd, cwd=out_dir, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"base link failed: {r.stderr[-2000:]}")
    model = sum(size for sec, addr, size, obj in _entries(mp)
                if _in_flash_image(sec, addr, size) and obj.endswith(("model/model.o", "model/weights.o")))
    return _flash_of_elf(elf) - model


def _serial_formats() -> list[str]:
    """App flags of every MLPerf Tiny format (the MSE score only with float32 input, as
    app/serial_eembc.c requires)."""
    from tinyml.eembc import INPUT_CODES, INPUT_FLOAT32, RESULT_CODES, RESULT_MSE
    return [f"-DTINYML_EEMBC_ID='\"{'x' * 16}\"' -DTINYML_EEMBC_INPUT={i} -DTINYML_EEMBC_RESULT={r}"
            for i in sorted(INPUT_CODES.values()) for r in sorted(RESULT_CODES.values())
            if r != RESULT_CODES[RESULT_MSE] or i == INPUT_CODES[INPUT_FLOAT32]]


def _app_objects(out_dir: str, board, flags: str) -> None:
    """Recompile the app with the MLPerf Tiny format `flags`. The MSE score needs an output
    of the input's size: for it the app sees a model.h saying so (the probe model's model.o
    is not linked into the figure, only the app's code counts)."""
    header = os.path.join(out_dir, "model", "model.h")
    original = open(header).read()
    if "-DTINYML_EEMBC_RESULT=1" in flags:
        n = re.search(r"#define TINYML_INPUT_BYTES (\d+)", original).group(1)
        with open(header, "w") as f:
            f.write(re.sub(r"#define TINYML_OUTPUT_BYTES \d+", f"#define TINYML_OUTPUT_BYTES {n}", original))
    try:
        fw.write_makefile(board, "serial", out_dir, flags)
        for o in glob.glob(os.path.join(out_dir, "obj", "app", "*.o")):
            os.remove(o)
        _make(out_dir, *[os.path.join("obj", "app", os.path.basename(c)[:-2] + ".o")
                         for c in glob.glob(os.path.join(out_dir, "app", "*.c"))])
    finally:
        with open(header, "w") as f:
            f.write(original)


def runtime_base(out_dir: str, board, mode: str, lib_syms: list[str],
                 mse: bool = False) -> tuple[int, dict[str, int]]:
    """(runtime bytes, flash each library symbol adds) of the build in `out_dir`; serial: the
    largest over the MLPerf Tiny input and result formats, the MSE score only with `mse`."""
    flavours = [f for f in _serial_formats() if mse or "-DTINYML_EEMBC_RESULT=1" not in f] \
        if mode == "serial" else [""]
    best, best_flags = -1, ""
    for flags in flavours:
        if mode == "serial":
            _app_objects(out_dir, board, flags)
        n = _link_base(out_dir, board)
        if n > best:
            best, best_flags = n, flags
    if mode == "serial" and best_flags != flavours[-1]:
        _app_objects(out_dir, board, best_flags)
    lib = {s: max(0, _link_base(out_dir, board, (s,)) - best) for s in lib_syms}
    return best, lib


_LINE = re.compile(r"^\S*model\.c:(\d+)")
_INSN = re.compile(r"^\s*([0-9a-f]+):\s+((?:[0-9a-f]{4} ?){1,2})\s+(\S+)(.*)$")
_LIT = re.compile(r"\[pc, #-?\d+\]\s*@ \(([0-9a-f]+)")


def model_figures(model_c: str, model_o: str) -> tuple[dict[int, int], int]:
    """Of one compiled model.c: per step (TFLite op index of its TINYML_OP_BEGIN) the bytes of
    tinyml_run's instructions on its lines and of the literal words they load, and the rest of
    model.o's flash bytes besides those and the steps' own file-scope objects (those its lines
    name, and those they name): I/O tables, tinyml_input_ptr, tinyml_invoke, ..."""
    lines = open(model_c).read().splitlines()
    step_of_line: dict[int, int] = {}
    in_run, step = False, None
    for no, text in enumerate(lines, 1):
        if text.startswith("int ") and text.rstrip().endswith("_run(void)"):
            in_run = True
            continue
        if in_run and text.startswith("}"):
            break
        if not in_run:
            continue
        m = re.search(r"_OP_BEGIN\((\d+),", text)
        if m:
            step = int(m.group(1))
        if step is not None:
            step_of_line[no] = step
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", "-l", model_o], capture_output=True, text=True,
                         check=True).stdout
    code: dict[int, int] = {}
    literals: dict[int, int] = {}           # literal address -> step that loads it first
    cur_line, in_fn = None, False
    for line in dis.splitlines():
        if line.startswith("Disassembly of section"):
            in_fn = line.rstrip(":").endswith("_run")
            continue
        if not in_fn:
            continue
        m = _LINE.match(line)
        if m:
            cur_line = int(m.group(1))
            continue
        m = _INSN.match(line)
        if not m or m.group(3).startswith("."):
            continue
        st = step_of_line.get(cur_line)
        if st is None:
            continue
        code[st] = code.get(st, 0) + len(m.group(2).replace(" ", "")) // 2
        lit = _LIT.search(m.group(4))
        if lit:
            literals.setdefault(int(lit.group(1), 16), st)
    for st in literals.values():
        code[st] = code.get(st, 0) + 4
    # file-scope objects: a step owns those its lines name and those its objects name
    text = "\n".join(lines)
    decls = {m.group(1): m.group(2) for m in re.finditer(r"^(?:static )?const \w+ (\w+)(?:\[\d*\])? = (.*?)^};",
                                                          text, re.M | re.S)}
    owner: dict[str, int] = {}
    for no, st in step_of_line.items():
        for name in re.findall(r"\w+", lines[no - 1]):
            if name in decls:
                owner.setdefault(name, st)
    todo = list(owner)
    while todo:
        name = todo.pop()
        for ref in re.findall(r"\w+", decls[name]):
            if ref in decls and ref not in owner:
                owner[ref] = owner[name]
                todo.append(ref)
    secs, _, _ = _sections(model_o, "model")
    rest = 0
    for key, s in secs.items():
        name = key.split(":", 1)[1]
        if s.size == 0 or name.startswith(".bss"):
            continue
        if name.startswith((".rodata.", ".data.")) and name.split(".")[-1] in owner:
            continue
        rest += s.size + s.align - 1
    return code, rest - sum(code.values())     # tinyml_run's section is in `rest`: its steps' part comes off


def sizeof_types(fw_dir: str, lib_dir: str, board) -> dict[str, int]:
    """sizeof of every type the kernel headers define and of the C scalar types, compiled with
    the firmware's flags (what a `static const T x[n]` declaration of model.c occupies)."""
    inc = os.path.join(lib_dir, "kernels", "include", "tinyml")
    names = set()
    for h in glob.glob(os.path.join(inc, "*.h")):
        names.update(re.findall(r"^}\s*(\w+)\s*;", open(h).read(), re.M))
        names.update(re.findall(r"^typedef [^;{(]*?\b(\w+)\s*;", open(h).read(), re.M))
    names |= {"int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t", "uint32_t", "int64_t", "float"}
    src = os.path.join(lib_dir, "sizeof_types.c")
    with open(src, "w") as f:
        f.write('#include "tinyml/kernels.h"\n')
        for n in sorted(names):
            f.write(f"const char tinyml_sizeof_{n}[sizeof({n})] = {{0}};\n")
    obj = _compile(fw_dir, board, src, [os.path.join(lib_dir, "kernels", "include")])
    from elftools.elf.elffile import ELFFile
    out = {}
    with open(obj, "rb") as f:
        for sym in ELFFile(f).get_section_by_name(".symtab").iter_symbols():
            if sym.name.startswith("tinyml_sizeof_"):
                out[sym.name[len("tinyml_sizeof_"):]] = sym["st_size"]
    return dict(sorted(out.items()))


def _compile(fw_dir: str, board, src: str, includes: list[str]) -> str:
    """`src` compiled to `src`.o in firmware folder `fw_dir` with the firmware's flags."""
    obj = src[:-2] + ".o"
    cmd = ["arm-none-eabi-gcc", *fw._arch_flags(board), *fw.CFLAGS.split(), "-include", "runtime/compat.h",
           "-I.", *[f"-I{d}" for d in includes], "-c", src, "-o", obj]
    r = subprocess.run(cmd, cwd=fw_dir, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"compiling {src} failed: {r.stderr[-2000:]}")
    return obj


def _compile_model_c(fw_dir: str, lib_dir: str, board) -> str:
    return _compile(fw_dir, board, os.path.join(lib_dir, "model.c"),
                    ["runtime", "app", lib_dir, os.path.join(lib_dir, "kernels", "include")])


def measure(board_name: str = DEFAULT_BOARD, models: list[str] | None = None, progress=None) -> dict:
    """The table codegen/code_size.json holds (see the module doc)."""
    from tinyml.codegen.emit import generate
    from tinyml.codegen.pipeline import CompileOptions, arena_regions
    from tinyml.codegen.pipeline import compile as compile_model
    say = progress or (lambda msg: None)
    board = load_board(board_name)
    models = corpus() if models is None else models
    probe = models[0]
    table: dict = {"board": board.name, "cpu": board.core, "fpu": board.fpu,
                   "flags": " ".join([*fw._arch_flags(board), fw.CFLAGS]), "ldflags": fw.LDFLAGS,
                   "compiler": subprocess.run(["arm-none-eabi-gcc", "-dumpversion"], capture_output=True,
                                              text=True).stdout.strip(),
                   "runtime": {}, "library": {}}
    with tempfile.TemporaryDirectory(prefix="tinyml-code-size-") as tmp:
        dirs = {}
        probe_lib = os.path.join(tmp, "probe")
        generate(probe, probe_lib)      # a given library: the build reads no table (it is being remade)
        for mode in fw.MODES:
            say(f"building {mode} firmware of {os.path.basename(probe)}")
            d = os.path.join(tmp, mode)
            fw.build_firmware(None, board.name, d, mode=mode, num_vectors=0, vectors=[] if mode == "selftest"
                              else None, progress=lambda m: None, eembc_id="none" if mode == "serial" else None,
                              model_dir=probe_lib)
            dirs[mode] = d
        secs, funcs = kernel_graph(os.path.join(dirs["serial"], "obj", KERNEL_DIR))
        lib_syms = sorted({r[4:] for s in secs.values() for r in s.refs if r.startswith("lib:")})
        for key, mode, mse in (("selftest", "selftest", False), ("serial", "serial", False),
                               ("serial_mse", "serial", True)):
            say(f"linking the {key} runtime alone and with each of {len(lib_syms)} library symbols")
            table["runtime"][key], table["library"][key] = runtime_base(dirs[mode], board, mode, lib_syms, mse)
        table["types"] = sizeof_types(dirs["serial"], os.path.join(dirs["serial"], "model"), board)
        per_call, rest = 0, 0
        for m in models:
            say(f"compiling model.c of {os.path.basename(m)}")
            lib = os.path.join(tmp, "lib", os.path.basename(m)[:-7])
            big = load_board("nucleo-h743zi") if os.path.getsize(m) > 1_200_000 else board
            generate(m, lib, regions=arena_regions(big))
            obj = _compile_model_c(dirs["serial"], lib, board)
            code, r = model_figures(os.path.join(lib, "model.c"), obj)
            rest = max(rest, r)
            for st in compile_model(m, CompileOptions(regions=arena_regions(big))).steps:
                if st.calls:
                    extra = code.get(st.index, 0) - PER_ARG * sum(len(c.args) for c in st.calls)
                    per_call = max(per_call, -(-extra // len(st.calls)))
            shutil.rmtree(lib)
    table["model"] = {"base": rest, "per_call": per_call, "per_arg": PER_ARG,
                      "corpus": [os.path.basename(m) for m in models]}
    table["functions"] = dict(sorted(funcs.items()))
    table["sections"] = {k: {"bytes": s.size, "align": s.align, "refs": s.refs} for k, s in sorted(secs.items())
                         if s.size or s.refs}
    return table


def table_text(table: dict) -> str:
    """The table as committed (sorted keys, one-space indent, final newline)."""
    return json.dumps(table, indent=1, sort_keys=True) + "\n"
