"""Linked code size by origin (generated model, kernels, weights, runtime),
read from the GNU ld map of a firmware build."""
from __future__ import annotations

import os
import re

from tinyml.errors import TinymlError

_MAP_ENTRY = re.compile(r"^\s*(\.\S+)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+\.o)\s*$")


def code_size(map_path: str) -> dict:
    """Linked bytes by origin, from a GNU ld map (after --gc-sections): `model`
    (generated model.o: code and its const parameter structs), `kernels` (the
    kernel objects), `weights` (weights.o: constant tensors and derived tables),
    `runtime` (everything else: startup, UART, app, libc). Addresses 0 are
    discarded input sections and are skipped."""
    try:
        lines = open(map_path).read().splitlines()
    except OSError:
        raise TinymlError(f"no linker map at {map_path}", map_path, "rebuild with `tinyml build`") from None
    try:
        start = next(i for i, l in enumerate(lines) if l.startswith("Linker script and memory map"))
    except StopIteration:
        raise TinymlError("not a GNU ld map file", map_path, "rebuild with `tinyml build`") from None
    out = {"model": 0, "kernels": 0, "weights": 0, "runtime": 0}
    per_kernel: dict[str, int] = {}
    section = ""
    for line in lines[start:]:
        m = _MAP_ENTRY.match(line)
        if not m:
            t = line.strip()
            if t.startswith(".") and " " not in t:
                section = t
            continue
        sec = m.group(1) or section
        addr, size, obj = int(m.group(2), 16), int(m.group(3), 16), m.group(4)
        section = ""
        if addr == 0 or size == 0 or sec.startswith((".bss", ".tinyml_arena", ".stack", ".debug", ".ARM.attributes",
                                                     ".comment")):
            continue
        if obj.endswith("model/model.o"):
            out["model"] += size
        elif obj.endswith("model/weights.o"):
            out["weights"] += size
        elif "/kernels/src/" in obj:
            out["kernels"] += size
            k = os.path.basename(obj)[:-2]
            per_kernel[k] = per_kernel.get(k, 0) + size
        else:
            out["runtime"] += size
    out["code_excluding_weights"] = out["model"] + out["kernels"]
    out["per_kernel"] = dict(sorted(per_kernel.items(), key=lambda kv: -kv[1]))
    return out
