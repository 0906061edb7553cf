"""DEPTH_TO_SPACE, SPACE_TO_DEPTH, REVERSE_V2, BROADCAST_TO: strided views of the input.

Each is one tinyml_strided_copy (the shape group's kernel, as for TRANSPOSE
and SLICE): the generator writes the op's index arithmetic as up to six
output axes with input strides and merges them to at most four. Bytes are
copied unchanged, as TFLite's reference kernels do
(reference_ops::DepthToSpace / SpaceToDepth, reverse.cc, broadcast_to.cc).
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen.lowering import lowering, require
from tinyml.codegen.ops.shape import COPY_DTYPES, _merge_axes, _strides, view_step
from tinyml.steps import Step


def _operands(op, graph):
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.dtype in COPY_DTYPES and x.dtype == y.dtype, op, graph, f"{x.dtype} -> {y.dtype}")
    return x, y


def _merged_view(op, graph, ctx, dims, stride, start, comment) -> Step:
    dims, stride = _merge_axes(list(dims), list(stride))
    require(len(dims) <= 4, op, graph, f"a copy needing {len(dims)} axes")
    return view_step(op, graph, ctx, dims, stride, start, comment)


@lowering("DEPTH_TO_SPACE")
def lower_depth_to_space(op, graph, ctx) -> Step:
    x, y = _operands(op, graph)
    bs = op.options.block_size
    require(len(x.shape) == 4 and bs >= 1 and x.shape[3] % (bs * bs) == 0, op, graph,
            f"block size {bs} for input {list(x.shape)}")
    n, h, w, cin = x.shape
    c = cin // (bs * bs)
    require(tuple(y.shape) == (n, h * bs, w * bs, c), op, graph, f"output shape {list(y.shape)}")
    # output (b, h, i, w, j, c) <- input[b][h][w][(i * bs + j) * c + c']
    dims = [n, h, bs, w, bs, c]
    stride = [h * w * cin, w * cin, bs * c, cin, c, 1]
    return _merged_view(op, graph, ctx, dims, stride, 0, f"block {bs}")


@lowering("SPACE_TO_DEPTH")
def lower_space_to_depth(op, graph, ctx) -> Step:
    x, y = _operands(op, graph)
    bs = op.options.block_size
    require(len(x.shape) == 4 and bs >= 1 and x.shape[1] % bs == 0 and x.shape[2] % bs == 0, op, graph,
            f"block size {bs} for input {list(x.shape)}")
    n, h, w, c = x.shape
    require(tuple(y.shape) == (n, h // bs, w // bs, c * bs * bs), op, graph, f"output shape {list(y.shape)}")
    # output (b, h', w', i, j, c) <- input[b][h' * bs + i][w' * bs + j][c]
    dims = [n, h // bs, w // bs, bs, bs, c]
    stride = [h * w * c, bs * w * c, bs * c, w * c, c, 1]
    return _merged_view(op, graph, ctx, dims, stride, 0, f"block {bs}")


@lowering("REVERSE_V2")
def lower_reverse(op, graph, ctx) -> Step:
    x, y = _operands(op, graph)
    ax = graph.t(op.inputs[1])
    require(ax.is_const, op, graph, "non-constant axes")
    rank = len(x.shape)
    axes = {int(a) + rank if int(a) < 0 else int(a) for a in np.asarray(ax.data).reshape(-1)}
    require(all(0 <= a < rank for a in axes), op, graph, f"axes {sorted(axes)} of a {rank}-D tensor")
    require(tuple(y.shape) == tuple(x.shape), op, graph, "output shape")
    st = _strides(tuple(x.shape))
    stride = [-s if a in axes else s for a, s in enumerate(st)]
    start = sum((x.shape[a] - 1) * st[a] for a in axes)
    return _merged_view(op, graph, ctx, list(x.shape), stride, start, f"axes {sorted(axes)}")


@lowering("BROADCAST_TO")
def lower_broadcast_to(op, graph, ctx) -> Step:
    x, y = _operands(op, graph)
    sh = graph.t(op.inputs[1])
    require(sh.is_const, op, graph, "a non-constant shape")
    want = tuple(int(v) for v in np.asarray(sh.data).reshape(-1))
    require(want == tuple(y.shape), op, graph, f"shape {list(want)} differing from the output {list(y.shape)}")
    rank = len(y.shape)
    require(len(x.shape) <= rank, op, graph, "an input of higher rank than the output")
    xs = (1,) * (rank - len(x.shape)) + tuple(x.shape)
    require(all(a in (1, b) for a, b in zip(xs, y.shape)), op, graph,
            f"broadcast {list(x.shape)} -> {list(y.shape)}")
    st = _strides(xs)
    stride = [0 if a == 1 else s for a, s in zip(xs, st)]
    return _merged_view(op, graph, ctx, list(y.shape), stride, 0, f"{list(x.shape)} -> {list(y.shape)}")
