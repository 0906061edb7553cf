"""Exact memory cost of a tinyvit config: the real lowering and the real planner.

`evaluate(cfg)` builds the config's graph IR (memory_planner.search.vit_ir, the same
graph the converter emits), lowers it with the registered `codegen` lowerings
and plans it with `memory_planner.plan.plan_steps`, the code that lays out the
arena of the generated C. It returns the arena (peak SRAM), its lower bound,
flash (weights + derived constants + the runtime estimate `tinyml plan` uses)
and MACs.

Speed. Everything below is exact (same steps, same plan); tests/test_search_ir.py
checks each shortcut against `build_graph` + `lower_graph`, and the first use in a
process is self-checked (a disagreement turns the shortcut off for good).

- per-op / per-group lowering cache: a lowering is a function of the op's kind,
  options, operand shapes, dtypes, quantization layout and int32 constants.
  The first time a signature is seen the real lowering runs; later ops with the
  same signature reuse what the planner and the flash count read from its Step
  (operands, aliasing, in-place pairs, scratch bytes, generated-constant bytes).
  Fusion groups come from `codegen.fuse.fuse(graph, lowers=...)` with the
  lowering check answered from this cache.
- block-relative memo: inside one graph, transformer blocks are built by the
  same code, so a block-relative position is keyed once per graph.
- depth families: configs that differ only in depth share a depth-3 reference
  graph and its lowering; a deeper or shallower graph and its steps are copies
  of the reference's segments with tensors renumbered (vit_ir.expand_depth),
  MACs/weights summed per copied segment. The search samples whole families.
- per-config cache: evolutionary search revisits configs.

`plan_steps` (the real placement) is not cached and is now most of the time:
10,000 candidates in 24.0 s wall on 2 worker processes (4.64 CPU-ms each; load
average 3-3.5 from other work at the time), against 61.5 s (8.45 CPU-ms) before
these shortcuts at the same load. `tinyml search --benchmark` measures it.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from tinyml.ir import Graph
from tinyml.codegen.lower import check_graph, lower_graph
from tinyml.codegen.lowering import LOWERINGS, LowerCtx
from tinyml.steps import Overlap, Step, TRef
from tinyml.errors import TinymlError
from tinyml.memory_planner.plan import Plan, plan_steps
from tinyml.memory_planner.report import RUNTIME_FLASH_ESTIMATE, STACK_RESERVE
from tinyml.memory_planner.search.vit_ir import build_graph, graph_elements, graph_macs
from tinyml.tinyvit.config import ViTConfig


@dataclass
class Cost:
    """Memory and compute of one config, as the planner lays it out."""
    arena_bytes: int              # = peak SRAM (activations, scratch, I/O), excluding stack
    lower_bound_bytes: int
    weights_bytes: int            # constant tensors + generated constant arrays (flash)
    flash_bytes: int              # weights + RUNTIME_FLASH_ESTIMATE, as `tinyml plan`
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


# ---------------------------------------------------------------------------
# lowering cache (fusion groups and single ops)

@dataclass
class _Template:
    ok: bool                      # the (group) lowering accepted it
    kind: str = ""
    inputs: list[int] = field(default_factory=list)    # operand ids (see _operands)
    outputs: list[int] = field(default_factory=list)
    alias_of: int | None = None
    inplace_ok: list[tuple[int, int]] = field(default_factory=list)
    scratch_bytes: int = 0
    const_bytes: int = 0
    const_refs: list[int] = field(default_factory=list)   # constant tensors the calls reference
    overlap: Overlap | None = None  # the kernel fact (positional, so it needs no renumbering)


_CACHE: dict[tuple, _Template] = {}
_CACHE_ENABLED = True
_QKEYS: dict[int, tuple] = {}


def _qlayout(q) -> tuple:
    """Quantization layout, not values: lowerings' structure (what the planner and the
    flash count read) depends on it; scale values only change numbers inside tables."""
    if q is None:
        return ()
    hit = _QKEYS.get(id(q))
    if hit is not None and hit[0] is q:       # the memo holds q, so its id is not reused
        return hit[1]
    key = ("c", q.axis, len(q.scale)) if q.axis is not None else ("t", int(q.zero_point[0]) == -128)
    if len(_QKEYS) > 100_000:
        _QKEYS.clear()
    _QKEYS[id(q)] = (q, key)
    return key


def _tensor_desc(graph: Graph, i: int) -> tuple:
    memo = graph.__dict__.setdefault("_search_tdesc", {})
    d = memo.get(i)
    if d is None:
        t = graph.tensors[i]
        data = None
        if t.is_const and t.dtype == "int32" and t.quant is None:
            data = np.asarray(t.data).tobytes()
        d = memo[i] = (t.shape, t.dtype, t.is_const, _qlayout(t.quant), data,
                       i in graph.outputs, i in graph.inputs)
    return d


def _op_desc(op) -> tuple:
    return (op.kind, op.options)       # typed options (tinyml.op_options): frozen, hashable


def _operands(ops, graph: Graph) -> tuple[list[int], tuple]:
    """Tensors the ops touch (first-seen order) and their structural description."""
    order: dict[int, int] = {}
    desc: list = []
    opmemo = graph.__dict__.setdefault("_search_odesc", {})
    for op in ops:
        for i in list(op.inputs) + [-2] + list(op.outputs):
            if i < 0:
                desc.append(i)
            elif i in order:
                desc.append(("same", order[i]))
            else:
                order[i] = len(order)
                desc.append(_tensor_desc(graph, i))
        od = opmemo.get(op.index)
        if od is None:
            od = opmemo[op.index] = _op_desc(op)
        desc.append(od)
    return list(order), tuple(desc)


def _make_template(step: Step | None, ctx: LowerCtx | None, tensors: list[int]) -> _Template:
    if step is None:
        return _Template(ok=False)
    slot = {t: k for k, t in enumerate(tensors)}
    # what codegen.pipeline.constant_bytes counts: constants the calls reference (a filter the
    # lowering packed into a derived array is not referenced itself)
    refs = sorted({slot[a.tensor] for c in step.calls for a in c.args
                   if isinstance(a, TRef) and a.tensor in slot and ctx.graph.t(a.tensor).is_const})
    return _Template(
        ok=True, kind=step.kind,
        inputs=[slot[t] for t in step.inputs], outputs=[slot[t] for t in step.outputs],
        alias_of=None if step.alias_of is None else slot[step.alias_of],
        inplace_ok=[(slot[a], slot[b]) for a, b in step.inplace_ok],
        scratch_bytes=step.scratch_bytes,
        const_bytes=sum(int(a.values.nbytes) for a in ctx.arrays), const_refs=refs, overlap=step.overlap)


def _step(tpl: _Template, tensors: list[int], index: int, ops: list[int]) -> Step:
    s = Step(index=index, kind=tpl.kind,
             inputs=[tensors[k] for k in tpl.inputs], outputs=[tensors[k] for k in tpl.outputs],
             alias_of=None if tpl.alias_of is None else tensors[tpl.alias_of],
             inplace_ok=[(tensors[a], tensors[b]) for a, b in tpl.inplace_ok],
             scratch_bytes=tpl.scratch_bytes, ops=list(ops), overlap=tpl.overlap)
    s.__dict__["const_refs"] = [tensors[k] for k in tpl.const_refs]
    return s


def referenced_const_bytes(graph: Graph, steps: list[Step]) -> int:
    """Bytes of the constant tensors the steps' calls reference (each once), as
    codegen.pipeline.constant_bytes counts them; steps from `lower` carry `const_refs`."""
    used: set[int] = set()
    for s in steps:
        refs = s.__dict__.get("const_refs")
        if refs is None:
            refs = [a.tensor for c in s.calls for a in c.args
                    if isinstance(a, TRef) and graph.t(a.tensor).is_const]
        used.update(refs)
    return sum(graph.t(t).nbytes for t in used)


def _group_key(group, graph: Graph) -> tuple[tuple, list[int]]:
    ops = [graph.ops[i] for i in group.ops]
    tensors, desc = _operands(ops, graph)
    # the group's external interface, as positions among its tensors
    pos = {t: k for k, t in enumerate(tensors)}
    ext = (tuple(pos.get(t, -1) for t in group.inputs), tuple(pos.get(t, -1) for t in group.outputs))
    rel = tuple(i - group.ops[0] for i in group.ops)
    return (group.kind, rel, ext, desc), tensors


def _tensors_of(ops) -> list[int]:
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


def _block_rel(graph: Graph, ops: list[int]) -> tuple[int, ...] | None:
    """Offsets of `ops` inside one transformer block of a vit_ir graph, else None.

    vit_ir builds every block with the same code from the same config, so ops at
    the same offsets in two blocks have the same structure (kinds, options,
    operand shapes, dtypes, quantization layout, int32 constants; the shape
    constants and shared scalars are even the same tensors) and lower the same
    way up to tensor renaming. Within one graph the lowering of a block-relative
    position is therefore looked up once; `self_check` compares with lower_graph.
    """
    vb = graph.__dict__.get("vit_blocks")
    if vb is None:
        return None
    first = vb.relative(ops[0])
    if first is None:
        return None
    rel = []
    for i in ops:
        r = vb.relative(i)
        if r is None or r[0] != first[0]:
            return None
        rel.append(r[1])
    return tuple(rel)


def _group_template(group, graph: Graph) -> tuple[_Template, list[int]]:
    from tinyml.codegen.fuse import lower_group
    blocks = graph.__dict__.setdefault("_search_blocks", {})
    rel = _block_rel(graph, group.ops)
    bkey = None
    if rel is not None:
        tensors = _tensors_of([graph.ops[i] for i in group.ops])
        pos = {t: k for k, t in enumerate(tensors)}
        bkey = ("group", group.kind, rel, tuple(pos.get(t, -1) for t in group.inputs),
                tuple(pos.get(t, -1) for t in group.outputs))
        tpl = blocks.get(bkey)
        if tpl is not None:
            return tpl, tensors
    key, tensors = _group_key(group, graph)
    tpl = _CACHE.get(key)
    if tpl is None:
        ctx = LowerCtx(graph)
        try:
            step = lower_group(group, graph, ctx)
        except TinymlError:
            step = None
        tpl = _CACHE[key] = _make_template(step, ctx, tensors)
    if bkey is not None:
        blocks[bkey] = tpl
    return tpl, tensors


def _lower_group_cached(group, graph: Graph) -> tuple[Step | None, int]:
    per_graph = graph.__dict__.setdefault("_search_groups", {})
    gk = (group.kind, tuple(group.ops), tuple(group.inputs), tuple(group.outputs))
    if gk in per_graph:
        return per_graph[gk]
    tpl, tensors = _group_template(group, graph)
    out = (None, 0) if not tpl.ok else (_step(tpl, tensors, group.ops[0], group.ops), tpl.const_bytes)
    per_graph[gk] = out
    return out


def _group_lowers(group, graph: Graph) -> bool:
    """codegen.fuse's lowering check, answered from the cache."""
    return _lower_group_cached(group, graph)[0] is not None


