"""`tinyml search --board B --dataset digits|DIR|FILE.npz`: fit a tinyvit model to a board.

Every candidate's memory is the real planner's arena (exact); accuracy is
ranked by a one-shot supernet's inherited accuracy or a short-training proxy
(`--ranking`), the winner trained (fine-tuned) properly, exported,
re-planned and verified bit-exact. The search space follows the dataset's
input size, channels and classes. `--budget-seconds` bounds the whole run.
See memory_planner/search/run.py (docs/architecture.md, "Fit-to-board search").
"""
from __future__ import annotations

import json

from tinyml.commands._quiet import quiet_native_stderr

# `--ranking auto` picks the supernet when the budget leaves it time to train (below
# this, the supernet's tracing and a few hundred steps would take most of the ranking window)
SUPERNET_MIN_SECONDS = 300.0


def register(sub) -> None:
    p = sub.add_parser("search", help="search patch size, width, depth, heads, MLP ratio and "
                                      "low-rank ranks for the most accurate ViT that fits a board")
    p.add_argument("--board", default="stm32f746g-disco", help="board name (default stm32f746g-disco)")
    p.add_argument("--dataset", default="digits",
                   help="digits (28x28 MNIST), digits8 (8x8), a class-per-folder image tree "
                        "(DIR/<class>/*.png|jpg|bmp), an .npz with x (N,H,W[,C]) uint8 or float 0..1 "
                        "and y (N,) class ids 0..K-1, or with --task detect a YOLO folder "
                        "(DIR/images + DIR/labels/*.txt rows 'class cx cy w h' in 0..1)")
    p.add_argument("--input-size", default=None, metavar="HxW",
                   help="resize the dataset's images to HxW (square; default: the images' own size, "
                        "which must then be the same for all)")
    p.add_argument("--channels", type=int, default=None, choices=[1, 3],
                   help="1 (gray) or 3 (RGB); default: 3 if any image has colour")
    p.add_argument("--task", default="classify", choices=["classify", "detect"],
                   help="classify (default) or detect (ViT grid detector; YOLO-folder datasets)")
    p.add_argument("--verbose", action="store_true", help="let TensorFlow's own log lines through")
    p.add_argument("--budget-kb", type=float, default=None,
                   help="SRAM budget for the arena in KiB (default: the board's arena region "
                        "minus a 4 KiB stack reserve)")
    p.add_argument("--budgets", default=None, metavar="64K,128K,...",
                   help="several SRAM budgets for the arena in one run (K = 1024 B): one search per "
                        "budget sharing the planned sample and the supernet (trained once on the largest "
                        "budget's candidates) or the proxy trainings; one JSON / report / --plot with "
                        "every budget's winner and fixed-patch baseline")
    p.add_argument("--latency-budget-ms", type=float, default=None,
                   help="reject candidates whose instruction estimate exceeds this at the board clock")
    p.add_argument("--max-macs", type=int, default=None,
                   help="compute cap per inference (default 3,000,000; 60,000,000 for the 128x128 "
                        "digits-canvas sets; 0 = none): keeps proxy training and on-device latency bounded")
    p.add_argument("--budget-seconds", type=float, default=900.0,
                   help="wall-clock budget for the whole run: memory search (to 25%%), proxy "
                        "ranking (to 60%%), final training, export and bit-exact verify (default 900)")
    p.add_argument("--candidates", type=int, default=10000, help="candidates to plan (default 10000)")
    p.add_argument("--workers", type=int, default=2, help="processes for memory planning (default 2)")
    p.add_argument("--proxy-epochs", type=int, default=2, help="epochs of each proxy training")
    p.add_argument("--proxy-images", type=int, default=2000, help="training images per proxy run")
    p.add_argument("--proxy-min-steps", type=int, default=30,
                   help="optimizer steps each proxy run takes at least (more epochs on small datasets; "
                        "default 30, 0 = exactly --proxy-epochs)")
    p.add_argument("--ranking", default="auto", choices=["auto", "supernet", "proxy"],
                   help="how candidates' accuracy is ranked: supernet (one weight-sharing supernet trained "
                        "once, evolutionary search on inherited accuracy) or proxy (short training of each); "
                        f"auto (default): supernet for classifiers when --budget-seconds >= "
                        f"{SUPERNET_MIN_SECONDS:g}, else proxy")
    p.add_argument("--kendall", type=int, default=0, metavar="N",
                   help="with the supernet ranking: train N >= 10 sampled sub-networks stand-alone "
                        "(--kendall-epochs each) and report the Kendall tau of inherited vs stand-alone accuracy")
    p.add_argument("--kendall-epochs", type=int, default=3, help="epochs of each --kendall training (default 3)")
    p.add_argument("--rerank-top", type=int, default=8, metavar="M",
                   help="with the supernet ranking: fine-tune M candidates (each patch size's best by "
                        "inherited accuracy in turn) --rerank-steps steps each from their inherited weights and "
                        "rank them by the result "
                        "(default 8; 0 = inherited accuracy only)")
    p.add_argument("--rerank-init", default="inherited", choices=["inherited", "keras"],
                   help="where the re-rank's fine-tuning (and then the final training) starts: the supernet's "
                        "inherited weights (default) or Keras' initial weights")
    p.add_argument("--rerank-steps", type=int, default=200, metavar="K",
                   help="fine-tuning steps of each re-ranked candidate (default 200; 0 = no re-rank)")
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

    for name in ("candidates", "workers", "proxy_epochs", "proxy_images", "top_k", "final_epochs"):
        v = getattr(args, name)
        if v < 1:
            flag = "--" + name.replace("_", "-")
            raise TinymlError(f"{flag} must be >= 1, got {v}", flag, "use a positive integer")
    if args.budget_seconds <= 0:
        raise TinymlError("--budget-seconds must be > 0", "--budget-seconds", "e.g. 600")
    if args.kendall and not 10 <= args.kendall <= 200:
        raise TinymlError(f"--kendall must be 10..200, got {args.kendall}", "--kendall", "e.g. --kendall 10")
    for flag, v in (("--rerank-top", args.rerank_top), ("--rerank-steps", args.rerank_steps)):
        if v < 0:
            raise TinymlError(f"{flag} must be >= 0, got {v}", flag, "use 0 to turn the re-rank off")
    if args.kendall_epochs < 1:
        raise TinymlError("--kendall-epochs must be >= 1", "--kendall-epochs", "e.g. 2")
    if args.kendall and args.ranking == "proxy":
        raise TinymlError("--kendall measures the supernet ranking; --ranking is proxy", "--kendall",
                          "drop --ranking proxy (or pass --ranking supernet)")
    if args.ranking == "supernet" and args.task == "detect":
        raise TinymlError("the supernet ranking holds classifiers only", "--ranking",
                          "use --ranking proxy (or auto) with --task detect")
    size = parse_input_size(args.input_size)
    if args.budgets is not None:
        from tinyml.memory_planner.search.multi import parse_budgets
        if args.budget_kb is not None:
            raise TinymlError("--budgets and --budget-kb both give the SRAM budget", "--budgets",
                              "use one of them")
        if args.kendall:
            raise TinymlError("--kendall measures one budget's ranking", "--budgets / --kendall",
                              "measure tau with --budget-kb (one budget), or drop --kendall")
        parse_budgets(args.budgets)        # bad strings fail before any work
    with quiet_native_stderr(not args.verbose):
        return _run(args, size)


