"""`tinyml bench`: the benchmark table against TFLM (markdown and JSON).

For each model: our planned arena and its lower bound, TFLM's arena for the
same file (measured with the tflite_micro package), the ratio, weights, and
-- with --emulate -- instructions per inference on QEMU beside the TFLM +
CMSIS-NN figures from ../shared/models/README.md, and the linked flash split into
parameters / tables / op params / code (firmware.mapfile.flash_split) with the
constants' ratio to the parameters beside issue 15's target and the bit-exact
requantization floor (codegen.quant.requant_floor_bytes). The
machine is noted.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

from tinyml import paths

# TFLM + CMSIS-NN instructions/inference on QEMU mps2-an500 -icount shift=0,
# from ../shared/models/README.md (measured by the project, 2026-11-26).
TFLM_CMSIS_INSTRUCTIONS = {
    "vww_96_int8": 24_025_520,
    "pretrainedResnet_quant": 30_026_280,
    "kws_ref_model": 7_643_160,
    "ad01_int8": 583_272,
    "vit_relu_d64x4": 52_122_848,
    "mobilenetv2_a030_80_int8": 36_692_800,
}

DEFAULT_BOARD = "stm32f746g-disco"
# Shared models whose weights exceed the default board's 1 MB of flash run on a
# 2 MB part unless --board is given (MobileNetV2 0.30: 1.7 MB of weights).
LARGE_MODEL_BOARD = {"mobilenetv2_a030_80_int8": "nucleo-h743zi"}

DEFAULT_MODELS = [
    "mlperf-tiny/vww_96_int8.tflite",
    "mlperf-tiny/pretrainedResnet_quant.tflite",
    "mlperf-tiny/kws_ref_model.tflite",
    "mlperf-tiny/ad01_int8.tflite",
    "tflm/person_detect.tflite",
    "vit/vit_relu_d64x4.tflite",
    "mobilenetv2/mobilenetv2_a030_80_int8.tflite",
]


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmark table vs TFLM (arena, and instructions with --emulate)")
    p.add_argument("models", nargs="*", help="models (default: the shared reference models and tinyvit's default)")
    p.add_argument("--board", default=None,
                   help=f"board for every model (default {DEFAULT_BOARD}; MobileNetV2 0.30 on nucleo-h743zi)")
    p.add_argument("--policy", default="best", choices=["best", "greedy"])
    p.add_argument("--emulate", action="store_true", help="also build and run each model in QEMU")
    p.add_argument("--markdown", metavar="F.md", help="also write the markdown table to a file")
    p.add_argument("--rounding", choices=["tflite", "tflm"], default=None,
                   help="with --emulate: passed to `tinyml build` (default: each self-test build follows "
                        "its oracle, tflm for models TFLite refuses)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _models(args) -> list[str]:
    if args.models:
        return args.models
    out = [os.path.join(paths.shared_models(), m) for m in DEFAULT_MODELS]
    try:
        from tinyml.tinyvit.pretrained import default_classifier_path
        out.append(default_classifier_path())
    except Exception:
        pass
    return [m for m in out if os.path.exists(m)]


def _emulate(model: str, board: str, work: str, rounding: str | None = None) -> dict:
    tinyml = [sys.executable, "-m", "tinyml.cli"]
    fw = os.path.join(work, os.path.splitext(os.path.basename(model))[0])
    b = subprocess.run(tinyml + ["build", model, "--board", board, "-o", fw, "--json"]
                       + (["--rounding", rounding] if rounding else []), capture_output=True, text=True)
    if b.returncode != 0:
        return {"error": (b.stderr.strip().splitlines() or ["build failed"])[-1]}
    try:
        built = json.loads(b.stdout)
    except json.JSONDecodeError:
        built = {}
    for note in built.get("notes", []):
        print(f"note: {os.path.basename(model)}: {note}", file=sys.stderr)
    e = subprocess.run(tinyml + ["emulate", fw, "--json"], capture_output=True, text=True)
    try:
        res = json.loads(e.stdout)
    except json.JSONDecodeError:
        res = {"error": (e.stderr.strip().splitlines() or ["emulation failed"])[-1]}
    res["oracle"], res["rounding"], res["notes"] = built.get("oracle"), built.get("rounding"), built.get("notes", [])
    from tinyml.errors import TinymlError
    from tinyml.firmware.mapfile import build_flash_split
    try:
        res["flash"] = build_flash_split(fw)
    except TinymlError as exc:
        res.setdefault("error", exc.line())
    return res


def run(args) -> int:
    import tempfile

    from tinyml.codegen.pipeline import plan_model
    from tinyml.errors import TinymlError

    rows = []
    work = tempfile.mkdtemp(prefix="tinyml-bench-")
    models = _models(args)
    for i, m in enumerate(models, 1):
        name = os.path.splitext(os.path.basename(m))[0]
        print(f"[{i}/{len(models)}] {name}", file=sys.stderr, flush=True)
        board = args.board or LARGE_MODEL_BOARD.get(name, DEFAULT_BOARD)
        row: dict = {"model": name, "path": m, "board": board}
        t0 = time.time()
        try:
            rep, _ = plan_model(m, board, policy=args.policy, compare_tflm=True)
        except TinymlError as exc:
            row["error"] = exc.line()
            rows.append(row)
            continue
        row.update({"arena_bytes": rep.arena_bytes, "lower_bound_bytes": rep.lower_bound_bytes,
                    "tflm_arena_bytes": rep.tflm_arena_bytes, "ratio_vs_tflm": rep.ratio_vs_tflm,
                    "weights_bytes": rep.weights_bytes, "plan_seconds": rep.plan_seconds,
                    "total_seconds": round(time.time() - t0, 2),
                    "fits": rep.fits, "stage_depth": rep.stage["depth"] if rep.stage else None})
        try:                         # the image read row by row instead of held (--stream-input)
            srep, _ = plan_model(m, board, policy=args.policy, stream_input=True)
            row["streamed_arena_bytes"] = srep.arena_bytes
        except TinymlError:
            row["streamed_arena_bytes"] = None
        if args.emulate:
            emu = _emulate(m, board, work, args.rounding)
            row["instructions_per_inference"] = emu.get("instructions_per_inference")
            row["emulator_passed"] = emu.get("passed")
            row["peak_sram_bytes_measured"] = emu.get("peak_sram_bytes_measured")
            row["oracle"], row["rounding"] = emu.get("oracle"), emu.get("rounding")
            if emu.get("notes"):
                row["notes"] = emu["notes"]
            if "error" in emu:
                row["emulate_error"] = emu["error"]
            row["flash"] = emu.get("flash")
            ref = TFLM_CMSIS_INSTRUCTIONS.get(name)
            row["tflm_cmsis_instructions"] = ref
            if ref and row["instructions_per_inference"]:
                row["instructions_ratio"] = row["instructions_per_inference"] / ref
        rows.append(row)
    machine = {"platform": platform.platform(), "python": platform.python_version(),
               "cpu_count": os.cpu_count(), "board": args.board or DEFAULT_BOARD, "policy": args.policy}
    md = markdown(rows, machine, args.emulate)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md)
    if args.json:
        print(json.dumps({"machine": machine, "rows": rows}))
    else:
        print(md)
    bad = failures(rows)
    for line in bad:
        print(f"error: {line}", file=sys.stderr)
    return 1 if bad else 0


def _self_test(row: dict) -> str:
    """The emulated self-test's verdict: every vector equal to the oracle's bytes, or not."""
    if row.get("emulate_error"):
        return "error"
    return {True: "bit-exact", False: "FAILED"}.get(row.get("emulator_passed"), "n/a")


def failures(rows: list[dict]) -> list[str]:
    """One line per model that could not be planned, built or emulated, or whose self-test failed."""
    out = []
    for r in rows:
        if "error" in r:
            out.append(f"{r['model']}: {r['error']}")
        elif r.get("emulate_error"):
            out.append(f"{r['model']}: {r['emulate_error']}")
        elif r.get("emulator_passed") is False:
            out.append(f"{r['model']}: the emulated self-test did not match the oracle")
    return out


def _kb(v) -> str:
    return "n/a" if v is None else f"{v:,}"


def _x(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}x"


def markdown(rows: list[dict], machine: dict, emulate: bool) -> str:
    head = ("| model | arena (B) | lower bound (B) | streamed input (B) | TFLM arena (B) | ours / TFLM | weights (B) "
            "| import+lower+plan (s) |")
    sep = "|---|---:|---:|---:|---:|---:|---:|---:|"
    if emulate:
        head += (" instructions/inference | TFLM+CMSIS-NN | ratio | self-test | flash: parameters (B) | tables (B) |"
                 " op params (B) | code (B) | constants / parameters | target | floor |")
        sep += "---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    lines = [f"Benchmark on {machine['platform']}, {machine['cpu_count']} CPUs; board {machine['board']}, "
             f"policy {machine['policy']}. TFLM arena from the tflite_micro package's RecordingMicroAllocator.",
             "", head, sep]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['error']} |")
            continue
        ratio = f"{r['ratio_vs_tflm']:.2f}x" if r.get("ratio_vs_tflm") else "n/a"
        model = r["model"] if r.get("board", machine["board"]) == machine["board"] else f"{r['model']} ({r['board']})"
        line = (f"| {model} | {_kb(r['arena_bytes'])} | {_kb(r['lower_bound_bytes'])} | "
                f"{_kb(r.get('streamed_arena_bytes'))} | {_kb(r['tflm_arena_bytes'])} | {ratio} | {_kb(r['weights_bytes'])} | {r['plan_seconds']:.3f} |")
        if emulate:
            ir = f"{r['instructions_ratio']:.2f}x" if r.get("instructions_ratio") else "n/a"
            line += (f" {_kb(r.get('instructions_per_inference'))} | {_kb(r.get('tflm_cmsis_instructions'))} | {ir} |"
                     f" {_self_test(r)} |")
            fl = r.get("flash") or {}
            cr, tg, fr = (fl.get(k) for k in ("constants_over_parameters", "target", "floor_over_parameters"))
            line += (f" {_kb(fl.get('parameters'))} | {_kb(fl.get('tables'))} | {_kb(fl.get('op_params'))} |"
                     f" {_kb(fl.get('code'))} | {_x(cr)} | {_x(tg, 2)} | {_x(fr)} |")
        lines.append(line)
    return "\n".join(lines) + "\n"
