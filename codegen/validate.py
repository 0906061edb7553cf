"""Semantic checks of a .tflite file that the flatbuffer schema cannot express.

`read_model_file` reads a model (regular files only, with a size bound) and
`validate_flatbuffer` runs on the parsed flatbuffer before the importer builds
the graph IR, before any lowering, and before TFLite or TFLM see the file.
Each failure is a `ModelError` naming the tensor or operator and the rule, so
the CLI prints one line. Every bound is stated once, beside its rule, below.
Dimensions below zero are not judged here: they are dynamic shapes, which the
importer handles.
"""
from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass
from typing import Any

import numpy as np
import tflite
from tflite.utils import BUILTIN_OPCODE2NAME

from tinyml.errors import ModelError

# -- bounds ------------------------------------------------------------------
# A model file is read whole; nothing a microcontroller runs comes near 1 GiB.
MAX_FILE_BYTES = 1 << 30
# Each dimension <= 2^20 and each tensor <= 2^26 elements (<= 2^29 bytes at
# 8 bytes per element), so element counts and byte offsets fit an int32 and
# no loop of the planner or the kernels runs more than ~2^26 times per tensor.
MAX_DIM = 1 << 20
MAX_ELEMENTS = 1 << 26
# All activation tensors together <= 2^30 bytes: arena offsets fit an int32.
MAX_ACTIVATION_BYTES = 1 << 30
# Scales are finite and in [2^-64, 2^16]: every product or quotient of two or
# three scales is a finite, normal double, so requantization multipliers exist.
SCALE_MIN = 2.0 ** -64
SCALE_MAX = 2.0 ** 16
# In ADD and SUB, no activation (non-constant) input scale exceeds the output
# scale by more than 2^16 (the shared models stay under 2^9): ADD/SUB rescale
# inputs shifted left by 20 bits and then by up to max(input scale) / output
# scale, so a ratio beyond 2^21 would overflow their int32 intermediates. An
# input scale far *below* the output's is harmless (its multiplier rounds
# towards 0): Keras RNN exports feed a zero state with scale ~1e-8 into ADD.
MAX_SCALE_RATIO = 2.0 ** 16
# Accumulating ops (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, BATCH_MATMUL,
# MUL): the accumulator bound A = |bias| + 256 * sum|w| (or 256 * 256 * depth
# without constant weights; |x - zero_point| <= 255, or |x| <= 128 with the
# zero point folded into the bias) must stay below 2^31 - 2^9, so the int32
# accumulator cannot overflow and a requantized value (<= A * M, M < 1) plus
# the output zero point stays inside int32. For a real multiplier M >= 1 the
# kernels shift left by up to log2(2M) bits first: A * M < 2^30 keeps that
# shift and the sum inside int32. Together: no signed overflow in the C.
ACC_LIMIT = (1 << 31) - (1 << 9)
REQUANT_LIMIT = float(1 << 30)

_RULE_FIX = "the file is corrupt or was not written by the TFLite converter; re-export the model"

# TensorType codes of the schema; tinyml handles the first group only.
SUPPORTED_TYPES = {0: ("float32", 4), 1: ("float16", 2), 2: ("int32", 4), 3: ("uint8", 1), 4: ("int64", 8),
                   6: ("bool", 1), 7: ("int16", 2), 9: ("int8", 1), 10: ("float64", 8)}
OTHER_TYPES = {5: "string", 8: "complex64", 11: "complex128", 12: "uint64", 13: "resource", 14: "variant",
               15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16"}
_ZP_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767),
             "int32": (-(1 << 31), (1 << 31) - 1), "int64": (-(1 << 63), (1 << 63) - 1)}

