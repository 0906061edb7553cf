"""`tinyml plan MODEL --board B`: memory plan, lower bound, fit verdict, TFLM baseline."""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("plan", help="plan a model's memory and check it fits a board")
    p.add_argument("model", help="int8 .tflite file")
    p.add_argument("--board", default="stm32f746g-disco", help="board name (default stm32f746g-disco)")
    p.add_argument("--policy", default="best", choices=["best", "greedy"], help="placement: best of several orders (default) or TFLM-style greedy by size")
    p.add_argument("--compare-tflm", action="store_true", help="also measure TFLM's arena for the same file")
    p.add_argument("--plot", metavar="F.png", help="write a PNG timeline of the arena")
    p.add_argument("--stream-input", action="store_true",
                   help="the patch-embedding conv reads the image in row stripes from "
                        "tinyml_read_input_rows(); the image never sits in the arena")
    p.add_argument("--weights-region", default=None, metavar="REGION",
                   help="judge the weights against the board's external flash (stm32f746g-disco: qspi)")
    p.add_argument("--no-stage", action="store_true",
                   help="run a CNN's first layers layer by layer (no FUSED_STAGE row pipeline)")
    p.add_argument("--stage-depth", type=int, default=None, metavar="N",
                   help="force the FUSED_STAGE depth (default: the depth that plans smallest)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from tinyml.codegen.pipeline import CompileOptions, plan_model
    from tinyml.memory_planner.report import Accounting

    opts = CompileOptions(stage=not args.no_stage, stage_depth=args.stage_depth)
    rep, plan = plan_model(args.model, args.board, policy=args.policy, compare_tflm=args.compare_tflm,
                          stream_input=args.stream_input, weights_region=args.weights_region, options=opts)
    if args.plot:
        from tinyml.memory_planner.plot import plot_plan
        plot_plan(plan, args.plot, title=f"{args.model.split('/')[-1]} on {args.board}",
                  budget=rep.sram_budget_bytes)
    if args.json:
        d = rep.to_dict()
        if args.plot:
            d["plot"] = args.plot
        print(json.dumps(d))
    else:
        print(f"model {args.model}  board {args.board}  policy {rep.policy}  ({rep.steps} steps, {rep.buffers} buffers)")
        print(f"arena          {rep.arena_bytes:>10,} B   (lower bound {rep.lower_bound_bytes:,} B, "
              f"gap {rep.arena_bytes - rep.lower_bound_bytes:,} B)")
        for r in rep.regions:
            print(f"  {r['symbol']:<18} {r['arena_bytes']:>10,} B   in {r['name']} ({r['capacity_bytes']:,} B free; "
                  f"lower bound {r['lower_bound_bytes']:,} B, {r['buffers']} buffers)")
        if rep.stream_input:
            print(f"  input streamed in stripes of {rep.stream_stripe_bytes:,} B; with the whole image "
                  f"in the arena: {rep.full_image_arena_bytes:,} B")
            extra = rep.arena_bytes - (rep.full_image_arena_bytes or rep.arena_bytes)
            if extra > 0:
                print(f"  note: streaming costs {extra:,} B more than keeping the whole input in the arena "
                      "on this model: drop --stream-input")
        if rep.stage:
            st = rep.stage
            cands = ", ".join(f"{d}: {b:,}" for d, b in sorted(st["arenas"].items()))
            what = f"first {st['depth']} layers as one FUSED_STAGE" if st["depth"] else "layer by layer"
            print(f"  stage: {what} (of a {st['chain']}-layer chain); arena per depth {{{cands}}} B "
                  "(0 = layer by layer; rings, nothing recomputed)")
            if st.get("resident_arenas"):
                res = st["resident_arenas"]
                print(f"  without streaming: best {min(res.values()):,} B (layer by layer {res.get(0, 0):,} B)")
        if rep.tflm_arena_bytes is not None:
            print(f"TFLM arena     {rep.tflm_arena_bytes:>10,} B   (head {rep.tflm_head_bytes:,} B); "
                  f"ours is {rep.ratio_vs_tflm:.2f}x TFLM")
        elif args.compare_tflm:
            print("TFLM arena     n/a (TFLM cannot run this model)")
        for line in Accounting(**rep.accounting).lines():
            print(line)
        for line in rep.fit_detail:
            print("  " + line)
        print("FITS" if rep.fits else "DOES NOT FIT")
        if args.plot:
            print(f"plot written to {args.plot}")
    return 0 if rep.fits in (True, None) else 3
