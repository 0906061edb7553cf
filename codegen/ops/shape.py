"""TRANSPOSE, STRIDED_SLICE, SLICE and CONCATENATION.

TRANSPOSE and (STRIDED_)SLICE are one kernel, tinyml_strided_copy: the
generator turns the permutation or the slice bounds into a 4-D strided view
of the input. CONCATENATION copies blocks, optionally through a 256-entry
requantization table per int8 input.
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl, luts
from tinyml.ir import DTYPE_BYTES
from tinyml.steps import Call, Step, TRef
from tinyml.codegen.lowering import activations, lowering, require
from tinyml.codegen.shape_fold import slice_axis as _slice_axis

COPY_DTYPES = ("int8", "uint8", "int16", "int32", "float32", "bool")


def _strides(shape: tuple[int, ...]) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.insert(0, acc)
        acc *= d
    return out


def _const_ints(op, graph, k: int, what: str) -> list[int]:
    require(len(op.inputs) > k and op.inputs[k] >= 0 and graph.t(op.inputs[k]).is_const,
            op, graph, f"a non-constant {what}")
    return [int(v) for v in np.asarray(graph.t(op.inputs[k]).data).reshape(-1)]


def view_step(op, graph, ctx, dims: list[int], stride: list[int], start: int, comment: str) -> Step:
    """A Step copying the strided view (<= 4 axes, padded in front) of input 0 to output 0."""
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(len(dims) <= 4, op, graph, f"a {len(dims)}-D view")
    dims = [1] * (4 - len(dims)) + list(dims)
    stride = [0] * (4 - len(stride)) + list(stride)
    p = ctx.name(f"op{op.index}_view")
    decl = cdecl.struct("tinyml_view4", p, dims=dims, stride=stride, start=start)
    ins, outs = activations(graph, op)
    call = Call("tinyml_strided_copy", [f"&{p}", DTYPE_BYTES[x.dtype], TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                comment=comment)


def _same_quant(a, b) -> bool:
    if a.quant is None or b.quant is None:
        return a.quant is None and b.quant is None
    return (np.array_equal(a.quant.scale, b.quant.scale)
            and np.array_equal(a.quant.zero_point, b.quant.zero_point))


def _merge_axes(dims: list[int], stride: list[int]) -> tuple[list[int], list[int]]:
    """Drop size-1 axes and merge axes that are contiguous in the input."""
    d2, s2 = [], []
    for d, s in zip(dims, stride):
        if d == 1:
            continue
        if d2 and s2[-1] == s * d:
            d2[-1] *= d
            s2[-1] = s
            continue
        d2.append(d)
        s2.append(s)
    return d2 or [1], s2 or [1]


@lowering("TRANSPOSE")
def lower_transpose(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.dtype in COPY_DTYPES and x.dtype == y.dtype, op, graph, f"{x.dtype} -> {y.dtype}")
    require(_same_quant(x, y), op, graph, "different input and output quantization")
    perm = _const_ints(op, graph, 1, "permutation")
    n = len(x.shape)
    perm = [p + n if p < 0 else p for p in perm]
    require(sorted(perm) == list(range(n)), op, graph, f"permutation {perm}")
    require(tuple(y.shape) == tuple(x.shape[p] for p in perm), op, graph, "output shape")
    st = _strides(tuple(x.shape))
    dims, stride = _merge_axes([x.shape[p] for p in perm], [st[p] for p in perm])
    require(len(dims) <= 4, op, graph, f"a transpose needing {len(dims)} axes")
    return view_step(op, graph, ctx, dims, stride, 0, f"perm {perm}")


@lowering("STRIDED_SLICE")
def lower_strided_slice(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.dtype in COPY_DTYPES and x.dtype == y.dtype, op, graph, f"{x.dtype} -> {y.dtype}")
    require(_same_quant(x, y), op, graph, "different input and output quantization")
    begin = _const_ints(op, graph, 1, "begin")
    end = _const_ints(op, graph, 2, "end")
    strides = _const_ints(op, graph, 3, "strides") if len(op.inputs) > 3 else [1] * len(begin)
    o = op.options
    require(not o.ellipsis_mask and not o.new_axis_mask, op, graph,
            "ellipsis_mask / new_axis_mask")
    require(not o.offset, op, graph, "offset=true")
    require(all(s != 0 for s in strides), op, graph, "a zero stride")
    smask0 = o.shrink_axis_mask
    # TFLite itself returns uninitialized bytes or a malformed shape for these.
    require(all(strides[a] > 0 for a in range(len(strides)) if smask0 >> a & 1), op, graph,
            "a shrunk axis with a negative stride")
    n = len(x.shape)
    k = len(begin)
    require(len(end) == k and len(strides) == k and k <= n, op, graph, "begin/end/strides lengths")
    # Axes beyond the given indices are taken whole (TFLite pads at the back
    # for the 5-D reference path; the masks refer to the given axes).
    bmask, emask, smask = o.begin_mask, o.end_mask, o.shrink_axis_mask
    st = _strides(tuple(x.shape))
    start_el, dims, stride, kept = 0, [], [], []
    for a in range(n):
        if a < k:
            s0, cnt = _slice_axis(x.shape[a], begin[a], end[a], strides[a], bool(bmask >> a & 1),
                                  bool(emask >> a & 1), bool(smask >> a & 1))
            step = strides[a]
            shrink = bool(smask >> a & 1)
        else:
            s0, cnt, step, shrink = 0, x.shape[a], 1, False
        require(cnt > 0 or y.numel == 0, op, graph, "an empty slice")
        start_el += s0 * st[a] if cnt > 0 else 0
        dims.append(cnt)
        stride.append(step * st[a])
        if not shrink:
            kept.append(cnt)
    require(tuple(kept) == tuple(y.shape), op, graph,
            f"slice shape {kept} differing from the output shape {list(y.shape)}")
    dims, stride = _merge_axes(dims, stride)
    require(len(dims) <= 4, op, graph, f"a slice needing {len(dims)} axes")
    return view_step(op, graph, ctx, dims, stride, start_el,
                     f"begin {begin} end {end} strides {strides} masks b{bmask} e{emask} s{smask}")


@lowering("SLICE")
def lower_slice(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.dtype in COPY_DTYPES and x.dtype == y.dtype, op, graph, f"{x.dtype} -> {y.dtype}")
    require(_same_quant(x, y), op, graph, "different input and output quantization")
    begin = _const_ints(op, graph, 1, "begin")
    size = _const_ints(op, graph, 2, "size")
    n = len(x.shape)
    require(len(begin) == n and len(size) == n, op, graph, "begin/size lengths")
    sizes = [x.shape[a] - begin[a] if size[a] == -1 else size[a] for a in range(n)]
    require(all(0 <= begin[a] and begin[a] + sizes[a] <= x.shape[a] for a in range(n)), op, graph,
            "out-of-range slice")
    require(tuple(sizes) == tuple(y.shape), op, graph, "output shape")
    st = _strides(tuple(x.shape))
    dims, stride = _merge_axes(sizes, st)
    return view_step(op, graph, ctx, dims, stride, sum(b * s for b, s in zip(begin, st)),
                     f"begin {begin} size {size}")


@lowering("CONCATENATION")
def lower_concatenation(op, graph, ctx) -> Step:
    y = graph.t(op.outputs[0])
    xs = [graph.t(i) for i in op.inputs]
    require(op.options.activation == "NONE", op, graph,
            "a fused activation")
    require(all(t.dtype == y.dtype for t in xs) and y.dtype in COPY_DTYPES, op, graph,
            "mixed or unsupported dtypes")
    n = len(y.shape)
    axis = op.options.axis
    axis = axis + n if axis < 0 else axis
    require(0 <= axis < n, op, graph, f"axis {axis}")
    require(all(len(t.shape) == n for t in xs), op, graph, "inputs of different ranks")
    outer = int(np.prod(y.shape[:axis], dtype=np.int64))
    inner_dims = int(np.prod(y.shape[axis + 1:], dtype=np.int64))
    out_inner = y.shape[axis] * inner_dims
    require(sum(t.shape[axis] for t in xs) == y.shape[axis], op, graph, "axis extents")
    p = ctx.name(f"op{op.index}_concat")
    decls, calls, offset = [], [], 0
    for k, t in enumerate(xs):
        table = "NULL"
        if y.dtype in ("int8", "uint8") and not _same_quant(t, y):
            require(t.quant is not None and y.quant is not None and not t.quant.per_channel
                    and not y.quant.per_channel, op, graph, "per-channel or missing quantization")
            tab = luts.concat_requant_lut(t.quant.s, t.quant.zp, y.quant.s, y.quant.zp, y.dtype)
            table = ctx.const_array(f"{p}_lut{k}", "uint8_t", tab)
        inner = t.shape[axis] * inner_dims
        decls.append(cdecl.struct("tinyml_concat_part", f"{p}_{k}", inner=inner, offset=offset, table=table))
        calls.append(Call("tinyml_concat_part_copy", [f"&{p}_{k}", DTYPE_BYTES[y.dtype], outer, TRef(t.index),
                                                      out_inner, TRef(y.index)]))
        offset += inner
    ins, outs = activations(graph, op)
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=calls, decls=decls,
                comment=f"axis {axis}, {len(xs)} inputs")
