"""Several SRAM budgets in one search run (`tinyml search --budgets 64K,128K,320K`).

Each budget is one `run.run_search` (its own feasible set, ranking, winner,
fixed-patch full-rank baseline, final training and export check) on a share of
`--budget-seconds`. The runs share what does not depend on the budget: the
exactly planned sample (`run.Shared`), one supernet trained once on the largest
budget's candidates and its re-rank fine-tunings (supernet ranking), one proxy
training per config (`SharedExecutor`) and one final training / re-plan /
verify per config (`shared_hooks`), so a candidate trained for the 64 KiB run
is not trained again for the 320 KiB one. The output is one JSON object with
a result per budget and one plot of accuracy vs peak SRAM with every budget,
its winner and its baseline (`plot_budgets`).
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

from tinyml.errors import TinymlError

from .budget import Budget
from .cost import config_key
from .executor import Executor
from .report import SearchResult, human_report, to_json

_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024 * 1024, "MB": 1024 * 1024,
          "MIB": 1024 * 1024}
BUDGETS_FIX = "give SRAM sizes separated by commas, e.g. --budgets 64K,128K,320K (K = 1024 bytes)"


def parse_budgets(text: str) -> list[int]:
    """'64K,128K,320K' -> [65536, 131072, 327680] (bytes, ascending); K/KB/KiB = 1024 B,
    M/MB/MiB = 1024 KiB, no unit = bytes. Malformed, zero, repeated or fewer-than-one
    entries are one error line."""
    parts = [p.strip() for p in (text or "").split(",")]
    if not text or not text.strip() or any(not p for p in parts):
        raise TinymlError(f"--budgets {text!r} has an empty entry", "--budgets", BUDGETS_FIX)
    out = []
    for p in parts:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", p)
        if not m or m.group(2).upper() not in _UNITS:
            raise TinymlError(f"--budgets entry {p!r} is not a size like 64K", "--budgets", BUDGETS_FIX)
        n = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
        if n < 1024:
            raise TinymlError(f"--budgets entry {p!r} is {n} B, below 1 KiB", "--budgets", BUDGETS_FIX)
        if n in out:
            raise TinymlError(f"--budgets entry {p!r} repeats {n:,} B", "--budgets", "give each budget once")
        out.append(n)
    return sorted(out)


def budgets_from(base: Budget, sizes: list[int]) -> list[Budget]:
    """`base` (flash, latency and MAC limits of the board) with each SRAM size."""
    return [replace(base, sram_bytes=s, description=f"{s // 1024:,} KiB SRAM for the arena"
                    + (f"; {base.flash_bytes:,} B flash" if base.flash_bytes is not None else "")
                    + (f"; <= {base.max_macs:,} MACs" if base.max_macs is not None else ""))
            for s in sizes]


class SharedExecutor(Executor):
    """An executor that trains each config once across the runs (by `config_key`)."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.name = inner.name
        self.done: dict[tuple, tuple[float, float]] = {}
        self.hits = 0

    def map(self, fn: Callable, items: Iterable) -> Iterable:
        items = list(items)
        todo = [c for c in items if config_key(c) not in self.done]
        fresh = iter(self.inner.map(fn, todo))
        for c in items:
            k = config_key(c)
            if k not in self.done:
                self.done[k] = next(fresh)
            else:
                self.hits += 1
            yield self.done[k]


def shared_hooks(hooks):
    """`hooks` (run.Hooks) whose final training, re-plan and verify run once per config."""
    trained: dict[tuple, tuple[dict, str]] = {}
    checked: dict[tuple, dict] = {}
    verified: dict[str, dict] = {}

    def final(c, *a, **kw):
        k = config_key(c.config)
        if k not in trained:
            trained[k] = hooks.final(c, *a, **kw)
        return trained[k]

    def replan(c, tflite):
        k = config_key(c.config)
        if k not in checked:
            checked[k] = hooks.replan(c, tflite)
        return checked[k]

    def verify(tflite, **kw):
        if tflite not in verified:
            verified[tflite] = hooks.verify(tflite, **kw)
        return verified[tflite]

    return type(hooks)(final=final, replan=replan, verify=verify)


@dataclass
class BudgetsResult:
    results: list[SearchResult]
    seconds: float = 0.0
    proxy_trainings: int = 0
    proxy_reused: int = 0
    notes: list[str] = field(default_factory=list)


