"""Fit-to-board search over the tinyvit family.

1. Memory: sample candidates from the search space (patch size, width, depth,
   heads, MLP ratio, qkv/proj/mlp/patch-embedding ranks; each sampled config
   with every depth of the space, a "depth family" that shares one reference
   lowering) and evaluate each one exactly with the real lowering and planner
   (memory_planner.search.cost) on `workers` processes. A candidate is feasible when its planned arena fits the
   SRAM budget (board arena region minus the stack reserve, or --budget-kb),
   its flash (weights + generated constants + runtime estimate) fits the
   board's flash, and, if asked, its latency estimate fits.
2. Accuracy: an honest cheap proxy. Feasible candidates on the (peak SRAM,
   MACs) Pareto front, spread over the SRAM axis, are trained briefly on a
   subset of the dataset (tinyvit.train.fit, `proxy_epochs` epochs); their
   validation accuracy ranks them. While time remains, the best are mutated
   (evolution), the children evaluated exactly and the feasible ones trained.
   The output says which estimate ranked the candidates.
3. The winner is trained properly (tinyvit.train.train), exported to int8
   .tflite, and the exported file is planned again through the importer: its
   arena must equal the fast path's.
4. Baseline: the best full-rank model with a fixed patch size that fits the
   same budget, chosen and trained the same way.

Candidate training goes through an `Executor` (single machine by default); see
`RayExecutor` for running the proxy trainings on a Ray cluster.
"""
from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from tinyml.errors import FitError, TinymlError
from tinyml.tinyvit.config import ViTConfig

from .cost import Cost, config_key, evaluate, explain_peak, skeleton_key
from .space import SearchSpace

# Instruction estimate for --latency-budget-ms and the Pareto table:
#   instructions ~ INSTR_PER_MAC * MACs + INSTR_PER_ELEMENT * elements the steps write
#                  + INSTR_PER_SOFTMAX * attention scores normalised (H x N x N per block)
# fitted (non-negative least squares on relative error, `calibrate_instructions`) to
# `tinyml emulate --json` instruction counts (QEMU mps2-an500, -icount shift=0, Cortex-M7
# -O2) of 8 int8 ViTs built with `tinyml build --board stm32f746g-disco`: the shipped
# vit_digits and vit_relu_d64x4 and six exported tinyvit configs from the digits space
# (patch 2/4/7/14, widths 16-128, depth 1-4, full and low rank; 0.7M-7.7M MACs,
# 2.4M-25.4M instructions), kernels as of this commit. Fit error: max |err| 2.8%;
# leave-one-out max |err| 10.5%. The pre-fusion model (8.45/MAC + 63.8/element + 470/op)
# overestimated these by 2.6x-4.0x. Out of sample, the two models of the 320 KB digits
# search came within +0.4% and +1.0% of QEMU. Kernels change: re-fit: for each model
# `tinyml build M --board stm32f746g-disco -o D && tinyml emulate D --json`
# (instructions_per_inference), features from `search_cost.instruction_features(M)`,
# then `calibrate_instructions`.
# (model, MACs, step-output elements, softmax elements, QEMU instructions per inference);
# the six vit_p* models are exported from untrained (perturbed) weights: kernels' work
# does not depend on the values.
CALIBRATION_SAMPLES = (
    ("vit_digits", 7702656, 134922, 38416, 25441573),
    ("vit_p14_d96_l4_h2_m3_q24_o48_f24_e16", 695488, 16682, 128, 2368627),
    ("vit_p2_d16_l1_h2_m2", 1643424, 40794, 76832, 13831000),
    ("vit_p4_d32_l2_h2_m2", 1135552, 36106, 9604, 5455733),
    ("vit_p4_d48_l4_h4_m1_f12", 3218016, 101194, 38416, 16256080),
    ("vit_p7_d128_l2_h4_m4_q32_o64_f32", 2854144, 47242, 2048, 8351827),
    ("vit_p7_d64_l3_h4_m2_q16_o16_f16_e8", 801536, 33994, 3072, 4176827),
    ("vit_relu_d64x4", 7702656, 134922, 19208, 23496800),
)
INSTR_PER_MAC = 1.496
INSTR_PER_ELEMENT = 77.0
INSTR_PER_SOFTMAX = 104.3
INSTRUCTION_MODEL = ("1.496 x MACs + 77.0 x step-output elements + 104.3 x softmax elements, "
                     "fitted to 8 QEMU mps2-an500 measurements (max error 2.8%, leave-one-out 10.5%)")


