"""What every lowering uses: the registry, the constants context, small helpers.

A lowering is a function `(op, graph, ctx) -> Step` registered with
`@lowering("OP_NAME")` in a module under `codegen/ops/`. It computes every
build-time constant (multipliers, shifts, clamp ranges, tables) in Python and
describes the C call with symbolic tensor references (`tinyml.steps`); the
planner later decides where those tensors live, and `emit` renders the
references as constant arena offsets. This module imports nothing from
`codegen`, so op modules and the driver (`codegen.lower`) both sit above it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from tinyml.errors import UnsupportedOpError
from tinyml.ir import Graph, Op, Tensor
from tinyml.steps import Step


# Bytes per element of the C types generated arrays are declared with (the numpy
# values may be wider: multipliers are computed as int64).
CTYPE_BYTES = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint32_t": 4,
               "float": 4}


# What a generated constant array is, for the flash split (tinyml bench, plan.json "flash"):
# "parameter" = a model parameter in another form (a bias with the input offset folded in),
# "table" = everything derived from quantization alone (lookup tables, multipliers, shifts).
ROLES = ("parameter", "table")


@dataclass
class ConstArray:
    symbol: str
    ctype: str
    values: np.ndarray
    role: str = "table"

    @property
    def nbytes(self) -> int:
        """Bytes of the C array weights.c declares (its element type's size, not numpy's)."""
        return CTYPE_BYTES[self.ctype] * max(int(self.values.size), 1)


class LowerCtx:
    """Collects generated constants; hands out unique C names."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.arrays: list[ConstArray] = []
        self._names: set[str] = set()
        # equal lookup tables (same C type and values) share one symbol
        self.shared_arrays: dict[tuple[str, bytes], str] = {}
        # packed copies of constant filters, one per filter tensor (codegen.ops.fully_connected)
        self.packed_filters: dict[int | tuple[str, int], str] = {}

    def name(self, base: str) -> str:
        n, i = base, 1
        while n in self._names:
            i += 1
            n = f"{base}_{i}"
        self._names.add(n)
        return n

    def const_bytes(self) -> int:
        """Bytes of the generated constant arrays (what weights.c adds to the tensors)."""
        return sum(a.nbytes for a in self.arrays)

    def const_array(self, base: str, ctype: str, values, role: str | None = None, share: bool = False) -> str:
        """A const array placed in weights.c (flash); returns its C symbol. With `share`
        (lookup tables: codegen.ops.fused_common.shared_array), an array equal to one
        already shared (same C type and values) is not stored again: its symbol is
        returned. Per-channel arrays (multipliers, shifts, biases) are not shared, so
        that a step's constant bytes do not depend on coincidences between its values
        (the search's cost model counts them per step). `role` (ROLES) defaults to
        "parameter" for repacked filters (`tinyml_w<t>`) and folded biases (names
        ending in `bias`), else "table"."""
        vals = np.asarray(values).reshape(-1)
        key = (ctype, vals.astype(np.int64).tobytes() if ctype != "float" else vals.astype(np.float32).tobytes())
        if share and key in self.shared_arrays:
            return self.shared_arrays[key]
        role = role or ("parameter" if base.endswith("bias") or base.startswith("tinyml_w") else "table")
        assert role in ROLES, role
        sym = self.name(base)
        self.arrays.append(ConstArray(sym, ctype, vals, role))
        if share:
            self.shared_arrays[key] = sym
        return sym


Lowering = Callable[[Op, Graph, LowerCtx], Step]
LOWERINGS: dict[str, Lowering] = {}
# 16x8 lowerings (int16 activations with zero point 0, int8 weights), chosen
# instead of LOWERINGS for ops that read or write an int16 activation.
LOWERINGS_16X8: dict[str, Lowering] = {}


def lowering(*kinds: str, int16: bool = False) -> Callable[[Lowering], Lowering]:
    """Register `fn` for `kinds`; with `int16`, as the 16x8 variant of those ops."""
    table = LOWERINGS_16X8 if int16 else LOWERINGS

    def deco(fn: Lowering) -> Lowering:
        for k in kinds:
            table[k] = fn
        return fn
    return deco


def is_16x8(op: Op, graph: Graph) -> bool:
    """Whether `op` reads or writes a non-constant int16 tensor (a 16x8 op); a variable tensor
    (SVDF's int16 state in an int8 op) does not count."""
    return any(i >= 0 and not graph.t(i).is_const and not graph.t(i).variable and graph.t(i).dtype == "int16"
               for i in list(op.inputs) + list(op.outputs))


def lowering_for(op: Op, graph: Graph) -> Lowering | None:
    """The lowering of `op`: the 16x8 one when it touches int16 activations, else the int8 one."""
    return (LOWERINGS_16X8 if is_16x8(op, graph) else LOWERINGS).get(op.kind)


def supported_ops() -> list[str]:
    return sorted(LOWERINGS)


def supported_ops_16x8() -> list[str]:
    return sorted(LOWERINGS_16X8)


def activations(graph: Graph, op: Op) -> tuple[list[int], list[int]]:
    ins = [i for i in op.inputs if i >= 0 and not graph.t(i).is_const]
    outs = [o for o in op.outputs if o >= 0]
    return ins, outs


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
