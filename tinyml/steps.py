"""Lowered IR: what the generated C will execute, step by step.

The lowering (`tinyml.codegen.lower`) turns each op, or each fused group of
ops, into a `Step`: kernel calls with symbolic tensor arguments, the scratch
the kernels need, and the facts about the kernel that make sharing memory
legal. The planner (`tinyml.memory_planner`) reads only this and the graph
IR; the emitter renders the references as arena offsets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


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
    # Constant tensors the calls reference, for steps made without calls (a lowering cache,
    # codegen.lower_cache, keeps what planning and the flash count read); None: read the calls.
    const_refs: list[int] | None = None