# Inputs an operator cannot run without (leading positions; later ones may be -1).
REQUIRED_INPUTS = {
    "CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "ADD": 2, "SUB": 2, "MUL": 2,
    "SQUARED_DIFFERENCE": 2, "BATCH_MATMUL": 2, "PAD": 2, "PADV2": 2, "TRANSPOSE": 2, "MEAN": 2,
    "STRIDED_SLICE": 4, "SLICE": 3,
}
_WEIGHTED = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}   # kind -> output-channel axis of the filter
# options table -> accessors that must be >= 1 (strides, dilations, pool windows)
_POSITIVE_OPTIONS = {
    "Conv2DOptions": ("StrideH", "StrideW", "DilationHFactor", "DilationWFactor"),
    "DepthwiseConv2DOptions": ("StrideH", "StrideW", "DilationHFactor", "DilationWFactor", "DepthMultiplier"),
    "Pool2DOptions": ("StrideH", "StrideW", "FilterHeight", "FilterWidth"),
}
# TFLite semantics: these keep the element count; the binary ones broadcast their two inputs.
_SAME_COUNT = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "HARD_SWISH",
               "LOGISTIC", "TANH", "GELU", "QUANTIZE", "DEQUANTIZE", "NEG", "RSQRT", "SOFTMAX"}
_BROADCAST = {"ADD", "SUB", "MUL", "SQUARED_DIFFERENCE"}
_UNSUPPORTED_ACTIVATIONS = {4: "TANH", 5: "SIGN_BIT"}   # ActivationFunctionType codes without a kernel
# Options whose FusedActivationFunction is a recurrent cell's activation (tanh for the LSTM
# cell), not an activation fused onto the output.
_GATE_ACTIVATION_TABLES = {"UnidirectionalSequenceLSTMOptions", "LSTMOptions", "BidirectionalSequenceLSTMOptions"}
_OPTION_TABLES = {v: k for k, v in vars(tflite.BuiltinOptions).items() if isinstance(v, int)}


def check_shape(who: str, shape: tuple[int, ...], fail) -> None:
    """Dimensions positive (-1 only as a dynamic placeholder) and bounded, elements bounded."""
    for d in shape:
        if d == 0:
            fail(f"{who} has a zero dimension {list(shape)}", "dimensions are positive")
        if d > MAX_DIM:
            fail(f"{who} has dimension {d} in {list(shape)}", f"each dimension <= {MAX_DIM:,} (2^20)")
    n = math.prod(shape)
    if all(d >= 0 for d in shape) and n > MAX_ELEMENTS:
        fail(f"{who} has {n:,} elements {list(shape)}", f"a tensor has <= {MAX_ELEMENTS:,} (2^26) elements")


def intermediate_only_tensors(sg: Any) -> set[int]:
    """Tensors a subgraph's operators name only as intermediates (never as an input or
    output of an operator or of the subgraph)."""
    inter: set[int] = set()
    used: set[int] = set()
    for i in range(sg.OperatorsLength()):
        o = sg.Operators(i)
        if o.IntermediatesLength():
            inter.update(int(x) for x in o.IntermediatesAsNumpy())
        for x in (list(o.InputsAsNumpy()) if o.InputsLength() else []) + \
                 (list(o.OutputsAsNumpy()) if o.OutputsLength() else []):
            used.add(int(x))
    for x in (list(sg.InputsAsNumpy()) if sg.InputsLength() else []) + \
             (list(sg.OutputsAsNumpy()) if sg.OutputsLength() else []):
        used.add(int(x))
    return inter - used


def validate_resolved_shapes(graph, path: str) -> None:
    """The shape rules again on the shapes codegen.shape_fold computed (a folded RESHAPE
    or FILL can produce what the file itself could not state): static, positive, bounded."""
    def fail(what: str, rule: str, fix: str = _RULE_FIX) -> None:
        raise ModelError(f"{what} after shape folding (rule: {rule})", where=path, fix=fix)
    used = {x for op in graph.ops for x in op.inputs + op.outputs} | set(graph.inputs) | set(graph.outputs)
    for t in graph.tensors:
        if t.index not in used:
            continue                       # an intermediate (quantization only) or an unused tensor
        who = f"tensor {t.index} '{t.name}'"
        if any(d < 0 for d in t.shape):
            fail(f"{who} keeps a dynamic shape {list(t.shape)}", "shapes are static once the batch is 1")
        check_shape(who, tuple(t.shape), fail)


