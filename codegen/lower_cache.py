"""A lowering cache: `lower_graph`'s planning facts, reused by op signature.

A lowering is a function of the op's kind, options, operand shapes, dtypes,
quantization layout and int32 constants. The first time a signature is seen
the real lowering runs; later ops (or fusion groups) with the same signature
reuse what the planner and the flash count read from its Step: operands,
aliasing, in-place pairs, scratch bytes, the constant tensors the calls
reference (`Step.const_refs`) and the generated-constant bytes. Steps made
here carry no calls: they plan and count, they do not emit.

    cache = LoweringCache()
    compiled = compile(graph, CompileOptions(), lowerer=cache)   # codegen.pipeline

Fusion groups come from `codegen.fuse.fuse(graph, lowers=...)`, the lowering
check answered from the cache. A graph whose transformer blocks are built by
the same code may pass `blocks` (anything with `relative(op) -> (block,
offset) | None`, e.g. memory_planner.search.vit_ir.VitLayout): a block-relative
position is then looked up once per graph.

Exactness is checked, not assumed: `check(graph)` lowers the graph both ways
and raises `LoweringDivergence` naming the first op whose cached lowering
differs from `lower_graph`; with `check=True` (the default) the first graph a
cache lowers is checked that way. Flash: each step's tables are counted in its
own context, so the total is an upper bound of lower_graph's, which shares equal
tables between fused steps (codegen.ops.fused_common.shared_array).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from tinyml.errors import TinymlError
from tinyml.ir import Graph, Op, Quant
from tinyml.memory_planner.plan import Plan, plan_steps
from tinyml.steps import Overlap, Step, call_constants, step_funcs

from .code_size import CodeSizeTable, load_table, step_model_bytes
from .fuse import fuse as fusion_groups
from .fuse import lower_group
from .lower import check_graph, lower_graph
from .lowering import LowerCtx, lowering_for
from .patterns import FusionGroup


class Blocks(Protocol):
    """Block structure of a graph: ops at the same offset of two blocks lower alike."""

    def relative(self, op: int) -> tuple[int, int] | None: ...


class LoweringDivergence(TinymlError):
    """The cached lowering of an op differs from `lower_graph`'s (a cache-key bug)."""

    def __init__(self, graph: Graph, op_index: int, kind: str, detail: str) -> None:
        self.op_index, self.kind, self.detail = op_index, kind, detail
        super().__init__(f"cached lowering of op {op_index} ({kind}) differs from lower_graph: {detail}",
                         graph.source or graph.name,
                         "the lowering cache's key misses something this lowering depends on; "
                         "lower without the cache (codegen.lower.lower_graph) and report it")


class CachedCtx(LowerCtx):
    """The lowering context of a cached lowering: sizes only (no arrays to emit)."""

    def __init__(self, graph: Graph, per_step: list[int]) -> None:
        super().__init__(graph)
        self.per_step = per_step       # generated-constant bytes of each step

    def const_bytes(self) -> int:
        return sum(self.per_step)


@dataclass
class Template:
    """A lowering's planning facts with tensors as positions among the op's operands."""
    ok: bool                      # the (group) lowering accepted it
    kind: str = ""
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    alias_of: int | None = None
    inplace_ok: list[tuple[int, int]] = field(default_factory=list)
    scratch_bytes: int = 0
    const_bytes: int = 0          # generated constants (its own context)
    const_refs: list[int] = field(default_factory=list)   # constant tensors the calls reference
    overlap: Overlap | None = None  # the kernel fact (positional: needs no renumbering)
    state: list[int] = field(default_factory=list)   # variable tensors (Step.state), as positions
    call_funcs: list[str] = field(default_factory=list)   # Call.func of each call (code-size estimate)
    model_c_bytes: int = 0        # model.c bytes of the step (codegen.code_size.step_model_bytes)

    def step(self, tensors: list[int], index: int, ops: list[int]) -> Step:
        return Step(index=index, kind=self.kind,
                    inputs=[tensors[k] for k in self.inputs], outputs=[tensors[k] for k in self.outputs],
                    scratch_bytes=self.scratch_bytes,
                    alias_of=None if self.alias_of is None else tensors[self.alias_of],
                    inplace_ok=[(tensors[a], tensors[b]) for a, b in self.inplace_ok],
                    ops=list(ops), const_refs=[tensors[k] for k in self.const_refs], overlap=self.overlap,
                    state=[tensors[k] for k in self.state], call_funcs=list(self.call_funcs),
                    model_c_bytes=self.model_c_bytes)


