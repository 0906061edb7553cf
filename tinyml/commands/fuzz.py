"""`tinyml fuzz`: mutate models and run inspect, plan, generate and verify on each (a dev command).

Every mutant is written to a file and each command runs as `tinyml.cli.main`
in a forked child with a timeout (tinyml.testing.fuzz_models.run_forked), so
a hang or a native crash is counted, not suffered. Outcomes: ok / error (one
line, non-zero exit) pass; traceback, signal, hang, not-bit-exact and
generated-code-fault fail the run (exit 1). Mutants that `inspect` accepts go
on to `verify --sanitize` (which generates, host-compiles with ASan/UBSan and
compares with TFLite byte for byte), up to --verify of them.
"""
from __future__ import annotations

import json
import os
import random
import sys
import tempfile
from dataclasses import dataclass

DEFAULT_MODELS = ("mlperf-tiny/ad01_int8.tflite", "mlperf-tiny/kws_ref_model.tflite",
                  "mlperf-tiny/pretrainedResnet_quant.tflite", "mlperf-tiny/vww_96_int8.tflite",
                  "tflm/person_detect.tflite", "vit/vit_relu_d64x4.tflite",
                  "mobilenetv2/mobilenetv2_a030_80_int8.tflite")


def register(sub) -> None:
    p = sub.add_parser("fuzz", help="(dev) mutate models; run inspect/plan/generate/verify on each mutant")
    p.add_argument("models", nargs="*", help=".tflite files to mutate (default: the shared reference models)")
    p.add_argument("--mutants", type=int, default=200, help="mutants through inspect and plan")
    p.add_argument("--generate", type=int, default=50, help="of those inspect accepts, how many go through "
                                                            "generate")
    p.add_argument("--verify", type=int, default=20, help="of those inspect accepts, how many go through "
                                                          "verify --sanitize")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per command before it counts as a hang")
    p.add_argument("--verify-timeout", type=float, default=300.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def shared_models() -> list[str]:
    root = os.environ.get("TINYML_SHARED_MODELS") or os.path.join(os.getcwd(), "..", "shared", "models")
    return [os.path.join(root, m) for m in DEFAULT_MODELS if os.path.isfile(os.path.join(root, m))]


def _bit_exact(stdout: str) -> bool:
    """False only when verify's JSON says the outputs differ."""
    try:
        d = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return True
    return d.get("bit_exact", True) is not False


@dataclass
class FuzzConfig:
    models: list[str]
    mutants: int
    verify: int
    seed: int = 0
    timeout: float = 60.0
    verify_timeout: float = 300.0
    generate: int = 50


def fuzz(cfg: FuzzConfig, progress=None):
    """Run the campaign; returns the Tally (tinyml.testing.fuzz_models)."""
    from tinyml.cli import main as cli_main
    from tinyml.codegen.importer import load_bytes
    from tinyml.errors import TinymlError
    from tinyml.testing.fuzz_models import OK, Mutator, Tally, classify, run_forked
    # imported once here, so each forked child starts with them loaded
    from tinyml.codegen import emit, lower, pipeline, verify  # noqa: F401

    if not cfg.models:
        raise TinymlError("no models to mutate", "tinyml fuzz",
                          "pass .tflite files, or set TINYML_SHARED_MODELS to the shared models folder")
    rng = random.Random(cfg.seed)
    mutators = [Mutator(os.path.basename(p), load_bytes(p), rng) for p in cfg.models]
    tally = Tally()
    verified = generated = 0
    with tempfile.TemporaryDirectory(prefix="tinyml-fuzz-") as tmp:
        path = os.path.join(tmp, "mutant.tflite")
        for n in range(cfg.mutants):
            mutant = mutators[n % len(mutators)].mutant()
            with open(path, "wb") as f:
                f.write(mutant.data)
            accepted = False
            for name, argv in (("inspect", ["inspect", path, "--json"]), ("plan", ["plan", path, "--json"])):
                code, sig, out, err, _ = run_forked(lambda argv=argv: cli_main(argv), cfg.timeout)
                outcome, detail = classify(code, sig, out, err)
                tally.add(name, outcome, mutant, detail)
                accepted = accepted or (name == "inspect" and outcome == OK and not detail)
            if accepted and generated < cfg.generate:
                generated += 1
                argv = ["generate", path, "-o", os.path.join(tmp, "gen")]
                code, sig, out, err, _ = run_forked(lambda argv=argv: cli_main(argv), cfg.timeout)
                outcome, detail = classify(code, sig, out, err)
                tally.add("generate", outcome, mutant, detail)
            if accepted and verified < cfg.verify:
                verified += 1
                argv = ["verify", path, "--sanitize", "--inputs", "3", "--json"]
                code, sig, out, err, _ = run_forked(lambda argv=argv: cli_main(argv), cfg.verify_timeout)
                outcome, detail = classify(code, sig, out, err, bit_exact=_bit_exact)
                tally.add("verify --sanitize", outcome, mutant, detail)
            if progress:
                progress(n + 1, cfg.mutants, tally)
    return tally


def run(args) -> int:
    models = [os.path.abspath(m) for m in args.models] or shared_models()
    cfg = FuzzConfig(models=models, mutants=args.mutants, verify=args.verify, seed=args.seed,
                     timeout=args.timeout, verify_timeout=args.verify_timeout, generate=args.generate)

    def progress(done: int, total: int, tally) -> None:
        if done % 50 == 0 or done == total:
            print(f"fuzz: {done}/{total} mutants, {tally.failures} failing outcome(s)", file=sys.stderr)

    tally = fuzz(cfg, progress)
    if args.json:
        print(json.dumps({"seed": args.seed, "models": models, "counts": tally.counts,
                          "failures": tally.failures, "examples": tally.examples}))
    else:
        print(tally.table())
        for cmd, ex in tally.examples.items():
            for line in ex:
                print(f"{cmd}: {line}")
    return 1 if tally.failures else 0
