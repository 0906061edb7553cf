"""Fit-to-board search over the tinyvit family.

1. Memory: sample candidates from the search space (patch size, width, depth,
   heads, MLP ratio, qkv/proj/mlp/patch-embedding ranks; each sampled config
   with every depth of the space, a "depth family" that shares one reference
   lowering) and evaluate each one exactly with the real lowering and planner
   (cost.CostModel; candidates.evaluate_many on `workers` processes). A
   candidate is feasible when its planned arena fits the SRAM budget (board
   arena region minus the stack reserve, or --budget-kb), its flash (weights +
   generated constants + runtime estimate) fits the board's flash, and, if
   asked, its latency estimate (instructions.py) fits (budget.py).
2. Accuracy: an honest cheap proxy. Feasible candidates on the (peak SRAM,
   MACs) Pareto front, spread over the SRAM axis, are trained briefly on a
   subset of the dataset (proxy.py: tinyvit.train.fit, `proxy_epochs` epochs); their
   validation accuracy ranks them. While time remains, the best are mutated
   (evolution), the children evaluated exactly and the feasible ones trained.
   The output says which estimate ranked the candidates.
3. The winner is trained properly (final.py: tinyvit.train.train), exported to int8
   .tflite, and the exported file is planned again through the importer: its
   arena must equal the fast path's.
4. Baseline: the best full-rank model with a fixed patch size that fits the
   same budget, chosen and trained the same way.

Candidate training goes through an `Executor` (executor.py: single machine by
default, `RayExecutor` on a Ray cluster). Output: report.py. Keras and
TensorFlow are imported only inside the functions that train.
"""
from __future__ import annotations

import os
import random
import time

from tinyml.errors import TinymlError

from .budget import Budget
from .candidates import (Candidate, default_baseline_patch, evaluate_many, is_baseline, memory_front,
                         sample_configs, spread)
from .cost import CostModel, config_key
from .executor import Executor
from .final import check_export, final_train
from .proxy import ProxyJob, ProxySettings, load_dataset
from .report import SearchResult, log, no_fit_error
from .space import SearchSpace


