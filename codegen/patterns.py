"""Fusion patterns: the registry and the shapes a matcher works with.

A pattern recognises a chain of TFLite ops that one fused kernel computes with
the same bytes as the unfused reference. Patterns live in
`codegen/ops/fused_*.py` and register with `@pattern`; `codegen.fuse` runs
them. This module imports nothing from `codegen` but the lowering basics.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from tinyml.ir import Graph, Op, Tensor
from tinyml.steps import Step

from .lowering import LowerCtx


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
GroupLowering = Callable[[FusionGroup, Graph, LowerCtx], Step]


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
