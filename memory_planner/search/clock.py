"""The search's time budget: `--budget-seconds` bounds the whole run.

The run has four phases (after `data_load`, reading the user's images), each
ending at a fixed share of the budget (measured from the start, so time one
phase leaves unused passes to the next):

    memory_eval     exact planning of sampled candidates      until 25 %
    ranking         proxy trainings (Pareto picks, evolution) until 60 %
      or, with --ranking supernet: supernet_training until 45 %, evolution until 50 %,
      rerank (fine-tuning the best few) until 60 %
      (with --kendall: supernet_training to 30 %, evolution to 33 %, rerank to 40 %, kendall to 75 %)
    final_training  the winner (then the baseline) trained    until budget - export reserve
    export_verify   int8 export, re-plan, bit-exact verify    until the budget

`clock` is injectable (tests pass a fake one); `seconds` records each phase's
measured time. Every phase does at least one unit of work (one candidate
family, one proxy training, one epoch), so a budget smaller than that unit is
overrun; `overrun()` says by how much.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

PHASES = ("data_load", "memory_eval", "ranking", "supernet_training", "evolution", "rerank", "kendall",
          "final_training", "export_verify")
MEMORY_SHARE = 0.25
RANKING_END = 0.60
# With `--ranking supernet` the ranking window is split (shares of the budget, from the start):
SUPERNET_ENDS = {"supernet_training": 0.45, "evolution": 0.50, "rerank": RANKING_END, "kendall": RANKING_END}
# --kendall: N stand-alone trainings are the longest part of the ranking
SUPERNET_KENDALL_ENDS = {"supernet_training": 0.30, "evolution": 0.33, "rerank": 0.40, "kendall": 0.75}


def export_reserve(total_seconds: float) -> float:
    """Time kept for export, re-plan and verify: 15 % of the budget, 15..120 s, never above 30 %."""
    return min(0.30 * total_seconds, max(15.0, min(120.0, 0.15 * total_seconds)))


@dataclass
class RunClock:
    total_seconds: float
    clock: Callable[[], float] = time.monotonic
    reserve_seconds: float | None = None
    ends: dict[str, float] = field(default_factory=dict)     # phase end shares (SUPERNET_ENDS ...)
    start: float = field(init=False)
    seconds: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        self.start = self.clock()
        self.seconds = {p: 0.0 for p in PHASES}
        if self.reserve_seconds is None:
            self.reserve_seconds = export_reserve(self.total_seconds)

    def now(self) -> float:
        return self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def deadline(self, phase: str) -> float:
        """The clock value at which `phase` must end."""
        t = self.total_seconds
        ends = {"data_load": MEMORY_SHARE * t, "memory_eval": MEMORY_SHARE * t, "ranking": RANKING_END * t,
                "final_training": t - float(self.reserve_seconds or 0.0), "export_verify": t}
        ends.update({p: share * t for p, share in SUPERNET_ENDS.items()})
        ends.update({p: share * t for p, share in self.ends.items()})
        return self.start + max(ends[phase], 0.0)

    def left(self, phase: str) -> float:
        return self.deadline(phase) - self.clock()

    def wall_deadline(self, phase: str) -> float:
        """The same deadline on time.time() (for code that reads the wall clock)."""
        return time.time() + self.left(phase)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = self.clock()
        try:
            yield
        finally:
            self.seconds[name] += self.clock() - t0

    def move(self, src: str, dst: str, secs: float) -> None:
        """Book `secs` measured inside `src` to `dst` (the export inside a training call)."""
        secs = min(secs, self.seconds[src])
        self.seconds[src] -= secs
        self.seconds[dst] += secs

    def overrun(self) -> float:
        return max(0.0, self.elapsed() - self.total_seconds)

    def report(self) -> dict[str, float]:
        return {p: round(s, 3) for p, s in self.seconds.items()}


def epoch_fits(now: float, deadline: float | None, epoch_seconds: list[float]) -> bool:
    """Whether another training epoch, as long as the last one, ends by `deadline`.
    The first epoch always runs (it also pays for tracing, so after it the guess is high)."""
    if deadline is None or not epoch_seconds:
        return True
    return now + epoch_seconds[-1] <= deadline
