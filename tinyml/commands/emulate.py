"""`tinyml emulate DIR [--emulator qemu|renode] [--json] [--timeout S]`: run a
built firmware's self-test on an emulator and report pass/fail, instructions
per inference and measured peak SRAM."""
from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("emulate", help="run the firmware self-test in QEMU or Renode")
    p.add_argument("dir", help="directory written by `tinyml build`")
    p.add_argument("--emulator", choices=["qemu", "renode"], default="qemu")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds before the run is failed")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--show-output", action="store_true", help="echo the firmware console")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from firmware.emulate import emulate

    res = emulate(args.dir, args.emulator, args.timeout,
                  progress=lambda m: print(m, file=sys.stderr))
    if args.json:
        d = res.to_json()
        d.pop("output")
        if not res.passed:
            d["output_tail"] = res.output.replace("\r", "").splitlines()[-15:]
        print(json.dumps(d))
    else:
        if args.show_output or not res.passed:
            sys.stdout.write(res.output.replace("\r", ""))
        print(f"{res.emulator} {res.machine}: {res.note}")
        for v in res.vectors:
            print(f"  vector {v.index}: {'PASS' if v.passed else 'FAIL'} {v.detail}".rstrip())
        if res.instructions_per_inference is not None:
            print(f"  instructions per inference: {res.instructions_per_inference:,} "
                  f"(-icount shift=0, SysTick; instructions, not cycles)")
        if res.peak_sram_bytes_measured is not None:
            print(f"  measured peak SRAM: {res.peak_sram_bytes_measured:,} B = static {res.static_ram_bytes:,}"
                  f" + stack {res.stack_used_bytes:,} (of {res.stack_bytes:,}) + arena"
                  f" {res.arena_used_bytes:,} (of {res.arena_bytes:,})")
        if res.flash_bytes is not None:
            print(f"  flash: {res.flash_bytes:,} B")
        if res.fault:
            print(f"  {res.fault}")
        if res.error:
            print(f"  error: {res.error}")
        print("PASSED" if res.passed else "FAILED")
    return 0 if res.passed else 1
