"""Typed per-op options: one frozen dataclass per op kind whose options a lowering reads.

`codegen.importer` fills them from the flatbuffer's builtin options table
(field by field, enums decoded; an enum value outside the schema is a
one-line ModelError there, never a surprise later). Graphs built without a
file (`memory_planner.search.vit_ir`, tests) construct them directly. Ops
whose options no lowering reads carry `NoOptions()`.

Defaults are what the importer gives when a file has no options table for
the op (older converters omit empty tables): stride, dilation and filter
size 1, SAME padding, no fused activation. A table that is present is read
as written (a missing field reads as the schema's default, e.g. stride 0,
which the lowerings reject by name).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Union


class _StrEnum(str, Enum):
    """A str-valued enum that prints as its value (f-strings, str())."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Activation(_StrEnum):
    """TFLite ActivationFunctionType (schema codes 0..5, in this order)."""
    NONE = "NONE"
    RELU = "RELU"
    RELU_N1_TO_1 = "RELU_N1_TO_1"
    RELU6 = "RELU6"
    TANH = "TANH"
    SIGN_BIT = "SIGN_BIT"


class Padding(_StrEnum):
    """TFLite Padding (schema codes 0, 1)."""
    SAME = "SAME"
    VALID = "VALID"


@dataclass(frozen=True)
class NoOptions:
    """Ops whose options no lowering reads (or that have none)."""
    TABLE: ClassVar[str | None] = None


@dataclass(frozen=True)
class Conv2DOptions:
    TABLE: ClassVar[str] = "Conv2DOptions"
    padding: Padding = Padding.SAME
    stride_h: int = 1
    stride_w: int = 1
    dilation_h: int = 1
    dilation_w: int = 1
    activation: Activation = Activation.NONE
    quantized_bias_type: int = 0          # TensorType code; 0 = the default (int32 bias for int8)


@dataclass(frozen=True)
class DepthwiseConv2DOptions:
    TABLE: ClassVar[str] = "DepthwiseConv2DOptions"
    padding: Padding = Padding.SAME
    stride_h: int = 1
    stride_w: int = 1
    dilation_h: int = 1
    dilation_w: int = 1
    depth_multiplier: int = 1             # informational: TFLite (and tinyml) derive it from the shapes
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class Pool2DOptions:
    TABLE: ClassVar[str] = "Pool2DOptions"
    padding: Padding = Padding.SAME
    stride_h: int = 1
    stride_w: int = 1
    filter_h: int = 1
    filter_w: int = 1
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class FullyConnectedOptions:
    TABLE: ClassVar[str] = "FullyConnectedOptions"
    activation: Activation = Activation.NONE
    weights_format: int = 0               # 0 = DEFAULT; 1 = SHUFFLED4x16INT8 (unsupported)
    keep_num_dims: bool = False
    asymmetric_quantize_inputs: bool = False
    quantized_bias_type: int = 0


@dataclass(frozen=True)
class AddOptions:
    TABLE: ClassVar[str] = "AddOptions"
    activation: Activation = Activation.NONE
    pot_scale_int16: bool = True


@dataclass(frozen=True)
class SubOptions:
    TABLE: ClassVar[str] = "SubOptions"
    activation: Activation = Activation.NONE
    pot_scale_int16: bool = True


@dataclass(frozen=True)
class MulOptions:
    TABLE: ClassVar[str] = "MulOptions"
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class BatchMatMulOptions:
    TABLE: ClassVar[str] = "BatchMatMulOptions"
    adj_x: bool = False
    adj_y: bool = False
    asymmetric_quantize_inputs: bool = False


@dataclass(frozen=True)
class SoftmaxOptions:
    TABLE: ClassVar[str] = "SoftmaxOptions"
    beta: float = 1.0


@dataclass(frozen=True)
class ReducerOptions:
    TABLE: ClassVar[str] = "ReducerOptions"
    keep_dims: bool = False


