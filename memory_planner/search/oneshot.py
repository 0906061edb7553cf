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
    sandwich: str = "params"      # the sandwich's bounds: "params" or "extremes" (`sandwich`; measured in the README)
    balance: bool = False         # draw towers by running loss (`Sandwich`)
    rerank_top: int = 8           # M re-ranked by fine-tuning (`shortlist`, `rerank`; 0: off)
    rerank_steps: int = 200       # fine-tuning steps of each (measured in the README: tau 0.61-0.85)
    rerank_lr: float = 1e-3       # constant learning rate of the fine-tuning
    rerank_init: str = "inherited"  # the fine-tuning's start: the supernet's weights or Keras' ("keras")

    def describe(self, dataset: str) -> str:
        how = "blocks shared by every patch size" if self.shared_blocks else "one block tower per patch size"
        kd = f", in-place distillation {self.distill:g}" if self.distill else ""
        bounds = ("per-patch maxima / largest ranks / minima" if self.sandwich == "extremes"
                  else "most / fewest parameters")
        bal = ", patch sizes drawn by running loss" if self.balance else ""
        start = "Keras' initial weights" if self.rerank_init == "keras" else "their inherited weights"
        rr = (f"; {self.rerank_top} (per patch size its best using the memory the budget opens, then its best "
              f"of the rest) re-ranked by validation accuracy after "
              f"{self.rerank_steps} fine-tuning steps from {start}"
              if self.rerank_top and self.rerank_steps else "")
        return (f"one-shot supernet: inherited validation accuracy ({dataset}, up to {self.val_images} "
                f"validation images) of sub-networks of one weight-sharing supernet ({how}) trained with "
                f"the sandwich rule (bounds: {bounds}{bal}){kd}; evolutionary search (population {self.population}, {self.children} "
                f"children per generation by mutation and crossover) under the exact constraints{rr}")


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


def extremes(configs: list) -> tuple:
    """(largest full-rank, largest low-rank, smallest) sub-networks covering `configs` (one
    patch size): the maxima of width, depth and MLP width at full rank; the same with every
    rank at its largest value among `configs`; the minima of width, depth, MLP width and
    of every rank above 0. They need not be in `configs` (not feasible themselves): they
    are the sandwich rule's bounds, so every weight a feasible config reads is trained by
    the largest ones and the leading slices by the smallest."""
    from dataclasses import replace
    d, dm = max(c.embed_dim for c in configs), min(c.embed_dim for c in configs)
    h, hm = max(c.mlp_dim for c in configs), min(c.mlp_dim for c in configs)

    def top(c):
        return max(getattr(x, c) for x in configs)

    def low(c):
        return min((getattr(x, c) for x in configs if getattr(x, c)), default=0)
    base = configs[0]
    full = replace(base, name=f"{base.name}_max", embed_dim=d, depth=max(c.depth for c in configs),
                   num_heads=max(c.num_heads for c in configs if d % c.num_heads == 0) if any(
                       d % c.num_heads == 0 for c in configs) else 1,
                   mlp_ratio=h / d, qkv_rank=0, proj_rank=0, mlp_rank=0, patch_rank=0)
    lowrank = replace(full, name=f"{base.name}_maxrank", qkv_rank=top("qkv_rank"), proj_rank=top("proj_rank"),
                      mlp_rank=top("mlp_rank"), patch_rank=top("patch_rank"))
    small = replace(base, name=f"{base.name}_min", embed_dim=dm, depth=min(c.depth for c in configs),
                    num_heads=1, mlp_ratio=hm / dm, qkv_rank=min(low("qkv_rank"), dm),
                    proj_rank=min(low("proj_rank"), dm), mlp_rank=min(low("mlp_rank"), dm),
                    patch_rank=min(low("patch_rank"), dm))
    return full, lowrank, small


class Sandwich:
    """The sandwich rule's sampler (`sandwich`); with `balance`, patch sizes are drawn in
    proportion to their bounds' running mean training loss (`observe`, fed by
    `Supernet.train`), so a tower that lags gets more steps (at least 1/(4 x towers) each)."""

    def __init__(self, by_patch: dict[int, list], bounds: dict[int, list], balance: bool = False) -> None:
        self.by_patch, self.bounds, self.balance = by_patch, bounds, balance
        self.patches = sorted(by_patch)
        self.loss: dict[int, float] = {}
        self.drawn = dict.fromkeys(self.patches, 0)

    def weights(self) -> np.ndarray:
        n = len(self.patches)
        if not self.balance or len(self.loss) < n:
            return np.full(n, 1.0 / n)
        w = np.array([self.loss[p] for p in self.patches])
        w = w / w.sum()
        floor = 1.0 / (4 * n)
        return (w * (1 - n * floor)) + floor

    def __call__(self, rng: np.random.Generator) -> list:
        w = self.weights()
        p = self.patches[int(rng.choice(len(self.patches), p=w))]
        self.drawn[p] += 1
        rand = [self.by_patch[self.patches[int(i)]] for i in rng.choice(len(self.patches), 2, p=w)]
        return self.bounds[p] + [g[int(rng.integers(len(g)))] for g in rand]

    def observe(self, cfgs: list, losses: list[float]) -> None:
        """Losses of one step's sub-networks; the bounds' (the first len(bounds)) mean updates
        their patch size's running loss (exponential, factor 0.9)."""
        p = cfgs[0].patch_size
        k = len(self.bounds[p])
        mean = float(np.mean(losses[:k]))
        self.loss[p] = mean if p not in self.loss else 0.9 * self.loss[p] + 0.1 * mean


