"""`tinyml generate MODEL -o DIR`: the C library (model.h/.c, weights.c, kernels, plan.json)."""
from __future__ import annotations

import json
import os
import sys


def register(sub) -> None:
    p = sub.add_parser("generate", help="emit the C library for a model")
    p.add_argument("model", help="int8 .tflite file")
    p.add_argument("-o", "--out", required=True, help="output directory")
    p.add_argument("--board", default=None,
                   help="board name (see `tinyml boards`): an arena larger than its main RAM region is "
                        "split over its other regions (F4: CCM)")
    p.add_argument("--policy", default="best", choices=["best", "greedy"], help="placement: best of several orders (default) or TFLM-style greedy by size")
    p.add_argument("--no-fuse", dest="fuse", action="store_false",
                   help="lower every op on its own (no LayerNorm/attention/MLP fusion)")
    p.add_argument("--stream-input", action="store_true",
                   help="the patch-embedding conv reads the image in row stripes from "
                        "tinyml_read_input_rows(); the image never sits in the arena")
    p.add_argument("--rounding", choices=["tflite", "tflm"], default="tflite",
                   help="requantization rounding the kernels reproduce: tflite (default; TensorFlow "
                        "2.21's TFLite reference kernels, the project's oracle) or tflm (tflite_micro's "
                        "double rounding)")
    p.add_argument("--prefix", default="tinyml", metavar="NAME",
                   help="namespace of every generated C name: NAME_arena, NAME_run(), NAME_* macros, "
                        "CMake target NAME_model (default tinyml); distinct prefixes let several "
                        "models link into one program")
    p.add_argument("--eembc-id", default=None, metavar="ID",
                   help="MLPerf Tiny model id (kws01, vww01, ic01, ad01) this model runs as: written to "
                        "DIR/eembc.h, reported by `profile%%` of a serial firmware built from the library "
                        "and selecting the runner's input/result formats (default: none written)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from tinyml.codegen.emit import generate
    from tinyml.codegen.pipeline import arena_regions

    profile = None
    if args.eembc_id is not None:       # checked before anything is written
        from tinyml.codegen.importer import import_tflite
        from tinyml.eembc import check_id, resolve
        check_id(args.eembc_id, "tinyml generate")
        g = import_tflite(args.model)
        name = os.path.splitext(os.path.basename(args.model))[0]
        profile = resolve(name, g.t(g.inputs[0]).nbytes, g.t(g.outputs[0]).nbytes, args.eembc_id,
                          args.model)
    regions = ()
    if args.board:
        from tinyml.boards import load_board
        regions = arena_regions(load_board(args.board))
    gen = generate(args.model, args.out, policy=args.policy, fuse=args.fuse, stream_input=args.stream_input,
                   rounding=args.rounding, regions=regions, prefix=args.prefix)
    if profile is not None:
        from tinyml.eembc import HEADER, header_text
        with open(os.path.join(args.out, HEADER), "w") as f:
            f.write(header_text(profile, args.eembc_id))
        gen.files.append(os.path.join(args.out, HEADER))
    info = {"out_dir": args.out, "files": gen.files, "arena_bytes": gen.plan.arena_bytes,
            "lower_bound_bytes": gen.plan.lower_bound, "steps": len(gen.steps),
            "stream_input": gen.stream.to_dict() if gen.stream else None, "rounding": args.rounding,
            "regions": gen.plan.to_dict().get("regions", []), "prefix": args.prefix,
            "eembc": profile.as_dict() if profile else None}
    if args.json:
        print(json.dumps(info))
    else:
        print(f"wrote {args.out}: model.h model.c weights.c plan.json CMakeLists.txt library.json kernels/ "
              + ("eembc.h " if profile else "")
              + f"(arena {gen.plan.arena_bytes:,} B, lower bound {gen.plan.lower_bound:,} B)"
              + (f"; input streamed in {gen.stream.stripes} stripes of {gen.stream.stripe_bytes:,} B"
                 if gen.stream else ""), file=sys.stdout)
    return 0
