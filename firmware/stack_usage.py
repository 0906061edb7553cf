"""Worst-case stack depth of a firmware build, from GCC's own per-function figures.

The Makefile compiles every file with `-fstack-usage -fcallgraph-info=su`, so
next to each object GCC writes `.ci` files: a call graph (VCG text) whose nodes
carry each function's frame size in bytes ("static" = fixed at compile time,
"dynamic" = alloca / variable-length arrays). The estimate is the deepest path:

    worst = deepest path from Reset_Handler
          + deepest path from any other *_Handler (one interrupt may preempt)
          + the exception frame the core pushes for it (26 words with the FPU
            context, plus 4 bytes of alignment padding)

Functions GCC did not compile here (newlib's memcpy/memset, libgcc helpers)
have no figure: they are charged EXTERNAL_FRAME bytes each and listed in
`assumed`. Reset_Handler's calls through the (pre)init arrays are dropped when
the linked ELF shows both arrays empty (a C firmware without constructors). A cycle (recursion), a dynamic frame or an indirect call makes the
figure a lower bound, and `bounded` says so. Static functions with the same
name in different files are merged (the larger frame, the union of callees),
which can only over-estimate.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field

EXTERNAL_FRAME = 64          # bytes charged to a library function without a figure
EXCEPTION_FRAME = 26 * 4 + 4  # FP context stacking + alignment padding

_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
_BYTES = re.compile(r"\\n(\d+) bytes \(([a-z ,]+)\)")


@dataclass
class StackEstimate:
    bytes: int                       # worst case: main path + deepest ISR + exception frame
    main_bytes: int
    main_path: list[str]
    isr_bytes: int
    isr_path: list[str]
    bounded: bool                    # False: recursion, dynamic frames or indirect calls
    assumed: list[str] = field(default_factory=list)     # functions charged EXTERNAL_FRAME
    unbounded_reasons: list[str] = field(default_factory=list)

    def line(self) -> str:
        path = " > ".join(self.main_path)
        s = f"stack estimate {self.bytes:,} B (main {self.main_bytes:,} B: {path}; interrupt {self.isr_bytes:,} B)"
        if not self.bounded:
            s += " - a lower bound: " + "; ".join(self.unbounded_reasons[:3])
        return s


def read_call_graph(obj_dir: str) -> tuple[dict[str, int], dict[str, set[str]], set[str]]:
    """(frame bytes per function, callees per function, functions with dynamic frames)."""
    frames: dict[str, int] = {}
    calls: dict[str, set[str]] = {}
    dynamic: set[str] = set()
    for path in glob.glob(os.path.join(obj_dir, "**", "*.ci"), recursive=True):
        with open(path, errors="replace") as f:
            text = f.read()
        for name, label in _NODE.findall(text):
            m = _BYTES.search(label)
            calls.setdefault(name, set())
            if m is None:
                continue                                  # declared here, defined elsewhere
            frames[name] = max(frames.get(name, 0), int(m.group(1)))
            if "dynamic" in m.group(2) and "bounded" not in m.group(2):
                dynamic.add(name)
        for src, dst in _EDGE.findall(text):
            calls.setdefault(src, set()).add(dst)
            calls.setdefault(dst, set())
    return frames, calls, dynamic


def init_arrays_empty(elf_path: str) -> bool:
    """Whether the linked image has no .preinit_array / .init_array entries."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        syms = {}
        for sec in elf.iter_sections():
            if isinstance(sec, SymbolTableSection):
                for s in sec.iter_symbols():
                    if "init_array" in s.name:
                        syms[s.name] = s["st_value"]
    pairs = (("__preinit_array_start", "__preinit_array_end"), ("__init_array_start", "__init_array_end"))
    return all(a in syms and b in syms and syms[a] == syms[b] for a, b in pairs)


def _deepest(root: str, frames: dict[str, int], calls: dict[str, set[str]], dynamic: set[str],
             assumed: set[str], reasons: list[str], no_indirect: frozenset[str] = frozenset()
             ) -> tuple[int, list[str]]:
    memo: dict[str, tuple[int, list[str]]] = {}
    active: set[str] = set()

    def visit(fn: str) -> tuple[int, list[str]]:
        if fn in memo:
            return memo[fn]
        if fn in active:
            reasons.append(f"recursion through {fn}")
            return 0, []
        if fn == "__indirect_call":
            reasons.append("an indirect call")
            return 0, []
        if fn not in frames:
            assumed.add(fn)
            return EXTERNAL_FRAME, [fn]
        if fn in dynamic:
            reasons.append(f"dynamic frame in {fn}")
        active.add(fn)
        best, best_path = 0, []
        for callee in sorted(calls.get(fn, ())):
            if callee == "__indirect_call" and fn in no_indirect:
                continue
            d, p = visit(callee)
            if d > best or (p and not best_path):
                best, best_path = d, p
        active.discard(fn)
        memo[fn] = (frames[fn] + best, [fn] + best_path)
        return memo[fn]

    return visit(root)


def estimate(obj_dir: str, entry: str = "Reset_Handler", elf_path: str | None = None) -> StackEstimate | None:
    """The worst-case stack of the build whose objects (and .ci files) are in `obj_dir`
    (`elf_path`: the linked image, to see that the init arrays are empty); None when
    the build carries no call-graph files."""
    frames, calls, dynamic = read_call_graph(obj_dir)
    if entry not in frames:
        return None
    assumed: set[str] = set()
    reasons: list[str] = []
    skip = frozenset({entry}) if elf_path and init_arrays_empty(elf_path) else frozenset()
    main_bytes, main_path = _deepest(entry, frames, calls, dynamic, assumed, reasons, skip)
    isr_bytes, isr_path = 0, []
    for fn in sorted(frames):
        if fn.endswith("_Handler") and fn != entry:
            d, p = _deepest(fn, frames, calls, dynamic, assumed, reasons)
            if d > isr_bytes:
                isr_bytes, isr_path = d, p
    total = main_bytes + (isr_bytes + EXCEPTION_FRAME if isr_path else 0)
    return StackEstimate(bytes=total, main_bytes=main_bytes, main_path=main_path, isr_bytes=isr_bytes,
                         isr_path=isr_path, bounded=not reasons, assumed=sorted(assumed),
                         unbounded_reasons=sorted(set(reasons)))
