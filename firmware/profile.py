"""Per-op instruction counts on QEMU: DIR's model rebuilt in DIR/profile with the
generated code's per-op hooks (TINYML_OP_BEGIN/END, firmware/app/profile.h)
reading the timer, its self-test run, and the per-op report parsed."""
from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass

from tinyml.boards import Board, load_board
from tinyml.errors import TinymlError
from tinyml.firmware.build import load_build_meta, variant_dir
from tinyml.firmware.mapfile import code_size
from tinyml.firmware.qemu import QEMU_SYSTICK_HZ, build_variant, machine_note, qemu_command
from tinyml.firmware.selftest_console import (RESULT_LINE, TIMER_LINE, EmulationResult, parse_selftest,
                                              run_capture)

# Force-included into every translation unit of the profile build: defines the
# generated model.c's TINYML_OP_BEGIN/TINYML_OP_END hooks (firmware/app/profile.h).
PROFILE_CFLAGS = "-DTINYML_PROFILE=1 -include app/profile.h"
_PROF = re.compile(r"^prof slot=(\d+) op=(-?\d+) kind=(\S+) ticks=(\d+)", re.M)
_PROF_TOTAL = re.compile(r"^prof overhead=(\d+) steps=(\d+) total=(\d+)", re.M)


@dataclass
class OpProfile:
    slot: int           # position in tinyml_run()
    op: int             # TFLite op index (first op of a fused group)
    kind: str           # TFLite op name or fused kernel name
    instructions: int   # hook overhead subtracted


@dataclass
class ProfileResult:
    emulation: EmulationResult
    ops: list[OpProfile]
    total_instructions: int | None      # profiled run, hooks included
    hook_overhead_instructions: int | None
    code: dict | None = None            # code_size() of the plain build's map
    accounting: dict | None = None      # the plain build's Accounting (build.json), as `tinyml build` printed it

    def by_kind(self) -> list[dict]:
        acc: dict[str, list[int]] = {}
        for o in self.ops:
            a = acc.setdefault(o.kind, [0, 0])
            a[0] += 1
            a[1] += o.instructions
        total = sum(v[1] for v in acc.values()) or 1
        rows = [{"kind": k, "steps": n, "instructions": i, "share": round(i / total, 4)}
                for k, (n, i) in acc.items()]
        return sorted(rows, key=lambda r: -r["instructions"])

    def to_json(self) -> dict:
        d = self.emulation.to_json()
        d["profile"] = {"ops": [asdict(o) for o in self.ops], "kinds": self.by_kind(),
                        "total_instructions_profiled": self.total_instructions,
                        "hook_overhead_instructions": self.hook_overhead_instructions,
                        "sum_of_ops_instructions": sum(o.instructions for o in self.ops)}
        if self.code is not None:
            d["code_size"] = self.code
        if self.accounting is not None:
            d["accounting"] = self.accounting
        return d


def _sync_tree(src: str, dst: str) -> None:
    """Copy src into dst, rewriting only files whose bytes differ (keeps make incremental)."""
    for root, _, files in os.walk(src):
        rel = os.path.relpath(root, src)
        if rel.split(os.sep)[0] in ("profile", "mps2", "obj"):
            continue
        os.makedirs(os.path.join(dst, rel), exist_ok=True)
        for f in files:
            a, b = os.path.join(root, f), os.path.join(dst, rel, f)
            with open(a, "rb") as fh:
                data = fh.read()
            if os.path.exists(b):
                with open(b, "rb") as fh:
                    if fh.read() == data:
                        continue
            with open(b, "wb") as fh:
                fh.write(data)


def build_profile_firmware(out_dir: str, progress=None) -> tuple[Board, str, str]:
    """Build DIR's model and vectors again in DIR/profile with the per-op hooks
    compiled in (same sources, flags plus PROFILE_CFLAGS); returns (board, variant, ELF)."""
    from tinyml.firmware.build import prepare_project, run_make
    meta = load_build_meta(out_dir)
    if meta.get("mode") != "selftest":
        raise TinymlError(f"{out_dir} was built in {meta.get('mode')} mode", out_dir,
                          "rebuild with --mode selftest to profile the self-test")
    board = load_board(meta["board"])
    variant = build_variant(out_dir, board)
    pdir = os.path.join(out_dir, "profile")
    for need in ("model", "vectors.c"):
        if not os.path.exists(os.path.join(out_dir, need)):
            raise TinymlError(f"{out_dir} has no {need}", out_dir, "run `tinyml build` first")
    os.makedirs(pdir, exist_ok=True)
    _sync_tree(os.path.join(out_dir, "model"), os.path.join(pdir, "model"))
    with open(os.path.join(out_dir, "vectors.c")) as f:
        vec = f.read()
    vpath = os.path.join(pdir, "vectors.c")
    if not os.path.exists(vpath) or open(vpath).read() != vec:
        with open(vpath, "w") as f:
            f.write(vec)
    extra = " ".join(x for x in (meta.get("extra_cflags", ""), PROFILE_CFLAGS) if x)
    prepare_project(board, pdir, "selftest", [variant], meta["stack_bytes"], extra)
    if progress:
        progress(f"compiling the profile build ({variant} memory map) in {pdir}")
    run_make(board, pdir, variant, meta["stack_bytes"])
    return board, variant, os.path.join(variant_dir(pdir, variant), "firmware.elf")


def profile(out_dir: str, timeout: float = 120.0, progress=None) -> ProfileResult:
    """Per-op instructions on QEMU: builds DIR/profile (see build_profile_firmware),
    runs its self-test (which also checks every vector) and one recorded run of vector 0."""
    board, variant, elf = build_profile_firmware(out_dir, progress)
    meta = load_build_meta(out_dir)
    cmd = qemu_command(board, elf, variant)
    t0 = time.monotonic()
    text, timed_out, rc = run_capture(cmd, timeout)
    hz = QEMU_SYSTICK_HZ.get(board.qemu.machine, 0) or 1
    res = EmulationResult(passed=False, instructions_per_inference=None, peak_sram_bytes_measured=None,
                          flash_bytes=None, emulator="qemu", machine=board.qemu.machine, variant=variant,
                          board=board.name, model=meta.get("model", ""),
                          note=machine_note(board, variant) + "; profile build (per-op timer hooks)",
                          timed_out=timed_out, seconds=round(time.monotonic() - t0, 2), output=text)
    parse_selftest(text, hz, res)
    clean = text.replace("\r", "")
    tm = TIMER_LINE.search(clean)
    scale = 1e9 / (hz if not tm or tm.group(1) == "systick" else int(tm.group(2)))
    ops = [OpProfile(int(m.group(1)), int(m.group(2)), m.group(3), round(int(m.group(4)) * scale))
           for m in _PROF.finditer(clean)]
    tot = _PROF_TOTAL.search(clean)
    if timed_out:
        res.passed = False
        res.error = f"no RESULT line within {timeout:g} s (firmware hung or too slow)"
    elif not RESULT_LINE.search(clean):
        res.passed = False
        res.error = f"emulator exited (code {rc}) without a RESULT line"
    elif not tot:
        res.passed = False
        res.error = "the profile build printed no per-op report"
    code = None
    plain_map = os.path.join(out_dir, "firmware.map")
    if os.path.exists(plain_map):
        code = code_size(plain_map)
    return ProfileResult(res, ops, round(int(tot.group(3)) * scale) if tot else None,
                         round(int(tot.group(1)) * scale) if tot else None, code,
                         load_build_meta(out_dir).get("accounting"))
