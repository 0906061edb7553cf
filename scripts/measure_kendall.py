"""Kendall tau of the supernet ranking, measured in separable halves.

    python scripts/measure_kendall.py keras --out K/ --epochs 15     # N references, Keras (once; resumable)
    python scripts/measure_kendall.py supernet --out K/ --ref keras_e15_s0.json \
        [--steps 1000 | --seconds 1380] [--sandwich params|extremes] [--balance] [--distill 0 --shared]
        [--finetune-steps 0,50,150] [--checkpoints 100,1000]
    python scripts/measure_kendall.py scratch --out K/ --ref keras_e15_s0.json --finetune-steps 50,150

All modes plan the same feasible set (digits 28x28, F746 arena, 3M MACs,
`--candidates` sampled with `--seed`) and take the same N picks
(`oneshot.spread_picks`). `keras` trains each pick alone as `tinyml train`
would (`tinyvit.model.build_model` + `tinyvit.train.fit`, `--epochs`, same seed,
batch, learning rate and shift augmentation) and writes K/keras_e<E>_s<seed>.json
(per-epoch validation accuracy; the reference is the mean of the last 3).
`standalone` is the older reference: each pick trained in the supernet's own
step from the supernet's initial weights (slices of tensors initialised for the
largest width: narrow networks start too small; see the README). `supernet`
trains one supernet with the given recipe, reads every pick's inherited
accuracy and writes K/supernet_<tag>.json with `kendall_tau` (tau-b against
K/<--ref>) and the inherited accuracies, so one run can be scored against other
references later; with `--finetune-steps 0,50,150` each pick is also fine-tuned 50 and
150 steps from its inherited weights (`tinyvit.train.finetune`, constant `--finetune-lr`)
and scored, and `--checkpoints 100,1000` scores the picks at those steps inside the one
training schedule (`points`: per step, taus over all pairs and split within / across
patch sizes). `scratch` is the control: the same fine-tuning from Keras' initial weights.
Validation: the first `--val` validation images, both sides.
TF runs on one thread.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["standalone", "supernet", "keras", "scratch"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--candidates", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--net-seed", type=int, default=None,
                    help="supernet / scratch mode: seed of the supernet's (or Keras') initial weights, its batches "
                         "and the fine-tuning (default --seed); the picks and references stay --seed's")
    ap.add_argument("--epochs", type=int, default=3, help="stand-alone epochs")
    ap.add_argument("--steps", type=int, default=None, help="supernet steps (default: SupernetSettings)")
    ap.add_argument("--distill", type=float, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--shared", action="store_true", help="one block set for every patch size")
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--tag", default="default")
    ap.add_argument("--sandwich", default=None, choices=["extremes", "params"])
    ap.add_argument("--seconds", type=float, default=None,
                    help="supernet training time (the cosine schedule fits it; --steps caps the steps)")
    ap.add_argument("--balance", action="store_true", help="draw towers by running loss")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--ref", default="standalone.json", help="reference file in --out")
    ap.add_argument("--finetune-steps", default="0",
                    help="supernet mode: comma-separated K; each pick is also fine-tuned K steps from its "
                         "inherited weights (tinyvit.train.finetune) and scored (0: inherited only)")
    ap.add_argument("--finetune-lr", type=float, default=1e-3)
    ap.add_argument("--checkpoints", default="",
                    help="supernet mode: comma-separated steps at which the picks are also scored "
                         "(inside the one cosine schedule over --steps)")
    a = ap.parse_args(argv)
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from dataclasses import replace

    from tinyml.memory_planner.search.budget import make_budget
    from tinyml.memory_planner.search.candidates import evaluate_many, sample_configs
    from tinyml.memory_planner.search.oneshot import (SupernetSettings, kendall_tau, spread_picks,
                                                      train_supernet)
    from tinyml.memory_planner.search.proxy import DataSpec
    from tinyml.memory_planner.search.space import space_for_dataset
    from tinyml.tinyvit.supernet import Supernet, SupernetSpace

    os.makedirs(a.out, exist_ok=True)
    space = space_for_dataset("digits")
    budget = make_budget("stm32f746g-disco", None, None, 3_000_000)
    cands = evaluate_many(sample_configs(space, a.candidates, random.Random(a.seed), set()), workers=1,
                          progress=False)
    feasible = [c for c in cands if not budget.check(c)]
    picks = spread_picks(feasible, a.n, random.Random(a.seed + 4))
    ds = DataSpec("digits", seed=a.seed).load()
    xv, yv = ds.val.x[:a.val], ds.val.y[:a.val]
    settings = SupernetSettings()
    net_seed = a.seed if a.net_seed is None else a.net_seed
    t0 = time.monotonic()
    if a.mode == "keras":
        # references independent of the supernet code: tinyvit.train.fit on build_model(cfg),
        # AdamW, cosine schedule, same lr / batch / shift; the reference accuracy is the mean
        # validation accuracy of the last 3 epochs (the per-epoch history is kept)
        import keras

        from tinyml.tinyvit.data import Dataset, Split
        from tinyml.tinyvit.model import build_model
        from tinyml.tinyvit.train import fit
        dsv = Dataset(ds.name, ds.task, ds.train, Split(xv, yv), ds.test, ds.class_names)
        path = os.path.join(a.out, f"keras_e{a.epochs}_s{a.seed}.json")
        rows = json.load(open(path))["picks"] if os.path.exists(path) else {}
        for c in picks:
            if c.config.name in rows:
                continue
            t = time.monotonic()
            keras.backend.clear_session()
            m = build_model(c.config)
            hist = fit(m, c.config, dsv, a.epochs, lr=settings.lr, batch=settings.batch, patience=10 ** 6,
                       max_shift=2, seed=a.seed, quiet=True, progress=False)
            accs = [round(h["val_accuracy"], 4) for h in hist]
            rows[c.config.name] = {"standalone_accuracy": round(float(sum(accs[-3:]) / 3), 4),
                                   "history": accs, "seconds": round(time.monotonic() - t, 1),
                                   "params": c.cost.params, "macs": c.cost.macs,
                                   "peak_sram_bytes": c.cost.arena_bytes}
            print(c.config.name, rows[c.config.name], file=sys.stderr, flush=True)
            with open(path, "w") as f:
                json.dump({"picks": rows, "epochs": a.epochs, "seed": a.seed, "trainer": "keras fit",
                           "train_images": len(ds.train.x), "val_images": len(xv)}, f, indent=1)
        print(json.dumps({"done": len(rows), "seconds": round(time.monotonic() - t0, 1)}))
        return 0
    if a.mode == "scratch":
        # the control for the re-rank: the same fine-tuning (tinyvit.train.finetune, same steps,
        # learning rate, batch, seed) from Keras' initial weights instead of inherited ones
        import keras

        from tinyml.tinyvit.model import build_model
        from tinyml.tinyvit.train import finetune
        ref = json.load(open(os.path.join(a.out, a.ref)))["picks"]
        ks = sorted({int(k) for k in a.finetune_steps.split(",") if k.strip()} - {0})
        names = [c.config.name for c in picks if c.config.name in ref]
        refs = [ref[k]["standalone_accuracy"] for k in names]
        ft: dict[int, dict] = {k: {} for k in ks}
        for c in picks:
            keras.utils.set_random_seed(net_seed)
            accs = finetune(build_model(c.config), c.config, ds.train.x, ds.train.y, xv, yv, max(ks), at=tuple(ks),
                            lr=a.finetune_lr, batch=settings.batch, max_shift=2, seed=net_seed)
            for k in ks:
                ft[k][c.config.name] = round(accs[k], 4)
        out = {"finetuned": {str(k): v for k, v in ft.items()},
               "tau_finetuned": {str(k): _split(names, [v[n] for n in names], refs) for k, v in ft.items()},
               "finetune": {"steps": ks, "lr": a.finetune_lr, "batch": settings.batch, "start": "keras init"},
               "net_seed": net_seed,
               "reference": a.ref, "val_images": len(xv), "seconds": round(time.monotonic() - t0, 1)}
        path = os.path.join(a.out, f"scratch_{a.tag}.json")
    elif a.mode == "standalone":
        net = Supernet(SupernetSpace.covering([c.config for c in feasible]), seed=a.seed)
        steps = a.epochs * math.ceil(len(ds.train.x) / settings.batch)
        rows = {}
        for c in picks:
            t = time.monotonic()
            net.reset(a.seed)
            net.train(ds.train.x, ds.train.y, lambda r, cfg=c.config: [cfg], steps, lr=settings.lr,
                      batch=settings.batch, max_shift=2, seed=a.seed)
            rows[c.config.name] = {"standalone_accuracy": round(net.accuracy(c.config, xv, yv), 4),
                                   "seconds": round(time.monotonic() - t, 1), "params": c.cost.params,
                                   "macs": c.cost.macs, "peak_sram_bytes": c.cost.arena_bytes}
            print(c.config.name, rows[c.config.name], file=sys.stderr, flush=True)
        out = {"picks": rows, "epochs": a.epochs, "steps_each": steps, "train_images": len(ds.train.x),
               "val_images": len(xv), "feasible": len(feasible), "seconds": round(time.monotonic() - t0, 1)}
        path = os.path.join(a.out, "standalone.json")
    else:
        ref = json.load(open(os.path.join(a.out, a.ref)))["picks"]
        kw = {k: v for k, v in (("steps", a.steps), ("distill", a.distill), ("warmup", a.warmup), ("lr", a.lr),
                                           ("sandwich", a.sandwich))
              if v is not None}
        settings = replace(settings, shared_blocks=a.shared, balance=a.balance, **kw)
        deadline = time.monotonic() + a.seconds if a.seconds else float("inf")
        ks = sorted({int(k) for k in a.finetune_steps.split(",") if k.strip()} - {0})
        names = [c.config.name for c in picks if c.config.name in ref]
        refs = [ref[k]["standalone_accuracy"] for k in names]
        marks = {int(k) for k in a.checkpoints.split(",") if k.strip()}
        points: list[dict] = []
        paused = [0.0]      # seconds spent scoring inside training (not training time)

        def score_picks(net, step: int) -> dict:
            t = time.monotonic()
            inh = {c.config.name: round(net.accuracy(c.config, xv, yv), 4) for c in picks}
            row = {"step": step, "train_seconds": round(t - t0 - paused[0], 1), "inherited": inh,
                   "tau_inherited": _split(names, [inh[k] for k in names], refs)}
            if ks:
                from tinyml.tinyvit.train import finetune
                ft: dict[int, dict] = {k: {} for k in ks}
                for c in picks:
                    accs = finetune(net.keras_model(c.config), c.config, ds.train.x, ds.train.y, xv, yv,
                                    max(ks), at=(0, *ks), lr=a.finetune_lr, batch=settings.batch,
                                    max_shift=2, seed=net_seed)
                    for k in ks:
                        ft[k][c.config.name] = round(accs[k], 4)
                    # the Keras model's accuracy before fine-tuning must be the inherited one
                    row.setdefault("keras_minus_inherited", {})[c.config.name] = round(accs[0] - inh[c.config.name], 4)
                row["finetuned"] = {str(k): v for k, v in ft.items()}
                row["tau_finetuned"] = {str(k): _split(names, [v[n] for n in names], refs) for k, v in ft.items()}
            row["score_seconds"] = round(time.monotonic() - t, 1)
            paused[0] += time.monotonic() - t
            points.append(row)
            print(json.dumps({"step": step, "train_seconds": row["train_seconds"],
                              "tau_inherited": row["tau_inherited"]["all"],
                              "tau_finetuned": {k: v["all"] for k, v in row.get("tau_finetuned", {}).items()},
                              "score_seconds": row["score_seconds"]}), file=sys.stderr, flush=True)
            return row
        holder: list = []      # the supernet under training (train_supernet's on_net)

        def on_step(i: int) -> None:
            if i % 100 == 0:
                print("step", i, round(time.monotonic() - t0), file=sys.stderr, flush=True)
            if i in marks and i < settings.steps and holder:
                score_picks(holder[0], i)
        net, info = train_supernet(feasible, ds, settings, deadline=deadline, clock=time.monotonic,
                                   seed=net_seed, on_step=on_step, on_net=holder.append)
        info["seconds_without_scoring"] = round(info["seconds"] - paused[0], 1)
        last = score_picks(net, info["steps"])
        # every pick's inherited accuracy is kept, so the run can be scored against other references
        inh_all = last["inherited"]
        out = {"kendall_tau": last["tau_inherited"]["all"], "n": len(names), "supernet": info,
               "val_images": len(xv), "reference": a.ref, "inherited": inh_all,
               "finetune": {"steps": ks, "lr": a.finetune_lr, "batch": settings.batch}, "net_seed": net_seed,
               "points": points,
               "samples": [{"name": k, "inherited_accuracy": inh_all[k],
                            "standalone_accuracy": ref[k]["standalone_accuracy"]} for k in names]}
        path = os.path.join(a.out, f"supernet_{a.tag}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({k: v for k, v in out.items() if k not in ("picks", "samples", "points", "finetuned")}))
    return 0


def _split(names: list[str], scores: list[float], refs: list[float]) -> dict:
    """Kendall tau-b over all pairs, and tau-a over the pairs within one patch size and
    across patch sizes (their concordant / discordant counts): which pairs the ranking gets."""
    from tinyml.memory_planner.search.oneshot import kendall_tau
    patch = [n.split("_")[1] for n in names]
    out: dict = {"all": round(kendall_tau(scores, refs), 4)}
    for part, same in (("within", True), ("cross", False)):
        c = d = 0
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                if (patch[i] == patch[j]) == same:
                    s = (scores[i] - scores[j]) * (refs[i] - refs[j])
                    c, d = c + (s > 0), d + (s < 0)
        out[part] = {"tau": round((c - d) / max(1, c + d), 4), "concordant": c, "discordant": d}
    return out


if __name__ == "__main__":
    sys.exit(main())
