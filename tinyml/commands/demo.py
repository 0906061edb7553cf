"""`tinyml demo`: the embedded default model, end to end, with a human report.

inspect -> plan (vs TFLM) -> generate + host verify against TFLite ->
build firmware -> run its self-test on the emulated board (when the ARM
toolchain and QEMU are installed and the build/emulate commands exist).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

from tinyml.errors import TinymlError


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the embedded default model end to end")
    p.add_argument("--model", default=None, help="a .tflite to use instead of the shipped default")
    p.add_argument("--board", default="stm32f746g-disco")
    p.add_argument("--inputs", type=int, default=20, help="random inputs for host verification")
    p.add_argument("-o", "--out", default="out/demo", help="output directory (default out/demo)")
    p.add_argument("--no-emulate", action="store_true", help="stop after host verification")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def default_model() -> str:
    try:
        from tinyml.tinyvit.pretrained import default_classifier_path
        path = default_classifier_path()
    except Exception as exc:  # pragma: no cover - depends on the shipped files
        raise TinymlError(f"the shipped default model is missing ({exc})",
                          fix="pass --model MODEL.tflite or reinstall tinyml") from None
    if not os.path.exists(path):
        raise TinymlError(f"the shipped default model is missing: {path}",
                          fix="pass --model MODEL.tflite or reinstall tinyml")
    return path


def _say(args, msg: str) -> None:
    print(msg, file=sys.stderr if args.json else sys.stdout, flush=True)


def run(args) -> int:
    from tinyml.codegen.verify import verify
    from tinyml.codegen.pipeline import plan_model
    from tinyml.commands.inspect import inspect_model

    model = args.model or default_model()
    report: dict = {"model": model, "board": args.board}
    t0 = time.time()
    _say(args, f"[1/4] inspect {model}")
    info = inspect_model(model)
    report["ops"] = info["op_counts"]
    report["param_bytes"] = info["param_bytes"]
    _say(args, "      " + ", ".join(f"{k} x{v}" for k, v in info["op_counts"].items())
         + f"; {info['param_bytes']:,} parameter bytes")
    if info["unsupported_ops"]:
        raise TinymlError(f"unsupported ops: {', '.join(info['unsupported_ops'])}", where=model)

    _say(args, f"[2/4] plan for {args.board}")
    rep, plan = plan_model(model, args.board, compare_tflm=True)
    report["plan"] = rep.to_dict()
    tflm = f"; TFLM arena {rep.tflm_arena_bytes:,} B -> ours {rep.ratio_vs_tflm:.2f}x" if rep.tflm_arena_bytes else ""
    _say(args, f"      arena {rep.arena_bytes:,} B (lower bound {rep.lower_bound_bytes:,} B){tflm}; "
               f"weights {rep.weights_bytes:,} B; {'fits' if rep.fits else 'DOES NOT FIT'} {args.board}")
    os.makedirs(args.out, exist_ok=True)
    plot = os.path.join(args.out, "plan.png")
    from tinyml.memory_planner.plot import plot_plan
    plot_plan(plan, plot, title=f"{os.path.basename(model)} on {args.board}", budget=rep.sram_budget_bytes)
    report["plot"] = plot

    _say(args, f"[3/4] generate C, compile on the host, compare {args.inputs} inputs with TFLite")
    res = verify(model, count=args.inputs, work_dir=None)
    report["verify"] = res.to_dict()
    _say(args, f"      {'BIT-EXACT' if res.bit_exact else 'MISMATCH'}: {res.inputs_compared} inputs vs "
               f"{res.oracle}, {res.mismatching_bytes} mismatching bytes")
    from tinyml.codegen.emit import generate
    generate(model, os.path.join(args.out, "model"))
    report["generated"] = os.path.join(args.out, "model")

    emu = None
    if args.no_emulate:
        _say(args, "[4/4] emulation skipped (--no-emulate)")
    elif not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")):
        _say(args, "[4/4] emulation skipped: arm-none-eabi-gcc or qemu-system-arm not installed "
                   "(run scripts/install.sh)")
    else:
        _say(args, f"[4/4] build firmware for {args.board} and run its self-test in QEMU")
        tinyml = [sys.executable, "-m", "tinyml.cli"]
        fw = os.path.join(args.out, "firmware")
        b = subprocess.run(tinyml + ["build", model, "--board", args.board, "-o", fw],
                           capture_output=True, text=True)
        if b.returncode != 0:
            _say(args, "      build: " + (b.stderr.strip().splitlines() or ["failed"])[-1])
        else:
            e = subprocess.run(tinyml + ["emulate", fw, "--json"], capture_output=True, text=True)
            try:
                emu = json.loads(e.stdout)
            except json.JSONDecodeError:
                emu = {"passed": False, "error": (e.stderr.strip().splitlines() or ["no output"])[-1]}
            report["emulate"] = emu
            if emu.get("passed"):
                _say(args, f"      self-test PASSED on {emu.get('machine', 'qemu')}: "
                           f"{emu.get('instructions_per_inference', 0):,} instructions/inference, "
                           f"measured peak SRAM {emu.get('peak_sram_bytes_measured', 0):,} B")
            else:
                _say(args, f"      self-test FAILED: {emu.get('error', emu)}")
    ok = bool(res.bit_exact and (emu is None or emu.get("passed")))
    report["ok"] = ok
    report["seconds"] = round(time.time() - t0, 1)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"demo {'OK' if ok else 'FAILED'} in {report['seconds']} s; outputs in {args.out}/ "
              f"(plan.png, model/, firmware/)")
    return 0 if ok else 1
