"""`tinyml search --board B --dataset digits`: fit a tinyvit model to a board.

Every candidate's memory is the real planner's arena (exact); accuracy is
ranked by a short-training proxy, the winner trained properly and exported.
See memory_planner/search/run.py (docs/architecture.md, "Fit-to-board search").
"""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("search", help="search patch size, width, depth, heads, MLP ratio and "
                                      "low-rank ranks for the most accurate ViT that fits a board")
    p.add_argument("--board", default="stm32f746g-disco", help="board name (default stm32f746g-disco)")
    p.add_argument("--dataset", default="digits", help="digits (28x28 MNIST) or digits8 (8x8)")
    p.add_argument("--budget-kb", type=float, default=None,
                   help="SRAM budget for the arena in KiB (default: the board's arena region "
                        "minus a 4 KiB stack reserve)")
    p.add_argument("--latency-budget-ms", type=float, default=None,
                   help="reject candidates whose instruction estimate exceeds this at the board clock")
    p.add_argument("--max-macs", type=int, default=3_000_000,
                   help="compute cap per inference (default 3,000,000; 0 = none): keeps proxy "
                        "training and on-device latency bounded")
    p.add_argument("--budget-seconds", type=float, default=900.0,
                   help="wall-clock budget for memory search + proxy training (default 900)")
    p.add_argument("--candidates", type=int, default=10000, help="candidates to plan (default 10000)")
    p.add_argument("--workers", type=int, default=2, help="processes for memory planning (default 2)")
    p.add_argument("--proxy-epochs", type=int, default=2, help="epochs of each proxy training")
    p.add_argument("--proxy-images", type=int, default=2000, help="training images per proxy run")
    p.add_argument("--top-k", type=int, default=6, help="Pareto candidates trained first")
    p.add_argument("--final-epochs", type=int, default=20, help="epochs for the chosen model")
    p.add_argument("--baseline-patch", type=int, default=None,
                   help="patch size of the fixed-patch full-rank baseline (default: grid nearest 7x7)")
    p.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="where proxy trainings run (ray: on ray.init(--ray-address))")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: start local)")
    p.add_argument("--no-train", action="store_true",
                   help="memory search only: print the feasible memory Pareto front")
    p.add_argument("--benchmark", action="store_true",
                   help="measure exact memory evaluation throughput over --candidates and exit")
    p.add_argument("--out", default="search_out", help="output folder (default search_out)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="F.png", help="PNG of accuracy vs peak SRAM with the budget")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    from tinyml.errors import TinymlError
    from tinyml.memory_planner.search import report
    from tinyml.memory_planner.search.benchmark import benchmark
    from tinyml.memory_planner.search.budget import make_budget
    from tinyml.memory_planner.search.executor import make_executor
    from tinyml.memory_planner.search.proxy import ProxySettings
    from tinyml.memory_planner.search.run import run_search
    from tinyml.memory_planner.search.space import space_for_dataset

    for name in ("candidates", "workers", "proxy_epochs", "proxy_images", "top_k", "final_epochs"):
        v = getattr(args, name)
        if v < 1:
            flag = "--" + name.replace("_", "-")
            raise TinymlError(f"{flag} must be >= 1, got {v}", flag, "use a positive integer")
    if args.budget_seconds <= 0:
        raise TinymlError("--budget-seconds must be > 0", "--budget-seconds", "e.g. 600")
    space = space_for_dataset(args.dataset)
    if args.benchmark:
        rep = benchmark(space, args.candidates, args.workers, args.seed)
        if args.json:
            print(json.dumps(rep))
        else:
            m = rep["machine"]
            print(f"{rep['candidates_evaluated']:,} candidates planned exactly in "
                  f"{rep['memory_eval_seconds']:.1f} s on {rep['workers']} worker(s) "
                  f"({rep['ms_per_candidate']:.2f} ms each, {rep['candidates_per_second']:.0f}/s; "
                  f"mean {rep['mean_ops']:.0f} ops per graph)")
            print(f"CPU time {rep['cpu_seconds']:.1f} s ({rep['cpu_ms_per_candidate']:.2f} ms per "
                  f"candidate): {rep['idle_machine_seconds_estimate']:.1f} s on {rep['workers']} idle cores")
            print(f"machine: {m['cpus']} CPUs, {m['processor']}, {m['platform']}, "
                  f"load average after {m['loadavg_after']}")
        return 0
    budget = make_budget(args.board, args.budget_kb, args.latency_budget_ms,
                         args.max_macs if args.max_macs and args.max_macs > 0 else None)
    proxy = ProxySettings(epochs=args.proxy_epochs, train_images=args.proxy_images,
                          val_images=max(100, min(500, args.proxy_images // 4)), seed=args.seed)
    executor = make_executor(args.executor, args.ray_address)
    res = run_search(space, args.dataset, budget, n_candidates=args.candidates,
                     workers=args.workers, budget_seconds=args.budget_seconds, proxy=proxy,
                     top_k=args.top_k, final_epochs=args.final_epochs,
                     baseline_patch=args.baseline_patch, out_dir=args.out, seed=args.seed,
                     executor=executor, train=not args.no_train)
    if args.plot and res.trained:
        report.plot(res, args.plot)
    d = report.to_json(res)
    if args.plot and res.trained:
        d["plot"] = args.plot
    if args.json:
        print(json.dumps(d, default=_np_default))
    else:
        for line in report.human_report(res):
            print(line)
        if args.plot and res.trained:
            print(f"plot written to {args.plot}")
    return 0


def _np_default(o):
    import numpy as np
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)