def _op_template(op, graph: Graph) -> tuple[_Template, list[int]]:
    blocks = graph.__dict__.setdefault("_search_blocks", {})
    rel = _block_rel(graph, [op.index])
    if rel is not None:
        tpl = blocks.get(("op", rel))
        if tpl is not None:
            return tpl, _tensors_of([op])
    tensors, desc = _operands([op], graph)
    key = ("op", desc)
    tpl = _CACHE.get(key)
    if tpl is None:
        ctx = LowerCtx(graph)
        step = LOWERINGS[op.kind](op, graph, ctx)
        tpl = _CACHE[key] = _make_template(step, ctx, tensors)
    if rel is not None:
        blocks[("op", rel)] = tpl
    return tpl, tensors


def lower(graph: Graph, cache: bool = True) -> tuple[list[Step], int]:
    """Steps as `lower_graph` makes them (planner-relevant fields) and generated-constant bytes."""
    if not (cache and _CACHE_ENABLED):
        steps, ctx = lower_graph(graph)
        return steps, sum(int(a.values.nbytes) for a in ctx.arrays)
    steps, per_step = _lower_steps(graph)
    return steps, sum(per_step)


def _lower_steps(graph: Graph) -> tuple[list[Step], list[int]]:
    """Cached lowering: steps and each step's generated-constant bytes."""
    from tinyml.codegen.fuse import fuse
    check_graph(graph)
    groups, covered = {}, set()
    for g in fuse(graph, lowers=_group_lowers):
        groups[g.anchor] = g
        covered.update(g.ops)
    steps: list[Step] = []
    per_step: list[int] = []
    for op in graph.ops:
        if op.index in groups:
            step, nbytes = _lower_group_cached(groups[op.index], graph)
            steps.append(step)
            per_step.append(nbytes)
            continue
        if op.index in covered:
            continue
        tpl, tensors = _op_template(op, graph)
        steps.append(_step(tpl, tensors, op.index, [op.index]))
        per_step.append(tpl.const_bytes)
    return steps, per_step