def calibrate_instructions(samples: list[tuple[int, int, int, int]]) -> tuple[float, float, float]:
    """(per MAC, per step element, per softmax element) from (macs, step elements, softmax
    elements, measured instructions) samples; least squares on relative error, coefficients >= 0.
    Features of an exported model: memory_planner.search.cost.instruction_features."""
    import numpy as np
    from scipy.optimize import nnls
    a = np.array([s[:3] for s in samples], float)
    y = np.array([s[3] for s in samples], float)
    coef, _ = nnls(a / y[:, None], np.ones_like(y))
    return float(coef[0]), float(coef[1]), float(coef[2])


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Budget:
    sram_bytes: int
    flash_bytes: int | None
    latency_ms: float | None
    clock_hz: int | None
    description: str
    max_macs: int | None = None

    def check(self, c: "Candidate") -> list[str]:
        why = []
        if c.cost.arena_bytes > self.sram_bytes:
            why.append(f"SRAM {c.cost.arena_bytes:,} > {self.sram_bytes:,} B")
        if self.flash_bytes is not None and c.cost.flash_bytes > self.flash_bytes:
            why.append(f"flash {c.cost.flash_bytes:,} > {self.flash_bytes:,} B")
        if self.latency_ms is not None and c.latency_ms(self.clock_hz) > self.latency_ms:
            why.append(f"latency estimate {c.latency_ms(self.clock_hz):.1f} > {self.latency_ms:g} ms")
        if self.max_macs is not None and c.cost.macs > self.max_macs:
            why.append(f"{c.cost.macs:,} MACs > {self.max_macs:,}")
        return why


def make_budget(board: str | None, budget_kb: float | None, latency_ms: float | None,
                max_macs: int | None = None) -> Budget:
    from tinyml.memory_planner.report import STACK_RESERVE
    flash = clock = None
    parts = []
    sram = None
    if board:
        from tinyml.boards import load_board
        b = load_board(board)
        region = b.region_for("arena")
        sram = region.size - STACK_RESERVE
        flash = b.flash_region().size
        clock = b.clock_hz
        parts.append(f"{board}: {region.label} {region.size:,} B - {STACK_RESERVE:,} B stack reserve "
                     f"= {sram:,} B SRAM, {flash:,} B flash")
    if budget_kb is not None:
        if budget_kb <= 0:
            raise TinymlError(f"--budget-kb must be > 0, got {budget_kb:g}", "--budget-kb",
                              "give the SRAM budget in KiB, e.g. 128")
        sram = int(budget_kb * 1024)
        parts.append(f"--budget-kb {budget_kb:g}: {sram:,} B SRAM for the arena")
    if sram is None:
        raise TinymlError("no SRAM budget", "tinyml search", "pass --board or --budget-kb")
    if latency_ms is not None:
        if latency_ms <= 0:
            raise TinymlError("--latency-budget-ms must be > 0", "--latency-budget-ms", "e.g. 50")
        if clock is None:
            raise TinymlError("--latency-budget-ms needs a board clock", "--latency-budget-ms",
                              "pass --board as well")
        parts.append(f"latency estimate <= {latency_ms:g} ms at {clock / 1e6:g} MHz")
    if max_macs is not None:
        parts.append(f"<= {max_macs:,} MACs")
    return Budget(sram, flash, latency_ms, clock, "; ".join(parts), max_macs)


