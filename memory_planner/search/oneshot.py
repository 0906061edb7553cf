"""Supernet ranking: one weight-sharing supernet trained once, an evolutionary search
under the exact constraints with inherited accuracy as fitness, and the Kendall tau
of that ranking against stand-alone training.

- `train_supernet`: `tinyvit.supernet.Supernet` covering the feasible candidates,
  trained with the sandwich rule on them (`sandwich`: per step one patch size, its
  most- and fewest-parameter feasible configs, two random; all within the board's budget).
  By default each patch size has its own tower of blocks (`SupernetSettings.shared_blocks`
  False): with one block set shared by patch 2 (196 tokens) and patch 14 (4 tokens) the
  inherited ranking was no better than chance (scripts/measure_kendall.py, README).
- `evolve`: population of feasible candidates; each generation the better half
  are parents, children come from mutation (`SearchSpace.mutate`) and crossover
  (`SearchSpace.crossover`); each child is planned exactly (`CostModel`: arena from
  the real planner, flash with tables, instruction estimate at the board clock)
  and checked against the `Budget`; only feasible children get a fitness (their
  inherited validation accuracy).
- `measure_kendall`: N feasible candidates spread over patch sizes and sizes
  (`spread_picks`) trained stand-alone (each alone from
  fresh weights, same seed, epochs, batch and learning rate, in the supernet's
  traced step after a reset), Kendall tau-b between their inherited and
  stand-alone accuracies.

TensorFlow is imported inside tinyvit.supernet's functions only.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable

import numpy as np

from tinyml.tinyvit.supernet import Supernet, SupernetSpace

from .budget import Budget
from .candidates import Candidate
from .cost import CostModel, config_key
from .space import SearchSpace


@dataclass
class SupernetSettings:
    steps: int = 3000             # at most; the phase deadline usually ends training first
    batch: int = 64
    lr: float = 2e-3
    population: int = 16
    children: int = 16            # per generation, half mutation, half crossover
    generations: int = 200
    val_images: int = 1000        # inherited accuracy is measured on these validation images
    kendall_epochs: int = 3       # stand-alone training of each Kendall sample
    distill: float = 0.0          # in-place distillation weight (Supernet.train)
    warmup: int = 0               # steps training only the largest sub-network first
    shared_blocks: bool = False   # one block set for every patch size, or a tower per patch size
    sandwich_lowrank: bool = False  # the sandwich also trains each patch size's largest low-rank config

    def describe(self, dataset: str) -> str:
        how = "blocks shared by every patch size" if self.shared_blocks else "one block tower per patch size"
        kd = f", in-place distillation {self.distill:g}" if self.distill else ""
        return (f"one-shot supernet: inherited validation accuracy ({dataset}, up to {self.val_images} "
                f"validation images) of sub-networks of one weight-sharing supernet ({how}) trained with "
                f"the sandwich rule{kd}; evolutionary search (population {self.population}, {self.children} "
                f"children per generation by mutation and crossover) under the exact constraints")


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-b of two equally long score lists (ties in either list allowed)."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError("kendall_tau needs two lists of the same length >= 2")
    conc = disc = ties_a = ties_b = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif da == db:
                conc += 1
            else:
                disc += 1
    denom = math.sqrt((conc + disc + ties_a) * (conc + disc + ties_b))
    return (conc - disc) / denom if denom else float("nan")


def _rank_sum(cfg) -> int:
    return cfg.qkv_rank + cfg.proj_rank + cfg.mlp_rank + cfg.patch_rank


def sandwich(feasible: list[Candidate], lowrank: bool = False) -> Callable[[np.random.Generator], list]:
    """Per step, for one patch size drawn uniformly: the feasible config with that patch and
    the most parameters (the widest / deepest / full-rank end of the space), the one with the
    fewest, and two random feasible configs of uniformly drawn patch sizes.

    By parameters, not MACs, and per patch size: on 28x28 digits the most-MACs feasible
    config was a width-16 patch-2 network (196 tokens), so the widest and deepest blocks were
    trained by random draws only, and the patch-4 embedding got 7 % of the passes."""
    by_patch: dict[int, list] = {}
    for c in sorted(feasible, key=lambda c: (c.cost.params, c.cost.macs, c.config.name)):
        by_patch.setdefault(c.config.patch_size, []).append(c.config)
    patches = sorted(by_patch)
    # `lowrank`: also the patch size's largest low-rank config (highest ranks, then most
    # parameters): the high factor columns were otherwise trained by random draws only
    top_lr = {p: max(((_rank_sum(c), i, c) for i, c in enumerate(g) if _rank_sum(c)), default=(0, 0, None))[2]
              for p, g in by_patch.items()}

    def sample(rng: np.random.Generator) -> list:
        p = patches[int(rng.integers(len(patches)))]
        group = by_patch[p]
        rand = [by_patch[patches[int(i)]] for i in rng.integers(0, len(patches), 2)]
        extra = [top_lr[p]] if lowrank and top_lr[p] is not None else []
        return [group[-1], group[0]] + extra + [g[int(rng.integers(len(g)))] for g in rand]
    return sample


def train_supernet(feasible: list[Candidate], ds, settings: SupernetSettings, deadline: float,
                   clock: Callable[[], float], seed: int = 0,
                   on_step: Callable[[int], None] | None = None) -> tuple[Supernet, dict]:
    space = SupernetSpace.covering([c.config for c in feasible], shared_blocks=settings.shared_blocks)
    net = Supernet(space, seed=seed)
    max_shift = 2 if space.image_size >= 16 else 0
    info = net.train(ds.train.x, ds.train.y, sandwich(feasible, settings.sandwich_lowrank), settings.steps, deadline=deadline,
                     lr=settings.lr, batch=settings.batch, max_shift=max_shift, seed=seed, clock=clock,
                     on_step=on_step, distill=settings.distill, warmup=settings.warmup)
    info["space"] = {"patch_sizes": list(space.patch_sizes), "max_dim": space.max_dim,
                     "max_depth": space.max_depth, "max_hidden": space.max_hidden,
                     "max_rank": space.max_rank, "max_patch_rank": space.max_patch_rank,
                     "shared_blocks": space.shared_blocks}
    info["recipe"] = {"distill": settings.distill, "warmup": settings.warmup, "lr": settings.lr,
                      "batch": settings.batch}
    info["parameters"] = int(sum(int(np.prod(v.shape)) for v in net.vars.values()))
    return net, info


@dataclass
class Evolution:
    scored: dict[tuple, Candidate]   # every candidate given a fitness (all feasible)
    rejected: int                    # children the exact constraints rejected
    generations: int
    planned: int                     # children planned exactly here (not in the memory phase)
    uncovered: int = 0               # children outside the supernet (skipped)


def score(net: Supernet, c: Candidate, x: np.ndarray, y: np.ndarray, origin: str) -> Candidate:
    c.proxy_accuracy = round(net.accuracy(c.config, x, y), 4)
    c.origin = origin
    return c


def evolve(space: SearchSpace, net: Supernet, model: CostModel, budget: Budget, by_key: dict[tuple, Candidate],
           seeds: list[Candidate], x: np.ndarray, y: np.ndarray, rng: random.Random, deadline: float,
           clock: Callable[[], float], settings: SupernetSettings,
           on_score: Callable[[Candidate], None] | None = None) -> Evolution:
    """Evolutionary search from `seeds` (feasible); fitness = inherited accuracy on (x, y)."""
    scored: dict[tuple, Candidate] = {}
    for c in seeds:
        if budget.check(c):
            raise ValueError(f"seed {c.config.name} does not fit the budget")
        scored[config_key(c.config)] = score(net, c, x, y, "init")
        if on_score:
            on_score(c)
    pop = sorted(scored.values(), key=_rank)[:settings.population]
    rejected = planned = gen = uncovered = 0
    while gen < settings.generations and clock() < deadline:
        gen += 1
        parents = pop[:max(2, len(pop) // 2)]
        kids = []
        for j in range(settings.children):
            if j % 2 == 0:
                kid = space.mutate(rng.choice(parents).config, rng)
            else:
                a, b = rng.sample(parents, 2) if len(parents) > 1 else (parents[0], parents[0])
                kid = space.crossover(a.config, b.config, rng)
            key = config_key(kid)
            if key in scored:
                continue
            if not net.space.covers(kid):     # wider / another patch size than any feasible config trained
                uncovered += 1
                continue
            cand = by_key.get(key)
            if cand is None:
                cand = Candidate(kid, model.evaluate(kid))
                by_key[key] = cand
                planned += 1
            if budget.check(cand):
                rejected += 1
                continue
            scored[key] = score(net, cand, x, y, f"gen{gen}")
            kids.append(cand)
            if on_score:
                on_score(cand)
            if clock() >= deadline:
                break
        pop = sorted(pop + kids, key=_rank)[:settings.population]
    return Evolution(scored, rejected, gen, planned, uncovered)


def _rank(c: Candidate) -> tuple:
    """Best first: higher fitness, then smaller arena, then fewer MACs."""
    return (-(c.proxy_accuracy or 0.0), c.cost.arena_bytes, c.cost.macs)


def spread_picks(feasible: list[Candidate], n: int, rng: random.Random) -> list[Candidate]:
    """n feasible candidates spread over the space: the n slots are dealt to the patch sizes in
    turn (as many as each has), and within a patch size its candidates sorted by parameters
    are cut into equal strata, one drawn from each. So the picks differ in patch size and in
    width / depth / rank (one pick per MACs stratum put most picks on patch 14 or 7, and a
    uniform draw most among similar mid-size networks whose accuracies differ by less than
    training noise)."""
    by_patch: dict[int, list[Candidate]] = {}
    for c in sorted(feasible, key=lambda c: (c.cost.params, c.cost.macs, c.config.name)):
        by_patch.setdefault(c.config.patch_size, []).append(c)
    patches = sorted(by_patch)
    slots = dict.fromkeys(patches, 0)
    i = 0
    while sum(slots.values()) < min(n, len(feasible)):
        p = patches[i % len(patches)]
        slots[p] += slots[p] < len(by_patch[p])
        i += 1
    out = []
    for p in patches:
        g, k = by_patch[p], slots[p]
        out += [g[rng.randrange(len(g) * j // k, len(g) * (j + 1) // k)] for j in range(k)]
    return out


def measure_kendall(net: Supernet, feasible: list[Candidate], n: int, ds, x: np.ndarray, y: np.ndarray,
                    epochs: int, settings: SupernetSettings, rng: random.Random, deadline: float,
                    clock: Callable[[], float], seed: int = 0) -> dict:
    """Kendall tau-b between inherited and stand-alone accuracy of n feasible sub-networks
    spread over the space (`spread_picks`).

    Stand-alone: each sub-network alone, from fresh initial weights (the same seed for all),
    trained for `epochs` epochs of the training split (same batch, learning rate and
    augmentation for all), in `net`'s traced step after `net.reset` (so no retracing);
    this overwrites `net`'s weights: take them first. Trainings stop at `deadline` (at
    least two run); `requested` says how many were asked."""
    picks = spread_picks(feasible, n, rng)
    inherited = [net.accuracy(c.config, x, y) for c in picks]
    steps = epochs * max(1, math.ceil(len(ds.train.x) / settings.batch))
    max_shift = 2 if net.space.image_size >= 16 else 0
    rows = []
    for c, inh in zip(picks, inherited):
        if len(rows) >= 2 and clock() >= deadline:
            break
        t0 = clock()
        net.reset(seed)
        net.train(ds.train.x, ds.train.y, lambda r, cfg=c.config: [cfg], steps, lr=settings.lr,
                  batch=settings.batch, max_shift=max_shift, seed=seed, clock=clock)
        rows.append({"name": c.config.name, "inherited_accuracy": round(inh, 4),
                     "standalone_accuracy": round(net.accuracy(c.config, x, y), 4),
                     "standalone_seconds": round(clock() - t0, 1),
                     "peak_sram_bytes": c.cost.arena_bytes, "macs": c.cost.macs})
    tau = (kendall_tau([r["inherited_accuracy"] for r in rows], [r["standalone_accuracy"] for r in rows])
           if len(rows) >= 2 else None)
    return {"kendall_tau": None if tau is None or math.isnan(tau) else round(tau, 4),
            "requested": n, "measured": len(rows), "steps_each": steps, "samples": rows}