def plan_signature(plan: Plan) -> tuple:
    return (plan.arena_bytes, plan.lower_bound,
            tuple((b.name, b.size, b.first, b.last, b.offset, tuple(b.tensors)) for b in plan.buffers),
            tuple(sorted(plan.overlaps.items())))


def self_check(graph: Graph) -> bool:
    """The cached lowering plans exactly like `lower_graph` on this graph."""
    steps_a, bytes_a = lower(graph, cache=True)
    steps_b, ctx = lower_graph(graph)
    bytes_b = sum(int(a.values.nbytes) for a in ctx.arrays)
    same_steps = [(s.inputs, s.outputs, s.alias_of, s.inplace_ok, s.scratch_bytes, s.ops, s.kind, s.overlap)
                  for s in steps_a] == [(s.inputs, s.outputs, s.alias_of, s.inplace_ok, s.scratch_bytes,
                                         s.ops, s.kind, s.overlap) for s in steps_b]
    # bytes_a counts every generated table once per step; lower_graph shares equal tables
    # between fused steps (codegen.ops.fused_common.shared_array), so it can only be smaller
    if not same_steps or bytes_a < bytes_b:
        return False
    return plan_signature(plan_steps(graph, steps_a)) == plan_signature(plan_steps(graph, steps_b))


