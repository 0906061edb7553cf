"""Overlap facts of the streaming kernels (tinyml.steps.Overlap), from op geometry.

The lowerings of CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, MAX_POOL_2D and
FULLY_CONNECTED attach these to their Step; the planner reads only the Step.
Why the formulas hold (the kernels' traversal order) is documented on
`tinyml.steps.Overlap`:

- row kernels (firmware/kernels/src/conv.c, depthwise.c, pool.c; NHWC,
  batch 1, output rows top to bottom; output row r reads input rows
  >= r*stride - pad_top):
      down = max_r((r + 1) * out_row - max(0, r*stride - pad_top) * in_row)
- the depthwise kernel also runs bottom to top when its output starts above
  its input; row r then still needs input rows < hi(r) = clamp(r*stride -
  pad_top + (k-1)*dil + 1, 0, in_h):
      up = max_r((out_h - r) * out_row - (in_h - hi(r)) * in_row)
- FULLY_CONNECTED over B rows (fc.c finishes row b before row b+1):
      down = max_b((b + 1) * out_depth - b * in_depth)
- kernels that read, for output row r, input rows >= first_row[r] only
  (resize nearest, transpose conv; source_rows_overlap):
      down = max_r((r + 1) * out_row - first_row[r] * in_row)

Negative results are clamped to 0 (the output may start at the input).
"""
from __future__ import annotations

from tinyml.ir import Graph, Op
from tinyml.steps import Overlap

from tinyml.codegen.lowering import activations


def _positions(graph: Graph, op: Op, x: int, y: int) -> tuple[int, int]:
    ins, outs = activations(graph, op)
    return ins.index(x), outs.index(y)


def row_down_bytes(in_row: int, out_h: int, out_row: int, stride: int, pad_top: int) -> int:
    return max(0, max((r + 1) * out_row - max(0, r * stride - pad_top) * in_row for r in range(out_h)))


def row_up_bytes(in_h: int, in_row: int, out_h: int, out_row: int, k: int, dil: int, stride: int,
                 pad_top: int) -> int:
    return max(0, max((out_h - r) * out_row
                      - (in_h - min(in_h, max(0, r * stride - pad_top + (k - 1) * dil + 1))) * in_row
                      for r in range(out_h)))


def row_overlap(graph: Graph, op: Op, k_h: int, stride_h: int, dilation_h: int, pad_top: int,
                bidirectional: bool = False) -> Overlap | None:
    """The Overlap of a batch-1 int8 NHWC row kernel (None when the op is not one).

    `k_h`, `stride_h`, `dilation_h`, `pad_top`: the window's height geometry as
    the lowering computed it (codegen.ops.conv.geometry). `bidirectional`: the
    kernel also runs bottom to top (depthwise), so `up_bytes` is stated too."""
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    if x.is_const or len(x.shape) != 4 or x.shape[0] != 1 or x.dtype != "int8" or y.dtype != "int8":
        return None
    if len(y.shape) != 4 or y.shape[0] != 1:
        return None
    _, in_h, in_w, in_c = x.shape
    _, out_h, out_w, out_c = y.shape
    in_row, out_row = in_w * in_c, out_w * out_c
    down = row_down_bytes(in_row, out_h, out_row, stride_h, pad_top)
    up = row_up_bytes(in_h, in_row, out_h, out_row, k_h, dilation_h, stride_h, pad_top) if bidirectional else None
    i, o = _positions(graph, op, x.index, y.index)
    return Overlap(down_bytes=down, up_bytes=up, input=i, output=o)


def fc_overlap(graph: Graph, op: Op) -> Overlap | None:
    """The Overlap of FULLY_CONNECTED over its input rows (None for a constant or non-int8 input)."""
    x, y, w = graph.t(op.inputs[0]), graph.t(op.outputs[0]), graph.t(op.inputs[1])
    if x.is_const or x.dtype != "int8":
        return None
    out_d, in_d = w.shape[0], w.shape[1]
    rows = x.numel // in_d
    down = max(0, max((b + 1) * out_d - b * in_d for b in range(rows)))
    i, o = _positions(graph, op, x.index, y.index)
    return Overlap(down_bytes=down, input=i, output=o)


def source_rows_overlap(graph: Graph, op: Op, x_index: int, y_index: int,
                        first_row: list[int]) -> Overlap | None:
    """The Overlap of a batch-1 int8 NHWC kernel that writes output rows top to
    bottom, output row r reading only input rows >= first_row[r] (non-decreasing):
        down = max_r((r + 1) * out_row - max(0, first_row[r]) * in_row)
    (RESIZE_NEAREST_NEIGHBOR: first_row = the source rows; TRANSPOSE_CONV: the
    first input row whose scatter reaches the output row), from input tensor
    `x_index` to output tensor `y_index`. None when the op is not such a kernel."""
    x, y = graph.t(x_index), graph.t(y_index)
    if x.is_const or len(x.shape) != 4 or len(y.shape) != 4 or x.shape[0] != 1 or y.shape[0] != 1:
        return None
    if x.dtype != "int8" or y.dtype != "int8" or len(first_row) != y.shape[1]:
        return None
    in_row, out_row = x.shape[2] * x.shape[3], y.shape[2] * y.shape[3]
    down = max(0, max((r + 1) * out_row - max(0, f) * in_row for r, f in enumerate(first_row)))
    i, o = _positions(graph, op, x.index, y.index)
    return Overlap(down_bytes=down, input=i, output=o)


def row_overlap_16(graph: Graph, op: Op, stride_h: int, pad_top: int) -> Overlap | None:
    """The Overlap of a batch-1 16x8 row kernel (firmware/kernels/src/conv_s16.c: CONV_2D,
    DEPTHWISE_CONV_2D and pooling run output rows top to bottom only, so no up_bytes): the
    row formula with rows measured in bytes of int16. None when the op is not one."""
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    if x.is_const or x.dtype != "int16" or y.dtype != "int16" or len(x.shape) != 4 or len(y.shape) != 4:
        return None
    if x.shape[0] != 1 or y.shape[0] != 1:
        return None
    _, _, in_w, in_c = x.shape
    _, out_h, out_w, out_c = y.shape
    down = row_down_bytes(2 * in_w * in_c, out_h, 2 * out_w * out_c, stride_h, pad_top)
    i, o = _positions(graph, op, x.index, y.index)
    return Overlap(down_bytes=down, input=i, output=o)


def fc_overlap_16(graph: Graph, op: Op) -> Overlap | None:
    """The Overlap of tinyml_fc_s16 over its input rows (row b finished before row b+1),
    in bytes of int16; None for a constant or non-int16 input."""
    x, y, w = graph.t(op.inputs[0]), graph.t(op.outputs[0]), graph.t(op.inputs[1])
    if x.is_const or x.dtype != "int16" or y.dtype != "int16":
        return None
    out_d, in_d = w.shape[0], w.shape[1]
    rows = x.numel // in_d
    down = max(0, max(2 * ((b + 1) * out_d - b * in_d) for b in range(rows)))
    i, o = _positions(graph, op, x.index, y.index)
    return Overlap(down_bytes=down, input=i, output=o)