def make_template(step: Step | None, ctx: LowerCtx, tensors: list[int],
                  code_table: CodeSizeTable | None = None) -> Template:
    if step is None:
        return Template(ok=False)
    slot = {t: k for k, t in enumerate(tensors)}
    refs = sorted(slot[t] for t in call_constants(step, ctx.graph) if t in slot)
    return Template(
        ok=True, kind=step.kind,
        inputs=[slot[t] for t in step.inputs], outputs=[slot[t] for t in step.outputs],
        alias_of=None if step.alias_of is None else slot[step.alias_of],
        inplace_ok=[(slot[a], slot[b]) for a, b in step.inplace_ok],
        scratch_bytes=step.scratch_bytes, const_bytes=ctx.const_bytes(), const_refs=refs,
        overlap=step.overlap, state=[slot[t] for t in step.state], call_funcs=step_funcs(step),
        model_c_bytes=step_model_bytes(step, code_table or load_table()))


class _GraphMemo:
    """What one lowering of one graph remembers (dropped when that lowering returns)."""

    def __init__(self, graph: Graph, blocks: Blocks | None) -> None:
        self.graph = graph
        self.blocks = blocks
        self.tdesc: dict[int, tuple] = {}         # tensor -> structural description
        self.odesc: dict[int, tuple] = {}         # op -> (kind, options)
        self.by_block: dict[tuple, Template] = {}  # block-relative key -> template
        self.groups: dict[tuple, tuple[Step | None, int]] = {}   # group -> (step, constant bytes)


def plan_signature(plan: Plan) -> tuple:
    """Everything a plan decides (arena, lower bound, every buffer's size, lifetime, offset)."""
    return (plan.arena_bytes, plan.lower_bound,
            tuple((b.name, b.size, b.first, b.last, b.offset, tuple(b.tensors)) for b in plan.buffers),
            tuple(sorted(plan.overlaps.items())))


_FACTS = ("index", "kind", "ops", "inputs", "outputs", "alias_of", "inplace_ok", "scratch_bytes", "overlap")


def first_difference(graph: Graph, cached: list[Step], real: list[Step]) -> tuple[int, str, str] | None:
    """(TFLite op index, op kind, what differs) at the first step where `cached` (steps without
    calls: `const_refs`) and `real` (lower_graph's) differ in what planning and the flash count
    read; None when they agree. A fused step is named by its first op."""
    for a, b in zip(cached, real):
        fa = tuple(getattr(a, n) for n in _FACTS)
        fb = tuple(getattr(b, n) for n in _FACTS)
        if fa != fb:
            what = next(n for n, x, y in zip(_FACTS, fa, fb) if x != y)
            detail = f"{what} {getattr(a, what)!r} != {getattr(b, what)!r}"
        else:
            refs = set(call_constants(b, graph))
            if a.call_funcs is not None and a.call_funcs != step_funcs(b):
                detail = f"kernel functions {a.call_funcs} != {step_funcs(b)}"
            elif a.const_refs is None or set(a.const_refs) == refs:
                continue
            else:
                detail = f"referenced constants {sorted(set(a.const_refs))} != {sorted(refs)}"
        op = graph.ops[min(a.index, b.index)]
        where = f"step {b.kind} of ops {b.ops}: " if len(b.ops) > 1 or b.kind != op.kind else ""
        return op.index, op.kind, where + detail
    if len(cached) != len(real):
        s = (cached if len(cached) > len(real) else real)[min(len(cached), len(real))]
        op = graph.ops[s.index]
        return op.index, op.kind, f"{len(cached)} cached steps != {len(real)} lowered steps"
    return None