def run_search(space: SearchSpace, dataset: str, budget: Budget, n_candidates: int = 10000,
               workers: int = 2, budget_seconds: float = 900.0, proxy: ProxySettings | None = None,
               top_k: int = 6, final_epochs: int = 20, baseline_patch: int | None = None,
               out_dir: str = "search_out", seed: int = 0, executor: Executor | None = None,
               train: bool = True) -> SearchResult:
    t_start = time.time()
    rng = random.Random(seed)
    proxy = proxy or ProxySettings(seed=seed)
    executor = executor or Executor()
    deadline_mem = t_start + max(10.0, 0.25 * budget_seconds)

    # -- memory: exact evaluation of the sampled candidates ---------------
    seen: set = set()
    configs = sample_configs(space, n_candidates, rng, seen)
    if baseline_patch is None:
        baseline_patch = default_baseline_patch(space)
    if baseline_patch not in space.patch_sizes:
        raise TinymlError(f"baseline patch {baseline_patch} is not in the search space's patch sizes "
                          f"{list(space.patch_sizes)}", "--baseline-patch", "pick one of those")
    base_cfgs = [c for c in space.full_rank(baseline_patch) if config_key(c) not in seen]
    cap = max(20, n_candidates // 10)
    if len(base_cfgs) > cap:      # plan all of the baseline space when it is small next to the search
        base_cfgs = random.Random(seed + 2).sample(base_cfgs, cap)
    for c in base_cfgs:
        seen.add(config_key(c))
    log(f"search space: {space.size():,} configs; planning {len(configs):,} sampled + "
        f"{len(base_cfgs)} fixed-patch full-rank (patch {baseline_patch}) on {workers} worker(s)")
    t0 = time.time()
    todo = configs + base_cfgs
    random.Random(seed + 1).shuffle(todo)     # a deadline cut keeps both kinds
    model = CostModel()
    cands = evaluate_many(todo, workers=workers, deadline=deadline_mem, model=model)
    mem_s = time.time() - t0
    log(f"memory: {len(cands):,} candidates planned exactly in {mem_s:.1f} s "
        f"({mem_s / max(1, len(cands)) * 1e3:.2f} ms each)")
    by_key = {config_key(c.config): c for c in cands}
    feasible = [c for c in cands if not budget.check(c)]
    res = SearchResult(dataset=dataset, budget=budget, candidates_evaluated=len(cands),
                       memory_eval_seconds=round(mem_s, 3), feasible=len(feasible),
                       ranking="", trained=[], front=[], search_space_size=space.size())
    if not feasible:
        raise no_fit_error(cands, budget, space, model)
    res.front = memory_front(feasible)
    base_feasible = [c for c in feasible if is_baseline(c.config, baseline_patch)]
    log(f"feasible: {len(feasible):,} ({budget.description}); memory Pareto front: "
        f"{len(res.front)} candidates; fixed-patch full-rank feasible: {len(base_feasible)}")
    if not train:
        res.ranking = "MACs (no training: --no-train); memory exact"
        return res

    # -- accuracy: proxy training, Pareto picks then evolution -------------
    res.ranking = proxy.describe(dataset)
    job = ProxyJob(dataset, proxy)
    trained: dict[tuple, Candidate] = {}
    deadline_proxy = t_start + 0.75 * budget_seconds

    def train_batch(batch: list[Candidate], origin: str) -> None:
        batch = [c for c in batch if config_key(c.config) not in trained]
        for c, (acc, secs) in zip(batch, executor.map(job, [c.config for c in batch])):
            c.proxy_accuracy, c.proxy_seconds, c.origin = round(acc, 4), round(secs, 1), origin
            trained[config_key(c.config)] = c
            log(f"  proxy {origin:9s} {c.config.name:40s} SRAM {c.cost.arena_bytes:>8,} B  "
                f"acc {acc:.4f}  ({secs:.0f} s)")

    first = spread(res.front, top_k)
    base_front = memory_front(base_feasible) if base_feasible else []
    base_picks = spread(base_front, max(2, top_k // 2)) if base_front else []
    train_batch(first, "pareto")
    train_batch(base_picks, "baseline")
    gen = 0
    while time.time() < deadline_proxy:
        gen += 1
        parents = sorted(trained.values(), key=lambda c: -(c.proxy_accuracy or 0))[:3]
        kids = []
        for p in parents:
            for _ in range(20):
                k = space.mutate(p.config, rng)
                key = config_key(k)
                if key in trained:
                    continue
                cand = by_key.get(key) or Candidate(k, model.evaluate(k))
                by_key[key] = cand
                res.candidates_evaluated += 1 if key not in seen else 0
                seen.add(key)
                if not budget.check(cand):
                    kids.append(cand)
                    break
        if not kids:
            break
        avg = sum(c.proxy_seconds or 0 for c in trained.values()) / max(1, len(trained))
        room = int((deadline_proxy - time.time()) / max(1.0, avg))
        if room < 1:
            break
        train_batch(kids[:room], f"gen{gen}")
    res.trained = sorted(trained.values(), key=lambda c: c.cost.arena_bytes)

    # -- final training of the winner and of the baseline ------------------
    ranked = sorted(res.trained, key=lambda c: (-(c.proxy_accuracy or 0), c.cost.arena_bytes))
    res.chosen = ranked[0]
    base_ranked = [c for c in ranked if is_baseline(c.config, baseline_patch)]
    res.baseline = base_ranked[0] if base_ranked else None
    os.makedirs(out_dir, exist_ok=True)
    ds = load_dataset(dataset, seed)
    res.chosen_metrics, res.chosen_tflite = final_train(res.chosen, ds, final_epochs, out_dir, seed,
                                                        "chosen")
    res.chosen_plan_check = check_export(res.chosen, res.chosen_tflite)
    if res.baseline is not None:
        if res.baseline is res.chosen:
            res.baseline_metrics, res.baseline_tflite = res.chosen_metrics, res.chosen_tflite
            res.notes.append("the chosen model is itself full-rank with the baseline patch size")
        else:
            res.baseline_metrics, res.baseline_tflite = final_train(res.baseline, ds, final_epochs,
                                                                    out_dir, seed, "baseline")
    return res
