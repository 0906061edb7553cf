"""Search output: the result record, JSON, the human report, the plot, and the no-fit error."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from tinyml.errors import FitError

from .candidates import Candidate, pareto
from .instructions import INSTRUCTION_MODEL

if TYPE_CHECKING:
    from .budget import Budget
    from .cost import CostModel
    from .space import SearchSpace


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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
    task: str = "classify"
    input_shape: list[int] = field(default_factory=list)
    ranking_description: str = ""
    budget_seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)
    elapsed_seconds: float = 0.0
    chosen_verify: dict = field(default_factory=dict)
    supernet: dict | None = None        # supernet training: steps, seconds, replicas, space
    evolution: dict | None = None       # generations, scored, rejected by the constraints
    kendall: dict | None = None         # kendall_tau and its samples (--kendall N)


class _NoBar:
    def update(self, n: int = 1) -> None:
        del n

    def update_to(self, i: int) -> None:
        del i


class _Bar:
    """A tqdm bar on stderr; `update_to` sets the absolute count."""

    def __init__(self, bar) -> None:
        self.bar = bar

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def update_to(self, i: int) -> None:
        self.bar.update(i - self.bar.n)


@contextmanager
def phase_bar(phase: str, total: int | None, enabled: bool, unit: str) -> Iterator:
    """One progress bar per search phase (stderr), or nothing when not `enabled`."""
    if not enabled:
        yield _NoBar()
        return
    from tqdm import tqdm
    bar = tqdm(total=total, desc=phase, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=True)
    try:
        yield _Bar(bar)
    finally:
        bar.close()


def no_fit_error(cands: list[Candidate], budget: Budget, space: SearchSpace,
                 model: CostModel) -> FitError:
    """The smallest achievable peak and what dominates it."""
    smallest = min(cands, key=lambda c: (c.cost.arena_bytes, c.cost.flash_bytes))
    # the space's absolute smallest corner, in case sampling missed it
    corner = space.make(max(space.patch_sizes), min(space.embed_dims), min(space.depths), 1
                        if 1 in space.heads else min(space.heads), min(space.mlp_ratios))
    if space.valid(corner):
        cc = Candidate(corner, model.evaluate(corner))
        if cc.cost.arena_bytes < smallest.cost.arena_bytes:
            smallest = cc
    rep = model.explain_peak(smallest.config, top=3)
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


def pareto_accuracy(trained: list[Candidate]) -> list[Candidate]:
    """Trained candidates not beaten on both higher proxy accuracy and lower peak SRAM. Scores
    of one scale only: when the supernet's re-rank fine-tuned some candidates, the front is of
    those (an inherited accuracy is not comparable with a fine-tuned one)."""
    trained = [c for c in trained if c.reranked] or trained

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
        "task": res.task,
        "input_shape": res.input_shape,
        "ranking": res.ranking,
        "ranking_description": res.ranking_description,
        "budget_seconds": res.budget_seconds,
        "elapsed_seconds": res.elapsed_seconds,
        "phase_seconds": res.phase_seconds,
        "instructions_estimate": INSTRUCTION_MODEL,
        "pareto": [c.summary(clock) for c in (pareto_accuracy(res.trained) if res.trained
                                              else res.front)],
        "trained": [dict(c.summary(clock), origin=c.origin, proxy_seconds=c.proxy_seconds)
                    for c in res.trained],
        "chosen": None, "baseline": None, "notes": res.notes,
    }
    if res.ranking == "supernet":
        # under the supernet ranking, a candidate's proxy_accuracy is its inherited accuracy
        d["supernet"], d["evolution"] = res.supernet, res.evolution
    if res.kendall is not None:
        d["kendall_tau"] = res.kendall["kendall_tau"]
        d["kendall"] = res.kendall
    if res.chosen is not None:
        d["chosen"] = _final(res.chosen, res.chosen_metrics, res.chosen_tflite, clock)
        d["chosen"]["plan_check"] = res.chosen_plan_check
        d["chosen"]["verify"] = res.chosen_verify
        if res.chosen_plan_check:
            # Report the exported file's real flash; keep the estimate beside it.
            d["chosen"]["flash_bytes_fast_path"] = d["chosen"]["flash_bytes"]
            d["chosen"]["flash_bytes"] = res.chosen_plan_check["flash_bytes_exported"]
    if res.baseline is not None:
        d["baseline"] = _final(res.baseline, res.baseline_metrics, res.baseline_tflite, clock)
        d["baseline"]["description"] = "best full-rank model with the fixed patch size that fits"
    return d


def _final(c: Candidate, metrics: dict, tflite: str | None, clock) -> dict:
    """`accuracy` is the int8 model's test score: accuracy, or mAP@0.5 for a detector (`metric`)."""
    key = metrics.get("metric", "accuracy")
    return {"config": c.config.to_dict(), "tflite": tflite, "peak_sram_bytes": c.cost.arena_bytes,
            "flash_bytes": c.cost.flash_bytes, "macs": c.cost.macs,
            "instructions_estimate": c.instructions, "metric": key,
            "accuracy": metrics.get(f"int8_{key}"), "float_accuracy": metrics.get(f"float_{key}"),
            "proxy_accuracy": c.proxy_accuracy, "epochs_run": metrics.get("epochs_run"),
            "start": metrics.get("start"),
            "train_seconds": metrics.get("train_seconds")}


def human_report(res: SearchResult) -> list[str]:
    lines = [f"budget: {res.budget.description}",
             f"memory: {res.candidates_evaluated:,} candidates planned exactly in "
             f"{res.memory_eval_seconds:.1f} s; {res.feasible:,} feasible "
             f"(space of {res.search_space_size:,} configs)",
             f"ranking: {res.ranking_description or res.ranking}"]
    if res.phase_seconds:
        lines.append("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in res.phase_seconds.items())
                     + f" (budget {res.budget_seconds:.0f} s, elapsed {res.elapsed_seconds:.1f} s)")
    lines.append("")
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
        key = m.get("metric", "accuracy")
        lines.append(f"{tag}: {c.config.name}  int8 {key} {m.get('int8_' + key)}  "
                     f"(float {m.get('float_' + key)}), peak SRAM {c.cost.arena_bytes:,} B, "
                     f"flash {c.cost.flash_bytes:,} B")
        lines.append(f"  {path}")
    if res.chosen_plan_check:
        pc = res.chosen_plan_check
        lines.append(f"exported model re-planned: arena {pc['arena_bytes_exported']:,} B "
                     f"({'matches' if pc['match'] else 'DIFFERS FROM'} the fast path)")
    if res.chosen_verify:
        v = res.chosen_verify
        lines.append(f"generated C vs {v['oracle']}: {v['mismatching_bytes']} of {v['output_bytes_compared']:,} "
                     f"output bytes differ over {v['inputs_compared']} inputs"
                     f" ({'bit-exact' if v['bit_exact'] else 'NOT bit-exact'})")
    if res.kendall is not None:
        k = res.kendall
        lines.append(f"kendall tau, inherited vs stand-alone accuracy: {k['kendall_tau']} over {k['measured']} "
                     f"sub-networks ({k['epochs']} epochs each on {k['train_images']} images)")
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
