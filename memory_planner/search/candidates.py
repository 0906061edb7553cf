"""Candidates: sampling configs, evaluating their exact memory in parallel, ranking fronts.

`evaluate_many` plans configs grouped by depth family (one process evaluates a
family, sharing its reference lowering) with one `CostModel`: warmed in this
process, then copied into each forked worker process (each worker's own
instance; nothing is shared or global).
"""
from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass
from typing import Callable

from tinyml.tinyvit.config import ViTConfig

from .cost import Cost, CostModel, config_key, skeleton_key
from .instructions import estimate_instructions
from .space import SearchSpace


@dataclass
class Candidate:
    config: ViTConfig
    cost: Cost
    proxy_accuracy: float | None = None
    proxy_seconds: float | None = None
    origin: str = "sample"        # sample | pareto | mutation | baseline
    reranked: bool = False        # proxy_accuracy is after fine-tuning (oneshot.rerank): ranks above the rest

    @property
    def instructions(self) -> int:
        return estimate_instructions(self.cost)

    def latency_ms(self, clock_hz: int | None) -> float:
        return self.instructions / clock_hz * 1e3 if clock_hz else float("nan")

    def summary(self, clock_hz: int | None = None) -> dict:
        c = self.config
        d = {"name": c.name, "patch_size": c.patch_size, "embed_dim": c.embed_dim, "depth": c.depth,
             "num_heads": c.num_heads, "mlp_ratio": c.mlp_ratio, "qkv_rank": c.qkv_rank,
             "proj_rank": c.proj_rank, "mlp_rank": c.mlp_rank, "patch_rank": c.patch_rank,
             "peak_sram_bytes": self.cost.arena_bytes, "lower_bound_bytes": self.cost.lower_bound_bytes,
             "flash_bytes": self.cost.flash_bytes, "weights_bytes": self.cost.weights_bytes,
             "macs": self.cost.macs, "params": self.cost.params,
             "instructions_estimate": self.instructions,
             "proxy_accuracy": self.proxy_accuracy, "reranked": self.reranked}
        if clock_hz:
            d["latency_ms_estimate"] = round(self.latency_ms(clock_hz), 3)
        return d



def families(configs: list[ViTConfig]) -> list[list[ViTConfig]]:
    """Configs grouped by everything but depth (first-seen order): one process evaluates a
    group, sharing its reference lowering (memory_planner.search.cost, depth families)."""
    groups: dict[tuple, list[ViTConfig]] = {}
    for c in configs:
        groups.setdefault(skeleton_key(c), []).append(c)
    return list(groups.values())