# ---------------------------------------------------------------------------
# evaluation

def config_key(cfg: ViTConfig) -> tuple:
    d = cfg.to_dict()
    d.pop("name", None)
    d.pop("train", None)
    return tuple(sorted((k, v) for k, v in d.items()))


_CONFIG_CACHE: dict[tuple, Cost] = {}
_CHECKED = False


# ---------------------------------------------------------------------------
# depth families: configs that differ only in depth share one reference lowering

@dataclass
class _Reference:
    graph: Graph
    steps_by_segment: dict[int, list[tuple[Step, int]]]   # segment -> (step, constant bytes)
    # segment -> [constant bytes first referenced by its calls, int8 weights first read there, MACs,
    #             elements, step elements, steps, ops, softmax elements]; a copy of a
    #             segment has the same
    seg_stats: dict[int, list[int]] = field(default_factory=dict)


_STATS = ("param_bytes", "params", "macs", "elements", "step_elements", "steps", "ops",
          "softmax_elements")


def _segment_stats(g: Graph, seg_of_op: list[int], by_seg: dict) -> dict[int, list[int]]:
    from tinyml.memory_planner.search.vit_ir import op_elements, op_macs
    stats: dict[int, list[int]] = {}
    seen: set[int] = set()
    for op in g.ops:
        st = stats.setdefault(seg_of_op[op.index], [0] * len(_STATS))
        for i in op.inputs:
            if i >= 0 and i not in seen and g.tensors[i].is_const:
                seen.add(i)
                t = g.tensors[i]
                if t.dtype == "int8":
                    st[1] += t.numel
        st[2] += op_macs(g, op)
        st[3] += op_elements(g, op)
        st[6] += 1
        st[7] += softmax_elements_of(g, op)
    used: set[int] = set()
    for k in sorted(by_seg):                 # constants first referenced by a segment's calls
        st = stats.setdefault(k, [0] * len(_STATS))
        for step, _ in by_seg[k]:
            for t in step.__dict__["const_refs"]:
                if t not in used:
                    used.add(t)
                    st[0] += g.tensors[t].nbytes
    for k, lst in by_seg.items():
        st = stats.setdefault(k, [0] * len(_STATS))
        st[4] += step_elements(g, [s for s, _ in lst])
        st[5] += len(lst)
    return stats


