"""The fit report: arena, weights, fit verdict per region, lower bound, TFLM baseline.

Filled by `tinyml.codegen.pipeline.plan_model`; this module only judges numbers
(the board descriptor is loaded by the caller: the planner imports only core).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Bytes reserved for the main stack: the firmware's linker script reserves this
# much (`tinyml build --stack-bytes`, default), and the fit is judged with it.
# Once a build exists its static worst-case estimate (firmware/stack_usage.py)
# is the stack figure; `tinyml emulate` measures the high-water mark.
STACK_RESERVE = 8192
# .data/.bss of the runtime and app besides the arena (a self-test build links 24 B;
# serial builds add the input buffer), reserved in the data region when the arena is
# split over several RAM regions (codegen.pipeline.arena_regions).
STATIC_RAM_RESERVE = 1024
# Flash besides the weights (generated model.c, kernels, startup, drivers, app, newlib-nano)
# is the caller's code estimate (codegen.code_size.estimate: from the model's kernel calls)
# until the linked ELF is measured by `tinyml build`; this module only judges the numbers.


@dataclass
class Linked:
    """What a linked firmware measures (firmware.build reads it from the ELF)."""
    flash_bytes: int                 # flash image: text + rodata + .data's load image
    weights_bytes: int               # the weights.c arrays as linked
    static_ram_bytes: int            # .data + .bss besides the arena and the stack
    stack_reserve_bytes: int         # what the linker script reserves
    stack_estimate_bytes: int | None  # static worst case (None without GCC's call-graph files)


@dataclass
class Accounting:
    """The one statement of a model's flash and SRAM, printed alike by inspect, plan, build
    and emulate --profile. Before a build, code is an estimate and the stack is the reserve;
    after it, both are the linked firmware's (`flash_source`, `stack_source` say which)."""
    model_params_bytes: int          # constant tensors in the .tflite file
    weights_bytes: int               # weights.c: constant tensors the code reads + tables made at generate time
    code_bytes: int                  # flash besides the weights
    flash_bytes: int                 # weights + code
    flash_source: str                # "estimate" | "linked"
    arena_bytes: int
    stack_bytes: int
    stack_source: str                # "reserve" | "static estimate"
    stack_reserve_bytes: int
    static_ram_bytes: int            # .data + .bss of the firmware (0 before a build)
    sram_bytes: int                  # arena + stack + static (+ state before a build)
    state_bytes: int = 0             # op state kept between inferences (SVDF), outside the arena

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        code = "linked" if self.flash_source == "linked" else "estimate"
        static = f" + static {self.static_ram_bytes:,} B" if self.flash_source == "linked" else ""
        return [f"flash  {self.flash_bytes:>10,} B = weights {self.weights_bytes:,} B + code {self.code_bytes:,} B "
                f"({code}); model parameters in the file {self.model_params_bytes:,} B",
                f"SRAM   {self.sram_bytes:>10,} B = arena {self.arena_bytes:,} B + stack {self.stack_bytes:,} B "
                f"({self.stack_source}{', reserve ' + format(self.stack_reserve_bytes, ',') + ' B' if self.stack_source != 'reserve' else ''})"
                + static
                + (f" + state {self.state_bytes:,} B" if self.state_bytes and self.flash_source != "linked" else "")
                + (f" (state {self.state_bytes:,} B outside the arena)" if self.state_bytes and self.flash_source == "linked" else "")]