def _worker(model: CostModel, tasks, results) -> None:
    """A worker process: evaluates chunks of families with its own CostModel (a forked copy
    of the warmed one) until it reads None."""
    import gc
    import traceback
    # Planning allocates many short-lived objects while the lowering caches hold many
    # long-lived ones; the default collector thresholds rescan the latter constantly.
    gc.set_threshold(50_000, 50, 100)
    for k, chunk in iter(tasks.get, None):
        try:
            results.put((k, [[model.evaluate(c) for c in fam] for fam in chunk], None))
        except Exception as e:     # noqa: BLE001 (reported to the parent, which raises)
            results.put((k, None, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
            return


def evaluate_many(configs: list[ViTConfig], workers: int = 2, deadline: float | None = None,
                  progress: bool = True, model: CostModel | None = None,
                  on_progress: Callable[[int], None] | None = None) -> list[Candidate]:
    """Exact cost of each config with `model` (a new CostModel if None), on `workers`
    processes, stopping at `deadline` (time.time()).

    Candidates come back grouped by depth family (see `families`), in order. With
    workers > 1, the first 2 x workers families are evaluated here (warming `model`),
    the rest by forked processes, each evaluating with its own copy of `model`."""
    model = model if model is not None else CostModel()
    out: list[Candidate] = []
    t0 = time.time()
    step = max(1, len(configs) // 10)
    fams = families(configs)
    last = [0]

    def add(fam: list[ViTConfig], costs: list[Cost]) -> None:
        out.extend(Candidate(c, cost) for c, cost in zip(fam, costs))
        i = len(out)
        if on_progress is not None:
            on_progress(i)
        if progress and (i // step > last[0] // step or i == len(configs)):
            print(f"  memory: {i:,}/{len(configs):,} candidates planned ({time.time() - t0:.1f} s)",
                  file=sys.stderr, flush=True)
        last[0] = i

    if workers <= 1:
        for fam in fams:
            add(fam, [model.evaluate(c) for c in fam])
            if deadline and time.time() > deadline:
                break
        return out
    warm = fams[:2 * workers]
    for fam in warm:
        add(fam, [model.evaluate(c) for c in fam])
    rest = fams[len(warm):]
    if not rest:
        return out
    chunk = max(1, min(8, len(rest) // (workers * 8) or 1))
    chunks = [rest[i:i + chunk] for i in range(0, len(rest), chunk)]
    _in_processes(model, chunks, workers, add, deadline)
    return out


def _in_processes(model: CostModel, chunks: list[list[list[ViTConfig]]], workers: int,
                  add: Callable[[list[ViTConfig], list[Cost]], None], deadline: float | None) -> None:
    """Evaluate `chunks` on forked processes; `add` each family's costs in chunk order."""
    import gc
    import multiprocessing as mp
    import queue
    ctx = mp.get_context("fork")
    tasks, results = ctx.Queue(), ctx.Queue()
    for k, ch in enumerate(chunks):
        tasks.put((k, ch))
    for _ in range(workers):
        tasks.put(None)
    gc.collect()
    gc.freeze()               # inherited objects: never rescanned (nor copied on write by the GC)
    procs = [ctx.Process(target=_worker, args=(model, tasks, results), daemon=True)
             for _ in range(min(workers, len(chunks)))]
    try:
        for p in procs:
            p.start()
        done: dict[int, list[list[Cost]]] = {}
        nxt = 0
        while nxt < len(chunks):
            try:
                k, costs, err = results.get(timeout=1.0)
            except queue.Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"a memory-evaluation worker died (exit code {dead[0]})") from None
                continue
            if err is not None:
                raise RuntimeError(f"memory evaluation failed in a worker process: {err}")
            done[k] = costs
            while nxt in done:
                for fam, fc in zip(chunks[nxt], done.pop(nxt)):
                    add(fam, fc)
                nxt += 1
            if deadline and time.time() > deadline:
                break
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join()
        # tasks the stopped workers never read stay in the queue's feeder thread, blocked on a
        # full pipe; joined at exit it hung the process forever after a deadline-cut phase
        tasks.cancel_join_thread()
        tasks.close()
        results.close()
        gc.unfreeze()


def sample_configs(space: SearchSpace, n: int, rng: random.Random,
                   seen: set | None = None, all_depths: bool = True) -> list[ViTConfig]:
    """n distinct configs. With `all_depths`, each sampled config comes with every depth of
    the space (a depth family: SRAM barely depends on depth, flash and MACs grow with it,
    and the family shares one reference lowering)."""
    seen = set() if seen is None else seen
    out = []
    total = space.size()
    tries = 0
    while len(out) < min(n, total) and tries < n * 50:
        tries += 1
        base = space.sample(rng)
        for cfg in (space.with_depths(base) if all_depths else [base]):
            k = config_key(cfg)
            if k in seen or len(out) >= n:
                continue
            seen.add(k)
            out.append(cfg)
    return out


def pareto(cands: list[Candidate], better: Callable[[Candidate, Candidate], bool]) -> list[Candidate]:
    return [c for c in cands if not any(better(o, c) for o in cands if o is not c)]


def memory_front(cands: list[Candidate]) -> list[Candidate]:
    """Feasible candidates not beaten on both lower peak SRAM and more MACs (capacity)."""
    best: dict[int, Candidate] = {}
    for c in sorted(cands, key=lambda c: (c.cost.arena_bytes, -c.cost.macs, c.cost.flash_bytes)):
        best.setdefault(c.cost.arena_bytes, c)
    front, top = [], -1
    for arena in sorted(best):
        c = best[arena]
        if c.cost.macs > top:
            front.append(c)
            top = c.cost.macs
    return front


def spread(front: list[Candidate], k: int) -> list[Candidate]:
    """k candidates from the front, biased to the large end (closest to the budget)."""
    if len(front) <= k:
        return list(front)
    picks = []
    for i in range(k):
        # quadratic spacing: more picks near the top of the front
        f = 1 - (i / max(1, k - 1)) ** 2 * 0.9
        picks.append(front[min(len(front) - 1, int(round(f * (len(front) - 1))))])
    uniq = []
    for p in picks:
        if p not in uniq:
            uniq.append(p)
    return uniq


def is_baseline(cfg: ViTConfig, patch: int) -> bool:
    return (cfg.patch_size == patch and cfg.qkv_rank == cfg.proj_rank == cfg.mlp_rank
            == cfg.patch_rank == 0)


def default_baseline_patch(space: SearchSpace) -> int:
    """The patch size giving a grid closest to 7x7 (tinyvit's default digits model uses 4 on 28)."""
    return min(space.patch_sizes, key=lambda p: (abs(space.image_size // p - 7), p))