def read_model_file(path: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a model file: a regular, non-empty file of at most `limit` bytes.

    Named pipes, devices, sockets and directories are refused from their
    stat before anything opens them, so nothing blocks or reads without end."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ModelError(f"model file not found: {path}", fix="check the path") from None
    except OSError as exc:
        raise ModelError(f"cannot read {path} ({exc.strerror})", fix="check the path and its permissions") from None
    if stat.S_ISDIR(st.st_mode):
        raise ModelError(f"{path} is a directory, not a .tflite file", fix="pass the .tflite file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a character device"
                if stat.S_ISCHR(st.st_mode) else "a block device" if stat.S_ISBLK(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise ModelError(f"{path} is {kind}, not a regular .tflite file",
                         fix="save the model to a file and pass that file")
    if st.st_size > limit:
        raise ModelError(f"{path} is {st.st_size:,} bytes, more than the {limit:,} bytes a model may have",
                         fix="pass an int8 .tflite model for a microcontroller")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise ModelError(f"cannot read {path} ({exc.strerror})", fix="check the path and its permissions") from None
    if len(data) > limit:
        raise ModelError(f"{path} grew past {limit:,} bytes while being read", fix="pass a finished model file")
    if len(data) == 0:
        raise ModelError(f"{path} is empty (0 bytes)", fix="re-export or re-download the model")
    return data


@dataclass
class _TensorFacts:
    name: str
    dtype: str
    shape: tuple[int, ...]
    data: np.ndarray | None          # constant payload (flat), None for activations
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    axis: int | None
    dynamic: bool = False            # a -1 past the first dimension of the shape signature
    dynamic_first: bool = False      # a -1 as the first dimension (batch, or batch x rows after a Tensordot)
    variable: bool = False           # a variable tensor (op state: its value is the previous invocation's)

    @property
    def static(self) -> bool:
        return all(d >= 0 for d in self.shape) and not self.dynamic

    @property
    def fully_static(self) -> bool:
        """No -1 anywhere in the signature: the written shape is the shape at run time, so
        element counts across a reshape can be compared (a Tensordot folds batch x rows
        into a first dimension written as 1)."""
        return self.static and not self.dynamic_first


class _Checker:
    """One pass over a parsed model; `fail` raises the one-line ModelError."""

    def __init__(self, data: bytes, path: str) -> None:
        self.data = data
        self.path = path
        self.model = tflite.Model.GetRootAs(data, 0)

    def fail(self, what: str, rule: str, fix: str = _RULE_FIX) -> None:
        raise ModelError(f"{what} (rule: {rule})", where=self.path, fix=fix)

    # -- tensors ---------------------------------------------------------------
    def tensor(self, i: int, t: Any, intermediate_only: bool = False) -> _TensorFacts:
        """`intermediate_only`: a tensor that operators name only as an intermediate (the integer
        LSTM's gate scales): no value, only its quantization is read, and the converter writes
        its shape as [0]."""
        name = (t.Name() or b"").decode(errors="replace")
        who = f"tensor {i} '{name}'"
        code = t.Type()
        if code not in SUPPORTED_TYPES:
            what = f"type {OTHER_TYPES[code]}, which tinyml does not handle" if code in OTHER_TYPES \
                else f"type code {code}, which the TFLite schema does not define"
            self.fail(f"{who} has {what}",
                      "tensor types are float32/16/64, int8/16/32/64, uint8 or bool",
                      "export a fully int8-quantized model")
        dtype, size = SUPPORTED_TYPES[code]
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() > 0 else ()
        if not (intermediate_only and 0 in shape):
            check_shape(who, shape, self.fail)
        static = all(d >= 0 for d in shape)
        payload = self.buffer(i, who, t, dtype, size, shape if static else None)
        scale, zp, axis = self.quant(who, t, dtype, shape)
        # A -1 past the batch in the shape signature: the shape field is a placeholder that
        # codegen.shape_fold replaces (a dynamic batch alone is resolved to the 1 written here).
        sig = tuple(int(d) for d in t.ShapeSignatureAsNumpy()) if t.ShapeSignatureLength() > 0 else shape
        dynamic = len(sig) != len(shape) or any(d < 0 for d in sig[1:])
        return _TensorFacts(name, dtype, shape, payload, scale, zp, axis, dynamic, bool(sig) and sig[0] < 0,
                            bool(t.IsVariable()))

    def buffer(self, i: int, who: str, t: Any, dtype: str, size: int, shape: tuple[int, ...] | None):
        b, nbuf = t.Buffer(), self.model.BuffersLength()
        if b >= nbuf:
            self.fail(f"{who} has buffer index {b}, but the file has {nbuf} buffers",
                      "a tensor's buffer index is in range")
        if b == 0:
            return None
        buf = self.model.Buffers(b)
        if buf.Offset() > 1:                      # large-model layout: payload after the flatbuffer
            start, nbytes = int(buf.Offset()), int(buf.Size())
        else:
            o = buf._tab.Offset(4)                # Buffer.data
            if not o:
                return None
            start, nbytes = buf._tab.Vector(o), buf._tab.VectorLen(o)
        if nbytes == 0:
            return None
        if start < 0 or start + nbytes > len(self.data):
            self.fail(f"{who}'s buffer {b} spans bytes {start:,}-{start + nbytes:,}, past the end of the "
                      f"{len(self.data):,}-byte file", "constant buffers lie inside the file",
                      "the file is truncated; re-download or re-export it")
        if shape is None:
            self.fail(f"{who} is constant but has a dynamic shape", "constant tensors have static shapes")
        want = math.prod(shape) * size
        if nbytes != want:
            self.fail(f"{who} holds {nbytes:,} bytes but its shape {list(shape)} of {dtype} needs {want:,}",
                      "a constant buffer's size is its shape times the element size")
        if dtype == "float16":
            return None
        return np.frombuffer(self.data, dtype={"int8": np.int8, "uint8": np.uint8, "int16": np.int16,
                                               "int32": np.int32, "int64": np.int64, "bool": np.uint8,
                                               "float32": np.float32, "float64": np.float64}[dtype],
                             count=nbytes // size, offset=start)

    def quant(self, who: str, t: Any, dtype: str, shape: tuple[int, ...]):
        q = t.Quantization()
        if q is None or q.ScaleIsNone() or q.ScaleLength() == 0:
            return None, None, None
        scale = np.asarray(q.ScaleAsNumpy(), dtype=np.float64).reshape(-1)
        for s in scale:
            if not math.isfinite(s) or s <= 0:
                self.fail(f"{who} has scale {float(s)!r}", "scales are finite and positive")
            if not SCALE_MIN <= s <= SCALE_MAX:
                self.fail(f"{who} has scale {float(s)!r}", "scales lie in [2^-64, 2^16], where requantization "
                          "multipliers are representable")
        zp = np.zeros(1, np.int64) if q.ZeroPointIsNone() or q.ZeroPointLength() == 0 \
            else np.asarray(q.ZeroPointAsNumpy(), dtype=np.int64).reshape(-1)
        if zp.size not in (1, scale.size):
            self.fail(f"{who} has {scale.size} scales but {zp.size} zero points",
                      "one zero point, or one per scale")
        lo, hi = _ZP_RANGE.get(dtype, (None, None))
        if lo is not None:
            for z in zp:
                if not lo <= int(z) <= hi:
                    self.fail(f"{who} has zero point {int(z)}", f"zero points of {dtype} lie in [{lo}, {hi}]")
        axis = None
        if scale.size > 1:
            axis = int(q.QuantizedDimension())
            ok = 0 <= axis < len(shape) and shape[axis] == scale.size
            if not ok and len(shape) == 1 and shape[0] == scale.size:   # older files: a conv's axis on its bias
                axis, ok = 0, True
            if not ok:
                dim = shape[axis] if 0 <= axis < len(shape) else "none"
                self.fail(f"{who} has {scale.size} scales for quantized dimension {axis} of shape "
                          f"{list(shape)} (size {dim})", "a per-channel vector's length is its dimension's size")
        return scale, zp, axis

    # -- operators -------------------------------------------------------------
    def opcode_names(self) -> list[str]:
        names = []
        for i in range(self.model.OperatorCodesLength()):
            oc = self.model.OperatorCodes(i)
            code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
            names.append("CUSTOM" if code == 32 else BUILTIN_OPCODE2NAME.get(code, f"BUILTIN_{code}"))
        return names

    def run(self) -> None:
        if self.model.SubgraphsLength() < 1:
            return                                # the importer says so
        sg = self.model.Subgraphs(0)
        inter_only = intermediate_only_tensors(sg)
        facts = [self.tensor(i, sg.Tensors(i), i in inter_only) for i in range(sg.TensorsLength())]
        nt = len(facts)
        act_bytes = sum(math.prod(f.shape) * SUPPORTED_TYPES_BYTES[f.dtype] for f in facts
                        if f.data is None and f.static)
        if act_bytes > MAX_ACTIVATION_BYTES:
            self.fail(f"the activation tensors hold {act_bytes:,} bytes",
                      f"activations total <= {MAX_ACTIVATION_BYTES:,} bytes (2^30)")
        g_in = [int(x) for x in sg.InputsAsNumpy()] if sg.InputsLength() else []
        g_out = [int(x) for x in sg.OutputsAsNumpy()] if sg.OutputsLength() else []
        for x in g_in + g_out:
            if not 0 <= x < nt:
                self.fail(f"the subgraph's inputs/outputs name tensor {x}, but the file has {nt}",
                          "tensor indices are in range")
        names = self.opcode_names()
        ops = []
        writer: dict[int, int] = {}
        for i in range(sg.OperatorsLength()):
            o = sg.Operators(i)
            idx = o.OpcodeIndex()
            if idx >= len(names):
                self.fail(f"operator {i} uses opcode index {idx}, but the file has {len(names)}",
                          "opcode indices are in range")
            kind = names[idx]
            who = f"operator {i} ({kind})"
            ins = [int(x) for x in o.InputsAsNumpy()] if o.InputsLength() else []
            outs = [int(x) for x in o.OutputsAsNumpy()] if o.OutputsLength() else []
            for x in ins + outs:
                if not -1 <= x < nt:
                    self.fail(f"{who} names tensor {x}, but the file has {nt}", "tensor indices are in range")
            need = REQUIRED_INPUTS.get(kind, 1)
            if len(ins) < need or any(x < 0 for x in ins[:need]):
                self.fail(f"{who} has inputs {ins}; it needs {need} present (not -1)",
                          "an operator's required inputs are present")
            if not outs or any(x < 0 for x in outs):
                self.fail(f"{who} has outputs {outs}", "an operator has outputs, none omitted")
            for x in outs:
                if x in writer:
                    self.fail(f"{who} writes tensor {x} '{facts[x].name}', which operator {writer[x]} "
                              "writes too", "each tensor has one writer")
                if facts[x].data is not None or x in g_in:
                    self.fail(f"{who} writes tensor {x} '{facts[x].name}', a constant or graph input",
                              "operators write activations only")
                writer[x] = i
            self.options(who, o)
            self.activation(who, o)
            ops.append((i, kind, who, ins, outs))
        for i, kind, who, ins, outs in ops:
            for x in ins:
                if x < 0:
                    continue
                if x in writer and writer[x] >= i:
                    self.fail(f"{who} reads tensor {x} '{facts[x].name}', which operator {writer[x]} writes "
                              f"{'itself' if writer[x] == i else 'later'}",
                              "operators are in execution order (a tensor is written before it is read)")
                if x not in writer and facts[x].data is None and x not in g_in and not facts[x].variable:
                    self.fail(f"{who} reads tensor {x} '{facts[x].name}', which is neither a constant, a graph "
                              "input, nor written by an operator", "every tensor read has a value")
        for x in g_out:
            if x not in writer and x not in g_in and facts[x].data is None:
                self.fail(f"graph output tensor {x} '{facts[x].name}' is written by no operator",
                          "every tensor read has a value")
        for i, kind, who, ins, outs in ops:
            for x in ins + outs:
                if x >= 0 and facts[x].dtype in ("int8", "uint8", "int16") and facts[x].scale is None:
                    self.fail(f"{who} uses tensor {x} '{facts[x].name}' of type {facts[x].dtype} without "
                              "quantization parameters", "int8, uint8 and int16 operands carry a scale")
            operands = [facts[x] if x >= 0 else None for x in ins]
            self.weighted_shapes(who, kind, operands, [facts[x] for x in outs])
            self.numerics(who, kind, operands, [facts[x] for x in outs])

    def options(self, who: str, o: Any) -> None:
        table_name = _OPTION_TABLES.get(o.BuiltinOptionsType())
        fields = _POSITIVE_OPTIONS.get(table_name or "")
        table = o.BuiltinOptions() if fields else None
        if table is None:
            return
        obj = getattr(tflite, table_name)()
        obj.Init(table.Bytes, table.Pos)
        for field in fields:
            v = int(getattr(obj, field)())
            if not 1 <= v <= MAX_DIM:
                self.fail(f"{who} has {field} = {v}", f"strides, dilations and windows lie in [1, {MAX_DIM:,}]")

    def activation(self, who: str, o: Any) -> None:
        """Fused activations the schema defines but no kernel applies (codes beyond it: the importer)."""
        table_name = _OPTION_TABLES.get(o.BuiltinOptionsType())
        table = o.BuiltinOptions() if table_name else None
        cls = getattr(tflite, table_name, None) if table_name else None
        if table is None or cls is None or not hasattr(cls, "FusedActivationFunction"):
            return
        if table_name in _GATE_ACTIVATION_TABLES:
            return                        # the cell's own activation (the lowering checks it), not a fused one
        obj = cls()
        obj.Init(table.Bytes, table.Pos)
        code = int(obj.FusedActivationFunction())
        if code in _UNSUPPORTED_ACTIVATIONS:
            self.fail(f"{who} has fused activation {_UNSUPPORTED_ACTIVATIONS[code]}",
                      "fused activations are NONE, RELU, RELU_N1_TO_1 or RELU6",
                      "re-export without fusing that activation into the op")

    def elementwise_shapes(self, who: str, kind: str, ins: list, outs: list) -> None:
        """Elementwise ops keep the element count; binary ones produce the broadcast shape."""
        x, out = ins[0], outs[0]
        if x is None or not (x.static and out.static):
            return
        if kind in _SAME_COUNT and x.fully_static and out.fully_static \
                and math.prod(x.shape) != math.prod(out.shape):
            self.fail(f"{who} maps {list(x.shape)} to {list(out.shape)}",
                      "an elementwise or reshaping op keeps the element count")
        if kind in _BROADCAST and len(ins) > 1 and ins[1] is not None and ins[1].static:
            try:
                want = tuple(np.broadcast_shapes(x.shape, ins[1].shape))
            except ValueError:
                want = None
            if want is None or math.prod(want) != math.prod(out.shape):
                self.fail(f"{who} combines {list(x.shape)} and {list(ins[1].shape)} into {list(out.shape)}",
                          "a binary elementwise op's output is its inputs' broadcast shape")

    def weighted_shapes(self, who: str, kind: str, ins: list, outs: list) -> None:
        """CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED: input, filter, bias and output agree."""
        self.elementwise_shapes(who, kind, ins, outs)
        if kind not in _WEIGHTED:
            return
        x, w, out = ins[0], ins[1], outs[0]
        b = ins[2] if len(ins) > 2 else None
        if not (x.static and w.static and out.static):
            return
        rule = "a weighted op's input, filter, bias and output shapes agree"
        rank = 2 if kind == "FULLY_CONNECTED" else 4
        if len(w.shape) != rank or (rank == 4 and (len(x.shape) != 4 or len(out.shape) != 4)):
            self.fail(f"{who} has input {list(x.shape)}, filter {list(w.shape)}, output {list(out.shape)}", rule)
        channels = w.shape[_WEIGHTED[kind]]
        depth = w.shape[-1]
        if kind == "FULLY_CONNECTED":
            ok = math.prod(x.shape) % depth == 0 and bool(out.shape) and out.shape[-1] == channels \
                and math.prod(out.shape) == math.prod(x.shape) // depth * channels
        elif kind == "CONV_2D":     # grouped: the input has `groups` x the filter's depth channels
            ok = x.shape[3] % depth == 0 and channels % (x.shape[3] // depth) == 0 \
                and out.shape[3] == channels and out.shape[0] == x.shape[0]
        else:
            ok = out.shape[3] == channels and channels % x.shape[3] == 0 and out.shape[0] == x.shape[0]
        if not ok:
            self.fail(f"{who} has input {list(x.shape)}, filter {list(w.shape)}, output {list(out.shape)}", rule)
        if b is not None and b.static and math.prod(b.shape) != channels:
            self.fail(f"{who} has a bias of shape {list(b.shape)} for {channels} output channels", rule)
        if w.scale is not None and w.scale.size not in (1, channels):
            self.fail(f"{who}'s filter has {w.scale.size} scales for {channels} output channels", rule)

    # -- numeric ranges (no signed overflow in the kernels) ----------------------
    def numerics(self, who: str, kind: str, ins: list, outs: list) -> None:
        def act_scales(fs: list) -> list[float]:
            return [float(f.scale[0]) for f in fs if f is not None and f.data is None and f.scale is not None
                    and f.dtype in ("int8", "uint8", "int16")]
        s_in, s_out = act_scales(ins), act_scales(outs)
        if kind in ("ADD", "SUB") and s_in and s_out and max(s_in) / min(s_out) > MAX_SCALE_RATIO:
            self.fail(f"{who}'s input scale {max(s_in):.3g} is {max(s_in) / min(s_out):.3g}x its output "
                      f"scale {min(s_out):.3g}", "an op's input scales exceed its output scale by at most 2^16")
        if kind not in _WEIGHTED and kind not in ("BATCH_MATMUL", "MUL"):
            return
        x, w, out = ins[0], ins[1], outs[0]
        if x is None or w is None or x.scale is None or w.scale is None or out.scale is None \
                or x.dtype not in ("int8", "uint8"):
            return
        if kind in _WEIGHTED and w.data is not None and w.dtype == "int8" and w.static and len(w.shape) >= 2:
            axis = _WEIGHTED[kind] % len(w.shape)
            wa = np.abs(np.moveaxis(w.data.reshape(w.shape), axis, 0).reshape(w.shape[axis], -1).astype(np.int64))
            acc = 256 * wa.sum(axis=1)
            b = ins[2] if len(ins) > 2 else None
            if b is not None and b.data is not None and b.dtype in ("int32", "int64") and b.data.size == acc.size:
                acc = acc + np.abs(b.data.astype(np.int64))
            ws = w.scale if w.scale.size == acc.size else np.full(acc.size, w.scale[0])
        else:
            depth = 1
            if kind != "MUL" and x.static and x.shape:
                depth = x.shape[-1]
            acc = np.array([256 * 256 * depth], dtype=np.int64)
            ws = w.scale[:1]
        worst = int(np.argmax(acc))
        if int(acc[worst]) >= ACC_LIMIT:
            self.fail(f"{who} can accumulate {int(acc[worst]):,} in channel {worst}",
                      "|bias| + 256*sum|w| < 2^31 - 2^9 so the int32 accumulator cannot overflow")
        real = float(x.scale[0]) * ws.astype(np.float64) / float(out.scale[0])
        reach = acc.astype(np.float64) * real
        worst = int(np.argmax(reach))
        if reach[worst] >= REQUANT_LIMIT:
            self.fail(f"{who}'s requantization multiplier {real[worst]:.3g} times its accumulator bound "
                      f"{int(acc[worst]):,} reaches {reach[worst]:.3g} in channel {worst}",
                      "accumulator bound x multiplier < 2^30 so the requantized int32 cannot overflow")


SUPPORTED_TYPES_BYTES = {name: size for name, size in SUPPORTED_TYPES.values()}


def validate_flatbuffer(data: bytes, path: str = "<bytes>") -> None:
    """Raise ModelError (one line: tensor or operator, and the rule) for the first
    semantic rule `data` breaks. Corrupt offsets raise whatever the flatbuffer
    reader raises; the importer turns those into its one-line 'corrupt file'."""
    _Checker(data, path).run()