def sandwich(feasible: list[Candidate], rule: str = "params", balance: bool = False) -> Sandwich:
    """Per step, for one patch size drawn uniformly (or by running loss, `balance`): the
    sandwich's bounds, then two random feasible configs of drawn patch sizes. Bounds by `rule`:

    - "extremes": `extremes` of the patch size's feasible configs: largest
      full-rank, largest low-rank and smallest, built from the per-dimension maxima and
      minima. On 28x28 digits the most-parameter feasible patch-7 config was 64 wide while
      feasible patch-7 configs ran to 96: columns 64-95 were trained by random draws only,
      and a 96-wide pick inherited 0.19 against 0.92 trained alone (0.27 with these
      bounds, but the ranking as a whole did not improve: README).
    - "params" (default): the feasible config with that patch and the most parameters, and the one
      with the fewest (by parameters, not MACs: on 28x28 digits the most-MACs feasible
      config was a width-16 patch-2 network, so the widest and deepest blocks were trained
      by random draws only)."""
    by_patch: dict[int, list] = {}
    for c in sorted(feasible, key=lambda c: (c.cost.params, c.cost.macs, c.config.name)):
        by_patch.setdefault(c.config.patch_size, []).append(c.config)
    if rule == "extremes":
        bounds = {p: list(extremes(g)) for p, g in by_patch.items()}
    elif rule == "params":
        bounds = {p: [g[-1], g[0]] for p, g in by_patch.items()}
    else:
        raise ValueError(f"unknown sandwich rule {rule!r}")
    return Sandwich(by_patch, bounds, balance)


