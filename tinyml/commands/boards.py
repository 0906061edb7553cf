"""`tinyml boards [--json]`: list the board descriptors with their memory budgets."""
from __future__ import annotations

import argparse
import json

from tinyml.boards import list_boards, load_board


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("boards", help="list supported boards and their SRAM/flash budgets")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    boards = [load_board(n) for n in list_boards()]
    if args.json:
        print(json.dumps({"boards": [b.summary() for b in boards]}))
        return 0
    print(f"{'board':<18} {'mcu':<12} {'core':<10} {'fpu':<12} {'MHz':>4} "
          f"{'SRAM KB':>8} {'flash KB':>8}  {'PID':<6} regions / qemu")
    for b in boards:
        regions = " ".join(f"{m.name}:{m.size // 1024}K" for m in b.sram_regions)
        print(f"{b.name:<18} {b.mcu:<12} {b.core:<10} {b.fpu:<12} {b.clock_hz // 1_000_000:>4} "
              f"{b.sram_bytes // 1024:>8} {b.flash_size // 1024:>8}  0x{b.bootloader_pid:03x}  "
              f"{regions} / {b.qemu.machine} ({b.qemu.variant})")
    return 0