class LoweringCache:
    """`lower_graph` with planning facts reused by op signature; see the module doc.

    Use as the pipeline's lowerer (`compile(model, options, lowerer=cache)`) or call
    `lower(graph, blocks=...)` for the steps and each step's generated-constant bytes.
    One instance per process (or per search); the state is the instance's own.
    """

    def __init__(self, check: bool = True, code_table: CodeSizeTable | None = None) -> None:
        self.templates: dict[tuple, Template] = {}   # op / group signature -> template
        self.check_first = check                     # check the first graph against lower_graph
        self._qkeys: dict[int, tuple[Quant, tuple]] = {}
        self.hits = self.misses = 0
        self.code_table = code_table or load_table()   # model.c bytes of each template's step

    # -- the pipeline's Lowerer ------------------------------------------
    def __call__(self, graph: Graph, fuse: bool = True,
                 blocks: Blocks | None = None) -> tuple[list[Step], CachedCtx]:
        steps, per_step = self.lower(graph, fuse=fuse, blocks=blocks)
        return steps, CachedCtx(graph, per_step)

    def clear(self) -> None:
        self.templates.clear()
        self._qkeys.clear()

    # -- lowering ----------------------------------------------------------
    def lower(self, graph: Graph, fuse: bool = True,
              blocks: Blocks | None = None) -> tuple[list[Step], list[int]]:
        """Steps as `lower_graph` makes them (planning fields, `const_refs`, no calls) and
        each step's generated-constant bytes."""
        if self.check_first:
            return self.check(graph, fuse=fuse, blocks=blocks)
        check_graph(graph)
        memo = _GraphMemo(graph, blocks)
        groups: dict[int, FusionGroup] = {}
        covered: set[int] = set()
        if fuse:
            for g in fusion_groups(graph, lowers=lambda grp, _g: self._group(memo, grp)[0] is not None):
                groups[g.anchor] = g
                covered.update(g.ops)
        steps: list[Step] = []
        per_step: list[int] = []
        for op in graph.ops:
            if op.index in groups:
                step, nbytes = self._group(memo, groups[op.index])
                steps.append(step)
                per_step.append(nbytes)
                continue
            if op.index in covered:
                continue
            tpl, tensors = self._op_template(memo, op)
            steps.append(tpl.step(tensors, op.index, [op.index]))
            per_step.append(tpl.const_bytes)
        return steps, per_step

    # -- the self-check ---------------------------------------------------
    def check(self, graph: Graph, fuse: bool = True,
              blocks: Blocks | None = None) -> tuple[list[Step], list[int]]:
        """Lower `graph` cached and with `lower_graph`; raise LoweringDivergence naming the first
        op whose steps differ (operands, aliasing, in-place pairs, scratch, referenced constants,
        fusion), or whose plans or generated-constant bytes differ. Returns `lower`'s result."""
        self.check_first = False
        cached, per_step = self.lower(graph, fuse=fuse, blocks=blocks)
        real, ctx = lower_graph(graph, fuse=fuse)
        diff = first_difference(graph, cached, real)
        if diff is not None:
            raise LoweringDivergence(graph, *diff)
        # each step's tables counted in its own context: never fewer bytes than lower_graph,
        # which shares equal tables between fused steps
        if sum(per_step) < ctx.const_bytes():
            raise LoweringDivergence(graph, real[0].index, real[0].kind,
                                     f"generated constants {sum(per_step):,} B < lower_graph's "
                                     f"{ctx.const_bytes():,} B")
        pa, pb = plan_signature(plan_steps(graph, cached)), plan_signature(plan_steps(graph, real))
        if pa != pb:
            raise LoweringDivergence(graph, real[0].index, real[0].kind,
                                     "same steps but different plans")
        return cached, per_step

    # -- keys ----------------------------------------------------------------
    def _qlayout(self, q: Quant | None) -> tuple:
        """Quantization layout, not values: lowerings' structure (what the planner and the
        flash count read) depends on it; scale values only change numbers inside tables."""
        if q is None:
            return ()
        hit = self._qkeys.get(id(q))
        if hit is not None and hit[0] is q:       # the memo holds q, so its id is not reused
            return hit[1]
        key = ("c", q.axis, len(q.scale)) if q.axis is not None else ("t", int(q.zero_point[0]) == -128)
        if len(self._qkeys) > 100_000:
            self._qkeys.clear()
        self._qkeys[id(q)] = (q, key)
        return key

    def _tensor_desc(self, memo: _GraphMemo, i: int) -> tuple:
        d = memo.tdesc.get(i)
        if d is None:
            g = memo.graph
            t = g.tensors[i]
            data = None
            if t.is_const and t.dtype == "int32" and t.quant is None:
                data = np.asarray(t.data).tobytes()
            d = memo.tdesc[i] = (t.shape, t.dtype, t.is_const, self._qlayout(t.quant), data,
                                 i in g.outputs, i in g.inputs)
        return d

    def _operands(self, memo: _GraphMemo, ops: list[Op]) -> tuple[list[int], tuple]:
        """Tensors the ops touch (first-seen order) and their structural description."""
        order: dict[int, int] = {}
        desc: list = []
        for op in ops:
            for i in list(op.inputs) + [-2] + list(op.outputs):
                if i < 0:
                    desc.append(i)
                elif i in order:
                    desc.append(("same", order[i]))
                else:
                    order[i] = len(order)
                    desc.append(self._tensor_desc(memo, i))
            od = memo.odesc.get(op.index)
            if od is None:
                od = memo.odesc[op.index] = (op.kind, op.options)   # typed options: frozen, hashable
            desc.append(od)
        return list(order), tuple(desc)

    # -- templates -----------------------------------------------------------
    def _group(self, memo: _GraphMemo, group: FusionGroup) -> tuple[Step | None, int]:
        gk = (group.kind, tuple(group.ops), tuple(group.inputs), tuple(group.outputs))
        out = memo.groups.get(gk)
        if out is None:
            tpl, tensors = self._group_template(memo, group)
            out = (None, 0) if not tpl.ok else (tpl.step(tensors, group.ops[0], group.ops), tpl.const_bytes)
            memo.groups[gk] = out
        return out

    def _group_template(self, memo: _GraphMemo, group: FusionGroup) -> tuple[Template, list[int]]:
        graph = memo.graph
        ops = [graph.ops[i] for i in group.ops]
        rel = _block_rel(memo.blocks, group.ops)
        bkey = None
        if rel is not None:
            tensors = _tensors_of(ops)
            pos = {t: k for k, t in enumerate(tensors)}
            bkey = ("group", group.kind, rel, tuple(pos.get(t, -1) for t in group.inputs),
                    tuple(pos.get(t, -1) for t in group.outputs))
            tpl = memo.by_block.get(bkey)
            if tpl is not None:
                self.hits += 1
                return tpl, tensors
        tensors, desc = self._operands(memo, ops)
        # the group's external interface, as positions among its tensors
        pos = {t: k for k, t in enumerate(tensors)}
        ext = (tuple(pos.get(t, -1) for t in group.inputs), tuple(pos.get(t, -1) for t in group.outputs))
        key = (group.kind, tuple(i - group.ops[0] for i in group.ops), ext, desc)
        tpl = self.templates.get(key)
        if tpl is None:
            self.misses += 1
            ctx = LowerCtx(graph)
            try:
                step = lower_group(group, graph, ctx)
            except TinymlError:
                step = None
            tpl = self.templates[key] = make_template(step, ctx, tensors, self.code_table)
        else:
            self.hits += 1
        if bkey is not None:
            memo.by_block[bkey] = tpl
        return tpl, tensors

    def _op_template(self, memo: _GraphMemo, op: Op) -> tuple[Template, list[int]]:
        rel = _block_rel(memo.blocks, [op.index])
        if rel is not None:
            tpl = memo.by_block.get(("op", rel))
            if tpl is not None:
                self.hits += 1
                return tpl, _tensors_of([op])
        tensors, desc = self._operands(memo, [op])
        key = ("op", desc)
        tpl = self.templates.get(key)
        if tpl is None:
            self.misses += 1
            ctx = LowerCtx(memo.graph)
            step = lowering_for(op, memo.graph)(op, memo.graph, ctx)
            tpl = self.templates[key] = make_template(step, ctx, tensors, self.code_table)
        else:
            self.hits += 1
        if rel is not None:
            memo.by_block[("op", rel)] = tpl
        return tpl, tensors


def _tensors_of(ops: list[Op]) -> list[int]:
    """The ops' tensors in first-seen order (inputs, then outputs), as `_operands` numbers them."""
    seen: dict[int, None] = {}
    for op in ops:
        for i in op.inputs:
            if i >= 0:
                seen[i] = None
        for i in op.outputs:
            if i >= 0:
                seen[i] = None
    return list(seen)


def _block_rel(blocks: Blocks | None, ops: list[int]) -> tuple[int, ...] | None:
    """Offsets of `ops` inside one block, else None.

    Blocks built by the same code from the same config have the same structure at
    the same offsets (kinds, options, operand shapes, dtypes, quantization layout,
    int32 constants; shape constants and shared scalars are even the same tensors),
    so they lower the same way up to tensor renaming; `check` compares with lower_graph.
    """
    if blocks is None:
        return None
    first = blocks.relative(ops[0])
    if first is None:
        return None
    rel = []
    for i in ops:
        r = blocks.relative(i)
        if r is None or r[0] != first[0]:
            return None
        rel.append(r[1])
    return tuple(rel)
