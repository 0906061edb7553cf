"""The one compile pipeline: import -> lower/fuse -> [stream] -> plan.

`compile(model, options)` is the only place the front of the compiler is
written. `generate` (emit), `plan`, `verify`, `build`, `bench` and the search
all call it; none of them import, lower and plan on their own.

    compiled = compile("model.tflite", CompileOptions(policy="best"))
    compiled.graph, compiled.steps, compiled.plan, compiled.constant_bytes

`plan_model` adds the board fit and the TFLM baseline on top (what
`tinyml plan` and `tinyml bench` print).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from typing import Protocol

from tinyml.boards import Board, load_board
from tinyml.ir import Graph
from tinyml.memory_planner.plan import Plan, plan_steps
from tinyml.memory_planner.regions import ArenaRegion
from tinyml.memory_planner.report import STACK_RESERVE, STATIC_RAM_RESERVE, Accounting, PlanReport, account, board_fit
from tinyml.steps import Step, call_constants

from .code_size import DEPLOY_MODE, CodeEstimate, CodeSizeTable, estimate, load_table
from .importer import import_tflite
from .lower import lower_graph
from .lowering import LowerCtx
from .ops.fused_stage import lower_stage, stage_chain
from .stream import StreamInfo, StreamInputError, check_stream_input, stream_steps

# Requantization rounding of the emitted kernels (kernels/include/tinyml/config.h):
# "tflite" = TensorFlow 2.21's TFLite reference kernels (the project's oracle;
# FULLY_CONNECTED rounds once), "tflm" = the tflite_micro wheel (double
# rounding everywhere). An explicit choice: generating never runs an oracle.
ROUNDINGS = ("tflite", "tflm")
DEFAULT_ROUNDING = "tflite"


@dataclass(frozen=True)
class CompileOptions:
    """Everything that changes what `compile` produces.

    policy: placement policy (memory_planner.placement.POLICIES)
    fuse: fuse op chains into single kernels (codegen.fuse)
    stream_input: read the image in row stripes (codegen.stream)
    rounding: requantization rounding the emitted kernels reproduce: "tflite"
        (default; TFLite's reference kernels, the oracle `verify` uses) or
        "tflm" (tflite_micro's double rounding; see ROUNDINGS)
    regions: the board's RAM regions that may hold the arena (`arena_regions`);
        empty = one arena of any size. A plan that fits the first is unchanged.
    stage: run a CNN's first layers as one FUSED_STAGE row pipeline when that
        plans smaller (codegen/ops/fused_stage.py; needs `fuse`); `stage_depth`
        forces how many layers (tests, experiments).
    fuse_check: keep the fused steps only when they plan no larger than the
        unfused ones (a fused kernel's scratch can outweigh the buffers it saves);
        False (or a forced `stage_depth`) keeps fusion regardless.
    """
    policy: str = "best"
    fuse: bool = True
    stream_input: bool = False
    rounding: str = DEFAULT_ROUNDING
    regions: tuple[ArenaRegion, ...] = ()
    stage: bool = True
    stage_depth: int | None = None    # force the FUSED_STAGE depth (>= 2); None: the smallest plan
    fuse_check: bool = True


@dataclass(frozen=True)
class StageChoice:
    """The FUSED_STAGE depth the pipeline chose (codegen/ops/fused_stage.py) and why.

    arenas: planned arena per candidate depth (0 = layer by layer, else the
    first `depth` layers as one row pipeline), for the options compiled
    (streamed when --stream-input). Every candidate recomputes nothing (row
    rings), so the instruction-overhead estimate (recomputed MACs / all MACs)
    is 0 for each and none is excluded by the overhead limit; the smallest
    arena wins, the shallower depth on a tie."""
    depth: int
    chain: int                        # leading layers that may form a stage
    arenas: dict[int, int]
    resident_arenas: dict[int, int] | None = None   # with --stream-input: the same without streaming

    def to_dict(self) -> dict:
        return {"depth": self.depth, "chain": self.chain, "arenas": dict(self.arenas),
                "resident_arenas": dict(self.resident_arenas) if self.resident_arenas else None}


def arena_regions(board: Board, stack_bytes: int = STACK_RESERVE, static_bytes: int = STATIC_RAM_RESERVE,
                  variant: str = "native") -> tuple[ArenaRegion, ...]:
    """The board's arena regions for the planner, main region first, each with its free bytes:
    its size minus the stack reserve where the stack goes and `static_bytes` (.data/.bss of the
    runtime and app) where the data goes."""
    stack, data = board.region_for("stack", variant).name, board.region_for("data", variant).name
    out = []
    for k, r in enumerate(board.arena_regions(variant)):
        free = r.size - (stack_bytes if r.name == stack else 0) - (static_bytes if r.name == data else 0)
        tag = re.sub(r"[^a-z0-9]+", "_", r.label.lower()).strip("_")
        out.append(ArenaRegion(name=r.label, capacity=max(0, free),
                               section=".bss.tinyml_arena" if k == 0 else (r.section or f".bss.tinyml_arena_{tag}"),
                               symbol="tinyml_arena" if k == 0 else f"tinyml_arena_{tag}"))
    return tuple(out)


class Lowerer(Protocol):
    """What the pipeline calls to lower a graph; a cache may stand in
    (codegen.lower_cache.LoweringCache, which the search uses)."""

    def __call__(self, graph: Graph, fuse: bool) -> tuple[list[Step], LowerCtx]: ...


@dataclass
class Compiled:
    """The result of `compile`: what emit renders and what reports read."""
    graph: Graph
    steps: list[Step]
    ctx: LowerCtx
    plan: Plan
    options: CompileOptions
    stream: StreamInfo | None = None
    full_image_arena_bytes: int | None = None     # with stream_input: the arena without streaming
    stage: StageChoice | None = None              # FUSED_STAGE depth choice (None: no stage candidate)
    seconds: float = 0.0                          # wall time of import + lower + plan

    @property
    def constant_bytes(self) -> int:
        """Bytes of const data weights.c will hold: tensors the calls reference plus derived arrays."""
        return constant_bytes(self.graph, self.steps, self.ctx)


def code_estimate(c: Compiled, mode: str = DEPLOY_MODE, vectors: int = 0,
                  table: CodeSizeTable | None = None) -> CodeEstimate:
    """Flash besides the weights of a `mode` firmware of `c` (codegen.code_size.estimate on its
    steps' kernel calls); `vectors`: self-test vectors linked (each input + output bytes).
    `tinyml plan`, inspect and the search judge the deployable serial firmware."""
    g = c.graph
    ins, outs = sum(g.t(t).nbytes for t in g.inputs), sum(g.t(t).nbytes for t in g.outputs)
    return estimate(c.steps, mode, vectors_bytes=vectors * (ins + outs), table=table, mse=ins == outs)


def accounting(c: Compiled, code: CodeEstimate | None = None) -> Accounting:
    """The model's flash and SRAM before a build (memory_planner.report.account): parameters in
    the file, weights.c's bytes, the planned arena; code estimated (`code`, default
    `code_estimate(c)`: serial firmware, the default board's table), stack = the reserve."""
    return account(c.graph.param_bytes(), c.constant_bytes, c.plan.total_arena_bytes,
                   state_bytes=c.plan.state_bytes, code_estimate_bytes=(code or code_estimate(c)).bytes)


def constant_bytes(graph: Graph, steps: list[Step], ctx: LowerCtx) -> int:
    """Flash constants of a lowered graph (see Compiled.constant_bytes)."""
    return referenced_const_bytes(graph, steps) + ctx.const_bytes()


def referenced_const_bytes(graph: Graph, steps: list[Step]) -> int:
    """Bytes of the constant tensors the steps' calls reference, each once (a filter a
    lowering packed into a generated array is not referenced itself). Steps made without
    calls (codegen.lower_cache) carry the list in `Step.const_refs`."""
    used: set[int] = set()
    for s in steps:
        used.update(s.const_refs if s.const_refs is not None else call_constants(s, graph))
    return sum(graph.t(t).nbytes for t in used)


def compile(model: str | Graph, options: CompileOptions | None = None,  # noqa: A001 (the pipeline's name)
            lowerer: Lowerer | None = None) -> Compiled:
    """Import (when given a path), lower, and plan; raise TinymlError on anything we cannot compile."""
    options = options or CompileOptions()
    if options.rounding not in ROUNDINGS:
        from tinyml.errors import TinymlError
        raise TinymlError(f"unknown rounding {options.rounding!r}", "compile options",
                          "use one of " + ", ".join(ROUNDINGS))
    t0 = time.perf_counter()
    graph = import_tflite(model) if isinstance(model, str) else model
    steps, ctx = (lowerer or lower_graph)(graph, fuse=options.fuse)
    stream = full = stage = None
    if options.fuse and options.stage and lowerer is None:
        steps, stage = choose_stage(graph, steps, ctx, options)
    if options.stream_input:
        stream = check_stream_input(graph, steps)
        if stage is not None and stage.resident_arenas:
            full = min(stage.resident_arenas.values())
        else:
            full = plan_steps(graph, steps, policy=options.policy).arena_bytes
        steps = stream_steps(graph, steps, stream)
    plan = plan_steps(graph, steps, policy=options.policy,
                      stream_input_bytes=stream.stripe_bytes if stream else None, regions=options.regions)
    c = Compiled(graph=graph, steps=steps, ctx=ctx, plan=plan, options=options, stream=stream,
                 full_image_arena_bytes=full, stage=stage, seconds=time.perf_counter() - t0)
    return c if lowerer is not None else fusion_checked(c, lower_graph)


def fusion_checked(c: Compiled, lowerer: Lowerer) -> Compiled:
    """`c`, or the unfused compile of its graph (lowered by `lowerer`) when that plans smaller:
    fusion never costs SRAM. Off with `fuse_check=False`, a forced `stage_depth` or
    `stream_input`. `compile` applies it; the search's cost model (lowering cache) too."""
    o = c.options
    if not (o.fuse and o.fuse_check) or o.stream_input or o.stage_depth is not None:
        return c
    plain = compile(c.graph, replace(o, fuse=False), lowerer=lowerer)
    if plain.plan.total_arena_bytes >= c.plan.total_arena_bytes:
        return c
    plain.plan.notes.append(f"fusion off: the unfused steps plan {plain.plan.total_arena_bytes:,} B, "
                            f"the fused ones {c.plan.total_arena_bytes:,} B")
    return plain


def _stage_arenas(graph: Graph, steps: list[Step], depths: list[int], options: CompileOptions,
                  stream: bool) -> dict[int, int]:
    """Planned arena per candidate depth (a throwaway LowerCtx: only the plan is kept)."""
    out: dict[int, int] = {}
    for d in depths:
        cand = steps if d == 0 else [lower_stage(graph, steps[:d], LowerCtx(graph), stream=stream)] + steps[d:]
        info = None
        if stream:
            try:
                info = check_stream_input(graph, cand)
            except StreamInputError:
                continue                      # layer by layer cannot stream this model
            cand = stream_steps(graph, cand, info)
        plan = plan_steps(graph, cand, policy=options.policy, regions=options.regions,
                          stream_input_bytes=info.stripe_bytes if info else None)
        out[d] = plan.total_arena_bytes
    return out


def choose_stage(graph: Graph, steps: list[Step], ctx: LowerCtx,
                 options: CompileOptions) -> tuple[list[Step], StageChoice | None]:
    """The steps with the FUSED_STAGE depth that plans smallest (see StageChoice), and the choice."""
    chain = stage_chain(graph, steps)
    if options.stage_depth is not None and not 2 <= options.stage_depth <= len(chain):
        from tinyml.errors import TinymlError
        raise TinymlError(f"stage depth {options.stage_depth}: the first {len(chain)} layers can form a stage "
                          "(CONV_2D / DEPTHWISE_CONV_2D chain from the input)", graph.source or graph.name,
                          f"use a depth from 2 to {len(chain)}" if len(chain) >= 2 else "drop the stage depth")
    if len(chain) < 2:
        return steps, None
    depths = [0] + list(range(2, len(chain) + 1))
    if options.stage_depth is not None:
        depths = [options.stage_depth]
    arenas = _stage_arenas(graph, steps, depths, options, options.stream_input)
    resident = _stage_arenas(graph, steps, depths, options, False) if options.stream_input else None
    if not arenas:
        return steps, None
    best = min(arenas, key=lambda d: (arenas[d], d))
    choice = StageChoice(depth=best, chain=len(chain), arenas=arenas, resident_arenas=resident)
    if best == 0:
        return steps, choice
    return [lower_stage(graph, steps[:best], ctx, stream=options.stream_input)] + steps[best:], choice


def plan_model(model_path: str, board_name: str | None = None, policy: str = "best",
               compare_tflm: bool = False, stream_input: bool = False,
               options: CompileOptions | None = None,
               weights_region: str | None = None) -> tuple[PlanReport, Plan]:
    """compile + the board's fit verdict + (optionally) TFLM's arena for the same file.
    `weights_region`: judge the weights against that external flash region of the board."""
    board = load_board(board_name) if board_name else None
    wreg = None
    if weights_region:
        if board is None:
            from tinyml.errors import TinymlError
            raise TinymlError("--weights-region needs a board", "tinyml plan", "add --board B")
        wreg = board.weights_region(weights_region)
    options = replace(options or CompileOptions(), policy=policy, stream_input=stream_input,
                      regions=arena_regions(board) if board else ())
    c = compile(model_path, options)
    table = load_table(board.core if board else None)
    code = code_estimate(c, table=table)
    fit = board_fit(c.plan.arena_bytes, c.constant_bytes, board,
                    [(r.name, r.arena_bytes) for r in c.plan.regions], wreg, state_bytes=c.plan.state_bytes,
                    code_bytes=code.bytes, code_functions=code.functions, code_mode=code.mode)
    if board is not None and board.core != code.cpu:
        fit.detail.append(f"the code estimate is measured for {code.cpu} (codegen/code_size.json), "
                          f"not for this board's {board.core}: it may be below the linked code")
    tflm = None
    if compare_tflm:
        from tinyml.memory_planner.tflm import tflm_arena
        tflm = tflm_arena(model_path, num_inputs=len(c.graph.inputs))
    rep = PlanReport(
        model=model_path, board=board_name, policy=policy, arena_bytes=c.plan.total_arena_bytes,
        lower_bound_bytes=c.plan.lower_bound, peak_sram_bytes=c.plan.total_arena_bytes,
        stack_reserve_bytes=fit.stack_reserve_bytes, weights_bytes=c.constant_bytes,
        flash_bytes=fit.flash_bytes, sram_budget_bytes=fit.sram_budget_bytes,
        flash_budget_bytes=fit.flash_budget_bytes, fits=fit.fits, fit_detail=fit.detail,
        tflm_arena_bytes=tflm.total if tflm else None, tflm_head_bytes=tflm.head if tflm else None,
        ratio_vs_tflm=(c.plan.total_arena_bytes / tflm.total) if tflm else None,
        steps=len(c.steps), buffers=len(c.plan.buffers),
        accounting=accounting(c, code).to_dict(),
        plan_seconds=round(c.seconds, 3),
        stream_input=c.stream is not None, full_image_arena_bytes=c.full_image_arena_bytes,
        stream_stripe_bytes=c.stream.stripe_bytes if c.stream else None,
        regions=[{"name": r.name, "symbol": r.symbol, "section": r.section, "capacity_bytes": r.capacity,
                  "arena_bytes": r.arena_bytes, "lower_bound_bytes": r.lower_bound, "buffers": len(r.buffers)}
                 for r in c.plan.regions],
        stage=c.stage.to_dict() if c.stage else None)
    return rep, c.plan