def account(model_params_bytes: int, weights_bytes: int, arena_bytes: int, linked: Linked | None = None,
            stack_reserve_bytes: int = STACK_RESERVE, state_bytes: int = 0,
            code_estimate_bytes: int | None = None) -> Accounting:
    """Flash and SRAM of a model: from the compiled model alone (code = `code_estimate_bytes`,
    the caller's estimate; stack = the reserve), or with a linked firmware's measurements
    (`linked`). `state_bytes`: the state block (variable tensors, outside the arena), counted
    in SRAM before a build; a linked firmware holds it in .bss, so its static RAM already
    includes it."""
    if linked is None:
        if code_estimate_bytes is None:
            raise ValueError("account() before a build needs code_estimate_bytes (codegen.code_size.estimate)")
        code, flash, src = code_estimate_bytes, weights_bytes + code_estimate_bytes, "estimate"
        stack, ssrc, static = stack_reserve_bytes, "reserve", 0
    else:
        weights_bytes = linked.weights_bytes
        code, flash, src = linked.flash_bytes - linked.weights_bytes, linked.flash_bytes, "linked"
        stack_reserve_bytes, static = linked.stack_reserve_bytes, linked.static_ram_bytes
        if linked.stack_estimate_bytes is not None:
            stack, ssrc = linked.stack_estimate_bytes, "static estimate"
        else:
            stack, ssrc = stack_reserve_bytes, "reserve"
    return Accounting(model_params_bytes=model_params_bytes, weights_bytes=weights_bytes, code_bytes=code,
                      flash_bytes=flash, flash_source=src, arena_bytes=arena_bytes, stack_bytes=stack,
                      stack_source=ssrc, stack_reserve_bytes=stack_reserve_bytes, static_ram_bytes=static,
                      sram_bytes=arena_bytes + stack + static + (state_bytes if linked is None else 0),
                      state_bytes=state_bytes)


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
    flash_bytes: int              # weights + code estimate
    sram_budget_bytes: int | None
    flash_budget_bytes: int | None
    fits: bool | None
    fit_detail: list[str]
    tflm_arena_bytes: int | None
    tflm_head_bytes: int | None
    ratio_vs_tflm: float | None
    steps: int
    buffers: int
    accounting: dict = field(default_factory=dict)   # Accounting.to_dict() (the figures every command prints)
    plan_seconds: float = 0.0     # wall time of import + lowering + plan_steps (TFLM comparison excluded)
    # --stream-input (codegen.stream): the arena above holds one input stripe;
    # full_image_arena_bytes is the same model planned with the whole image
    stream_input: bool = False
    full_image_arena_bytes: int | None = None
    stream_stripe_bytes: int | None = None
    # arena split over several RAM regions (memory_planner/regions.py): one entry per region
    # (name, symbol, section, capacity, arena and lower bound bytes); empty = one arena
    regions: list[dict] = field(default_factory=list)
    # FUSED_STAGE depth choice (codegen.pipeline.StageChoice.to_dict()): depth, chain, arena per
    # candidate depth (0 = layer by layer), with --stream-input also the resident arenas
    stage: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BoardFit:
    """The fit verdict of an arena and its flash constants on a board (all None without a board)."""
    stack_reserve_bytes: int
    flash_bytes: int                     # weights + code estimate
    sram_budget_bytes: int | None = None
    flash_budget_bytes: int | None = None
    fits: bool | None = None
    detail: list[str] = field(default_factory=list)


def board_fit(arena_bytes: int, weights_bytes: int, board: Any | None,
              regions: list[tuple[str, int]] | None = None, weights_region: Any | None = None,
              state_bytes: int = 0, *, code_bytes: int, code_functions: int,
              code_mode: str = "serial") -> BoardFit:
    """Arena + stack reserve against the arena's region, weights + code estimate against flash.

    `code_bytes`: the caller's estimate of the flash besides the weights of a `code_mode`
    firmware calling `code_functions` kernel functions (codegen.code_size.estimate).

    `board`: a loaded descriptor (tinyml.boards.load_board), or None for no verdict.
    `regions`: (region label, arena bytes) of a plan split over several RAM regions, the
    first being `arena_bytes`'s; each other region is judged on its own.
    `weights_region`: the board's external flash region (tinyml.boards.LinkRegion) the weights
    are linked into (`--weights-region`); internal flash then holds the runtime only.
    `state_bytes`: op state kept between inferences (outside the arena, in the same RAM)."""
    fit = BoardFit(stack_reserve_bytes=STACK_RESERVE, flash_bytes=weights_bytes + code_bytes)
    code = f"code estimate {code_bytes:,} B ({code_functions} kernel functions)"
    if board is None:
        return fit
    region = board.region_for("arena")
    fit.sram_budget_bytes = region.size
    fit.flash_budget_bytes = board.flash_region().size
    need = arena_bytes + STACK_RESERVE + state_bytes
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
        internal = code_bytes
    else:
        ok_ext, internal = True, fit.flash_bytes
    ok_flash = internal <= fit.flash_budget_bytes and ok_ext
    fit.fits = ok_sram and ok_flash
    state = f" + state {state_bytes:,} B" if state_bytes else ""
    fit.detail.append(f"{region.label}: arena {arena_bytes:,} B + stack reserve {STACK_RESERVE:,} B{state} = "
                      f"{need:,} of {fit.sram_budget_bytes:,} B -> "
                      f"{'fits' if need <= fit.sram_budget_bytes else f'over by {need - fit.sram_budget_bytes:,} B'}")
    fit.detail += more
    fit.sram_budget_bytes += sum(others[label] for label, _ in (regions or [])[1:])
    if weights_region is not None:
        fit.detail.append(f"FLASH: {code} of {fit.flash_budget_bytes:,} B -> "
                          f"{'fits' if internal <= fit.flash_budget_bytes else 'over'} (weights in "
                          f"{weights_region.label})")
    else:
        fit.detail.append(f"FLASH: weights {weights_bytes:,} B + {code} = "
                          f"{fit.flash_bytes:,} of {fit.flash_budget_bytes:,} B -> "
                          f"{'fits' if ok_flash else f'over by {fit.flash_bytes - fit.flash_budget_bytes:,} B'}")
    fit.detail.append(f"flash judged for the {code_mode} firmware"
                      + (" (deployable: no self-test vectors)" if code_mode == "serial" else ""))
    return fit
