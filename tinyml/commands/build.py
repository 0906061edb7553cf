"""`tinyml build MODEL --board B -o DIR`: generate the C library, the firmware
project (linker script, board header, Makefile, test vectors) and compile it
with arm-none-eabi-gcc into DIR/firmware.elf/.bin/.hex/.map."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from tinyml.boards import list_boards


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("build", help="generate and compile firmware for a board")
    p.add_argument("model", help="int8 .tflite model")
    p.add_argument("--board", required=True, help=f"one of: {', '.join(list_boards())}")
    p.add_argument("-o", "--out", required=True, help="output directory")
    p.add_argument("--mode", choices=["selftest", "serial"], default="selftest",
                   help="selftest: embedded vectors, PASS/FAIL; serial: MLPerf Tiny runner protocol")
    p.add_argument("--emulator-variant", action="store_true",
                   help="also build the QEMU MPS2 variant (DIR/mps2) for Cortex-M7/L4 boards")
    p.add_argument("--vectors", type=int, default=3, help="number of self-test vectors (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random test inputs")
    p.add_argument("--stack-bytes", type=int, default=8192, help="stack reserve (default 8192)")
    p.add_argument("--stream-input", action="store_true",
                   help="the patch-embedding conv reads the image in row stripes from "
                        "tinyml_read_input_rows(); the image never sits in the arena")
    p.add_argument("--rounding", choices=["tflite", "tflm"], default=None,
                   help="rounding of the generated kernels: tflite (TFLite's reference kernels) or tflm "
                        "(tflite_micro). Default tflite; a self-test build follows its oracle (tflm for "
                        "models TFLite refuses, said on stderr)")
    p.add_argument("--weights-region", default=None, metavar="REGION",
                   help="link the weights into the board's external memory-mapped flash (stm32f746g-disco: "
                        "qspi, at 0x90000000); it must be mapped before the model runs, and QEMU cannot run it")
    p.add_argument("--prefix", default="tinyml", metavar="NAME",
                   help="namespace of every generated C name: NAME_arena, NAME_run(), NAME_* macros, "
                        "CMake target NAME_model (default tinyml); distinct prefixes let several "
                        "models link into one program")
    p.add_argument("--eembc-id", default=None, metavar="ID",
                   help="serial builds: the MLPerf Tiny model id `profile%%` reports (kws01, vww01, ic01, "
                        "ad01), which also sets the runner's input/result formats; default: recognised for "
                        "the four reference models; `none`: raw int8 input, every output value back")
    p.add_argument("--eembc-energy", nargs="?", const="D7", default=None, metavar="PIN",
                   help="serial builds: MLPerf Tiny energy mode, `timestamp%%` pulls PIN (a GPIO such as "
                        "PF13; default D7: the board's Arduino D7) low for 5 us instead of printing; "
                        "console at the runner's 9600 baud")
    p.add_argument("--no-stage", action="store_true",
                   help="run a CNN's first layers layer by layer (no FUSED_STAGE row pipeline)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tinyml.firmware.build import build_firmware

    res = build_firmware(args.model, args.board, args.out, mode=args.mode,
                         emulator_variant=args.emulator_variant, stack_bytes=args.stack_bytes,
                         num_vectors=args.vectors, seed=args.seed, stream_input=args.stream_input,
                         rounding=args.rounding, weights_region=args.weights_region, prefix=args.prefix,
                         eembc_id=args.eembc_id, eembc_energy_pin=args.eembc_energy, stage=not args.no_stage)
    if args.json:
        print(json.dumps({"ok": True, "out_dir": res.out_dir, "board": res.board, "mode": res.mode,
                          "model": res.model, "vectors": res.vectors, "oracle": res.oracle,
                          "rounding": res.rounding, "notes": res.notes, "eembc": res.eembc,
                          "elf": res.elf("native"), "clock": res.clock, "accounting": res.sizes["native"].accounting,
                          "variants": {v: {"elf": res.elf(v), **dataclasses.asdict(s)} for v, s in res.sizes.items()}}))
        return 0
    out = sys.stdout
    for v, s in res.sizes.items():
        where = res.elf(v)
        print(f"{res.board} firmware ({v} memory map): {where}", file=out)
        print("\n".join(s.lines()), file=out)
        c = res.clock.get(v)
        if c:
            print(f"  clock  {c['tree']}; {c['fallback_rule']}" if c["setup"]
                  else f"  clock  {c['target_hz'] // 1_000_000} MHz: {c['reason']}", file=out)
    print(f"self-test vectors: {res.vectors}" + (f" (expected outputs from {res.oracle})" if res.oracle else "")
          + (f"; kernels built with --rounding {res.rounding}" if res.rounding else ""), file=out)
    return 0
