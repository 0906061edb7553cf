"""Operator fusion: pattern matching on the imported TFLite graph.

A pattern recognises a chain of TFLite ops that one fused kernel computes
with the same bytes as the unfused reference (LayerNorm, attention,
FC -> activation -> FC). `fuse(graph)` returns the groups found; the graph
itself is never modified. `codegen.lower.lower_graph` then emits one `Step`
per group (at the position of the group's last op) instead of the member ops.

A group is only returned when
  - every tensor produced inside it and not listed as a group output is read
    only by member ops and is not a graph output;
  - no op placed before the group's last member reads a group output (so the
    fused step may run at the last member's position);
  - its lowering succeeds (patterns check variants in `match`; a lowering that
    still rejects the group leaves those ops unfused).
Patterns live in `codegen/ops/fused_*.py` and register with `@pattern`
(`codegen.patterns`).
"""
from __future__ import annotations

from typing import Callable

from tinyml.errors import TinymlError
from tinyml.ir import Graph
from tinyml.steps import Step

from . import ops as _ops  # noqa: F401  (registers the @pattern fusions)
from .lowering import LowerCtx, is_16x8
from .patterns import PATTERNS, FusionGroup, GraphIndex


def _closed(group: FusionGroup, ix: GraphIndex) -> bool:
    members = set(group.ops)
    produced = {o for i in group.ops for o in ix.op(i).outputs if o >= 0}
    if not set(group.outputs) <= produced:
        return False
    for t in produced - set(group.outputs):
        if t in ix.outputs:
            return False
        if any(c not in members for c in ix.consumers.get(t, [])):
            return False
    last = group.anchor
    for t in group.outputs:
        if any(c not in members and c < last for c in ix.consumers.get(t, [])):
            return False
    return True


def _lowers(group: FusionGroup, graph: Graph) -> bool:
    try:
        lower_group(group, graph, LowerCtx(graph))
    except TinymlError:
        return False
    return True


def fuse(graph: Graph, kinds: set[str] | None = None,
         lowers: Callable[[FusionGroup, Graph], bool] | None = None) -> list[FusionGroup]:
    """Fusion groups of `graph` (disjoint, in anchor order); `kinds` restricts the patterns.

    `lowers(group, graph)` decides whether a matched, closed group's lowering
    succeeds (default: run the lowering); callers that already know the answer
    (codegen.lower_cache caches it) pass their own check.
    """
    lowers = lowers or _lowers
    ix = GraphIndex(graph)
    taken: set[int] = set()
    groups: list[FusionGroup] = []
    for pat in sorted(PATTERNS.values(), key=lambda p: (p.priority, p.kind)):
        if kinds is not None and pat.kind not in kinds:
            continue
        for op in graph.ops:
            if op.index in taken:
                continue
            g = pat.match(ix, op)
            if g is None:
                continue
            g.ops = sorted(set(g.ops))
            if any(is_16x8(ix.op(i), graph) for i in g.ops):     # fused kernels are int8 only
                continue
            if taken & set(g.ops) or not _closed(g, ix) or not lowers(g, graph):
                continue
            taken |= set(g.ops)
            groups.append(g)
    return sorted(groups, key=lambda g: g.anchor)


def lower_group(group: FusionGroup, graph: Graph, ctx: LowerCtx) -> Step:
    step = PATTERNS[group.kind].lower(group, graph, ctx)
    step.ops = list(group.ops)
    return step