@dataclass
class Candidate:
    config: ViTConfig
    cost: Cost
    proxy_accuracy: float | None = None
    proxy_seconds: float | None = None
    origin: str = "sample"        # sample | pareto | mutation | baseline

    @property
    def instructions(self) -> int:
        return int(INSTR_PER_MAC * self.cost.macs + INSTR_PER_ELEMENT * self.cost.step_elements
                   + INSTR_PER_SOFTMAX * self.cost.softmax_elements)

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
             "proxy_accuracy": self.proxy_accuracy}
        if clock_hz:
            d["latency_ms_estimate"] = round(self.latency_ms(clock_hz), 3)
        return d


# ---------------------------------------------------------------------------
# memory phase

def _worker_init() -> None:
    # Planning allocates many short-lived objects while the lowering caches hold many
    # long-lived ones; the default collector thresholds rescan the latter constantly.
    import gc
    gc.set_threshold(50_000, 50, 100)


def _eval_family(configs: list[ViTConfig]) -> list[Cost]:
    return [evaluate(c) for c in configs]


def families(configs: list[ViTConfig]) -> list[list[ViTConfig]]:
    """Configs grouped by everything but depth (first-seen order): one process evaluates a
    group, sharing its reference lowering (memory_planner.search.cost, depth families)."""
    groups: dict[tuple, list[ViTConfig]] = {}
    for c in configs:
        groups.setdefault(skeleton_key(c), []).append(c)
    return list(groups.values())


