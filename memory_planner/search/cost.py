"""Exact memory cost of a tinyvit config: the real lowering and the real planner.

`CostModel.evaluate(cfg)` builds the config's graph IR (memory_planner.search.vit_ir,
the same graph the converter emits), lowers it with the registered `codegen`
lowerings and plans it through `codegen.pipeline.compile`, the code that lays
out the arena of the generated C. It returns the arena (peak SRAM), its lower
bound, flash (weights + derived constants + the code estimate `tinyml plan`
uses: codegen.pipeline.code_estimate of the planned steps) and MACs. `evaluate(cfg, cache=False)` is the slow path: build_graph +
compile, no shortcut.

Speed. Everything below is exact (same steps, same plan); tests/test_search_ir.py
checks each shortcut against `build_graph` + `lower_graph`, and the first use of
each shortcut in a CostModel is self-checked: a disagreement raises (naming the
op), it never turns the shortcut off.

- lowering cache (`codegen.lower_cache.LoweringCache`, the pipeline's lowerer):
  lowering results reused by op / fusion-group signature, and by block-relative
  position inside one graph (vit_ir's `VitLayout`).
- depth families: configs that differ only in depth share a depth-3 reference
  graph and its lowering; a deeper or shallower graph and its steps are copies
  of the reference's segments with tensors renumbered (vit_ir.expand_depth),
  MACs/weights summed per copied segment. The search samples whole families.
- per-config cache: evolutionary search revisits configs.

All of it is state of one `CostModel` (no module globals); a search owns one,
and each worker process its own copy. `plan_steps` (the real placement) is not
cached and is most of the time; `tinyml search --benchmark` measures throughput.
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from functools import partial

from tinyml.codegen.lower_cache import CachedCtx, LoweringCache, first_difference
from tinyml.codegen.code_size import CodeSizeTable, load_table
from tinyml.codegen.pipeline import (Compiled, CompileOptions, code_estimate, compile, fusion_checked,
                                     referenced_const_bytes)
from tinyml.errors import TinymlError
from tinyml.ir import Graph, Op
from tinyml.memory_planner.plan import Plan
from tinyml.steps import Step
from tinyml.tinyvit.config import ViTConfig

from .vit_ir import (REFERENCE_DEPTH, DepthRecipe, Placeholders, VitLayout, build_vit, expand_depth,
                     op_elements, op_macs, structural_diff)


@dataclass
class Cost:
    """Memory and compute of one config, as the planner lays it out."""
    arena_bytes: int              # = peak SRAM (activations, scratch, I/O), excluding stack
    lower_bound_bytes: int
    weights_bytes: int            # constant tensors + generated constant arrays (flash)
    flash_bytes: int              # weights + code estimate (serial firmware), as `tinyml plan`
    macs: int
    params: int                   # int8 weight count (elements of int8 constant tensors)
    ops: int
    buffers: int
    elements: int = 0             # activation elements written by non-alias ops
    steps: int = 0                # kernel calls after fusion (instruction model)
    step_elements: int = 0        # activation elements the steps write (instruction model)
    softmax_elements: int = 0     # attention scores normalised (instruction model)

    @property
    def peak_sram_bytes(self) -> int:
        return self.arena_bytes

    def to_dict(self) -> dict:
        d = asdict(self)
        d["peak_sram_bytes"] = self.arena_bytes
        return d


@dataclass
class GraphStats:
    """What a Cost counts besides the plan (summed per copied segment on the family path)."""
    param_bytes: int = 0          # constant tensors the calls reference
    params: int = 0               # int8 weights
    macs: int = 0
    elements: int = 0
    step_elements: int = 0
    steps: int = 0
    ops: int = 0
    softmax_elements: int = 0

    def add(self, other: GraphStats) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @classmethod
    def of(cls, graph: Graph, steps: list[Step]) -> GraphStats:
        return cls(param_bytes=referenced_const_bytes(graph, steps),
                   params=sum(t.numel for t in graph.tensors if t.is_const and t.dtype == "int8"),
                   macs=sum(op_macs(graph, op) for op in graph.ops),
                   elements=sum(op_elements(graph, op) for op in graph.ops),
                   step_elements=step_elements(graph, steps), steps=len(steps), ops=len(graph.ops),
                   softmax_elements=sum(softmax_elements_of(graph, op) for op in graph.ops))


def step_elements(graph: Graph, steps: list[Step]) -> int:
    """Activation elements written by the steps (fused groups write only their outputs;
    RESHAPE-like aliases write nothing)."""
    return int(sum(graph.t(o).numel for s in steps if s.alias_of is None for o in s.outputs))


def softmax_elements_of(graph: Graph, op: Op) -> int:
    return sum(graph.t(o).numel for o in op.outputs) if op.kind == "SOFTMAX" else 0


def config_key(cfg: ViTConfig) -> tuple:
    d = cfg.to_dict()
    d.pop("name", None)
    d.pop("train", None)
    return tuple(sorted((k, v) for k, v in d.items()))


def skeleton_key(cfg: ViTConfig) -> tuple:
    """config_key without the depth: the configs one reference lowering serves."""
    return tuple(kv for kv in config_key(cfg) if kv[0] != "depth")


class FamilyDivergence(TinymlError):
    """A graph or steps copied from a depth family's reference differ from the direct build."""

    def __init__(self, cfg: ViTConfig, detail: str) -> None:
        self.config, self.detail = cfg, detail
        super().__init__(f"depth-family copy of {cfg.name} differs from build_graph + lower_graph: "
                         f"{detail}", "memory_planner.search.cost",
                         "vit_ir.expand_depth no longer matches build_graph; evaluate with "
                         "CostModel(families=False) and report it")