@dataclass(frozen=True)
class ConcatenationOptions:
    TABLE: ClassVar[str] = "ConcatenationOptions"
    axis: int = 0
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class StridedSliceOptions:
    TABLE: ClassVar[str] = "StridedSliceOptions"
    begin_mask: int = 0
    end_mask: int = 0
    ellipsis_mask: int = 0
    new_axis_mask: int = 0
    shrink_axis_mask: int = 0
    offset: bool = False


@dataclass(frozen=True)
class LeakyReluOptions:
    TABLE: ClassVar[str] = "LeakyReluOptions"
    alpha: float = 0.2


@dataclass(frozen=True)
class GeluOptions:
    TABLE: ClassVar[str] = "GeluOptions"
    approximate: bool = False


@dataclass(frozen=True)
class TransposeConvOptions:
    TABLE: ClassVar[str] = "TransposeConvOptions"
    padding: Padding = Padding.SAME
    stride_h: int = 1
    stride_w: int = 1
    activation: Activation = Activation.NONE
    quantized_bias_type: int = 0


@dataclass(frozen=True)
class ResizeNearestNeighborOptions:
    TABLE: ClassVar[str] = "ResizeNearestNeighborOptions"
    align_corners: bool = False
    half_pixel_centers: bool = False


@dataclass(frozen=True)
class ResizeBilinearOptions:
    TABLE: ClassVar[str] = "ResizeBilinearOptions"
    align_corners: bool = False
    half_pixel_centers: bool = False


@dataclass(frozen=True)
class SplitOptions:
    TABLE: ClassVar[str] = "SplitOptions"
    num_splits: int = 0


@dataclass(frozen=True)
class SplitVOptions:
    TABLE: ClassVar[str] = "SplitVOptions"
    num_splits: int = 0


@dataclass(frozen=True)
class PackOptions:
    TABLE: ClassVar[str] = "PackOptions"
    values_count: int = 0
    axis: int = 0


@dataclass(frozen=True)
class UnpackOptions:
    TABLE: ClassVar[str] = "UnpackOptions"
    num: int = 0
    axis: int = 0


@dataclass(frozen=True)
class DivOptions:
    TABLE: ClassVar[str] = "DivOptions"
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class L2NormOptions:
    TABLE: ClassVar[str] = "L2NormOptions"
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class CumsumOptions:
    TABLE: ClassVar[str] = "CumsumOptions"
    exclusive: bool = False
    reverse: bool = False


@dataclass(frozen=True)
class GatherOptions:
    TABLE: ClassVar[str] = "GatherOptions"
    axis: int = 0
    batch_dims: int = 0


@dataclass(frozen=True)
class DepthToSpaceOptions:
    TABLE: ClassVar[str] = "DepthToSpaceOptions"
    block_size: int = 0


@dataclass(frozen=True)
class SpaceToDepthOptions:
    TABLE: ClassVar[str] = "SpaceToDepthOptions"
    block_size: int = 0


@dataclass(frozen=True)
class MirrorPadOptions:
    TABLE: ClassVar[str] = "MirrorPadOptions"
    mode: int = 0                         # 0 REFLECT, 1 SYMMETRIC


@dataclass(frozen=True)
class ArgMaxOptions:
    TABLE: ClassVar[str] = "ArgMaxOptions"
    output_type: int = 2                  # TensorType: 2 int32, 4 int64


@dataclass(frozen=True)
class ArgMinOptions:
    TABLE: ClassVar[str] = "ArgMinOptions"
    output_type: int = 2


@dataclass(frozen=True)
class SVDFOptions:
    TABLE: ClassVar[str] = "SVDFOptions"
    rank: int = 1
    activation: Activation = Activation.NONE
    asymmetric_quantize_inputs: bool = False


@dataclass(frozen=True)
class UnidirectionalSequenceLSTMOptions:
    TABLE: ClassVar[str] = "UnidirectionalSequenceLSTMOptions"
    activation: Activation = Activation.NONE
    cell_clip: float = 0.0
    proj_clip: float = 0.0
    time_major: bool = False
    asymmetric_quantize_inputs: bool = False
    diagonal_recurrent_tensors: bool = False


