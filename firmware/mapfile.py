"""Linked code size by origin (generated model, kernels, weights, runtime) and the
flash split (parameters / tables / op params / code), read from the GNU ld map of a
firmware build."""
from __future__ import annotations

import json
import os
import re

from tinyml.errors import TinymlError

_MAP_ENTRY = re.compile(r"^\s*(\.\S+)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+\.o)\s*$")


def _entries(map_path: str):
    """(section, address, size, object) of every placed input section of a GNU ld map."""
    try:
        lines = open(map_path).read().splitlines()
    except OSError:
        raise TinymlError(f"no linker map at {map_path}", map_path, "rebuild with `tinyml build`") from None
    try:
        start = next(i for i, l in enumerate(lines) if l.startswith("Linker script and memory map"))
    except StopIteration:
        raise TinymlError("not a GNU ld map file", map_path, "rebuild with `tinyml build`") from None
    section = ""
    for line in lines[start:]:
        m = _MAP_ENTRY.match(line)
        if not m:
            t = line.strip()
            if t.startswith(".") and " " not in t:
                section = t
            continue
        sec = m.group(1) or section
        section = ""
        yield sec, int(m.group(2), 16), int(m.group(3), 16), m.group(4)


def _in_flash_image(sec: str, addr: int, size: int) -> bool:
    return not (addr == 0 or size == 0 or sec.startswith((".bss", ".tinyml_arena", ".stack", ".debug",
                                                          ".ARM.attributes", ".comment")))


def code_size(map_path: str) -> dict:
    """Linked bytes by origin, from a GNU ld map (after --gc-sections): `model`
    (generated model.o: code and its const parameter structs), `kernels` (the
    kernel objects), `weights` (weights.o: constant tensors and derived tables),
    `runtime` (everything else: startup, UART, app, libc). Addresses 0 are
    discarded input sections and are skipped."""
    out = {"model": 0, "kernels": 0, "weights": 0, "runtime": 0}
    per_kernel: dict[str, int] = {}
    for sec, addr, size, obj in _entries(map_path):
        if not _in_flash_image(sec, addr, size):
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


def flash_split(map_path: str, roles: dict[str, str], flash_bytes: int | None = None,
                floor_bytes: int | None = None, target: float | None = None) -> dict:
    """The linked flash image in four parts: `parameters` (weights.o arrays whose role is
    "parameter": the model's constant tensors, and biases with the input offset folded in),
    `tables` (the other weights.o arrays: lookup tables, multipliers, shifts made at generate
    time), `op_params` (model.o's read-only data: the kernels' parameter structs) and `code`
    (everything else in flash: model.o's code, kernels, runtime, app, libc; with
    `flash_bytes`, the linked image's size, code is the rest of it, alignment padding
    included, so the four parts sum to the image). `roles` maps each weights.c symbol to its role (plan.json "flash");
    weights.o sections are `.rodata.<symbol>` (-fdata-sections). `constants` is
    parameters + tables + op_params, `constants_over_parameters` their ratio to the
    parameter bytes. With `floor_bytes` (plan.json's requant_floor_bytes: the fewest bytes a
    bit-exact requantization needs, codegen.quant.requant_floor_bytes), `floor_over_parameters`
    is (parameters + floor) / parameters, the ratio no bit-exact build goes below; `target` is
    passed through (issue 15's bound)."""
    out = {"parameters": 0, "tables": 0, "op_params": 0, "code": 0}
    for sec, addr, size, obj in _entries(map_path):
        if not _in_flash_image(sec, addr, size):
            continue
        if obj.endswith("model/weights.o"):
            sym = sec[len(".rodata."):] if sec.startswith(".rodata.") else ""
            role = roles.get(sym)
            if role is None:
                raise TinymlError(f"weights.o section {sec} is no array of the model's plan.json", map_path,
                                  "rebuild with `tinyml build` (the map and the model library disagree)")
            out["parameters" if role == "parameter" else "tables"] += size
        elif obj.endswith("model/model.o") and sec.startswith(".rodata"):
            out["op_params"] += size
        else:
            out["code"] += size
    out["constants"] = out["parameters"] + out["tables"] + out["op_params"]
    if flash_bytes is not None:
        out["code"] = flash_bytes - out["constants"]
    out["constants_over_parameters"] = (round(out["constants"] / out["parameters"], 4)
                                        if out["parameters"] else None)
    if floor_bytes is not None:
        out["requant_floor_bytes"] = floor_bytes
        out["floor_over_parameters"] = (round((out["parameters"] + floor_bytes) / out["parameters"], 4)
                                        if out["parameters"] else None)
    if target is not None:
        out["target"] = target
    return out


def build_flash_split(out_dir: str) -> dict:
    """flash_split of a `tinyml build` directory (its firmware.map, model/plan.json, and the
    linked flash image size recorded in build.json)."""
    try:
        with open(os.path.join(out_dir, "model", "plan.json")) as f:
            fl = json.load(f)["flash"]
        arrays = fl["arrays"]
        floor, target = fl.get("requant_floor_bytes"), fl.get("target")
        with open(os.path.join(out_dir, "build.json")) as f:
            flash = int(json.load(f)["accounting"]["flash_bytes"])
    except (OSError, ValueError, KeyError, TypeError):
        raise TinymlError("no flash roles in model/plan.json or no linked size in build.json", out_dir,
                          "rebuild with this version of `tinyml build`") from None
    return flash_split(os.path.join(out_dir, "firmware.map"), {a["symbol"]: a["role"] for a in arrays}, flash,
                       floor, target)
