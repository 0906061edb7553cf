"""Plan a model for a board: arena, weights, fit verdict, lower bound, TFLM baseline."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from .plan import Plan, plan_steps

# Bytes reserved for the main stack when judging the fit; the firmware's
# measured high-water mark is reported by `tinyml emulate`.
STACK_RESERVE = 4096
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

    def to_dict(self) -> dict:
        return asdict(self)


def plan_model(model_path: str, board_name: str | None = None, policy: str = "best",
               compare_tflm: bool = False, stream_input: bool = False) -> tuple[PlanReport, Plan]:
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.lower import lower_graph

    t0 = time.perf_counter()
    graph = import_tflite(model_path)
    steps, ctx = lower_graph(graph)
    plan = plan_steps(graph, steps, policy=policy)
    plan_seconds = time.perf_counter() - t0
    full_arena = stream = None
    if stream_input:
        from tinyml.codegen.stream import check_stream_input, stream_steps
        stream = check_stream_input(graph, steps)
        full_arena = plan.arena_bytes
        steps = stream_steps(graph, steps, stream)
        plan = plan_steps(graph, steps, policy=policy, stream_input_bytes=stream.stripe_bytes)
    from tinyml.codegen.emit import constant_bytes
    weights = constant_bytes(graph, steps, ctx)
    flash = weights + RUNTIME_FLASH_ESTIMATE
    sram_budget = flash_budget = None
    fits = None
    detail: list[str] = []
    if board_name:
        from tinyml.boards import load_board
        board = load_board(board_name)
        region = board.region_for("arena")
        sram_budget = region.size
        flash_budget = board.flash_region().size
        need = plan.arena_bytes + STACK_RESERVE
        ok_sram = need <= sram_budget
        ok_flash = flash <= flash_budget
        fits = ok_sram and ok_flash
        detail.append(f"{region.label}: arena {plan.arena_bytes:,} B + stack reserve {STACK_RESERVE:,} B = "
                      f"{need:,} of {sram_budget:,} B -> {'fits' if ok_sram else f'over by {need - sram_budget:,} B'}")
        detail.append(f"FLASH: weights {weights:,} B + runtime estimate {RUNTIME_FLASH_ESTIMATE:,} B = "
                      f"{flash:,} of {flash_budget:,} B -> {'fits' if ok_flash else f'over by {flash - flash_budget:,} B'}")
    tflm = None
    if compare_tflm:
        from .tflm import tflm_arena
        tflm = tflm_arena(model_path, num_inputs=len(graph.inputs))
    rep = PlanReport(
        model=model_path, board=board_name, policy=policy, arena_bytes=plan.arena_bytes,
        lower_bound_bytes=plan.lower_bound, peak_sram_bytes=plan.arena_bytes,
        stack_reserve_bytes=STACK_RESERVE, weights_bytes=weights, flash_bytes=flash,
        sram_budget_bytes=sram_budget, flash_budget_bytes=flash_budget, fits=fits, fit_detail=detail,
        tflm_arena_bytes=tflm.total if tflm else None, tflm_head_bytes=tflm.head if tflm else None,
        ratio_vs_tflm=(plan.arena_bytes / tflm.total) if tflm else None,
        steps=len(steps), buffers=len(plan.buffers), plan_seconds=round(plan_seconds, 3),
        stream_input=stream is not None, full_image_arena_bytes=full_arena,
        stream_stripe_bytes=stream.stripe_bytes if stream else None)
    return rep, plan
