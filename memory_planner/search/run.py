"""Fit-to-board search over the tinyvit family.

1. Memory: sample candidates from the search space (patch size, width, depth,
   heads, MLP ratio, qkv/proj/mlp/patch-embedding ranks; each sampled config
   with every depth of the space, a "depth family" that shares one reference
   lowering) and evaluate each one exactly with the real lowering and planner
   (cost.CostModel; candidates.evaluate_many on `workers` processes). A
   candidate is feasible when its planned arena fits the SRAM budget (board
   arena region minus the stack reserve, or --budget-kb), its flash (weights +
   generated constants + code estimate of its kernel calls) fits the board's flash, and, if
   asked, its latency estimate (instructions.py) fits (budget.py).
2. Accuracy, `ranking="supernet"` (oneshot.py): one weight-sharing supernet
   (tinyvit.supernet) trained once with the sandwich rule on the feasible
   candidates; an evolutionary search (mutation + crossover) whose children are
   planned exactly and checked against the budget, fitness = inherited validation
   accuracy; with `kendall` = N, the Kendall tau of that ranking against N
   stand-alone trainings (each sub-network alone from fresh weights). The winner (and baseline) is fine-tuned from its
   inherited weights.
   Accuracy, `ranking="proxy"`: an honest cheap proxy. Feasible candidates on the (peak SRAM,
   MACs) Pareto front, spread over the SRAM axis, are trained briefly on a
   subset of the dataset (proxy.py: tinyvit.train.fit, `proxy_epochs` epochs); their
   validation accuracy ranks them. While time remains, the best are mutated
   (evolution), the children evaluated exactly and the feasible ones trained.
   The output says which estimate ranked the candidates.
3. The winner is trained properly (final.py: tinyvit.train.train), exported to int8
   .tflite, the exported file is planned again through the importer (its arena
   must equal the fast path's) and its generated C is verified bit-exact against
   TFLite (codegen.verify).
4. Baseline: the best full-rank model with a fixed patch size that fits the
   same budget, chosen and trained the same way.

Time: `--budget-seconds` bounds the whole run, final training included
(clock.py: a deadline per phase, measured seconds per phase in the result).

Data: a bundled name or the user's images / .npz (proxy.DataSpec); the space
follows the data's input size, channels and classes (space.space_for_data).

Candidate training goes through an `Executor` (executor.py: single machine by
default, `RayExecutor` on a Ray cluster). Output: report.py. Keras and
TensorFlow are imported only inside the functions that train.
"""
from __future__ import annotations

import copy
import os
import random
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from tinyml.codegen.code_size import load_table
from tinyml.errors import TinymlError

from .budget import Budget
from .candidates import (Candidate, default_baseline_patch, evaluate_many, is_baseline, memory_front,
                         sample_configs, spread)
from .clock import SUPERNET_KENDALL_ENDS, RunClock, epoch_fits
from .cost import CostModel, config_key
from .executor import Executor
from .final import START, check_export, final_train, verify_export
from .oneshot import SupernetSettings, evolve, measure_kendall, rerank, score, spread_picks, train_supernet
from .proxy import DataSpec, ProxyJob, ProxySettings
from .report import SearchResult, log, phase_bar, no_fit_error
from .space import SearchSpace


@dataclass
class Hooks:
    """What the search calls to train, re-plan and verify the winner (tests pass fakes)."""
    final: Callable = final_train
    replan: Callable = check_export
    verify: Callable = verify_export


@dataclass
class Shared:
    """What several runs over one space and dataset share (multi.run_budgets): the exactly
    planned sample (it does not depend on the budget; each run judges it against its own), the
    cost model, and under the supernet ranking one supernet trained once on the candidates that
    fit `train_budget` (the largest budget, so it covers every run's candidates, as Once-for-All
    trains once and specialises per constraint) and the re-rank's fine-tuned accuracies (a
    candidate fine-tuned for one budget is not fine-tuned again for a larger one)."""
    train_budget: Budget | None = None
    cands: list[Candidate] | None = None
    model: CostModel | None = None
    supernet: tuple | None = None                 # (Supernet, info) after the first run trains it
    reranked: dict = field(default_factory=dict)  # config_key -> (re-rank row, Candidate) (oneshot.rerank)
    rerank_weights: dict = field(default_factory=dict)  # config_key -> its fine-tuned Keras weights
    sram_sizes: list[int] = field(default_factory=list)  # every run's SRAM budget (the re-rank's floor)


