"""Lowering: each IR op becomes a `Step` of C kernel calls.

A lowering is a function `(op, graph, ctx) -> Step` registered with
`@lowering("OP_NAME")` in a module under `codegen/ops/`. It computes every
build-time constant (multipliers, shifts, clamp ranges, tables) in Python and
describes the C call with symbolic tensor references; the planner later
decides where those tensors live, and `emit` renders the references as
constant arena offsets.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np

from tinyml.errors import ModelError, UnsupportedOpError

from .ir import Graph, Op, Tensor


@dataclass(frozen=True)
class TRef:
    """A tensor argument; rendered as a typed pointer (arena offset or weight symbol)."""
    tensor: int


@dataclass(frozen=True)
class ScratchRef:
    """The step's scratch buffer; rendered as an arena pointer of `ctype`."""
    ctype: str = "int8_t"


Arg = Union[str, int, TRef, ScratchRef]


@dataclass
class Call:
    func: str
    args: list[Arg]


@dataclass
class Step:
    """One op (or a fused group of ops) as the generated C will execute it."""
    index: int                      # TFLite op index (first op of a fused group)
    kind: str                       # TFLite op name, or a fused kernel name
    inputs: list[int]               # activation tensors read
    outputs: list[int]              # activation tensors written
    calls: list[Call] = field(default_factory=list)
    decls: list[str] = field(default_factory=list)   # file-scope C in model.c
    scratch_bytes: int = 0
    alias_of: int | None = None     # output shares the input's bytes (RESHAPE): no calls
    inplace_ok: list[tuple[int, int]] = field(default_factory=list)  # (input, output) may share bytes
    comment: str = ""
    ops: list[int] = field(default_factory=list)     # all TFLite op indices covered


@dataclass
class ConstArray:
    symbol: str
    ctype: str
    values: np.ndarray


class LowerCtx:
    """Collects generated constants; hands out unique C names."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.arrays: list[ConstArray] = []
        self._names: set[str] = set()

    def name(self, base: str) -> str:
        n, i = base, 1
        while n in self._names:
            i += 1
            n = f"{base}_{i}"
        self._names.add(n)
        return n

    def const_array(self, base: str, ctype: str, values) -> str:
        """A const array placed in weights.c (flash); returns its C symbol."""
        sym = self.name(base)
        self.arrays.append(ConstArray(sym, ctype, np.asarray(values).reshape(-1)))
        return sym


Lowering = Callable[[Op, Graph, LowerCtx], Step]
LOWERINGS: dict[str, Lowering] = {}


def lowering(*kinds: str) -> Callable[[Lowering], Lowering]:
    def deco(fn: Lowering) -> Lowering:
        for k in kinds:
            LOWERINGS[k] = fn
        return fn
    return deco


def _load_op_modules() -> None:
    from codegen import ops
    for mod in pkgutil.iter_modules(ops.__path__):
        importlib.import_module(f"codegen.ops.{mod.name}")


def supported_ops() -> list[str]:
    return sorted(LOWERINGS)


def activations(graph: Graph, op: Op) -> tuple[list[int], list[int]]:
    ins = [i for i in op.inputs if i >= 0 and not graph.t(i).is_const]
    outs = [o for o in op.outputs if o >= 0]
    return ins, outs


def unsupported_ops(graph: Graph) -> list[tuple[int, str]]:
    return [(op.index, op.kind) for op in graph.ops if op.kind not in LOWERINGS]


def check_graph(graph: Graph) -> None:
    """Raise a one-line error for the first thing we cannot compile."""
    bad = unsupported_ops(graph)
    if bad:
        idx, kind = bad[0]
        more = f" (and {len(bad) - 1} more unsupported op(s))" if len(bad) > 1 else ""
        raise UnsupportedOpError(
            f"operator {idx} is {kind}, which tinyml does not support{more}",
            where=graph.source,
            fix="supported ops: " + ", ".join(supported_ops()))
    for t in graph.tensors:
        if len(t.shape) > 4 and not t.is_const:
            raise ModelError(f"tensor {t.index} '{t.name}' has {len(t.shape)} dimensions {list(t.shape)}; "
                             "at most 4 are supported", where=graph.source,
                             fix="reshape attention heads to <= 4-D before export")
    float_ops = _float_compute(graph)
    if float_ops:
        idx, kind = float_ops[0]
        raise ModelError(f"the model is not fully int8-quantized: operator {idx} ({kind}) computes in float32",
                         where=graph.source,
                         fix="convert with a representative dataset and "
                             "supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8]")


# Float ops the converter leaves inside int8 graphs (e.g. Keras LayerNorm's
# DEQUANTIZE -> NEG -> QUANTIZE); anything else computing in float is rejected.
FLOAT_ISLAND_OPS = {"NEG", "DEQUANTIZE", "QUANTIZE"}


def _float_compute(graph: Graph) -> list[tuple[int, str]]:
    out = []
    for op in graph.ops:
        if op.kind in FLOAT_ISLAND_OPS:
            continue
        for i in op.inputs + op.outputs:
            if i >= 0:
                t = graph.t(i)
                if t.dtype == "float32" and not (t.is_const and op.kind in ("RESHAPE",)):
                    out.append((op.index, op.kind))
                    break
    return out


def lower_graph(graph: Graph, fuse: bool = True) -> tuple[list[Step], LowerCtx]:
    """One Step per op; with `fuse`, one Step per fusion group (codegen.fuse) instead of its ops."""
    check_graph(graph)
    ctx = LowerCtx(graph)
    steps: list[Step] = []
    groups, covered = {}, set()
    if fuse:
        from .fuse import fuse as fusion_groups
        for g in fusion_groups(graph):
            groups[g.anchor] = g
            covered |= set(g.ops)
    for op in graph.ops:
        if op.index in groups:
            from .fuse import lower_group
            steps.append(lower_group(groups[op.index], graph, ctx))
            continue
        if op.index in covered:
            continue
        step = LOWERINGS[op.kind](op, graph, ctx)
        if not step.ops:
            step.ops = [op.index]
        steps.append(step)
    return steps, ctx


def require(cond: bool, op: Op, graph: Graph, what: str) -> None:
    """Reject an op variant we have no kernel for, naming it."""
    if not cond:
        raise UnsupportedOpError(f"operator {op.index} ({op.kind}): {what} is not supported",
                                 where=graph.source,
                                 fix="re-export the model without this variant or file an issue")


def dims4(t: Tensor) -> tuple[int, int, int, int]:
    """Shape as NHWC, padding leading dimensions with 1."""
    s = list(t.shape)
    while len(s) < 4:
        s.insert(0, 1)
    return tuple(s)  # type: ignore[return-value]


# Last, so op modules can import everything above.
_load_op_modules()