# ---------------------------------------------------------------------------
# depth families: configs that differ only in depth share one reference lowering

Code = tuple[int, int]     # a reference tensor as (category, value): DepthRecipe.code


@dataclass
class _CodedStep:
    """A reference step with its tensors coded once, so a copy renumbers by `bases[a] + v`."""
    step: Step
    const_bytes: int              # generated constants
    inputs: list[Code]
    outputs: list[Code]
    alias_of: Code | None
    inplace_ok: list[tuple[Code, Code]]
    const_refs: list[Code]


@dataclass
class _Reference:
    recipe: DepthRecipe
    steps_by_segment: dict[int, list[_CodedStep]]
    seg_stats: dict[int, GraphStats] = field(default_factory=dict)   # a copy of a segment has the same


@dataclass
class Planned:
    """A config's graph, steps and plan (and stats when the family path summed them)."""
    graph: Graph
    layout: VitLayout
    compiled: Compiled
    stats: GraphStats | None = None

    @property
    def steps(self) -> list[Step]:
        return self.compiled.steps

    @property
    def plan(self) -> Plan:
        return self.compiled.plan


@dataclass
class _Expanded:
    graph: Graph
    layout: VitLayout
    steps: list[Step]
    per_step: list[int]           # generated-constant bytes of each step
    stats: GraphStats