def evaluate_many(configs: list[ViTConfig], workers: int = 2, deadline: float | None = None,
                  progress: bool = True) -> list[Candidate]:
    """Exact cost of each config, on `workers` processes, stopping at `deadline` (time.time()).

    Candidates come back grouped by depth family (see `families`)."""
    out: list[Candidate] = []
    t0 = time.time()
    step = max(1, len(configs) // 10)
    fams = families(configs)
    last = [0]

    def report() -> None:
        i = len(out)
        if progress and (i // step > last[0] // step or i == len(configs)):
            log(f"  memory: {i:,}/{len(configs):,} candidates planned ({time.time() - t0:.1f} s)")
        last[0] = i

    if workers <= 1:
        for fam in fams:
            out.extend(Candidate(c, cost) for c, cost in zip(fam, _eval_family(fam)))
            report()
            if deadline and time.time() > deadline:
                break
        return out
    import gc
    import multiprocessing as mp
    # Warm the lowering caches here first: the forked workers inherit them.
    warm = fams[:2 * workers]
    for fam in warm:
        out.extend(Candidate(c, cost) for c, cost in zip(fam, _eval_family(fam)))
    rest = fams[len(warm):]
    gc.collect()
    gc.freeze()               # inherited objects: never rescanned (nor copied on write by the GC)
    ctx = mp.get_context("fork")
    with ctx.Pool(workers, initializer=_worker_init) as pool:
        chunk = max(1, min(8, len(rest) // (workers * 8) or 1))
        for fam, costs in zip(rest, pool.imap(_eval_family, rest, chunksize=chunk)):
            out.extend(Candidate(c, cost) for c, cost in zip(fam, costs))
            report()
            if deadline and time.time() > deadline:
                pool.terminate()
                break
    gc.unfreeze()
    return out


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


# ---------------------------------------------------------------------------
# accuracy phase

@dataclass
class ProxySettings:
    epochs: int = 2
    train_images: int = 2000
    val_images: int = 500
    batch: int = 64
    lr: float = 2e-3
    seed: int = 0

    def describe(self, dataset: str) -> str:
        return (f"short-training proxy: validation accuracy after {self.epochs} epoch(s) on "
                f"{self.train_images} {dataset} training images ({self.val_images} validation images)")


def proxy_train(cfg: ViTConfig, ds, settings: ProxySettings) -> tuple[float, float]:
    """(validation accuracy, seconds) after a short training run."""
    import keras
    from tinyml.tinyvit.data import Dataset, Split
    from tinyml.tinyvit.model import build_model
    from tinyml.tinyvit.train import fit
    small = Dataset(ds.name, ds.task, Split(ds.train.x[:settings.train_images],
                                            ds.train.y[:settings.train_images]),
                    Split(ds.val.x[:settings.val_images], ds.val.y[:settings.val_images]),
                    ds.test, ds.class_names)
    t0 = time.time()
    keras.backend.clear_session()
    keras.utils.set_random_seed(settings.seed)      # initial weights too: same config, same proxy score
    model = build_model(cfg)
    hist = fit(model, cfg, small, settings.epochs, lr=settings.lr, batch=settings.batch,
               patience=settings.epochs + 1, seed=settings.seed, quiet=True, progress=False)
    acc = max(h["val_accuracy"] for h in hist)
    return float(acc), time.time() - t0


class Executor:
    """Runs proxy trainings; the default runs them one after another in this process."""

    name = "local"

    def map(self, fn: Callable, items: Iterable) -> Iterable:
        for it in items:
            yield fn(it)


class RayExecutor(Executor):
    """Proxy trainings as Ray tasks (one CPU each) on `ray.init(address)`.

    Each task rebuilds the dataset from the bundled packages on its worker (the
    datasets are offline and deterministic), so only the config travels.
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_task: int = 1) -> None:
        try:
            import ray
        except ImportError:
            raise TinymlError("--executor ray needs the 'ray' package", "tinyml search",
                              "pip install ray (and start a cluster), or use --executor local") from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address)
        self.cpus = cpus_per_task

    def map(self, fn: Callable, items: Iterable) -> Iterable:
        # ray.remote wraps functions, not callable objects (the proxy job is one):
        # ship the job as an argument of a plain function.
        remote = self.ray.remote(num_cpus=self.cpus)(_apply)
        job = self.ray.put(fn)
        refs = [remote.remote(job, it) for it in items]
        for ref in refs:
            yield self.ray.get(ref)


def _apply(fn: Callable, item):
    return fn(item)


def make_executor(name: str, address: str | None = None) -> Executor:
    if name == "local":
        return Executor()
    if name == "ray":
        return RayExecutor(address)
    raise TinymlError(f"unknown executor {name!r}", "--executor", "use local or ray")


# ---------------------------------------------------------------------------
# the search

@dataclass
class SearchResult:
    dataset: str
    budget: Budget
    candidates_evaluated: int
    memory_eval_seconds: float
    feasible: int
    ranking: str
    trained: list[Candidate]
    front: list[Candidate]
    chosen: Candidate | None = None
    chosen_metrics: dict = field(default_factory=dict)
    chosen_tflite: str | None = None
    chosen_plan_check: dict = field(default_factory=dict)
    baseline: Candidate | None = None
    baseline_metrics: dict = field(default_factory=dict)
    baseline_tflite: str | None = None
    search_space_size: int = 0
    notes: list[str] = field(default_factory=list)


def _load_dataset(name: str, seed: int):
    from tinyml.tinyvit.data import load_dataset
    return load_dataset(name, seed=seed)


class _Proxy:
    """Picklable proxy-training job: rebuilds the dataset where it runs."""

    def __init__(self, dataset: str, settings: ProxySettings) -> None:
        self.dataset, self.settings = dataset, settings
        self._ds = None

    def __call__(self, cfg: ViTConfig) -> tuple[float, float]:
        if self._ds is None:
            self._ds = _load_dataset(self.dataset, self.settings.seed)
        return proxy_train(cfg, self._ds, self.settings)


def no_fit_error(cands: list[Candidate], budget: Budget, space: SearchSpace) -> FitError:
    """The smallest achievable peak and what dominates it."""
    smallest = min(cands, key=lambda c: (c.cost.arena_bytes, c.cost.flash_bytes))
    # the space's absolute smallest corner, in case sampling missed it
    corner = space.make(max(space.patch_sizes), min(space.embed_dims), min(space.depths), 1
                        if 1 in space.heads else min(space.heads), min(space.mlp_ratios))
    if space.valid(corner):
        cc = Candidate(corner, evaluate(corner))
        if cc.cost.arena_bytes < smallest.cost.arena_bytes:
            smallest = cc
    rep = explain_peak(smallest.config, top=3)
    dom = ", ".join(f"{b['name']} {b['shape']} {b['bytes']:,} B" for b in rep.largest)
    why = "; ".join(budget.check(smallest)) or "latency"
    return FitError(
        f"no candidate fits ({budget.description}): the smallest achievable peak is "
        f"{smallest.cost.arena_bytes:,} B SRAM / {smallest.cost.flash_bytes:,} B flash "
        f"({smallest.config.name}; {why}); its peak is at op {rep.op_index} {rep.op_kind} with "
        f"{rep.live_bytes:,} B live, dominated by {dom}",
        "tinyml search",
        "raise the budget, use a smaller input image, or add smaller widths / larger patches "
        "to the search space")


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
    cands = evaluate_many(todo, workers=workers, deadline=deadline_mem)
    mem_s = time.time() - t0
    log(f"memory: {len(cands):,} candidates planned exactly in {mem_s:.1f} s "
        f"({mem_s / max(1, len(cands)) * 1e3:.2f} ms each)")
    by_key = {config_key(c.config): c for c in cands}
    feasible = [c for c in cands if not budget.check(c)]
    res = SearchResult(dataset=dataset, budget=budget, candidates_evaluated=len(cands),
                       memory_eval_seconds=round(mem_s, 3), feasible=len(feasible),
                       ranking="", trained=[], front=[], search_space_size=space.size())
    if not feasible:
        raise no_fit_error(cands, budget, space)
    res.front = memory_front(feasible)
    base_feasible = [c for c in feasible if _is_baseline(c.config, baseline_patch)]
    log(f"feasible: {len(feasible):,} ({budget.description}); memory Pareto front: "
        f"{len(res.front)} candidates; fixed-patch full-rank feasible: {len(base_feasible)}")
    if not train:
        res.ranking = "MACs (no training: --no-train); memory exact"
        return res

    # -- accuracy: proxy training, Pareto picks then evolution -------------
    res.ranking = proxy.describe(dataset)
    job = _Proxy(dataset, proxy)
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
                cand = by_key.get(key) or Candidate(k, evaluate(k))
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
    base_ranked = [c for c in ranked if _is_baseline(c.config, baseline_patch)]
    res.baseline = base_ranked[0] if base_ranked else None
    os.makedirs(out_dir, exist_ok=True)
    ds = _load_dataset(dataset, seed)
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


def _is_baseline(cfg: ViTConfig, patch: int) -> bool:
    return (cfg.patch_size == patch and cfg.qkv_rank == cfg.proj_rank == cfg.mlp_rank
            == cfg.patch_rank == 0)


def default_baseline_patch(space: SearchSpace) -> int:
    """The patch size giving a grid closest to 7x7 (tinyvit's default digits model uses 4 on 28)."""
    return min(space.patch_sizes, key=lambda p: (abs(space.image_size // p - 7), p))


def final_train(c: Candidate, ds, epochs: int, out_dir: str, seed: int, tag: str) -> tuple[dict, str]:
    from tinyml.tinyvit.train import train
    log(f"final training ({tag}): {c.config.name}, up to {epochs} epochs")
    r = train(c.config, ds, epochs=epochs, out_dir=os.path.join(out_dir, tag), seed=seed,
              quiet=False, progress=False)
    return dict(r.metrics), os.path.abspath(r.tflite_path)


def check_export(c: Candidate, tflite: str) -> dict:
    """Plan the exported file through the importer: it must match the fast path."""
    from tinyml.codegen.pipeline import plan_model
    rep, _ = plan_model(tflite)
    return {"arena_bytes_exported": rep.arena_bytes, "arena_bytes_fast_path": c.cost.arena_bytes,
            "flash_bytes_exported": rep.flash_bytes, "flash_bytes_fast_path": c.cost.flash_bytes,
            # The arena must agree to the byte; the fast path's flash is an upper bound
            # (trained values let identical tables be shared, see fused_common.shared_array).
            "match": rep.arena_bytes == c.cost.arena_bytes and rep.flash_bytes <= c.cost.flash_bytes}


# ---------------------------------------------------------------------------
# output

def pareto_accuracy(trained: list[Candidate]) -> list[Candidate]:
    """Trained candidates not beaten on both higher proxy accuracy and lower peak SRAM."""
    def better(a: Candidate, b: Candidate) -> bool:
        return ((a.proxy_accuracy or 0) >= (b.proxy_accuracy or 0)
                and a.cost.arena_bytes <= b.cost.arena_bytes
                and ((a.proxy_accuracy or 0) > (b.proxy_accuracy or 0)
                     or a.cost.arena_bytes < b.cost.arena_bytes))
    return sorted(pareto(trained, better), key=lambda c: c.cost.arena_bytes)


def to_json(res: SearchResult) -> dict:
    clock = res.budget.clock_hz
    d = {
        "ok": True,
        "dataset": res.dataset,
        "budget": {"sram_bytes": res.budget.sram_bytes, "flash_bytes": res.budget.flash_bytes,
                   "latency_ms": res.budget.latency_ms, "description": res.budget.description},
        "search_space_size": res.search_space_size,
        "candidates_evaluated": res.candidates_evaluated,
        "memory_eval_seconds": res.memory_eval_seconds,
        "memory_estimate": "exact: tinyvit graph IR -> codegen lowering -> memory_planner.plan_steps",
        "feasible_count": res.feasible,
        "ranking": res.ranking,
        "instructions_estimate": INSTRUCTION_MODEL,
        "pareto": [c.summary(clock) for c in (pareto_accuracy(res.trained) if res.trained
                                              else res.front)],
        "trained": [dict(c.summary(clock), origin=c.origin, proxy_seconds=c.proxy_seconds)
                    for c in res.trained],
        "chosen": None, "baseline": None, "notes": res.notes,
    }
    if res.chosen is not None:
        d["chosen"] = _final(res.chosen, res.chosen_metrics, res.chosen_tflite, clock)
        d["chosen"]["plan_check"] = res.chosen_plan_check
        if res.chosen_plan_check:
            # Report the exported file's real flash; keep the estimate beside it.
            d["chosen"]["flash_bytes_fast_path"] = d["chosen"]["flash_bytes"]
            d["chosen"]["flash_bytes"] = res.chosen_plan_check["flash_bytes_exported"]
    if res.baseline is not None:
        d["baseline"] = _final(res.baseline, res.baseline_metrics, res.baseline_tflite, clock)
        d["baseline"]["description"] = "best full-rank model with the fixed patch size that fits"
    return d


def _final(c: Candidate, metrics: dict, tflite: str | None, clock) -> dict:
    return {"config": c.config.to_dict(), "tflite": tflite, "peak_sram_bytes": c.cost.arena_bytes,
            "flash_bytes": c.cost.flash_bytes, "macs": c.cost.macs,
            "instructions_estimate": c.instructions,
            "accuracy": metrics.get("int8_accuracy"), "float_accuracy": metrics.get("float_accuracy"),
            "proxy_accuracy": c.proxy_accuracy}


def human_report(res: SearchResult) -> list[str]:
    lines = [f"budget: {res.budget.description}",
             f"memory: {res.candidates_evaluated:,} candidates planned exactly in "
             f"{res.memory_eval_seconds:.1f} s; {res.feasible:,} feasible "
             f"(space of {res.search_space_size:,} configs)",
             f"ranking: {res.ranking}", ""]
    rows = pareto_accuracy(res.trained) if res.trained else res.front
    title = "Pareto set (proxy accuracy vs peak SRAM)" if res.trained else "memory Pareto front"
    lines.append(title + ":")
    lines.append(f"  {'config':42s} {'acc':>7s} {'peak SRAM':>11s} {'flash':>11s} {'MACs':>11s} "
                 f"{'instr est':>11s}")
    for c in rows:
        acc = f"{c.proxy_accuracy:.4f}" if c.proxy_accuracy is not None else "-"
        lines.append(f"  {c.config.name:42s} {acc:>7s} {c.cost.arena_bytes:>11,} "
                     f"{c.cost.flash_bytes:>11,} {c.cost.macs:>11,} {c.instructions:>11,}")
    for tag, c, m, path in (("chosen", res.chosen, res.chosen_metrics, res.chosen_tflite),
                            ("baseline", res.baseline, res.baseline_metrics, res.baseline_tflite)):
        if c is None:
            continue
        lines.append("")
        lines.append(f"{tag}: {c.config.name}  int8 accuracy {m.get('int8_accuracy')}  "
                     f"(float {m.get('float_accuracy')}), peak SRAM {c.cost.arena_bytes:,} B, "
                     f"flash {c.cost.flash_bytes:,} B")
        lines.append(f"  {path}")
    if res.chosen_plan_check:
        pc = res.chosen_plan_check
        lines.append(f"exported model re-planned: arena {pc['arena_bytes_exported']:,} B "
                     f"({'matches' if pc['match'] else 'DIFFERS FROM'} the fast path)")
    lines.extend(res.notes)
    return lines


def plot(res: SearchResult, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    tr = [c for c in res.trained if c.proxy_accuracy is not None]
    xs = [c.cost.arena_bytes / 1024 for c in tr]
    ys = [c.proxy_accuracy for c in tr]
    ax.scatter(xs, ys, s=18, c="tab:blue", label="trained candidates (proxy accuracy)")
    pf = pareto_accuracy(tr)
    if pf:
        ax.plot([c.cost.arena_bytes / 1024 for c in pf], [c.proxy_accuracy for c in pf], "-",
                c="tab:blue", alpha=0.5, label="Pareto set")
    for tag, c, m, color in (("chosen", res.chosen, res.chosen_metrics, "tab:green"),
                             ("baseline", res.baseline, res.baseline_metrics, "tab:orange")):
        if c is None:
            continue
        ax.scatter([c.cost.arena_bytes / 1024], [c.proxy_accuracy], s=90, facecolors="none",
                   edgecolors=color, linewidths=2, label=f"{tag} (final int8 {m.get('int8_accuracy')})")
    ax.axvline(res.budget.sram_bytes / 1024, color="tab:red", ls="--",
               label=f"SRAM budget {res.budget.sram_bytes / 1024:.0f} KiB")
    allx = xs + [res.budget.sram_bytes / 1024]
    if allx and min(allx) > 0 and max(allx) / min(allx) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("peak SRAM (planned arena), KiB")
    ax.set_ylabel("accuracy (proxy)")
    ax.set_title(f"tinyml search on {res.dataset}: {res.candidates_evaluated:,} candidates planned")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def benchmark(space: SearchSpace, n: int, workers: int, seed: int = 0) -> dict:
    """Exact memory evaluation throughput (no training)."""
    import platform
    rng = random.Random(seed)
    configs = sample_configs(space, n, rng)
    # warm the per-op lowering cache the way a search does (first candidates)
    import resource
    t0 = time.time()
    c0 = time.process_time()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cands = evaluate_many(configs, workers=workers, progress=True)
    wall = time.time() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (time.process_time() - c0) + (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"candidates_evaluated": len(cands), "memory_eval_seconds": round(wall, 3),
            "ms_per_candidate": round(wall / max(1, len(cands)) * 1e3, 3),
            "candidates_per_second": round(len(cands) / max(wall, 1e-9), 1),
            "workers": workers, "cpu_seconds": round(cpu, 2),
            "cpu_ms_per_candidate": round(cpu / max(1, len(cands)) * 1e3, 3),
            # what the same work takes on `workers` otherwise idle cores
            "idle_machine_seconds_estimate": round(cpu / max(1, workers), 2),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "processor": platform.processor() or platform.machine(),
                        "loadavg_after": load},
            "mean_ops": round(sum(c.cost.ops for c in cands) / max(1, len(cands)), 1),
            "sampling": "random configs, each with every depth of the space (depth families)",
            "space_size": space.size()}
