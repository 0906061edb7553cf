"""The search's budget: SRAM for the arena, flash, optional latency estimate and MAC cap."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tinyml.errors import TinymlError

if TYPE_CHECKING:
    from .candidates import Candidate


@dataclass
class Budget:
    sram_bytes: int
    flash_bytes: int | None
    latency_ms: float | None
    clock_hz: int | None
    description: str
    max_macs: int | None = None
    core: str | None = None          # the board's core: which code-size table judges flash

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
    flash = clock = core = None
    parts = []
    sram = None
    if board:
        from tinyml.boards import load_board
        b = load_board(board)
        region = b.region_for("arena")
        sram = region.size - STACK_RESERVE
        flash = b.flash_region().size
        clock = b.clock_hz
        core = b.core
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
    return Budget(sram, flash, latency_ms, clock, "; ".join(parts), max_macs, core)