class CostModel:
    """Exact costs with the search's shortcuts; all state is this object's.

    lowering: the LoweringCache (its first graph is checked against lower_graph);
    families: use depth-family copies (the first one is checked against the direct build);
    configs: costs already computed, by `config_key`.
    """

    MAX_REFERENCES = 16

    def __init__(self, lowering: LoweringCache | None = None, families: bool = True,
                 check: bool = True, options: CompileOptions | None = None,
                 code_table: CodeSizeTable | None = None) -> None:
        # kernel code bytes (codegen/code_size.json, or the board core's table)
        self.code_table: CodeSizeTable = code_table or load_table()
        self.lowering = lowering if lowering is not None else LoweringCache(check=check, code_table=self.code_table)
        self.families = families
        self.check_family_first = check
        self.options = options or CompileOptions()
        self.placeholders = Placeholders()      # shared by the graphs this model builds
        self.configs: dict[tuple, Cost] = {}
        self.references: dict[tuple, _Reference | None] = {}

    # -- costs -------------------------------------------------------------
    def evaluate(self, cfg: ViTConfig) -> Cost:
        key = config_key(cfg)
        hit = self.configs.get(key)
        if hit is not None:
            return hit
        cost = self.configs[key] = cost_of(self.plan_config(cfg), self.code_table)
        return cost

    def plan_config(self, cfg: ViTConfig) -> Planned:
        """Graph, steps and plan of `cfg` (family copy when possible, else built and lowered)."""
        fam = self.family_inputs(cfg) if self.families else None
        if fam is not None:
            ctx = CachedCtx(fam.graph, fam.per_step)
            compiled = compile(fam.graph, self.options, lowerer=lambda g, fuse: (fam.steps, ctx))
            return self.unfused_if_smaller(Planned(fam.graph, fam.layout, compiled, fam.stats))
        g, layout = build_vit(cfg, self.placeholders)
        planned = Planned(g, layout, compile(g, self.options, lowerer=partial(self.lowering, blocks=layout)))
        return self.unfused_if_smaller(planned)

    def unfused_if_smaller(self, p: Planned) -> Planned:
        """`compile`'s fusion check (codegen.pipeline.fusion_checked) on the cached lowering, so
        a candidate's arena is the one `tinyml build` plans (its stats, which count steps and
        their elements, are then recounted)."""
        checked = fusion_checked(p.compiled, partial(self.lowering, blocks=p.layout))
        return p if checked is p.compiled else dataclasses.replace(p, compiled=checked, stats=None)

    # -- depth families ------------------------------------------------------
    def family_inputs(self, cfg: ViTConfig) -> _Expanded | None:
        """`cfg`'s graph and steps copied from its family's reference, or None (build directly)."""
        ref = self.reference(cfg)
        if ref is None:
            return None
        try:
            out = _expand(ref, cfg)
        except ValueError:
            return None
        if self.check_family_first:
            self.check_family_first = False
            self.family_check(cfg, out)
        return out

    def reference(self, cfg: ViTConfig) -> _Reference | None:
        key = skeleton_key(cfg)
        if key in self.references:
            return self.references[key]
        g, layout = build_vit(dataclasses.replace(cfg, depth=REFERENCE_DEPTH, name=cfg.name + "_ref"),
                              self.placeholders)
        steps, per_step = self.lowering.lower(g, blocks=layout)
        ref = _make_reference(g, layout, steps, per_step)
        if len(self.references) >= self.MAX_REFERENCES:
            self.references.pop(next(iter(self.references)))
        self.references[key] = ref
        return ref

    def family_check(self, cfg: ViTConfig, expanded: _Expanded | None = None) -> None:
        """Raise FamilyDivergence unless the family path gives the graph and layout `build_vit`
        gives, the steps `lower_graph` gives and the cache's generated-constant bytes."""
        from tinyml.codegen.lower import lower_graph
        if expanded is None:
            ref = self.reference(cfg)
            if ref is None:
                return                          # not served by the family path
            try:
                expanded = _expand(ref, cfg)
            except ValueError:
                return
        direct, layout = build_vit(cfg, self.placeholders)
        diff = structural_diff(expanded.graph, direct, limit=1)
        if diff:
            raise FamilyDivergence(cfg, diff[0])
        for a, b in zip(expanded.graph.tensors, direct.tensors):
            if a.name != b.name:
                raise FamilyDivergence(cfg, f"tensor {a.index} named {a.name!r} != {b.name!r}")
        if expanded.layout != layout:
            raise FamilyDivergence(cfg, f"layout {expanded.layout} != {layout}")
        steps_d, ctx = lower_graph(direct)
        diff = first_difference(direct, expanded.steps, steps_d)
        if diff is not None:
            index, kind, detail = diff
            raise FamilyDivergence(cfg, f"op {index} ({kind}): {detail}")
        _, per_step_c = self.lowering.lower(direct, blocks=layout)
        got = sum(expanded.per_step)
        if got != sum(per_step_c) or got < ctx.const_bytes():
            raise FamilyDivergence(cfg, f"generated constants {got:,} B != cached {sum(per_step_c):,} B "
                                        f"(lower_graph {ctx.const_bytes():,} B)")
        want = GraphStats.of(direct, steps_d)
        if expanded.stats != want:
            raise FamilyDivergence(cfg, f"summed stats {expanded.stats} != {want}")

    # -- explanation of a peak -------------------------------------------------
    def explain_peak(self, cfg: ViTConfig, top: int = 4) -> PeakReport:
        """Which step is the busiest and which buffers dominate it."""
        p = self.plan_config(cfg)
        g, steps, plan = p.graph, p.steps, p.plan
        best_pos, best_live = 0, -1
        for pos in range(len(steps)):
            live = sum(b.size for b in plan.buffers if b.live_at(pos))
            if live > best_live:
                best_pos, best_live = pos, live
        live_bufs = sorted((b for b in plan.buffers if b.live_at(best_pos)), key=lambda b: -b.size)
        largest = []
        for b in live_bufs[:top]:
            if b.tensors:
                t = g.t(b.tensors[0])
                name, shape = t.name, list(t.shape)
                if len(b.tensors) > 1:
                    name += f" (+{len(b.tensors) - 1} aliased/in-place)"
            else:
                name, shape = b.name, []
            largest.append({"name": name, "shape": shape, "bytes": b.size})
        st = steps[best_pos]
        return PeakReport(plan.arena_bytes, plan.lower_bound, best_pos, st.index, st.kind, best_live,
                          largest)