def train_supernet(feasible: list[Candidate], ds, settings: SupernetSettings, deadline: float,
                   clock: Callable[[], float], seed: int = 0,
                   on_step: Callable[[int], None] | None = None,
                   on_net: Callable[[Supernet], None] | None = None) -> tuple[Supernet, dict]:
    """The supernet covering `feasible`, trained with `settings` until `deadline`; `on_net`
    receives the supernet before training (so `on_step` can score it at a checkpoint)."""
    space = SupernetSpace.covering([c.config for c in feasible], shared_blocks=settings.shared_blocks)
    net = Supernet(space, seed=seed)
    if on_net is not None:
        on_net(net)
    sampler = sandwich(feasible, settings.sandwich, settings.balance)
    info = net.train(ds.train.x, ds.train.y, sampler, settings.steps, deadline=deadline,
                     lr=settings.lr, batch=settings.batch, max_shift=shift_pixels(space.image_size), seed=seed,
                     clock=clock,
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


def shift_pixels(image_size: int) -> int:
    """The shift augmentation of every training in the supernet search (supernet, re-rank,
    stand-alone references): 2 px from 16x16 images up, none below."""
    return 2 if image_size >= 16 else 0


def finetuned(net: Supernet, c: Candidate, ds, x: np.ndarray, y: np.ndarray, settings: SupernetSettings,
              seed: int, deadline: float, clock: Callable[[], float]) -> tuple[dict[int, float], list]:
    """`c` fine-tuned as the re-rank does: `settings.rerank_steps` steps from its inherited
    weights, or with `rerank_init="keras"` from seeded Keras initial weights
    (`tinyvit.train.finetune`, AdamW at `rerank_lr`, the supernet's batch); ({steps done:
    validation accuracy on (x, y)}, the fine-tuned Keras weights)."""
    from tinyml.tinyvit.train import finetune
    if settings.rerank_init == "keras":
        # the control of the README's tau table: Keras' initial weights, seeded
        import keras

        from tinyml.tinyvit.model import build_model
        keras.utils.set_random_seed(seed)
        model = build_model(c.config)
    else:
        model = net.keras_model(c.config)
    accs = finetune(model, c.config, ds.train.x, ds.train.y, x, y, settings.rerank_steps,
                    lr=settings.rerank_lr, batch=settings.batch, max_shift=shift_pixels(c.config.image_size),
                    seed=seed, deadline=deadline, clock=clock)
    return accs, model.get_weights()


def shortlist(scored: list[Candidate], m: int, floor: int = 0, band_only: bool = False) -> list[Candidate]:
    """The re-rank's M candidates, dealt in rounds: each round takes, for every patch size, its
    best by inherited accuracy among those whose arena exceeds `floor` (the memory this budget
    opens beyond the next smaller one), then its best among the rest not yet taken; each
    half-round best first. So the fine-tuning decides between patch sizes and always tries the
    candidates that use the budget's new memory. Inherited accuracy is not on one scale across
    towers or widths: on 28x28 digits after 1000-2000 supernet steps patch 14's picks inherited
    0.62-0.67 on average and patch 7's 0.27-0.34, where trained alone they reach 0.91 and 0.81;
    on the 128x128 canvases every patch-8 sub-network inherited chance (0.09-0.19) and a plain
    per-patch best never reached the widths over 128 KiB (README). `band_only`: only those over
    `floor`."""
    by_patch: dict[int, list[Candidate]] = {}
    for c in sorted((c for c in scored if not band_only or c.cost.arena_bytes > floor), key=_rank):
        by_patch.setdefault(c.config.patch_size, []).append(c)
    out: list[Candidate] = []
    taken: set[int] = set()
    while len(out) < m:
        n = len(out)
        for new in (True, False):
            picks = [next((c for c in g if id(c) not in taken and (not new or c.cost.arena_bytes > floor)), None)
                     for g in by_patch.values()]
            for c in sorted((c for c in picks if c is not None), key=_rank):
                taken.add(id(c))
                out.append(c)
        if len(out) == n:
            break
    return out[:max(0, m)]


def rerank(net: Supernet, scored: list[Candidate], ds, x: np.ndarray, y: np.ndarray, settings: SupernetSettings,
           deadline: float, clock: Callable[[], float], seed: int = 0,
           on_done: Callable[[Candidate], None] | None = None, earlier: dict | None = None,
           floor: int = 0, band_only: bool = False, keep: dict | None = None) -> dict:
    """Re-rank `settings.rerank_top` of `scored` (`shortlist`: the best by inherited accuracy of
    each patch size in turn, above `floor` bytes of arena first; with `band_only` only those): each is
    fine-tuned `settings.rerank_steps` steps (`finetuned`: from its inherited weights or Keras',
    `settings.rerank_init`; `tinyvit.train.finetune`: AdamW at a constant `rerank_lr`, the supernet's batch, shift
    augmentation, the training split) and its fitness becomes the validation accuracy on (x, y)
    after them; its inherited accuracy is kept in the returned rows. Candidates are taken best
    first until `deadline` (a `clock` value): the next starts only if one as long as the last
    would end by then; one still cut by the deadline keeps its inherited accuracy, and so do
    all not reached. Re-ranked candidates are marked `reranked`: the
    search ranks them above every other (the two scores are not on one scale).
    `earlier`: (row, candidate) of each candidate fine-tuned by an earlier run on the same
    supernet (by `config_key`): every candidate of `scored` among them takes its fine-tuned
    accuracy as it is ("reused": true; no second fine-tuning), the shortlist is drawn from the
    others, and new entries are added to it. `keep`: config_key -> fine-tuned Keras weights of
    each candidate fine-tuned all K steps (the final training continues from them)."""
    rows, t0 = [], clock()
    for c in scored:
        row, _ = (earlier or {}).get(config_key(c.config), (None, None))
        if row is not None and "finetuned_accuracy" in row:
            c.proxy_accuracy, c.reranked = row["finetuned_accuracy"], True
            c.origin += "+finetune"
            rows.append(dict(row, reused=True))
            if on_done:
                on_done(c)
    fresh = [c for c in scored if not c.reranked]
    top = shortlist(fresh, settings.rerank_top, floor, band_only) if settings.rerank_steps > 0 else []
    last = 0.0
    for c in top:
        key = config_key(c.config)
        # the next one starts only if one as long as the last would end in time
        if clock() + last >= deadline:
            break
        t = clock()
        accs, tuned = finetuned(net, c, ds, x, y, settings, seed, deadline, clock)
        done = max(accs)
        row = {"name": c.config.name, "inherited_accuracy": c.proxy_accuracy, "steps": done,
               "seconds": round(clock() - t, 1)}
        if done == settings.rerank_steps:
            c.proxy_accuracy = round(accs[done], 4)
            c.origin += "+finetune"
            c.reranked = True
            row["finetuned_accuracy"] = c.proxy_accuracy
            if keep is not None:
                keep[key] = tuned
        rows.append(row)
        last = row["seconds"]
        if earlier is not None:
            earlier[key] = (row, c)
        if on_done:
            on_done(c)
    return {"top": settings.rerank_top, "steps": settings.rerank_steps, "lr": settings.rerank_lr,
            "shortlisted": len(top),
            "reranked": sum("finetuned_accuracy" in r for r in rows), "seconds": round(clock() - t0, 1),
            "candidates": rows}


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


def standalone_accuracy(cfg, ds, x: np.ndarray, y: np.ndarray, epochs: int, settings: SupernetSettings,
                        seed: int = 0, deadline_wall: float | None = None) -> tuple[float, list[float]]:
    """Accuracy of `cfg` trained alone: `tinyvit.model.build_model(cfg)` (Keras initialisation),
    `tinyvit.train.fit` for `epochs` epochs of the training split (AdamW, cosine schedule over
    the run, the supernet's learning rate and batch, shift augmentation), validated on (x, y)
    after each epoch. The reference is the mean over the last (up to) 3 epochs: at the end of
    the cosine schedule it moves by less than a point, a single epoch by more. (Trained from
    the supernet's own initial weights instead, slices of tensors initialised for the largest
    width, narrow networks reached 0.32 after 3 epochs where Keras' reached 0.78.)"""
    import keras

    from tinyml.tinyvit.data import Dataset, Split
    from tinyml.tinyvit.model import build_model
    from tinyml.tinyvit.train import fit
    keras.backend.clear_session()
    dsv = Dataset(ds.name, ds.task, ds.train, Split(x, y), ds.test, ds.class_names)
    hist = fit(build_model(cfg), cfg, dsv, epochs, lr=settings.lr, batch=settings.batch, patience=10 ** 6,
               max_shift=shift_pixels(cfg.image_size), seed=seed, quiet=True, progress=False,
               deadline=deadline_wall)
    accs = [float(h["val_accuracy"]) for h in hist]
    return float(np.mean(accs[-3:])), accs


def measure_kendall(net: Supernet, feasible: list[Candidate], n: int, ds, x: np.ndarray, y: np.ndarray,
                    epochs: int, settings: SupernetSettings, rng: random.Random, deadline: float,
                    clock: Callable[[], float], seed: int = 0) -> dict:
    """Kendall tau-b between inherited and stand-alone accuracy of n feasible sub-networks
    spread over the space (`spread_picks`); stand-alone is `standalone_accuracy` (each
    alone from Keras' initial weights, same seed, epochs, batch, learning rate and
    augmentation for all, evaluated on the same images as the inherited accuracy).
    Trainings stop at `deadline` (at least two run); `requested` says how many were asked.
    With the re-rank on (`settings.rerank_top`, `rerank_steps`), each pick is first also
    fine-tuned as `rerank` does (within the first half of the phase) and
    `kendall_tau_finetuned` ranks by that score."""
    import time
    picks = spread_picks(feasible, n, rng)
    inherited = [net.accuracy(c.config, x, y) for c in picks]
    tuned: list[float | None] = [None] * len(picks)
    if settings.rerank_top and settings.rerank_steps:
        # the re-rank's score of every pick (fine-tuned from inherited weights), until half the phase
        half = clock() + 0.5 * max(0.0, deadline - clock())
        for i, c in enumerate(picks):
            if clock() >= half:
                break
            accs, _ = finetuned(net, c, ds, x, y, settings, seed, half, clock)
            tuned[i] = accs[settings.rerank_steps] if settings.rerank_steps in accs else None
    rows = []
    for c, inh, ft in zip(picks, inherited, tuned):
        if len(rows) >= 2 and clock() >= deadline:
            break
        t0 = clock()
        acc, hist = standalone_accuracy(c.config, ds, x, y, epochs, settings, seed,
                                        time.time() + max(1.0, deadline - t0) if len(rows) >= 2 else None)
        rows.append({"name": c.config.name, "inherited_accuracy": round(inh, 4),
                     "standalone_accuracy": round(acc, 4), "standalone_epochs": len(hist),
                     "standalone_seconds": round(clock() - t0, 1),
                     "peak_sram_bytes": c.cost.arena_bytes, "macs": c.cost.macs})
        if ft is not None:
            rows[-1]["finetuned_accuracy"] = round(ft, 4)
    tau = (kendall_tau([r["inherited_accuracy"] for r in rows], [r["standalone_accuracy"] for r in rows])
           if len(rows) >= 2 else None)
    ftr = [r for r in rows if "finetuned_accuracy" in r]
    tau_ft = (kendall_tau([r["finetuned_accuracy"] for r in ftr], [r["standalone_accuracy"] for r in ftr])
              if len(ftr) >= 2 else None)
    return {"kendall_tau": None if tau is None or math.isnan(tau) else round(tau, 4),
            "kendall_tau_finetuned": None if tau_ft is None or math.isnan(tau_ft) else round(tau_ft, 4),
            "finetune_steps": settings.rerank_steps if settings.rerank_top else 0, "finetuned": len(ftr),
            "requested": n, "measured": len(rows), "standalone": "keras fit, mean of the last 3 epochs",
            "samples": rows}
