"""Renode: DIR/renode/<board>.repl/.resc/.robot generated from the board
descriptor, and the self-test run on the unchanged board binary when a
`renode` binary is on PATH."""
from __future__ import annotations

import os
import shutil
import time

import jinja2

from tinyml.boards import Board
from tinyml.errors import ToolchainError, TinymlError
from tinyml.firmware.build import TEMPLATE_DIR
from tinyml.firmware.selftest_console import EmulationResult, parse_selftest, run_capture


def write_renode_files(out_dir: str, board: Board, elf: str, timeout: float = 120.0) -> dict[str, str]:
    if not board.renode.platform:
        raise TinymlError(f"board {board.name} has no Renode platform", board.path,
                          "use --emulator qemu")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    rdir = os.path.join(out_dir, "renode")
    os.makedirs(rdir, exist_ok=True)
    ctx = {"board": board, "elf": os.path.abspath(elf), "timeout": int(timeout),
           "repl": os.path.join(rdir, f"{board.name}.repl"),
           "resc": os.path.join(rdir, f"{board.name}.resc"),
           "sram": [m for m in board.sram_regions], "flash": board.flash_region("native")}
    out = {}
    for tmpl, ext in (("renode.repl.j2", "repl"), ("renode.resc.j2", "resc"), ("renode.robot.j2", "robot")):
        path = os.path.join(rdir, f"{board.name}.{ext}")
        with open(path, "w") as f:
            f.write(env.get_template(tmpl).render(**ctx))
        out[ext] = path
    return out


def emulate_renode(out_dir: str, board: Board, meta: dict, timeout: float) -> EmulationResult:
    elf = os.path.join(out_dir, "firmware.elf")
    files = write_renode_files(out_dir, board, elf, timeout)
    renode = shutil.which("renode")
    if renode is None:
        raise ToolchainError("renode not found on PATH", "tinyml emulate --emulator renode",
                             f"install Renode; the scripts are ready in {os.path.dirname(files['resc'])}")
    cmd = [renode, "--disable-xwt", "--console", "-e", f"include @{files['resc']}; start"]
    t0 = time.monotonic()
    text, timed_out, _ = run_capture(cmd, timeout)
    res = EmulationResult(passed=False, instructions_per_inference=None,
                          peak_sram_bytes_measured=None,
                          flash_bytes=meta["sizes"]["native"]["flash_bytes"], emulator="renode",
                          machine=board.renode.platform, variant="native", board=board.name,
                          model=meta.get("model", ""),
                          note=f"unchanged {board.name} binary on Renode {board.renode.platform}",
                          timed_out=timed_out, seconds=round(time.monotonic() - t0, 2), output=text)
    # Renode's SysTick runs at the board's reset clock as configured in the platform.
    parse_selftest(text, board.reset_clock_hz, res)
    if timed_out:
        res.passed = False
        res.error = f"no RESULT line within {timeout:g} s"
    return res