def cost_of(p: Planned, code_table: CodeSizeTable | None = None) -> Cost:
    """The config's Cost; flash = weights + the code estimate of its planned steps
    (codegen.pipeline.code_estimate, serial firmware), as `tinyml plan` judges it."""
    st = p.stats if p.stats is not None else GraphStats.of(p.graph, p.steps)
    weights = st.param_bytes + p.compiled.ctx.const_bytes()
    plan = p.plan
    code = code_estimate(p.compiled, table=code_table).bytes
    return Cost(arena_bytes=plan.arena_bytes, lower_bound_bytes=plan.lower_bound,
                weights_bytes=weights, flash_bytes=weights + code,
                macs=st.macs, params=st.params, ops=st.ops, buffers=len(plan.buffers),
                elements=st.elements, steps=st.steps, step_elements=st.step_elements,
                softmax_elements=st.softmax_elements)


def evaluate(cfg: ViTConfig, cache: bool = True) -> Cost:
    """One config's cost: with `cache`, through a fresh CostModel (checked shortcuts); without,
    the slow path (build_graph + codegen.pipeline.compile). A search keeps one CostModel."""
    if cache:
        return CostModel().evaluate(cfg)
    g, layout = build_vit(cfg)
    return cost_of(Planned(g, layout, compile(g, CompileOptions())))


def _make_reference(g: Graph, layout: VitLayout, steps: list[Step], per_step: list[int]) -> _Reference | None:
    bounds = layout.bounds()
    seg_of_op: list[int] = []
    for k, (_, _, (lo, hi)) in enumerate(bounds):
        seg_of_op.extend([k] * (hi - lo))
    by_seg: dict[int, list[tuple[Step, int]]] = {}
    for st, nb in zip(steps, per_step):
        segs = {seg_of_op[i] for i in st.ops}
        if len(segs) != 1:        # a fused step across a block boundary: not copied, build instead
            return None
        by_seg.setdefault(segs.pop(), []).append((st, nb))
    try:
        rec = DepthRecipe(g, layout)
        coded = {}
        for src, lst in by_seg.items():
            code = partial(rec.code, src)
            coded[src] = [_CodedStep(st, nb, [code(t) for t in st.inputs], [code(t) for t in st.outputs],
                                     None if st.alias_of is None else code(st.alias_of),
                                     [(code(x), code(y)) for x, y in st.inplace_ok],
                                     [code(t) for t in st.const_refs]) for st, nb in lst]
    except ValueError:            # not a reference expand_depth can copy: build instead
        return None
    return _Reference(rec, coded, _segment_stats(g, seg_of_op, by_seg))