def new_memory_floor(budget: Budget, shared: Shared | None) -> int:
    """The arena above which a candidate uses memory this budget opens: the next smaller budget
    of a multi-budget run, else half the budget (the re-rank shortlists such candidates first,
    `oneshot.shortlist`)."""
    if shared is None or not shared.sram_sizes:
        return budget.sram_bytes // 2
    return max((s for s in shared.sram_sizes if s < budget.sram_bytes), default=0)


def _fresh(c: Candidate) -> Candidate:
    """A copy of a shared candidate with no ranking score (runs score candidates in place)."""
    return replace(c, proxy_accuracy=None, proxy_seconds=None, origin="sample", reranked=False)


def run_search(space: SearchSpace, data: DataSpec | str, budget: Budget, n_candidates: int = 10000,
               workers: int = 2, budget_seconds: float = 900.0, proxy: ProxySettings | None = None,
               top_k: int = 6, final_epochs: int = 20, baseline_patch: int | None = None,
               out_dir: str = "search_out", seed: int = 0, executor: Executor | None = None,
               train: bool = True, clock: RunClock | None = None, ds=None,
               hooks: Hooks | None = None, progress: bool = False, ranking: str = "proxy",
               kendall: int = 0, supernet: SupernetSettings | None = None, shared: Shared | None = None,
               phase_ends: dict[str, float] | None = None) -> SearchResult:
    """One search under `budget`. `shared`: what several runs share (multi.run_budgets);
    `phase_ends`: phase end shares overriding clock.py's (a run whose memory and supernet
    phases were done by an earlier run gives their time to the later phases)."""
    if ranking not in ("proxy", "supernet"):
        raise TinymlError(f"unknown ranking {ranking!r}", "--ranking", "use supernet or proxy")
    if ranking == "supernet" and space.head != "classify":
        raise TinymlError("the supernet ranking holds classifiers only", "--ranking",
                          "use --ranking proxy for --task detect")
    if kendall and (ranking != "supernet" or kendall < 10):
        raise TinymlError(f"--kendall {kendall}: needs --ranking supernet and N >= 10", "--kendall",
                          "e.g. --ranking supernet --kendall 10")
    rc = clock or RunClock(budget_seconds)
    if kendall:
        rc.ends.update(SUPERNET_KENDALL_ENDS)
    if phase_ends:
        rc.ends.update(phase_ends)
    hooks = hooks or Hooks()
    rng = random.Random(seed)
    proxy = proxy or ProxySettings(seed=seed)
    executor = executor or Executor()
    if isinstance(data, str):
        data = DataSpec(data, seed=seed)
    name = getattr(ds, "name", None) or data.source

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
    log(f"search space: {space.size():,} configs ({space.image_size}x{space.image_size}x{space.channels}, "
        f"{space.num_classes} classes, patches {list(space.patch_sizes)}); planning {len(configs):,} sampled + "
        f"{len(base_cfgs)} fixed-patch full-rank (patch {baseline_patch}) on {workers} worker(s)")
    todo = configs + base_cfgs
    random.Random(seed + 1).shuffle(todo)     # a deadline cut keeps both kinds
    if shared is not None and shared.cands is not None:
        model, cands = shared.model, [_fresh(c) for c in shared.cands]
        log(f"memory: the {len(cands):,} candidates planned exactly for the first budget, judged against "
            f"this one")
    else:
        model = CostModel(code_table=load_table(budget.core))      # flash judged with the board core's code sizes
        with rc.phase("memory_eval"), phase_bar("memory_eval", len(todo), progress, "cand") as bar:
            cands = evaluate_many(todo, workers=workers, deadline=rc.wall_deadline("memory_eval"), model=model,
                                  progress=not progress, on_progress=bar.update_to if progress else None)
        mem_s = rc.seconds["memory_eval"]
        log(f"memory: {len(cands):,} candidates planned exactly in {mem_s:.1f} s "
            f"({mem_s / max(1, len(cands)) * 1e3:.2f} ms each)")
        if shared is not None:
            shared.cands, shared.model = [_fresh(c) for c in cands], model
    mem_s = rc.seconds["memory_eval"]
    by_key = {config_key(c.config): c for c in cands}
    feasible = [c for c in cands if not budget.check(c)]
    res = SearchResult(dataset=name, budget=budget, candidates_evaluated=len(cands),
                       memory_eval_seconds=round(mem_s, 3), feasible=len(feasible),
                       ranking="", trained=[], front=[], search_space_size=space.size(),
                       task=space.head, input_shape=[space.image_size, space.image_size, space.channels],
                       budget_seconds=rc.total_seconds)
    res.phase_seconds = rc.report()
    if not feasible:
        raise no_fit_error(cands, budget, space, model)
    res.front = memory_front(feasible)
    base_feasible = [c for c in feasible if is_baseline(c.config, baseline_patch)]
    log(f"feasible: {len(feasible):,} ({budget.description}); memory Pareto front: "
        f"{len(res.front)} candidates; fixed-patch full-rank feasible: {len(base_feasible)}")
    if not train:
        res.ranking = "memory"
        res.ranking_description = "MACs (no training: --no-train); memory exact"
        return res

    # -- accuracy: proxy training, Pareto picks then evolution -------------
    if ds is None:
        with rc.phase("data_load"):
            ds = data.load()
    weights, tuned = None, {}
    if ranking == "supernet":
        settings = supernet or SupernetSettings()
        res.ranking = "supernet"
        res.ranking_description = settings.describe(name)
        weights, tuned = _rank_supernet(res, space, feasible, base_feasible, ds, model, budget, by_key, seen,
                                        rc, settings, rng, seed, kendall, data, proxy, executor, progress,
                                        shared, cands)
        if settings.rerank_init == "keras":
            weights = None        # one not re-ranked starts where the re-rank does: Keras' weights
    else:
        _rank_proxy(res, space, base_feasible, ds, model, budget, by_key, seen, rc, proxy, data, executor,
                    top_k, rng, progress)
    res.phase_seconds = rc.report()

    # -- final training of the winner and of the baseline ------------------
    ranked = sorted(res.trained, key=lambda c: (not c.reranked, -(c.proxy_accuracy or 0), c.cost.arena_bytes))
    res.chosen = ranked[0]
    chance = 1.0 / max(1, space.num_classes)
    if space.head == "classify" and (res.chosen.proxy_accuracy or 0.0) < 1.5 * chance:
        # every ranked score is within noise of guessing: the smaller-arena tie-break picked
        res.notes.append(f"ranking scores are at chance level (best {res.chosen.proxy_accuracy or 0.0:.3f}, "
                         f"chance {chance:.3f}): the winner was picked by the smaller-arena tie-break; "
                         "give the ranking more time (--budget-seconds) or more --proxy-images")
    base_ranked = [c for c in ranked if is_baseline(c.config, baseline_patch)]
    res.baseline = base_ranked[0] if base_ranked else None
    os.makedirs(out_dir, exist_ok=True)
    end_final = rc.deadline("final_training")
    separate_baseline = res.baseline is not None and res.baseline is not res.chosen
    # the winner and the baseline get equal halves of the final window and the same recipe
    # (epochs schedule, learning rate, batch, augmentation); each re-ranked one continues from its
    # re-rank fine-tuning (else from inherited weights under the supernet, or Keras'); the
    # baseline stops after as many epochs as the winner ran
    chosen_end = rc.now() + (0.5 if separate_baseline else 1.0) * max(0.0, end_final - rc.now())

    def timed_train(c: Candidate, tag: str, end: float, max_epochs: int | None = None) -> tuple[dict, str]:
        t0 = rc.now()

        def may_continue(secs: list[float]) -> bool:
            return (max_epochs is None or len(secs) < max_epochs) and epoch_fits(rc.now(), end, secs)
        kw, start = {}, "keras"
        tuned_w = tuned.get(config_key(c.config))
        if tuned_w is not None:       # continue the re-rank's fine-tuning (its steps are not lost)
            kw["init"], start = (lambda m: m.set_weights(tuned_w)), "rerank"
        elif weights is not None:     # fine-tune from the inherited supernet weights
            from tinyml.tinyvit.supernet import keras_weights, load_into
            w = keras_weights(weights, c.config)
            kw["init"], start = (lambda m: load_into(m, w)), "supernet"
        with rc.phase("final_training"):
            m, path = hooks.final(c, ds, final_epochs, out_dir, seed, tag,
                                  may_continue=may_continue,
                                  progress=progress, deadline=time.time() + max(0.0, end - rc.now()),
                                  eval_deadline=time.time() + max(0.0, end + 0.4 * (rc.reserve_seconds or 0.0)
                                                                  - rc.now()), start=start, **kw)
        m = dict(m, start=start)
        # export and int8 evaluation happen inside the training call: book them as export
        rc.move("final_training", "export_verify", max(0.0, (rc.now() - t0) - float(m.get("train_seconds", 0))))
        return m, path

    res.chosen_metrics, res.chosen_tflite = timed_train(res.chosen, "chosen", chosen_end)
    if res.baseline is not None:
        if not separate_baseline:
            res.baseline_metrics, res.baseline_tflite = res.chosen_metrics, res.chosen_tflite
            res.notes.append("the chosen model is itself full-rank with the baseline patch size")
        elif rc.now() < end_final:
            res.baseline_metrics, res.baseline_tflite = timed_train(
                res.baseline, "baseline", end_final, res.chosen_metrics.get("epochs_run"))
            ran = (res.chosen_metrics.get("epochs_run"), res.baseline_metrics.get("epochs_run"))
            starts = (res.chosen_metrics["start"], res.baseline_metrics["start"])
            if starts[0] != starts[1]:
                res.notes.append(f"the winner's final training started from {START[starts[0]]}, the "
                                 f"baseline's from {START[starts[1]]}: not the same head start")
            if ran[0] != ran[1]:
                res.notes.append(f"the baseline ran {ran[1]} epoch(s), the winner {ran[0]}: "
                                 "--budget-seconds cut the baseline's training")
        else:
            res.notes.append("baseline not trained: --budget-seconds left no time for it")
            res.baseline = None

    # -- export check: re-plan the exported file, verify its C bit-exact ----
    with rc.phase("export_verify"), phase_bar("export_verify", 2, progress, "step") as bar:
        res.chosen_plan_check = hooks.replan(res.chosen, res.chosen_tflite)
        bar.update(1)
        res.chosen_verify = hooks.verify(res.chosen_tflite, seed=seed)
        bar.update(1)
    res.phase_seconds = rc.report()
    res.elapsed_seconds = round(rc.elapsed(), 3)
    if rc.overrun() > 0:
        res.notes.append(f"the run took {rc.overrun():.0f} s more than --budget-seconds: a phase's "
                         "smallest unit of work (one proxy training, one epoch, the export) was longer "
                         "than the time left")
    return res


