"""TFLite flatbuffer -> graph IR.

Parsing uses the `tflite` package (flatc-generated readers for the official
schema); nothing here decodes flatbuffer bytes by hand. Every way a file can
be wrong ends in a `ModelError` naming the cause and the fix.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions as _BO
from tflite.utils import BUILTIN_OPCODE2NAME

from tinyml import op_options as oo
from tinyml.errors import ModelError
from tinyml.ir import Graph, Op, Quant, Tensor
from tinyml.op_options import Activation, Padding

from .shape_fold import resolve_shapes
from .validate import read_model_file, validate_flatbuffer, validate_resolved_shapes

_TENSOR_TYPES = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string",
    6: "bool", 7: "int16", 8: "complex64", 9: "int8", 10: "float64",
}
_NP = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "uint8": np.uint8,
       "int64": np.int64, "bool": np.bool_, "int16": np.int16, "int8": np.int8,
       "float64": np.float64}
_OPTION_CLASS_NAMES = {v: k for k, v in vars(_BO).items() if isinstance(v, int)}
# Schema enums (ActivationFunctionType, Padding): codes outside these are rejected by name.
_ACTIVATIONS = {0: Activation.NONE, 1: Activation.RELU, 2: Activation.RELU_N1_TO_1, 3: Activation.RELU6,
                4: Activation.TANH, 5: Activation.SIGN_BIT}
_PADDING = {0: Padding.SAME, 1: Padding.VALID}

# options class -> {field: flatbuffer accessor}; every field of the class is read.
_ACCESSORS: dict[type, dict[str, str]] = {
    oo.Conv2DOptions: {"padding": "Padding", "stride_h": "StrideH", "stride_w": "StrideW",
                       "dilation_h": "DilationHFactor", "dilation_w": "DilationWFactor",
                       "activation": "FusedActivationFunction", "quantized_bias_type": "QuantizedBiasType"},
    oo.DepthwiseConv2DOptions: {"padding": "Padding", "stride_h": "StrideH", "stride_w": "StrideW",
                                "dilation_h": "DilationHFactor", "dilation_w": "DilationWFactor",
                                "depth_multiplier": "DepthMultiplier",
                                "activation": "FusedActivationFunction"},
    oo.Pool2DOptions: {"padding": "Padding", "stride_h": "StrideH", "stride_w": "StrideW",
                       "filter_h": "FilterHeight", "filter_w": "FilterWidth",
                       "activation": "FusedActivationFunction"},
    oo.FullyConnectedOptions: {"activation": "FusedActivationFunction", "weights_format": "WeightsFormat",
                               "keep_num_dims": "KeepNumDims",
                               "asymmetric_quantize_inputs": "AsymmetricQuantizeInputs",
                               "quantized_bias_type": "QuantizedBiasType"},
    oo.AddOptions: {"activation": "FusedActivationFunction", "pot_scale_int16": "PotScaleInt16"},
    oo.SubOptions: {"activation": "FusedActivationFunction", "pot_scale_int16": "PotScaleInt16"},
    oo.MulOptions: {"activation": "FusedActivationFunction"},
    oo.BatchMatMulOptions: {"adj_x": "AdjX", "adj_y": "AdjY",
                            "asymmetric_quantize_inputs": "AsymmetricQuantizeInputs"},
    oo.SoftmaxOptions: {"beta": "Beta"},
    oo.ReducerOptions: {"keep_dims": "KeepDims"},
    oo.ConcatenationOptions: {"axis": "Axis", "activation": "FusedActivationFunction"},
    oo.StridedSliceOptions: {"begin_mask": "BeginMask", "end_mask": "EndMask", "ellipsis_mask": "EllipsisMask",
                             "new_axis_mask": "NewAxisMask", "shrink_axis_mask": "ShrinkAxisMask",
                             "offset": "Offset"},
    oo.LeakyReluOptions: {"alpha": "Alpha"},
    oo.GeluOptions: {"approximate": "Approximate"},
    oo.TransposeConvOptions: {"padding": "Padding", "stride_h": "StrideH", "stride_w": "StrideW",
                              "activation": "FusedActivationFunction", "quantized_bias_type": "QuantizedBiasType"},
    oo.ResizeNearestNeighborOptions: {"align_corners": "AlignCorners", "half_pixel_centers": "HalfPixelCenters"},
    oo.ResizeBilinearOptions: {"align_corners": "AlignCorners", "half_pixel_centers": "HalfPixelCenters"},
    oo.SplitOptions: {"num_splits": "NumSplits"},
    oo.SplitVOptions: {"num_splits": "NumSplits"},
    oo.PackOptions: {"values_count": "ValuesCount", "axis": "Axis"},
    oo.UnpackOptions: {"num": "Num", "axis": "Axis"},
    oo.GatherOptions: {"axis": "Axis", "batch_dims": "BatchDims"},
    oo.DepthToSpaceOptions: {"block_size": "BlockSize"},
    oo.SpaceToDepthOptions: {"block_size": "BlockSize"},
    oo.MirrorPadOptions: {"mode": "Mode"},
    oo.ArgMaxOptions: {"output_type": "OutputType"},
    oo.ArgMinOptions: {"output_type": "OutputType"},
    oo.L2NormOptions: {"activation": "FusedActivationFunction"},
    oo.DivOptions: {"activation": "FusedActivationFunction"},
    oo.CumsumOptions: {"exclusive": "Exclusive", "reverse": "Reverse"},
    oo.SVDFOptions: {"rank": "Rank", "activation": "FusedActivationFunction",
                     "asymmetric_quantize_inputs": "AsymmetricQuantizeInputs"},
    oo.UnidirectionalSequenceLSTMOptions: {"activation": "FusedActivationFunction", "cell_clip": "CellClip",
                                           "proj_clip": "ProjClip", "time_major": "TimeMajor",
                                           "asymmetric_quantize_inputs": "AsymmetricQuantizeInputs",
                                           "diagonal_recurrent_tensors": "DiagonalRecurrentTensors"},
}


def _custom_options(op: Any, kind: str, index: int, path: str, cls: type) -> oo.OpOptions:
    """A custom op's options from its flexbuffer map: every field of `cls` the map has
    (floats rounded to float32, as the kernel's AsFloat), the dataclass default otherwise."""
    from flatbuffers import flexbuffers
    raw = op.CustomOptionsAsNumpy().tobytes() if op.CustomOptionsLength() else b""
    try:
        table = flexbuffers.Loads(raw) if raw else {}
    except Exception as e:  # noqa: BLE001 - any decoding failure is a corrupt file
        raise ModelError(f"operator {index} ({kind}): its custom options are not a flexbuffer ({e})",
                         where=path, fix="re-export the model with the TFLite converter") from None
    if not isinstance(table, dict):
        raise ModelError(f"operator {index} ({kind}): its custom options are not a flexbuffer map",
                         where=path, fix="re-export the model with the TFLite converter")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if table.get(f.name) is None:
            continue
        v = table[f.name]
        if not isinstance(v, (bool, int, float)):
            raise ModelError(f"operator {index} ({kind}): custom option {f.name} is {v!r}, not a number",
                             where=path, fix="re-export the model with the TFLite converter")
        if isinstance(f.default, bool):
            values[f.name] = bool(v)
        elif isinstance(f.default, float):
            values[f.name] = float(np.float32(v))
        else:
            values[f.name] = int(v)
    return cls(**values)


def _options(op: Any, kind: str, index: int, path: str) -> oo.OpOptions:
    """The op's typed options (tinyml.op_options) from its builtin options table.

    Enum fields are decoded here; a code the schema does not define is a
    ModelError naming the operator, the field and the value."""
    cls = oo.OPTIONS_FOR_KIND.get(kind, oo.NoOptions)
    if cls is oo.DetectionPostProcessOptions:
        return _custom_options(op, kind, index, path, cls)
    code = op.BuiltinOptionsType()
    table = op.BuiltinOptions() if code else None
    if cls is oo.NoOptions or table is None:
        return cls()
    table_name = _OPTION_CLASS_NAMES.get(code, f"options type {code}")
    if table_name != cls.TABLE:
        raise ModelError(f"operator {index} ({kind}) carries {table_name}, not {cls.TABLE}", where=path,
                         fix="the file is corrupt; re-export the model with the TFLite converter")
    obj = getattr(tflite, cls.TABLE)()
    obj.Init(table.Bytes, table.Pos)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        accessor = getattr(obj, _ACCESSORS[cls][f.name], None)
        if accessor is None:          # a field this schema package predates: the dataclass default
            continue
        raw = accessor()
        if f.name == "activation":
            if raw not in _ACTIVATIONS:
                raise ModelError(f"operator {index} ({kind}) has fused activation function code {raw}, "
                                 f"which the TFLite schema does not define (known: 0-{len(_ACTIVATIONS) - 1})",
                                 where=path, fix="re-export the model with the TFLite converter")
            values[f.name] = _ACTIVATIONS[raw]
        elif f.name == "padding":
            if raw not in _PADDING:
                raise ModelError(f"operator {index} ({kind}) has padding code {raw}, which the TFLite "
                                 "schema does not define (known: 0 SAME, 1 VALID)",
                                 where=path, fix="re-export the model with the TFLite converter")
            values[f.name] = _PADDING[raw]
        elif isinstance(f.default, bool):
            values[f.name] = bool(raw)
        elif isinstance(f.default, float):
            values[f.name] = float(raw)
        else:
            values[f.name] = int(raw)
    return cls(**values)


def _quant(t: Any, shape: tuple[int, ...]) -> Quant | None:
    q = t.Quantization()
    if q is None or q.ScaleIsNone() or q.ScaleLength() == 0:
        return None
    scale = np.asarray(q.ScaleAsNumpy(), dtype=np.float32).reshape(-1)
    if q.ZeroPointIsNone() or q.ZeroPointLength() == 0:
        zp = np.zeros_like(scale, dtype=np.int64)
    else:
        zp = np.asarray(q.ZeroPointAsNumpy(), dtype=np.int64).reshape(-1)
    if zp.size == 1 and scale.size > 1:
        zp = np.full(scale.shape, int(zp[0]), dtype=np.int64)
    # One scale is per-tensor quantization, whatever quantized_dimension says
    # (older files such as TFLM's person_detect carry quantized_dimension=3).
    axis = None
    if scale.size > 1:
        axis = int(q.QuantizedDimension())
        if (axis >= len(shape) or shape[axis] != scale.size) and len(shape) == 1 \
                and shape[0] == scale.size:
            axis = 0  # older files put a conv's quantized_dimension on its 1-D bias too
        if axis >= len(shape) or shape[axis] != scale.size:
            raise ModelError(
                f"tensor '{t.Name().decode(errors='replace')}' has {scale.size} scales but its "
                f"dimension {axis} has size {shape[axis] if axis < len(shape) else 'n/a'}",
                fix="re-export the model with the TFLite converter")
    return Quant(scale=scale, zero_point=zp, axis=axis)


def load_bytes(path: str) -> bytes:
    """A model file's bytes: regular files only, size-bounded (codegen.validate)."""
    return read_model_file(path)


def import_tflite(path: str) -> Graph:
    """Read a .tflite file into the graph IR (first subgraph)."""
    return import_bytes(load_bytes(path), path)


def import_bytes(data: bytes, path: str = "<bytes>") -> Graph:
    name = os.path.splitext(os.path.basename(path))[0]
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{path} is not a TFLite flatbuffer (no 'TFL3' identifier)",
                         fix="pass an int8 .tflite produced by the TFLite converter")
    try:
        validate_flatbuffer(data, path)   # semantic rules the schema cannot state (codegen.validate)
        return _parse(data, name, path)
    except ModelError:
        raise
    except Exception as exc:  # flatbuffers raise struct/index errors on corrupt offsets
        raise ModelError(f"{path} is a corrupt or truncated TFLite file ({type(exc).__name__}: {exc})",
                         fix="re-export the model; the file does not decode with the TFLite schema") from None