def parse_input_size(text: str | None) -> int | None:
    """`96x96` or `96` -> 96; non-square or malformed sizes are one error line."""
    from tinyml.errors import TinymlError
    if text is None:
        return None
    parts = text.lower().replace("\u00d7", "x").split("x")
    try:
        h, w = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (0, -1)
    except ValueError:
        h, w = 0, -1
    if h < 1 or w < 1:
        raise TinymlError(f"--input-size {text!r} is not HxW", "--input-size", "use e.g. 96x96")
    if h != w:
        raise TinymlError(f"--input-size {text} is not square; the ViT family takes square inputs",
                          "--input-size", f"use {min(h, w)}x{min(h, w)}")
    if not 4 <= h <= 512:
        raise TinymlError(f"--input-size {text} is outside 4x4..512x512", "--input-size", "use e.g. 96x96")
    return h


BUNDLED_TASKS = {"digits": "classify", "digits8": "classify", "digits-canvas": "classify",
                 "digits-canvas-det": "detect"}
DEFAULT_MAX_MACS = {"digits-canvas": 60_000_000, "digits-canvas-det": 60_000_000}


def _bundled(name: str) -> bool:
    return name in BUNDLED_TASKS


def _run(args, size: int | None) -> int:
    import sys

    from tinyml.errors import TinymlError
    from tinyml.memory_planner.search import report
    from tinyml.memory_planner.search.benchmark import benchmark
    from tinyml.memory_planner.search.budget import make_budget
    from tinyml.memory_planner.search.clock import RunClock
    from tinyml.memory_planner.search.executor import make_executor
    from tinyml.memory_planner.search.proxy import DataSpec, ProxySettings
    from tinyml.memory_planner.search.run import run_search
    from tinyml.memory_planner.search.space import space_for_data, space_for_dataset

    clock = RunClock(args.budget_seconds)      # the budget covers reading the dataset too
    ds = None
    if _bundled(args.dataset):
        if size is not None or args.channels is not None:
            raise TinymlError(f"--input-size and --channels do not apply to the bundled "
                              f"{args.dataset} set", "--dataset", "use them with your own folder or .npz")
        if args.task != BUNDLED_TASKS[args.dataset]:
            other = {"digits-canvas": "digits-canvas-det", "digits-canvas-det": "digits-canvas"}
            fix = (f"use --dataset {other[args.dataset]} for --task {args.task}" if args.dataset in other
                   else "use --dataset digits-canvas-det, or your own YOLO folder, with --task detect")
            raise TinymlError(f"the bundled {args.dataset} set is a {BUNDLED_TASKS[args.dataset]} task, "
                              f"not {args.task}", "--task", fix)
        space = space_for_dataset(args.dataset)
        data = DataSpec(args.dataset, seed=args.seed)
    else:
        from tinyml.tinyvit.data import load_dataset
        data = DataSpec(args.dataset, size, args.channels, args.seed)
        with clock.phase("data_load"):
            ds = load_dataset(data.source, data.size, data.channels, seed=args.seed)
        if ds.task != args.task:
            hint = ("pass --task detect for a YOLO folder" if ds.task == "detect" else
                    "a detection dataset is a YOLO folder: DIR/images + DIR/labels/*.txt")
            raise TinymlError(f"{args.dataset} is a {ds.task} dataset but --task is {args.task}",
                              "--dataset", hint)
        h, w, c = ds.input_shape
        data = DataSpec(args.dataset, h, c, args.seed)      # workers load exactly this shape
        space = space_for_data(h, c, max(2, len(ds.class_names)), args.task)
        print(f"dataset {ds.name}: {len(ds.train.x)} train / {len(ds.val.x)} val / {len(ds.test.x)} test "
              f"images, {h}x{w}x{c}, {len(ds.class_names)} classes ({args.task})", file=sys.stderr)
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
    max_macs = args.max_macs if args.max_macs is not None else DEFAULT_MAX_MACS.get(args.dataset, 3_000_000)
    budget = make_budget(args.board, args.budget_kb, args.latency_budget_ms,
                         max_macs if max_macs > 0 else None)
    proxy = ProxySettings(epochs=args.proxy_epochs, train_images=args.proxy_images,
                          val_images=max(100, min(500, args.proxy_images // 4)), seed=args.seed,
                          min_steps=max(0, args.proxy_min_steps))
    executor = make_executor(args.executor, args.ray_address)
    progress = sys.stderr.isatty() or not args.json
    ranking = args.ranking
    if ranking == "auto":
        ranking = ("supernet" if args.task == "classify" and (args.budget_seconds >= SUPERNET_MIN_SECONDS
                                                              or args.kendall) else "proxy")
    from tinyml.memory_planner.search.oneshot import SupernetSettings
    if args.budgets is not None:
        return _run_budgets(args, space, data, budget, proxy, executor, progress, ds, clock, ranking)
    res = run_search(space, data, budget, n_candidates=args.candidates,
                     workers=args.workers, budget_seconds=args.budget_seconds, proxy=proxy,
                     top_k=args.top_k, final_epochs=args.final_epochs,
                     baseline_patch=args.baseline_patch, out_dir=args.out, seed=args.seed,
                     executor=executor, train=not args.no_train, ds=ds, progress=progress,
                     clock=clock, ranking=ranking, kendall=args.kendall,
                     supernet=SupernetSettings(kendall_epochs=args.kendall_epochs, rerank_top=args.rerank_top,
                                               rerank_steps=args.rerank_steps,
                                               rerank_init=args.rerank_init))
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


def _run_budgets(args, space, data, budget, proxy, executor, progress, ds, clock, ranking) -> int:
    from tinyml.memory_planner.search import multi
    from tinyml.memory_planner.search.oneshot import SupernetSettings
    from tinyml.memory_planner.search.run import run_search
    budgets = multi.budgets_from(budget, multi.parse_budgets(args.budgets))
    if ds is None and not args.no_train:
        with clock.phase("data_load"):
            ds = data.load()        # once for every budget
    left = max(1.0, args.budget_seconds - clock.elapsed())     # reading the dataset counted
    res = multi.run_budgets(lambda **kw: run_search(space, data, **kw), budgets, left, executor=executor,
                            n_candidates=args.candidates, workers=args.workers, proxy=proxy,
                            top_k=args.top_k, final_epochs=args.final_epochs,
                            baseline_patch=args.baseline_patch, out_dir=args.out, seed=args.seed,
                            train=not args.no_train, ds=ds, progress=progress, ranking=ranking,
                            supernet=SupernetSettings(rerank_top=args.rerank_top, rerank_steps=args.rerank_steps,
                                               rerank_init=args.rerank_init))
    plotted = bool(args.plot and any(r.trained for r in res.results))
    if plotted:
        multi.plot_budgets(res, args.plot)
    if args.json:
        d = multi.budgets_json(res)
        if plotted:
            d["plot"] = args.plot
        print(json.dumps(d, default=_np_default))
    else:
        for line in multi.budgets_report(res):
            print(line)
        if plotted:
            print(f"plot written to {args.plot}")
    return 0


def _np_default(o):
    import numpy as np
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)
