"""The fit report: arena, weights, fit verdict per region, lower bound, TFLM baseline.

Filled by `tinyml.codegen.pipeline.plan_model`; this module only judges numbers
(the board descriptor is loaded by the caller: the planner imports only core).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Bytes reserved for the main stack when judging the fit; the firmware's
# measured high-water mark is reported by `tinyml emulate`.
STACK_RESERVE = 4096
# .data/.bss of the runtime and app besides the arena (a self-test build links 24 B;
# serial builds add the input buffer), reserved in the data region when the arena is
# split over several RAM regions (codegen.pipeline.arena_regions).
STATIC_RAM_RESERVE = 1024
# Firmware code outside the model (startup, drivers, app, newlib-nano), a
# conservative estimate until the linked ELF is measured by `tinyml build`.
RUNTIME_FLASH_ESTIMATE = 16 * 1024


@dataclass
class PlanReport:
    model: str
    board: str | None
    policy: str
    arena_bytes: int
    lower_bound_bytes: int
    peak_sram_bytes: int          # arena (activations, scratch, I/O), excluding stack
    stack_reserve_bytes: int
    weights_bytes: int
    flash_bytes: int              # weights + runtime/code estimate
    sram_budget_bytes: int | None
    flash_budget_bytes: int | None
    fits: bool | None
    fit_detail: list[str]
    tflm_arena_bytes: int | None
    tflm_head_bytes: int | None
    ratio_vs_tflm: float | None
    steps: int
    buffers: int
    plan_seconds: float = 0.0     # wall time of import + lowering + plan_steps (TFLM comparison excluded)
    # --stream-input (codegen.stream): the arena above holds one input stripe;
    # full_image_arena_bytes is the same model planned with the whole image
    stream_input: bool = False
    full_image_arena_bytes: int | None = None
    stream_stripe_bytes: int | None = None
    # arena split over several RAM regions (memory_planner/regions.py): one entry per region
    # (name, symbol, section, capacity, arena and lower bound bytes); empty = one arena
    regions: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BoardFit:
    """The fit verdict of an arena and its flash constants on a board (all None without a board)."""
    stack_reserve_bytes: int
    flash_bytes: int                     # weights + runtime/code estimate
    sram_budget_bytes: int | None = None
    flash_budget_bytes: int | None = None
    fits: bool | None = None
    detail: list[str] = field(default_factory=list)


def board_fit(arena_bytes: int, weights_bytes: int, board: Any | None,
              regions: list[tuple[str, int]] | None = None, weights_region: Any | None = None) -> BoardFit:
    """Arena + stack reserve against the arena's region, weights + runtime estimate against flash.

    `board`: a loaded descriptor (tinyml.boards.load_board), or None for no verdict.
    `regions`: (region label, arena bytes) of a plan split over several RAM regions, the
    first being `arena_bytes`'s; each other region is judged on its own.
    `weights_region`: the board's external flash region (tinyml.boards.LinkRegion) the weights
    are linked into (`--weights-region`); internal flash then holds the runtime only."""
    fit = BoardFit(stack_reserve_bytes=STACK_RESERVE, flash_bytes=weights_bytes + RUNTIME_FLASH_ESTIMATE)
    if board is None:
        return fit
    region = board.region_for("arena")
    fit.sram_budget_bytes = region.size
    fit.flash_budget_bytes = board.flash_region().size
    need = arena_bytes + STACK_RESERVE
    ok_sram = need <= fit.sram_budget_bytes
    others = {r.label: r.size for r in board.arena_regions()}
    more = []
    for label, nbytes in (regions or [])[1:]:
        ok = nbytes <= others[label]
        ok_sram = ok_sram and ok
        more.append(f"{label}: arena {nbytes:,} of {others[label]:,} B -> "
                    f"{'fits' if ok else f'over by {nbytes - others[label]:,} B'}")
    if weights_region is not None:
        ok_ext = weights_bytes <= weights_region.size
        more.append(f"{weights_region.label}: weights {weights_bytes:,} of {weights_region.size:,} B -> "
                    f"{'fits' if ok_ext else f'over by {weights_bytes - weights_region.size:,} B'}")
        internal = RUNTIME_FLASH_ESTIMATE
    else:
        ok_ext, internal = True, fit.flash_bytes
    ok_flash = internal <= fit.flash_budget_bytes and ok_ext
    fit.fits = ok_sram and ok_flash
    fit.detail.append(f"{region.label}: arena {arena_bytes:,} B + stack reserve {STACK_RESERVE:,} B = "
                      f"{need:,} of {fit.sram_budget_bytes:,} B -> "
                      f"{'fits' if need <= fit.sram_budget_bytes else f'over by {need - fit.sram_budget_bytes:,} B'}")
    fit.detail += more
    fit.sram_budget_bytes += sum(others[label] for label, _ in (regions or [])[1:])
    if weights_region is not None:
        fit.detail.append(f"FLASH: runtime estimate {internal:,} B of {fit.flash_budget_bytes:,} B -> "
                          f"{'fits' if internal <= fit.flash_budget_bytes else 'over'} (weights in "
                          f"{weights_region.label})")
    else:
        fit.detail.append(f"FLASH: weights {weights_bytes:,} B + runtime estimate {RUNTIME_FLASH_ESTIMATE:,} B = "
                          f"{fit.flash_bytes:,} of {fit.flash_budget_bytes:,} B -> "
                          f"{'fits' if ok_flash else f'over by {fit.flash_bytes - fit.flash_budget_bytes:,} B'}")
    return fit