@dataclass(frozen=True)
class DetectionPostProcessOptions:
    """TFLite_Detection_PostProcess: its flexbuffer custom options (defaults as TFLite's Init:
    detections_per_class 100, use_regular_nms false)."""
    TABLE: ClassVar[str] = "custom options"
    max_detections: int = 0
    max_classes_per_detection: int = 0
    detections_per_class: int = 100
    use_regular_nms: bool = False
    nms_score_threshold: float = 0.0
    nms_iou_threshold: float = 0.0
    num_classes: int = 0
    y_scale: float = 0.0
    x_scale: float = 0.0
    h_scale: float = 0.0
    w_scale: float = 0.0


DETECTION_POSTPROCESS = "CUSTOM:TFLite_Detection_PostProcess"

OpOptions = Union[NoOptions, Conv2DOptions, DepthwiseConv2DOptions, Pool2DOptions, FullyConnectedOptions,
                  AddOptions, SubOptions, MulOptions, BatchMatMulOptions, SoftmaxOptions, ReducerOptions,
                  ConcatenationOptions, StridedSliceOptions, LeakyReluOptions, GeluOptions,
                  TransposeConvOptions, ResizeNearestNeighborOptions, ResizeBilinearOptions, SplitOptions, SplitVOptions,
                  PackOptions, UnpackOptions, GatherOptions, DepthToSpaceOptions, SpaceToDepthOptions,
                  MirrorPadOptions, ArgMaxOptions, ArgMinOptions, L2NormOptions, DivOptions, CumsumOptions,
                  DetectionPostProcessOptions, SVDFOptions, UnidirectionalSequenceLSTMOptions]

# op kind -> its options class; every other kind carries NoOptions.
OPTIONS_FOR_KIND: dict[str, type] = {
    "CONV_2D": Conv2DOptions,
    "DEPTHWISE_CONV_2D": DepthwiseConv2DOptions,
    "AVERAGE_POOL_2D": Pool2DOptions,
    "MAX_POOL_2D": Pool2DOptions,
    "FULLY_CONNECTED": FullyConnectedOptions,
    "ADD": AddOptions,
    "SUB": SubOptions,
    "MUL": MulOptions,
    "BATCH_MATMUL": BatchMatMulOptions,
    "SOFTMAX": SoftmaxOptions,
    "MEAN": ReducerOptions,
    "SUM": ReducerOptions,
    "REDUCE_MAX": ReducerOptions,
    "REDUCE_MIN": ReducerOptions,
    "REDUCE_PROD": ReducerOptions,
    "CONCATENATION": ConcatenationOptions,
    "STRIDED_SLICE": StridedSliceOptions,
    "LEAKY_RELU": LeakyReluOptions,
    "GELU": GeluOptions,
    "TRANSPOSE_CONV": TransposeConvOptions,
    "RESIZE_NEAREST_NEIGHBOR": ResizeNearestNeighborOptions,
    "RESIZE_BILINEAR": ResizeBilinearOptions,
    "SPLIT": SplitOptions,
    "SPLIT_V": SplitVOptions,
    "PACK": PackOptions,
    "UNPACK": UnpackOptions,
    "GATHER": GatherOptions,
    "DEPTH_TO_SPACE": DepthToSpaceOptions,
    "SPACE_TO_DEPTH": SpaceToDepthOptions,
    "MIRROR_PAD": MirrorPadOptions,
    "ARG_MAX": ArgMaxOptions,
    "ARG_MIN": ArgMinOptions,
    "L2_NORMALIZATION": L2NormOptions,
    "DIV": DivOptions,
    "CUMSUM": CumsumOptions,
    DETECTION_POSTPROCESS: DetectionPostProcessOptions,
    "SVDF": SVDFOptions,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": UnidirectionalSequenceLSTMOptions,
}


def default_options(kind: str) -> OpOptions:
    """The options of an op of `kind` that has no options table."""
    return OPTIONS_FOR_KIND.get(kind, NoOptions)()


def fused_activation(options: OpOptions) -> Activation:
    """The fused activation of options that have one, else NONE (for lowerings shared by several kinds)."""
    return getattr(options, "activation", Activation.NONE)