# Under the supernet ranking the work done once (memory planning, supernet training) takes the
# first half of --budget-seconds: planning to 20 %, training to 50 %; each budget then gets an
# equal share of the rest for its evolution (first 10 % of that share), re-rank (to 45 %),
# final training and export.
SHARED_ENDS = {"memory_eval": 0.20, "supernet_training": 0.50}
PER_BUDGET_ENDS = {"evolution": 0.10, "rerank": 0.45}


def supernet_phases(i: int, n: int, left: float, total: float) -> tuple[float, dict[str, float]]:
    """Seconds and phase end shares of run `i` of `n` under the supernet ranking, `left` seconds
    remaining of `total`: run 0 does the shared work and its own part, the others only theirs."""
    if i > 0:
        secs = max(1.0, left / (n - i))
        ends = {p: 0.0 for p in ("data_load", "memory_eval", "supernet_training")}
        ends.update({p: PER_BUDGET_ENDS["rerank"] for p in ("rerank", "ranking", "kendall")})
        ends["evolution"] = PER_BUDGET_ENDS["evolution"]
        return secs, ends
    shared = SHARED_ENDS["supernet_training"] * total
    part = (total - shared) / n
    secs = shared + part
    ends = {"data_load": SHARED_ENDS["memory_eval"] * total / secs,
            "memory_eval": SHARED_ENDS["memory_eval"] * total / secs,
            "supernet_training": shared / secs,
            "evolution": (shared + PER_BUDGET_ENDS["evolution"] * part) / secs}
    ends.update({p: (shared + PER_BUDGET_ENDS["rerank"] * part) / secs for p in ("rerank", "ranking", "kendall")})
    return secs, ends


def run_budgets(run: Callable[..., SearchResult], budgets: list[Budget], budget_seconds: float,
                executor: Executor | None = None, hooks=None, clock: Callable[[], float] | None = None,
                **kwargs) -> BudgetsResult:
    """`run(budget=..., budget_seconds=..., executor=..., hooks=..., out_dir=..., shared=...,
    **kwargs)` once per budget, smallest first. The runs share one planned sample (`run.Shared`),
    and under `ranking="supernet"` one supernet trained on the largest budget's candidates
    (`supernet_phases` splits the time); under the proxy ranking each run gets an equal share
    of `budget_seconds`."""
    from .run import Hooks, Shared
    now = clock or time.monotonic
    t0 = now()
    shared = SharedExecutor(executor or Executor())
    hk = shared_hooks(hooks or Hooks())
    out_dir = kwargs.pop("out_dir", "search_out")
    common = Shared(train_budget=budgets[-1], sram_sizes=[b.sram_bytes for b in budgets])
    results = []
    for i, b in enumerate(budgets):
        left = budget_seconds - (now() - t0)
        share, ends = max(1.0, left / (len(budgets) - i)), None
        if kwargs.get("ranking") == "supernet":
            share, ends = supernet_phases(i, len(budgets), left, budget_seconds)
        results.append(run(budget=b, budget_seconds=share, executor=shared, hooks=hk,
                           out_dir=os.path.join(out_dir, f"sram_{b.sram_bytes // 1024}k"), shared=common,
                           phase_ends=ends, **kwargs))
    res = BudgetsResult(results, round(now() - t0, 3), len(shared.done), shared.hits)
    names = [r.chosen.config.name for r in results if r.chosen is not None]
    if len(set(names)) < len(names):
        res.notes.append("some budgets chose the same model: SRAM does not bind between them")
    return res


def winners_table(res: BudgetsResult) -> list[dict]:
    """Per budget: the winner and the best fixed-patch full-rank model that fits it."""
    rows = []
    for r in res.results:
        def one(c, m):
            if c is None:
                return None
            key = m.get("metric", "accuracy")
            return {"name": c.config.name, "patch_size": c.config.patch_size,
                    "embed_dim": c.config.embed_dim, "peak_sram_bytes": c.cost.arena_bytes,
                    "proxy_accuracy": c.proxy_accuracy, "accuracy": m.get(f"int8_{key}"),
                    "float_accuracy": m.get(f"float_{key}"), "epochs_run": m.get("epochs_run"),
                    "train_seconds": m.get("train_seconds")}
        rows.append({"sram_budget_bytes": r.budget.sram_bytes,
                     "winner": one(r.chosen, r.chosen_metrics),
                     "baseline": one(r.baseline, r.baseline_metrics)})
    return rows


