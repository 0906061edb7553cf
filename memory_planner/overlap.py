"""Overlapping an op's output with its own input (DMO-style).

A kernel that walks its output in ascending order and only ever reads input
bytes at or after some moving frontier can write its output *over the front
of its input*, as long as the output starts at least `delta` bytes before the
input. `delta` is computed per op from its geometry:

- CONV_2D / DEPTHWISE_CONV_2D / AVERAGE_POOL_2D / MAX_POOL_2D (NHWC, batch 1;
  our kernels produce output rows top to bottom): output row r is written
  only while input rows >= r*stride - pad_top are still needed, so
  delta = max_r ((r + 1) * out_row_bytes - max(0, r*stride - pad_top) * in_row_bytes).
- FULLY_CONNECTED over B rows (our kernel finishes row b before row b+1, and
  reads input row b while writing output row b):
  delta = max_b ((b + 1) * out_depth - b * in_depth).

The pair is only eligible when the input's bytes die at this step (no later
reader, not a graph output). The placement policies then forbid only
`out.offset > in.offset - delta` instead of any byte overlap.

Upward overlap (`delta_up`): the depthwise kernel (firmware/kernels/src/
depthwise.c) walks its output rows bottom to top whenever its output starts
above its input, so the output may also sit over the *back* of its input,
ending at least `delta_up` bytes after the input ends. Proof, per output row
r written (bottom to top): the input rows still to be read are rows
0 .. hi(r)-1, hi(r) = clamp(r*stride - pad_top + (k-1)*dil + 1, 0, in_h) (the last
row of r's window; windows only move up as r falls). Row r's bytes start at
out.offset + r*out_row = in.end + delta_up - (out_h - r)*out_row, which is at
or after in.offset + hi(r)*in_row for every r iff
    delta_up >= max_r ((out_h - r) * out_row - (in_h - hi(r)) * in_row).
The order of pixels inside a row does not matter: the whole row is clear of
every input row still needed. An op with both allowances may take either
side; a downward chain (1x1 conv: output below input) followed by an upward
depthwise step no longer drifts down the arena at every layer.
"""
from __future__ import annotations

from tinyml.codegen.ops.conv import pad_before

ROW_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D"}
# Kernels that choose their row order from the buffer positions (see delta_up above).
BIDIRECTIONAL_OPS = {"DEPTHWISE_CONV_2D"}


def _row_geometry(graph, op) -> tuple | None:
    """(x, y, in_h, in_row, out_h, out_row, k, dil, stride, pad_top) of a batch-1 int8 NHWC row op."""
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    if x.is_const or len(x.shape) != 4 or x.shape[0] != 1 or x.dtype != "int8" or y.dtype != "int8":
        return None
    if len(y.shape) != 4 or y.shape[0] != 1:
        return None
    _, in_h, in_w, in_c = x.shape
    _, out_h, out_w, out_c = y.shape
    if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        k = graph.t(op.inputs[1]).shape[1]
        dil = int(op.options.get("dilation_hfactor", 1) or 1)
    else:
        k = int(op.options.get("filter_height", 1))
        dil = 1
    stride = int(op.options.get("stride_h", 1) or 1)
    pad = pad_before(op.options.get("padding", "VALID"), in_h, k, stride, dil, out_h)
    return x, y, in_h, in_w * in_c, out_h, out_w * out_c, k, dil, stride, pad


def overlap_delta_up(graph, op) -> tuple[int, int, int] | None:
    """(input tensor, output tensor, delta_up bytes) for kernels that also run bottom to top."""
    if op.kind not in BIDIRECTIONAL_OPS:
        return None
    g = _row_geometry(graph, op)
    if g is None:
        return None
    x, y, in_h, in_row, out_h, out_row, k, dil, stride, pad = g
    delta = max((out_h - r) * out_row - (in_h - min(in_h, max(0, r * stride - pad + (k - 1) * dil + 1))) * in_row
                for r in range(out_h))
    return x.index, y.index, max(delta, 0)


def overlap_delta(graph, op) -> tuple[int, int, int] | None:
    """(input tensor, output tensor, delta bytes) for ops whose kernel allows it, else None."""
    if op.kind in ROW_OPS:
        g = _row_geometry(graph, op)
        if g is None:
            return None
        x, y, _, in_row, out_h, out_row, _, _, stride, pad = g
        delta = max((r + 1) * out_row - max(0, r * stride - pad) * in_row for r in range(out_h))
        return x.index, y.index, max(delta, 0)
    if op.kind == "FULLY_CONNECTED":
        x, y, w = graph.t(op.inputs[0]), graph.t(op.outputs[0]), graph.t(op.inputs[1])
        if x.is_const or x.dtype != "int8":
            return None
        out_d, in_d = w.shape[0], w.shape[1]
        rows = x.numel // in_d
        delta = max((b + 1) * out_d - b * in_d for b in range(rows))
        return x.index, y.index, max(delta, 0)
    return None


def find_overlaps_up(graph, steps) -> list[tuple[int, int, int, int]]:
    """(step position, input tensor, output tensor, delta_up) for every step whose kernel may run upwards."""
    out = []
    for pos, s in enumerate(steps):
        if len(s.ops) != 1 or s.alias_of is not None or s.kind not in BIDIRECTIONAL_OPS:
            continue
        r = overlap_delta_up(graph, graph.ops[s.ops[0]])
        if r is not None:
            out.append((pos, *r))
    return out


def find_overlaps(graph, steps) -> list[tuple[int, int, int, int]]:
    """(step position, input tensor, output tensor, delta) for every eligible step."""
    out = []
    for pos, s in enumerate(steps):
        if len(s.ops) != 1 or s.alias_of is not None or s.kind not in ROW_OPS | {"FULLY_CONNECTED"}:
            continue
        r = overlap_delta(graph, graph.ops[s.ops[0]])
        if r is not None:
            out.append((pos, *r))
    return out