def _segment_stats(g: Graph, seg_of_op: list[int], by_seg: dict) -> dict[int, GraphStats]:
    stats: dict[int, GraphStats] = {}
    seen: set[int] = set()
    for op in g.ops:
        st = stats.setdefault(seg_of_op[op.index], GraphStats())
        for i in op.inputs:
            if i >= 0 and i not in seen and g.tensors[i].is_const:
                seen.add(i)
                t = g.tensors[i]
                if t.dtype == "int8":
                    st.params += t.numel
        st.macs += op_macs(g, op)
        st.elements += op_elements(g, op)
        st.ops += 1
        st.softmax_elements += softmax_elements_of(g, op)
    used: set[int] = set()
    for k in sorted(by_seg):                 # constants first referenced by a segment's calls
        st = stats.setdefault(k, GraphStats())
        for step, _ in by_seg[k]:
            for t in step.const_refs:
                if t not in used:
                    used.add(t)
                    st.param_bytes += g.tensors[t].nbytes
    for k, lst in by_seg.items():
        st = stats.setdefault(k, GraphStats())
        st.step_elements += step_elements(g, [s for s, _ in lst])
        st.steps += len(lst)
    return stats


def _expand(ref: _Reference, cfg: ViTConfig) -> _Expanded:
    """Graph, steps and generated-constant bytes of `cfg` from its family's reference."""
    g, layout, copies = expand_depth(ref.recipe, cfg)
    steps: list[Step] = []
    per_step: list[int] = []
    for src, bases, shift in copies:
        for cs in ref.steps_by_segment.get(src, ()):
            st = cs.step
            steps.append(Step(
                index=st.index + shift, kind=st.kind,
                inputs=[bases[a] + v for a, v in cs.inputs], outputs=[bases[a] + v for a, v in cs.outputs],
                scratch_bytes=st.scratch_bytes,
                alias_of=None if cs.alias_of is None else bases[cs.alias_of[0]] + cs.alias_of[1],
                inplace_ok=[(bases[x[0]] + x[1], bases[y[0]] + y[1]) for x, y in cs.inplace_ok],
                ops=[i + shift for i in st.ops], const_refs=[bases[a] + v for a, v in cs.const_refs],
                overlap=st.overlap, call_funcs=st.call_funcs, model_c_bytes=st.model_c_bytes))      # positional fact: copies unchanged
            per_step.append(cs.const_bytes)
    stats = GraphStats()
    for src, _, _ in copies:
        seg = ref.seg_stats.get(src)
        if seg is not None:
            stats.add(seg)
    return _Expanded(g, layout, steps, per_step, stats)


# ---------------------------------------------------------------------------
# explanation of a peak

@dataclass
class PeakReport:
    arena_bytes: int
    lower_bound_bytes: int
    step: int                     # step position of the busiest step
    op_index: int
    op_kind: str
    live_bytes: int
    largest: list[dict] = field(default_factory=list)   # {name, tensor, shape, bytes}

    def lines(self) -> list[str]:
        out = [f"peak {self.arena_bytes:,} B (lower bound {self.lower_bound_bytes:,} B) at op "
               f"{self.op_index} {self.op_kind}, {self.live_bytes:,} B live; largest buffers there:"]
        for b in self.largest:
            out.append(f"  {b['bytes']:>8,} B  {b['name']} {b['shape']}")
        return out