def budgets_json(res: BudgetsResult) -> dict:
    return {"ok": True, "budgets": [r.budget.sram_bytes for r in res.results],
            "winners": winners_table(res), "results": [to_json(r) for r in res.results],
            "elapsed_seconds": res.seconds, "proxy_trainings": res.proxy_trainings,
            "proxy_trainings_reused": res.proxy_reused, "notes": res.notes}


def budgets_report(res: BudgetsResult) -> list[str]:
    lines = []
    for r in res.results:
        lines.append(f"=== SRAM budget {r.budget.sram_bytes // 1024} KiB ===")
        lines.extend(human_report(r))
        lines.append("")
    lines.append(f"winners ({res.proxy_trainings} proxy trainings, {res.proxy_reused} reused across budgets; "
                 f"{res.seconds:.0f} s):")
    lines.append(f"  {'budget':>8s}  {'winner':40s} {'SRAM':>9s} {'acc':>7s}   "
                 f"{'fixed-patch full-rank baseline':40s} {'SRAM':>9s} {'acc':>7s}")
    for row in winners_table(res):
        w, b = row["winner"] or {}, row["baseline"] or {}
        lines.append(f"  {row['sram_budget_bytes'] // 1024:>5d} KiB  {w.get('name', '-'):40s} "
                     f"{w.get('peak_sram_bytes', 0):>9,} {_acc(w):>7s}   {b.get('name', '-'):40s} "
                     f"{b.get('peak_sram_bytes', 0):>9,} {_acc(b):>7s}")
    lines.extend(res.notes)
    return lines


def _acc(d: dict) -> str:
    v = d.get("accuracy")
    return "-" if v is None else f"{v:.4f}"


def budget_figure(res: BudgetsResult):
    """The figure of `plot_budgets` (tests count its series)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    seen: dict[tuple, object] = {}
    for r in res.results:
        for c in r.trained:
            if c.proxy_accuracy is not None:
                seen.setdefault(config_key(c.config), c)
    cs = list(seen.values())
    ax.scatter([c.cost.arena_bytes / 1024 for c in cs], [c.proxy_accuracy for c in cs], s=16,
               c="tab:gray", alpha=0.7, label=f"evaluated candidates ({len(cs)}, proxy accuracy)")
    colors = ["tab:green", "tab:blue", "tab:purple", "tab:red", "tab:brown", "tab:olive"]
    for i, r in enumerate(res.results):
        col = colors[i % len(colors)]
        kib = r.budget.sram_bytes / 1024
        ax.axvline(kib, color=col, ls="--", lw=1.2, label=f"budget {kib:.0f} KiB")
        if r.chosen is not None:
            ax.scatter([r.chosen.cost.arena_bytes / 1024], [r.chosen.proxy_accuracy], s=140, marker="*",
                       color=col, edgecolors="black", zorder=5,
                       label=f"winner {kib:.0f} KiB: {r.chosen.config.name}")
        if r.baseline is not None:
            ax.scatter([r.baseline.cost.arena_bytes / 1024], [r.baseline.proxy_accuracy], s=80,
                       marker="s", facecolors="none", edgecolors=col, linewidths=1.8, zorder=4,
                       label=f"fixed-patch baseline {kib:.0f} KiB: {r.baseline.config.name}")
        # the final (trained, int8) accuracies of the winner and its baseline, same recipe
        pts = [(c, m.get("int8_" + m.get("metric", "accuracy")), mk)
               for c, m, mk in ((r.chosen, r.chosen_metrics, "*"), (r.baseline, r.baseline_metrics, "s"))
               if c is not None]
        pts = [(c, a, mk) for c, a, mk in pts if a is not None]
        if pts:
            for c, a, mk in pts:
                ax.scatter([c.cost.arena_bytes / 1024], [a], s=60, marker=mk, color=col, zorder=6)
            ax.scatter([], [], s=60, marker="*", color=col, label=f"final int8 {kib:.0f} KiB: " + " vs ".join(
                f"{'winner' if mk == '*' else 'baseline'} {a:.3f}" for _, a, mk in pts))
    ax.set_xlabel("peak SRAM (planned arena), KiB")
    ax.set_ylabel("accuracy (open marks: ranking score; filled: final int8 test)")
    name = res.results[0].dataset if res.results else ""
    ax.set_title(f"tinyml search on {name}: winners per SRAM budget")
    ax.legend(fontsize=6.5, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig, ax


def plot_budgets(res: BudgetsResult, path: str) -> None:
    import matplotlib.pyplot as plt
    fig, _ = budget_figure(res)
    fig.savefig(path, dpi=110)
    plt.close(fig)
