"""Graph IR: the one representation every stage after import works on.

A `Graph` is a list of `Tensor`s and a topologically ordered list of `Op`s,
exactly as in the TFLite subgraph, with constant data decoded to numpy.
Later stages (planner, lowering, emit) read it; only codegen passes rewrite it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyml.op_options import OpOptions, default_options

DTYPE_BYTES = {
    "int8": 1, "uint8": 1, "bool": 1, "int16": 2, "float16": 2,
    "int32": 4, "float32": 4, "int64": 8, "float64": 8,
}

C_TYPES = {
    "int8": "int8_t", "uint8": "uint8_t", "bool": "uint8_t", "int16": "int16_t",
    "int32": "int32_t", "float32": "float", "int64": "int64_t",
}


@dataclass
class Quant:
    """Affine quantization: real = scale * (q - zero_point).

    `axis` is None for per-tensor quantization (a single scale, whatever the
    file's quantized_dimension says), else the channel axis.
    """

    scale: np.ndarray          # float32, shape [1] or [channels]
    zero_point: np.ndarray     # int64, same shape as scale
    axis: int | None = None

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    @property
    def s(self) -> float:
        """The per-tensor scale (as float32 -> Python float)."""
        return float(self.scale[0])

    @property
    def zp(self) -> int:
        return int(self.zero_point[0])


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quant | None = None
    data: np.ndarray | None = None   # constant payload, already shaped
    variable: bool = False           # TFLite variable tensor (op state kept between invocations)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def nbytes(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n * DTYPE_BYTES[self.dtype]

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def ctype(self) -> str:
        return C_TYPES[self.dtype]


@dataclass
class Op:
    index: int
    kind: str                       # TFLite builtin name, e.g. "CONV_2D"
    inputs: list[int]               # tensor indices; -1 marks an omitted optional input
    outputs: list[int]
    # typed (tinyml.op_options); None -> the kind's defaults (what a file without an options table gives)
    options: OpOptions = None  # type: ignore[assignment]
    # tensors the op names as intermediates (only their quantization is read: the integer LSTM's
    # gate and hidden scales); -1 never appears
    intermediates: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.options is None:
            self.options = default_options(self.kind)


@dataclass
class Graph:
    name: str
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    source: str = ""                # path of the .tflite file
    # ops the importer evaluated at compile time (codegen.shape_fold): (index in the file, kind);
    # when non-empty, the remaining ops are renumbered in order
    folded: list[tuple[int, str]] = field(default_factory=list)

    def t(self, index: int) -> Tensor:
        return self.tensors[index]

    def producers(self) -> dict[int, int]:
        """tensor index -> index of the op that writes it."""
        return {o: op.index for op in self.ops for o in op.outputs}

    def consumers(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for op in self.ops:
            for i in op.inputs:
                if i >= 0:
                    out.setdefault(i, []).append(op.index)
        return out

    def param_bytes(self) -> int:
        seen: set[int] = set()
        total = 0
        for op in self.ops:
            for i in op.inputs:
                if i >= 0 and i not in seen and self.tensors[i].is_const:
                    seen.add(i)
                    total += self.tensors[i].nbytes
        return total

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.kind] = counts.get(op.kind, 0) + 1
        return counts