_REFS: dict[tuple, _Reference | None] = {}
_FAMILIES_ENABLED = True
_FAMILY_CHECKED = False


def skeleton_key(cfg: ViTConfig) -> tuple:
    """config_key without the depth: the configs one reference lowering serves."""
    return tuple(kv for kv in config_key(cfg) if kv[0] != "depth")


def _reference(cfg: ViTConfig) -> _Reference | None:
    import dataclasses
    from tinyml.memory_planner.search.vit_ir import REFERENCE_DEPTH
    key = skeleton_key(cfg)
    if key in _REFS:
        return _REFS[key]
    g = build_graph(dataclasses.replace(cfg, depth=REFERENCE_DEPTH, name=cfg.name + "_ref"))
    _ensure_checked(g)
    steps, per_step = _lower_steps(g)
    bounds = g.__dict__["vit_layout"].bounds()
    seg_of_op = []
    for k, (_, _, (lo, hi)) in enumerate(bounds):
        seg_of_op.extend([k] * (hi - lo))
    by_seg: dict[int, list] = {}
    ref: _Reference | None = _Reference(g, by_seg)
    for st, nb in zip(steps, per_step):
        segs = {seg_of_op[i] for i in st.ops}
        if len(segs) != 1:        # a fused step across a block boundary: not copied, build instead
            ref = None
            break
        by_seg.setdefault(segs.pop(), []).append((st, nb))
    if ref is not None:
        ref.seg_stats = _segment_stats(g, seg_of_op, by_seg)
    if len(_REFS) >= 16:
        _REFS.pop(next(iter(_REFS)))
    _REFS[key] = ref
    return ref


def _expand(ref: _Reference, cfg: ViTConfig) -> tuple[Graph, list[Step], int]:
    """Graph, steps and generated-constant bytes of `cfg` from its family's reference."""
    from tinyml.memory_planner.search.vit_ir import expand_depth
    g, copies = expand_depth(ref.graph, cfg)
    rec = ref.graph.__dict__["_expand_recipe"]
    steps: list[Step] = []
    const_bytes = 0
    new = object.__new__
    for src, bases, shift in copies:
        for st, nb in ref.steps_by_segment.get(src, ()):
            code = rec.code
            s = new(Step)
            s.__dict__.update(st.__dict__)
            s.index = st.index + shift
            s.inputs = [bases[a] + v for a, v in (code(src, t) for t in st.inputs)]
            s.outputs = [bases[a] + v for a, v in (code(src, t) for t in st.outputs)]
            if st.alias_of is not None:
                a, v = code(src, st.alias_of)
                s.alias_of = bases[a] + v
            s.const_refs = [bases[a] + v for a, v in (code(src, t) for t in st.const_refs)]
            if st.inplace_ok:
                s.inplace_ok = [(bases[code(src, x)[0]] + code(src, x)[1],
                                 bases[code(src, y)[0]] + code(src, y)[1]) for x, y in st.inplace_ok]
            s.ops = [i + shift for i in st.ops]
            steps.append(s)
            const_bytes += nb
    totals = [0] * len(_STATS)
    for src, _, _ in copies:
        for k, v in enumerate(ref.seg_stats.get(src, ())):
            totals[k] += v
    g.__dict__["_search_stats"] = dict(zip(_STATS, totals))
    return g, steps, const_bytes