def _buffer_data(model: Any, data: bytes, t: Any, dtype: str, shape: tuple[int, ...]) -> np.ndarray | None:
    bidx = t.Buffer()
    if bidx <= 0 or bidx >= model.BuffersLength():
        return None
    buf = model.Buffers(bidx)
    raw: bytes | None = None
    if buf.Offset() > 1:  # large-model layout: payload after the flatbuffer
        off, size = buf.Offset(), buf.Size()
        if off + size > len(data):
            raise ModelError("a weight buffer points past the end of the file", fix="the file is truncated")
        raw = data[off:off + size]
    elif not buf.DataIsNone() and buf.DataLength() > 0:
        raw = buf.DataAsNumpy().tobytes()
    if raw is None:
        return None
    if dtype not in _NP:
        raise ModelError(f"constant tensor '{t.Name().decode(errors='replace')}' has unsupported type {dtype}")
    arr = np.frombuffer(raw, dtype=_NP[dtype])
    n = int(np.prod(shape)) if shape else 1
    if arr.size != n:
        raise ModelError(f"constant tensor '{t.Name().decode(errors='replace')}' holds {arr.size} values "
                         f"but its shape {list(shape)} needs {n}", fix="the file is corrupt")
    return arr.reshape(shape).copy()


def _parse(data: bytes, name: str, path: str) -> Graph:
    model = tflite.Model.GetRootAs(data, 0)
    if model.SubgraphsLength() < 1:
        raise ModelError(f"{path} has no subgraph", fix="re-export the model")
    sg = model.Subgraphs(0)
    opcodes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        if code == 32:  # CUSTOM
            cname = oc.CustomCode()
            opcodes.append("CUSTOM:" + (cname.decode(errors="replace") if cname else "?"))
        else:
            opcodes.append(BUILTIN_OPCODE2NAME.get(code, f"BUILTIN_{code}"))

    tensors: list[Tensor] = []
    dynamic: dict[int, tuple[int, ...]] = {}
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        tname = (t.Name() or b"").decode(errors="replace")
        dtype = _TENSOR_TYPES.get(t.Type(), f"type{t.Type()}")
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() > 0 else ()
        # -1 in the signature (a Keras batch of None, or a size computed at run time):
        # codegen.shape_fold resolves it after parsing.
        sig = tuple(int(d) for d in t.ShapeSignatureAsNumpy()) \
            if not t.ShapeSignatureIsNone() and t.ShapeSignatureLength() > 0 else shape
        if any(d < 0 for d in sig + shape):
            dynamic[i] = sig if len(sig) == len(shape) else shape
            shape = tuple(max(d, 1) for d in shape)
        q = _quant(t, shape)
        arr = _buffer_data(model, data, t, dtype, shape)
        tensors.append(Tensor(index=i, name=tname, shape=shape, dtype=dtype, quant=q, data=arr,
                              variable=bool(t.IsVariable())))

    ops: list[Op] = []
    for i in range(sg.OperatorsLength()):
        o = sg.Operators(i)
        idx = o.OpcodeIndex()
        if idx >= len(opcodes):
            raise ModelError(f"operator {i} uses opcode index {idx}, but the file has {len(opcodes)}",
                             fix="the file is corrupt")
        ins = [int(x) for x in o.InputsAsNumpy()] if o.InputsLength() else []
        outs = [int(x) for x in o.OutputsAsNumpy()] if o.OutputsLength() else []
        for x in ins + outs:
            if x >= len(tensors) or x < -1:
                raise ModelError(f"operator {i} refers to tensor {x}, but the file has {len(tensors)}",
                                 fix="the file is corrupt")
        inter = [int(x) for x in o.IntermediatesAsNumpy()] if o.IntermediatesLength() else []
        if any(x < 0 or x >= len(tensors) for x in inter):
            raise ModelError(f"operator {i} names intermediate tensors {inter}, but the file has {len(tensors)}",
                             fix="the file is corrupt")
        ops.append(Op(index=i, kind=opcodes[idx], inputs=ins, outputs=outs,
                      options=_options(o, opcodes[idx], i, path), intermediates=inter))

    inputs = [int(x) for x in sg.InputsAsNumpy()] if sg.InputsLength() else []
    outputs = [int(x) for x in sg.OutputsAsNumpy()] if sg.OutputsLength() else []
    for x in inputs + outputs:
        if x < 0 or x >= len(tensors):
            raise ModelError(f"subgraph input/output refers to tensor {x}", fix="the file is corrupt")
    graph = Graph(name=name, tensors=tensors, ops=ops, inputs=inputs, outputs=outputs, source=path)
    resolved = resolve_shapes(graph, dynamic)
    if resolved is not graph:
        validate_resolved_shapes(resolved, path)
    return resolved