def _rank_proxy(res: SearchResult, space: SearchSpace, base_feasible: list[Candidate], ds, model: CostModel,
                budget: Budget, by_key: dict, seen: set, rc: RunClock, proxy: ProxySettings, data: DataSpec,
                executor: Executor, top_k: int, rng: random.Random, progress: bool) -> None:
    """Short-training proxy: Pareto picks and baseline picks, then mutation while time remains."""
    res.ranking = "proxy"
    res.ranking_description = proxy.describe(res.dataset, space.head)
    trained: dict[tuple, Candidate] = {}
    end_rank = rc.deadline("ranking")
    # a proxy training still running at the ranking deadline is cut between two batches
    job = ProxyJob(data, proxy, ds, deadline=rc.wall_deadline("ranking"))

    with rc.phase("ranking"), phase_bar("ranking", None, progress, "model") as bar:
        def train_batch(batch: list[Candidate], origin: str) -> None:
            batch = [c for c in batch if config_key(c.config) not in trained]
            results = iter(executor.map(job, [c.config for c in batch]))
            for c in batch:
                if trained and rc.now() >= end_rank:     # at least one candidate gets an accuracy
                    return
                acc, secs = next(results)
                c.proxy_accuracy, c.proxy_seconds, c.origin = round(acc, 4), round(secs, 1), origin
                trained[config_key(c.config)] = c
                bar.update(1)
                log(f"  proxy {origin:9s} {c.config.name:40s} SRAM {c.cost.arena_bytes:>8,} B  "
                    f"acc {acc:.4f}  ({secs:.0f} s)")

        first = spread(res.front, top_k)
        base_front = memory_front(base_feasible) if base_feasible else []
        base_picks = spread(base_front, max(2, top_k // 2)) if base_front else []
        train_batch(first, "pareto")
        train_batch(base_picks, "baseline")
        gen = 0
        while rc.now() < end_rank:
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
            room = int((end_rank - rc.now()) / max(1.0, avg))
            if room < 1:
                break
            train_batch(kids[:room], f"gen{gen}")
    res.trained = sorted(trained.values(), key=lambda c: c.cost.arena_bytes)


def _rank_supernet(res: SearchResult, space: SearchSpace, feasible: list[Candidate],
                   base_feasible: list[Candidate], ds, model: CostModel, budget: Budget, by_key: dict,
                   seen: set, rc: RunClock, settings: SupernetSettings, rng: random.Random, seed: int,
                   kendall: int, data: DataSpec, proxy: ProxySettings, executor: Executor,
                   progress: bool, shared: Shared | None = None, cands: list[Candidate] | None = None
                   ) -> tuple[dict, dict]:
    """Supernet training (or the shared supernet), evolution, re-rank (and Kendall tau); returns
    the supernet's weights (numpy) and config_key -> fine-tuned Keras weights of each candidate
    the re-rank fine-tuned (this run's and, with `shared`, earlier runs')."""
    xv, yv = ds.val.x[:settings.val_images], ds.val.y[:settings.val_images]
    if shared is not None and shared.supernet is not None:
        net, info = shared.supernet
        res.supernet = copy.deepcopy(info)
        res.supernet["shared"] = True
        log(f"supernet: the one trained for the first budget ({info['steps']} steps on "
            f"{info['trained_on']:,} candidates that fit {info['trained_for_sram_bytes']:,} B)")
    else:
        train_for = shared.train_budget if shared is not None and shared.train_budget is not None else budget
        pool = [c for c in (cands or feasible) if not train_for.check(c)]
        log(f"supernet: training on {len(pool):,} feasible candidates (sandwich rule) until "
            f"{rc.deadline('supernet_training') - rc.start:.0f} s")
        with rc.phase("supernet_training"), phase_bar("supernet_training", None, progress, "step") as bar:
            net, info = train_supernet(pool, ds, settings, rc.deadline("supernet_training"), rc.now, seed,
                                       on_step=lambda i: bar.update(1))
        info["trained_on"] = len(pool)
        info["trained_for_sram_bytes"] = train_for.sram_bytes
        if shared is not None:
            shared.supernet = (net, copy.deepcopy(info))
        res.supernet = info
        log(f"supernet: {info['steps']} steps ({info['subnets_trained']} sub-network passes) in "
            f"{info['seconds']:.0f} s on {info['replicas']} replica(s); {info['parameters']:,} parameters")
    with rc.phase("evolution"), phase_bar("evolution", None, progress, "cand") as bar:
        seeds = rng.sample(feasible, min(len(feasible), 2 * settings.population))
        n0 = len(by_key)
        evo = evolve(space, net, model, budget, by_key, seeds, xv, yv, rng, rc.deadline("evolution"), rc.now,
                     settings, on_score=lambda c: bar.update(1))
        res.candidates_evaluated += len(by_key) - n0
        base = [c for c in base_feasible if config_key(c.config) not in evo.scored]
        for c in random.Random(seed + 3).sample(base, min(len(base), 2 * settings.population)):
            evo.scored[config_key(c.config)] = score(net, c, xv, yv, "baseline")
        # the memory this budget opens, sampled over patch sizes and parameter strata: inherited
        # accuracy drops wide patch-8 networks from the population (chance on the canvases), so
        # in a 2,700 s three-budget run no candidate over 128 KiB was ever scored
        floor = new_memory_floor(budget, shared)
        band = [c for c in feasible if c.cost.arena_bytes > floor and config_key(c.config) not in evo.scored]
        band = spread_picks(band, settings.population, random.Random(seed + 5))
        for c in band:
            evo.scored[config_key(c.config)] = score(net, c, xv, yv, "band")
    seen.update(evo.scored)
    res.evolution = {"generations": evo.generations, "scored": len(evo.scored), "band_sampled": len(band),
                     "rejected_by_constraints": evo.rejected, "planned_in_evolution": evo.planned,
                     "outside_supernet": evo.uncovered}
    log(f"evolution: {evo.generations} generations, {len(evo.scored)} candidates scored by inherited "
        f"accuracy, {evo.rejected} children rejected by the exact constraints")
    tuned = shared.rerank_weights if shared is not None else {}
    if shared is not None:
        # a candidate fine-tuned for a smaller budget fits this one too and keeps its score
        # (same supernet, same fine-tuning): the larger budget chooses from a superset
        added = 0
        for key, (row, c) in shared.reranked.items():
            if "finetuned_accuracy" in row and key not in evo.scored and not budget.check(c):
                evo.scored[key] = score(net, _fresh(c), xv, yv, "earlier budget")
                by_key.setdefault(key, evo.scored[key])
                added += 1
        if added:
            log(f"rerank: {added} candidate(s) fine-tuned for a smaller budget join this one's")
    if settings.rerank_top and settings.rerank_steps:
        with rc.phase("rerank"), phase_bar("rerank", min(settings.rerank_top, len(evo.scored)), progress,
                                           "cand") as bar:
            # a later budget of a --budgets run fine-tunes only candidates over the smaller budget
            # (those under it were the smaller run's to try): its winner differs only where SRAM binds
            band_only = shared is not None and floor > 0
            rr = rerank(net, list(evo.scored.values()), ds, xv, yv, settings, rc.deadline("rerank"), rc.now, seed,
                        on_done=lambda c: bar.update(1), earlier=shared.reranked if shared is not None else None,
                        floor=floor, band_only=band_only, keep=tuned)
        rr["floor_bytes"], rr["band_only"] = floor, band_only
        res.supernet["recipe"]["rerank"] = rr
        reused = sum(1 for r in rr["candidates"] if r.get("reused"))
        new = rr["reranked"] - reused
        log(f"rerank: {new} of {settings.rerank_top} (per patch size its best above {floor:,} B of arena"
            f"{'' if band_only else ', then its best of the rest'}) fine-tuned {settings.rerank_steps} steps "
            f"from {'Keras initial' if settings.rerank_init == 'keras' else 'inherited'} weights in "
            f"{rr['seconds']:.0f} s" + (f"; {reused} fine-tuned for a smaller budget kept their score" if reused else ""))
        if new < rr["shortlisted"]:
            res.notes.append(f"rerank: {new} of {rr['shortlisted']} shortlisted candidates were "
                             "fine-tuned in --budget-seconds; the rest keep their inherited accuracy")
    else:
        res.supernet["recipe"]["rerank"] = None
    res.trained = sorted(evo.scored.values(), key=lambda c: c.cost.arena_bytes)
    weights = net.numpy_weights()
    if kendall:
        with rc.phase("kendall"):
            res.kendall = measure_kendall(net, feasible, kendall, ds, xv, yv, settings.kendall_epochs, settings,
                                          random.Random(seed + 4), rc.deadline("kendall"), rc.now, seed)
        res.kendall["epochs"] = settings.kendall_epochs
        res.kendall["train_images"] = len(ds.train.x)
        log(f"kendall tau (inherited vs stand-alone, {res.kendall['measured']} sub-networks, "
            f"{settings.kendall_epochs} epochs each): {res.kendall['kendall_tau']}; after "
            f"{res.kendall['finetune_steps']} fine-tuning steps: {res.kendall['kendall_tau_finetuned']}")
        if res.kendall["measured"] < kendall:
            res.notes.append(f"kendall: {res.kendall['measured']} of {kendall} stand-alone trainings fitted "
                             "in --budget-seconds")
    return weights, tuned