def _family_plan_inputs(cfg: ViTConfig) -> tuple[Graph, list[Step], int] | None:
    """(graph, steps, constant bytes) through the family reference, or None (build directly)."""
    global _FAMILIES_ENABLED, _FAMILY_CHECKED
    if not (_FAMILIES_ENABLED and _CACHE_ENABLED):
        return None
    ref = _reference(cfg)
    if ref is None:
        return None
    try:
        out = _expand(ref, cfg)
    except ValueError:
        return None
    if not _FAMILY_CHECKED:
        _FAMILY_CHECKED = True
        if not family_check(cfg, out):
            _FAMILIES_ENABLED = False
            return None
    return out


def family_check(cfg: ViTConfig, expanded: tuple[Graph, list[Step], int] | None = None) -> bool:
    """The family path gives the graph `build_graph` gives and the steps `lower_graph` gives."""
    from tinyml.memory_planner.search.vit_ir import structural_diff
    if expanded is None:
        ref = _reference(cfg)
        if ref is None:
            return True           # not served by the family path
        expanded = _expand(ref, cfg)
    g, steps, const_bytes = expanded
    direct = build_graph(cfg)
    if structural_diff(g, direct) or [t.name for t in g.tensors] != [t.name for t in direct.tensors]:
        return False
    steps_d, ctx = lower_graph(direct)
    bytes_d = sum(int(a.values.nbytes) for a in ctx.arrays)
    same = [(s.index, s.inputs, s.outputs, s.alias_of, s.inplace_ok, s.scratch_bytes, s.ops, s.kind)
            for s in steps] == [(s.index, s.inputs, s.outputs, s.alias_of, s.inplace_ok, s.scratch_bytes,
                                 s.ops, s.kind) for s in steps_d]
    _, bytes_c = lower(direct, cache=True)
    return same and const_bytes == bytes_c and const_bytes >= bytes_d


def _ensure_checked(graph: Graph) -> None:
    global _CHECKED, _CACHE_ENABLED
    if _CHECKED:
        return
    _CHECKED = True
    if not self_check(graph):
        _CACHE_ENABLED = False
        _CACHE.clear()


def plan_config(cfg: ViTConfig, cache: bool = True) -> tuple[Graph, list[Step], Plan, int]:
    """Graph, steps, plan and generated-constant bytes of `cfg`."""
    fam = _family_plan_inputs(cfg) if cache else None
    if fam is not None:
        g, steps, const_bytes = fam
        return g, steps, plan_steps(g, steps), const_bytes
    g = build_graph(cfg)
    if cache:
        _ensure_checked(g)
    steps, const_bytes = lower(g, cache=cache)
    return g, steps, plan_steps(g, steps), const_bytes


