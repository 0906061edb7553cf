"""Lowered IR: what the generated C will execute, step by step.

The lowering (`tinyml.codegen.lower`) turns each op, or each fused group of
ops, into a `Step`: kernel calls with symbolic tensor arguments, the scratch
the kernels need, and the facts about the kernel that make sharing memory
legal. The planner (`tinyml.memory_planner`) reads only this and the graph
IR; the emitter renders the references as arena offsets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from tinyml.ir import Graph


@dataclass(frozen=True)
class TRef:
    """A tensor argument; rendered as a typed pointer (arena offset or weight symbol)."""
    tensor: int


@dataclass(frozen=True)
class ScratchRef:
    """The step's scratch, passed as a `const tinyml_ctx *` (pointer and size):
    rendered as `&op<index>_scratch`, a named context holding the arena address
    and Step.scratch_bytes. `size` is the C expression that computes the
    kernel's own need from the params it receives (its `*_scratch_size()`
    call), which host builds with TINYML_CHECK_SCRATCH compare with the plan."""
    size: str


@dataclass(frozen=True)
class StateRef:
    """A variable tensor (op state that persists between inferences, e.g. SVDF's): lives in
    the model's state block outside the arena (zeroed at start-up and by <prefix>_reset()),
    rendered as a typed pointer into it. A step lists its state tensors in `Step.state`;
    they are not in `inputs` / `outputs`, so the arena planner never places them."""
    tensor: int


Arg = Union[str, int, TRef, ScratchRef, StateRef]


@dataclass(frozen=True)
class Overlap:
    """A kernel fact: its output may overlap its own dying input (DMO-style).

    Stated by the lowering that knows the kernel's traversal order
    (`codegen/ops/rows.py` computes the bytes from the op's geometry); the
    planner only reads it. `input` / `output` are positions in `Step.inputs`
    / `Step.outputs` (not tensor indices), so the fact survives copies of a
    step with renumbered tensors (the search's lowering cache and depth
    families, `codegen.stream`).

    down_bytes: the kernel writes its output in ascending address order and,
    by the time it writes output byte b, has finished reading every input
    byte below `b + down_bytes - output start + input start`; so the output
    may start `down_bytes` (or more) bytes before the input starts. For a row
    kernel (NHWC, batch 1, output rows top to bottom; output row r reads
    input rows >= r*stride - pad_top):
        down_bytes = max_r((r + 1) * out_row - max(0, r*stride - pad_top) * in_row)
    For FULLY_CONNECTED over B rows (row b finished before row b+1):
        down_bytes = max_b((b + 1) * out_depth - b * in_depth).

    up_bytes: None, or the kernel also runs bottom to top whenever its output
    starts above its input (the depthwise kernel decides from the two
    pointers at run time). Then the output may instead end `up_bytes` (or
    more) bytes after the input ends. Writing output row r (descending), the
    input rows still to be read are 0 .. hi(r)-1, hi(r) = clamp(r*stride -
    pad_top + (k-1)*dil + 1, 0, in_h); row r starts at out_end - (out_h - r) *
    out_row = in_end + up_bytes - (out_h - r) * out_row, clear of them iff
        up_bytes >= max_r((out_h - r) * out_row - (in_h - hi(r)) * in_row).
    The order of pixels inside a row does not matter: the whole row is clear
    of every input row still needed.

    The planner applies a fact only when the input's bytes die at this step
    (no later reader, not a graph output) and rounds the bytes up to its
    alignment (memory_planner.plan).
    """
    down_bytes: int
    up_bytes: int | None = None
    input: int = 0
    output: int = 0


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
    overlap: Overlap | None = None  # the output may overlap its dying input (see Overlap)
    # Constant tensors the calls reference, for steps made without calls (a lowering cache,
    # codegen.lower_cache, keeps what planning and the flash count read); None: read the calls.
    const_refs: list[int] | None = None
    state: list[int] = field(default_factory=list)   # variable tensors (StateRef) the calls read and write
    # Kernel functions the calls name, in call order, for steps made without calls (the
    # lowering cache; the code-size estimate reads them); None: read the calls.
    call_funcs: list[str] | None = None
    model_c_bytes: int | None = None   # and the model.c bytes the calls took (codegen.code_size)


def step_funcs(step: Step) -> list[str]:
    """The kernel function of each of `step`'s calls, in order (`call_funcs` when made without calls)."""
    return list(step.call_funcs) if step.call_funcs is not None else [c.func for c in step.calls]


def call_constants(step: Step, graph: Graph) -> list[int]:
    """Constant tensors `step`'s calls pass to kernels, in call order, each once (what
    weights.c emits and the flash count charges; a filter a lowering packed into a
    generated array is not referenced itself)."""
    return list(dict.fromkeys(a.tensor for c in step.calls for a in c.args
                              if isinstance(a, TRef) and graph.t(a.tensor).is_const))
