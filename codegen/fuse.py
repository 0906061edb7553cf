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
Patterns live in `codegen/ops/fused_*.py` and register with `@pattern`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from tinyml.errors import TinymlError

from .ir import Graph, Op, Tensor


@dataclass
class FusionGroup:
    kind: str                       # e.g. "FUSED_LAYERNORM"
    ops: list[int]                  # covered TFLite op indices, ascending
    inputs: list[int]               # external activation tensors read
    outputs: list[int]              # tensors written (read outside or graph outputs)
    roles: dict[str, Any] = field(default_factory=dict)   # pattern-specific matched tensors/ops

    @property
    def anchor(self) -> int:
        """The op index at whose position the fused step runs (the last member)."""
        return self.ops[-1]


class GraphIndex:
    """Producer/consumer look-ups the matchers share."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.producer = graph.producers()
        self.consumers = graph.consumers()
        self.outputs = set(graph.outputs)

    def op(self, index: int) -> Op:
        return self.graph.ops[index]

    def t(self, index: int) -> Tensor:
        return self.graph.t(index)

    def producer_op(self, tensor: int) -> Op | None:
        p = self.producer.get(tensor)
        return None if p is None else self.graph.ops[p]

    def readers(self, tensor: int) -> list[Op]:
        return [self.graph.ops[i] for i in dict.fromkeys(self.consumers.get(tensor, []))]

    def sole_reader(self, tensor: int, kind: str | tuple[str, ...] | None = None) -> Op | None:
        """The only op reading `tensor` (None if several, none, or it is a graph output)."""
        if tensor in self.outputs:
            return None
        r = self.readers(tensor)
        if len(r) != 1:
            return None
        if kind is not None and r[0].kind not in ((kind,) if isinstance(kind, str) else kind):
            return None
        return r[0]

    def is_const(self, tensor: int) -> bool:
        return tensor >= 0 and self.graph.t(tensor).is_const

    def const_value(self, tensor: int) -> np.ndarray | None:
        if tensor < 0 or not self.graph.t(tensor).is_const:
            return None
        return np.asarray(self.graph.t(tensor).data)


Matcher = Callable[[GraphIndex, Op], "FusionGroup | None"]
GroupLowering = Callable[[FusionGroup, Graph, "LowerCtx"], "Step"]


@dataclass
class Pattern:
    kind: str
    match: Matcher
    lower: GroupLowering
    priority: int = 0                # lower runs first


PATTERNS: dict[str, Pattern] = {}


def pattern(kind: str, lower: GroupLowering, priority: int = 0) -> Callable[[Matcher], Matcher]:
    """Register `match(index, op) -> FusionGroup | None`, tried at every op."""
    def deco(fn: Matcher) -> Matcher:
        PATTERNS[kind] = Pattern(kind, fn, lower, priority)
        return fn
    return deco


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
    (memory_planner.search_cost caches it) pass their own check.
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
            if taken & set(g.ops) or not _closed(g, ix) or not lowers(g, graph):
                continue
            taken |= set(g.ops)
            groups.append(g)
    return sorted(groups, key=lambda g: g.anchor)


def lower_group(group: FusionGroup, graph: Graph, ctx: LowerCtx) -> Step:
    step = PATTERNS[group.kind].lower(group, graph, ctx)
    step.ops = list(group.ops)
    return step


# Last: codegen.lower loads codegen/ops, whose fused_* modules register their patterns here.
from .lower import LowerCtx, Step  # noqa: E402