def evaluate(cfg: ViTConfig, cache: bool = True) -> Cost:
    key = config_key(cfg)
    if cache and key in _CONFIG_CACHE:
        return _CONFIG_CACHE[key]
    g, steps, plan, const_bytes = plan_config(cfg, cache=cache)
    st = g.__dict__.get("_search_stats")    # family path: summed per copied segment
    if st is None:
        st = {"param_bytes": referenced_const_bytes(g, steps),
              "params": sum(t.numel for t in g.tensors if t.is_const and t.dtype == "int8"),
              "macs": graph_macs(g), "elements": graph_elements(g),
              "step_elements": step_elements(g, steps), "steps": len(steps), "ops": len(g.ops),
              "softmax_elements": sum(softmax_elements_of(g, op) for op in g.ops)}
    weights = st["param_bytes"] + const_bytes
    cost = Cost(arena_bytes=plan.arena_bytes, lower_bound_bytes=plan.lower_bound,
                weights_bytes=weights, flash_bytes=weights + RUNTIME_FLASH_ESTIMATE,
                macs=st["macs"], params=st["params"], ops=st["ops"], buffers=len(plan.buffers),
                elements=st["elements"], steps=st["steps"], step_elements=st["step_elements"],
                softmax_elements=st["softmax_elements"])
    if cache:
        _CONFIG_CACHE[key] = cost
    return cost


def step_elements(graph: Graph, steps: list[Step]) -> int:
    """Activation elements written by the steps (fused groups write only their outputs;
    RESHAPE-like aliases write nothing)."""
    return int(sum(graph.t(o).numel for s in steps if s.alias_of is None for o in s.outputs))


def softmax_elements_of(graph: Graph, op) -> int:
    return sum(graph.t(o).numel for o in op.outputs) if op.kind == "SOFTMAX" else 0


def instruction_features(tflite_path: str) -> tuple[int, int, int]:
    """(MACs, step elements, softmax elements) of an exported model, as the generated C runs it
    (the features of memory_planner.search's instruction estimate)."""
    from tinyml.codegen.importer import import_tflite
    g = import_tflite(tflite_path)
    steps, _ = lower_graph(g)
    return (graph_macs(g), step_elements(g, steps),
            sum(softmax_elements_of(g, op) for op in g.ops))


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


def explain_peak(cfg: ViTConfig, top: int = 4) -> PeakReport:
    """Which step is the busiest and which buffers dominate it."""
    g, steps, plan, _ = plan_config(cfg)
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
    return PeakReport(plan.arena_bytes, plan.lower_bound, best_pos, st.index, st.kind, best_live, largest)


def sram_budget_bytes(board: str | None, budget_kb: float | None) -> tuple[int, int | None, str]:
    """(SRAM bytes for the arena, flash bytes or None, description)."""
    flash = None
    desc = ""
    if board:
        from tinyml.boards import load_board
        b = load_board(board)
        region = b.region_for("arena")
        sram = region.size - STACK_RESERVE
        flash = b.flash_region().size
        desc = f"{board}: {region.label} {region.size:,} B - {STACK_RESERVE:,} B stack reserve"
    if budget_kb is not None:
        sram = int(budget_kb * 1024)
        desc = f"--budget-kb {budget_kb:g} = {sram:,} B" + (f" ({desc.split(':')[0]} flash)" if board else "")
    if not board and budget_kb is None:
        raise ValueError("need a board or a budget")
    return sram, flash, desc


def profile(cfg: ViTConfig, repeat: int = 3) -> dict:
    """Seconds spent per stage for one config (build, lower cached/uncached, plan)."""
    out = {}
    t = time.perf_counter()
    for _ in range(repeat):
        g = build_graph(cfg)
    out["build_graph"] = (time.perf_counter() - t) / repeat
    t = time.perf_counter()
    for _ in range(repeat):
        steps, _ = lower(g, cache=True)
    out["lower_cached"] = (time.perf_counter() - t) / repeat
    t = time.perf_counter()
    for _ in range(repeat):
        lower_graph(g)
    out["lower_graph"] = (time.perf_counter() - t) / repeat
    t = time.perf_counter()
    for _ in range(repeat):
        plan_steps(g, steps)
    out["plan_steps"] = (time.perf_counter() - t) / repeat
    return out
