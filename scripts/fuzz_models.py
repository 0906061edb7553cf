"""Model fuzzing campaign: mutants of the shared (or given) models through the CLI.

    .venv/bin/python scripts/fuzz_models.py --mutants 250 --generate 38 --verify 0 --seed 1
    .venv/bin/python scripts/fuzz_models.py MODEL.tflite ... --mutants 100 --verify 30 --json

Every mutant goes through `inspect` and `plan`; those `inspect` accepts go
through `generate` (up to --generate) and `verify --sanitize` (up to
--verify), each command as `tinyml.cli.main` in a forked child with a
timeout (tinyml/testing/fuzz_models.py). Prints the outcome table (or one JSON
object) and exits 1 if any traceback, signal, hang, sanitizer report or
non-bit-exact result was seen.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from tinyml.cli import main as cli_main
from tinyml.testing.fuzz_models import FuzzConfig, fuzz, shared_models


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", help=".tflite files to mutate (default: the shared reference models)")
    p.add_argument("--mutants", type=int, default=200, help="mutants through inspect and plan")
    p.add_argument("--generate", type=int, default=50, help="accepted mutants through generate")
    p.add_argument("--verify", type=int, default=20, help="accepted mutants through verify --sanitize")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per command before it counts as a hang")
    p.add_argument("--verify-timeout", type=float, default=300.0)
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = p.parse_args(argv)
    models = [os.path.abspath(m) for m in args.models] or shared_models()
    cfg = FuzzConfig(models=models, mutants=args.mutants, generate=args.generate, verify=args.verify,
                     seed=args.seed, timeout=args.timeout, verify_timeout=args.verify_timeout)

    def progress(done: int, total: int, tally) -> None:
        if done % 50 == 0 or done == total:      # per-command runs, so a stopped campaign still tells
            runs = ", ".join(f"{cmd} {sum(row.values())}" for cmd, row in tally.counts.items())
            print(f"fuzz: {done}/{total} mutants ({runs}), {tally.failures} failing outcome(s)", file=sys.stderr,
                  flush=True)

    tally = fuzz(cfg, cli_main, progress)
    if args.json:
        print(json.dumps({"seed": args.seed, "models": models, "counts": tally.counts,
                          "failures": tally.failures, "examples": tally.examples,
                          "refusals": tally.refusals}))
    else:
        print(tally.table())
        for cmd, examples in tally.examples.items():
            for line in examples:
                print(f"{cmd}: {line}")
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
