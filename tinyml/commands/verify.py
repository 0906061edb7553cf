"""`tinyml verify MODEL`: generated C on the host vs. TFLite's reference, byte for byte."""
from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("verify", help="generate, host-compile and compare with the TFLite reference")
    p.add_argument("model", help="int8 .tflite file")
    p.add_argument("input_files", nargs="*", help="extra inputs: raw .bin or images (pixel bytes unchanged)")
    p.add_argument("--inputs", type=int, default=10, help="seeded random inputs to compare (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sanitize", action="store_true", help="build with -fsanitize=address,undefined")
    p.add_argument("--policy", default="best", choices=["best", "greedy"], help="placement: best of several orders (default) or TFLM-style greedy by size")
    p.add_argument("--oracle", choices=["auto", "tflite", "tflm"], default="auto",
                   help="reference runtime: TFLite reference kernels, TFLM, or auto (TFLite, else TFLM, "
                        "said on stderr)")
    p.add_argument("--rounding", choices=["tflite", "tflm"], default=None,
                   help="rounding of the generated C (default: the oracle's own: tflite for TFLite, "
                        "tflm for TFLM); an explicit choice that differs is reported, not corrected")
    p.add_argument("--trace", action="store_true",
                   help="also compare every intermediate tensor (first input) with TFLite's")
    p.add_argument("--no-fuse", dest="fuse", action="store_false",
                   help="lower every op on its own (no LayerNorm/attention/MLP fusion)")
    p.add_argument("--stream-input", action="store_true",
                   help="the patch-embedding conv reads the image in row stripes from "
                        "tinyml_read_input_rows(); the image never sits in the arena")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from tinyml.codegen.verify import verify

    bar = tqdm(total=args.inputs + len(args.input_files), desc="compare", unit="input", file=sys.stderr,
               disable=None, leave=False)

    def progress(done: int, total: int) -> None:
        bar.n = done
        bar.refresh()

    res = verify(args.model, count=args.inputs, seed=args.seed, extra_inputs=args.input_files,
                 sanitize=args.sanitize, policy=args.policy, progress=progress,
                 oracle=args.oracle, fuse=args.fuse, stream_input=args.stream_input, rounding=args.rounding)
    bar.close()
    for note in res.notes:
        print(f"note: {note}", file=sys.stderr)
    traced = None
    if args.trace:
        from tinyml.codegen.importer import import_tflite
        from tinyml.codegen.trace import trace_compare
        from tinyml.codegen.verify import random_inputs
        rec = random_inputs(import_tflite(args.model), 1, args.seed)[0]
        checks = trace_compare(args.model, rec, policy=args.policy, fuse=args.fuse)
        traced = {"tensors": len(checks), "mismatching_tensors": sum(1 for c in checks if c.mismatching),
                  "first_bad": next(({"op": c.op, "kind": c.kind, "tensor": c.tensor, "name": c.name,
                                      "mismatching_bytes": c.mismatching} for c in checks if c.mismatching), None)}
        if not args.json:
            for c in checks:
                if c.mismatching:
                    print(f"op {c.op} {c.kind} -> t{c.tensor} '{c.name}': {c.mismatching} of {c.bytes} bytes differ")
            print(f"trace: {traced['tensors']} intermediate tensors compared, "
                  f"{traced['mismatching_tensors']} mismatching")
    if args.json:
        d = res.to_dict()
        d["stream_input"] = bool(args.stream_input)
        if traced is not None:
            d["trace"] = traced
        print(json.dumps(d))
    else:
        if res.first_mismatch:
            m = res.first_mismatch
            print(f"first mismatch: input {m['record']} output {m['output']} byte {m['index']}: "
                  f"got {m['got']} want {m['want']}")
        print(f"{'BIT-EXACT' if res.bit_exact else 'MISMATCH'}: {res.inputs_compared} inputs compared "
              f"against {res.oracle} (C built with --rounding {res.rounding}), "
              f"{res.output_bytes_compared} output bytes, "
              f"{res.mismatching_bytes} mismatching bytes"
              + (" (input streamed in row stripes)" if args.stream_input else ""))
    ok = res.bit_exact and (traced is None or traced["mismatching_tensors"] == 0)
    return 0 if ok else 1
