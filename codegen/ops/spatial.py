"""MIRROR_PAD, SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND: data movement with index arithmetic.

MIRROR_PAD (any copyable type, up to 4-D): per axis, the generator computes
the mirrored source index of every output index (REFLECT excludes the edge,
SYMMETRIC repeats it), as TFLite's mirror_pad.cc does, and passes the tables
as input element offsets (firmware/kernels/src/spatial.c). SPACE_TO_BATCH_ND
pads with the output zero point (TFLite: op_params.output_offset) and
BATCH_TO_SPACE_ND crops, both for 4-D int8 NHWC with a 2-D block (the
reference's layout; 3-D inputs are not supported here). Bytes are moved
unchanged.
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.codegen.lowering import activations, dims4, lowering, require
from tinyml.codegen.ops.shape import COPY_DTYPES, _strides
from tinyml.ir import DTYPE_BYTES
from tinyml.steps import Call, Step, TRef


def mirror_index(o: int, before: int, n: int, symmetric: bool) -> int:
    """Source index of output index o on an axis of n padded by `before` (TFLite MirrorPad)."""
    i = o - before
    if i < 0:
        return -i - 1 if symmetric else -i
    if i >= n:
        return 2 * n - 1 - i if symmetric else 2 * n - 2 - i
    return i


def _const_matrix(op, graph, k: int, what: str) -> np.ndarray:
    t = graph.t(op.inputs[k])
    require(t.is_const and t.dtype in ("int32", "int64"), op, graph, f"non-constant {what}")
    return np.asarray(t.data, dtype=np.int64).reshape(-1, 2)


@lowering("MIRROR_PAD")
def lower_mirror_pad(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.dtype in COPY_DTYPES and x.dtype == y.dtype, op, graph, f"{x.dtype} -> {y.dtype}")
    rank = len(x.shape)
    require(1 <= rank <= 4, op, graph, f"{rank}-D padding")
    pads = _const_matrix(op, graph, 1, "paddings")
    require(pads.shape[0] == rank, op, graph, f"paddings for {pads.shape[0]} axes of a {rank}-D input")
    symmetric = op.options.mode == 1
    limit = 0 if symmetric else 1
    require(bool(np.all(pads >= 0)) and all(int(b) <= d - limit and int(a) <= d - limit
                                           for (b, a), d in zip(pads, x.shape)), op, graph,
            f"paddings {pads.tolist()} beyond the {'SYMMETRIC' if symmetric else 'REFLECT'} limit")
    want = tuple(int(d + b + a) for d, (b, a) in zip(x.shape, pads))
    require(want == tuple(y.shape), op, graph, f"output shape {list(y.shape)} (paddings give {list(want)})")
    st = _strides(tuple(x.shape))
    tables, starts = [], []
    axes = [(1, 0, 1, 1)] * (4 - rank) + [(int(x.shape[k]), int(pads[k][0]), int(y.shape[k]), st[k])
                                          for k in range(rank)]
    for n, before, out, stride in axes:
        starts.append(sum(len(t) for t in tables))
        tables.append([mirror_index(o, before, n, symmetric) * stride for o in range(out)])
    p = ctx.name(f"op{op.index}")
    sym = ctx.const_array(f"{p}_offsets", "int32_t", np.concatenate([np.asarray(t, np.int32) for t in tables]))
    decl = cdecl.struct("tinyml_mirror_pad_params", f"{p}_params", dims=[a[2] for a in axes],
                        offset=[f"{sym} + {s}" for s in starts])
    ins, outs = activations(graph, op)
    call = Call("tinyml_mirror_pad", [f"&{p}_params", DTYPE_BYTES[x.dtype], TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                comment=f"{'SYMMETRIC' if symmetric else 'REFLECT'} {pads.tolist()}")


def _nd_operands(op, graph):
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.dtype == y.dtype == "int8", op, graph, f"{x.dtype} -> {y.dtype}")
    require(len(x.shape) == 4 and len(y.shape) == 4, op, graph, "a non-4-D input")
    blk = graph.t(op.inputs[1])
    require(blk.is_const, op, graph, "a non-constant block shape")
    bh, bw = (int(v) for v in np.asarray(blk.data).reshape(-1))
    require(bh >= 1 and bw >= 1, op, graph, f"block {[bh, bw]}")
    return x, y, bh, bw, _const_matrix(op, graph, 2, "paddings/crops")


@lowering("SPACE_TO_BATCH_ND")
def lower_space_to_batch(op, graph, ctx) -> Step:
    x, y, bh, bw, pads = _nd_operands(op, graph)
    require(pads.shape == (2, 2) and bool(np.all(pads >= 0)), op, graph, f"paddings {pads.tolist()}")
    require(y.quant is not None, op, graph, "an unquantized output")
    n, h, w, c = x.shape
    ph, pw = h + int(pads[0].sum()), w + int(pads[1].sum())
    require(ph % bh == 0 and pw % bw == 0, op, graph, "padded extents not divisible by the block")
    want = (n * bh * bw, ph // bh, pw // bw, c)
    require(tuple(y.shape) == want, op, graph, f"output shape {list(y.shape)} (expected {list(want)})")
    p = ctx.name(f"op{op.index}")
    decls = [cdecl.struct("tinyml_space_to_batch_params", f"{p}_params", block_h=bh, block_w=bw,
                          pad_top=int(pads[0][0]), pad_left=int(pads[1][0]), pad_value=int(y.quant.zp)),
             cdecl.struct("tinyml_dims", f"{p}_in", **dict(zip("nhwc", dims4(x)))),
             cdecl.struct("tinyml_dims", f"{p}_out", **dict(zip("nhwc", dims4(y))))]
    ins, outs = activations(graph, op)
    call = Call("tinyml_space_to_batch_s8", [f"&{p}_params", f"&{p}_in", TRef(x.index), f"&{p}_out", TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                comment=f"block {[bh, bw]} paddings {pads.tolist()}")


@lowering("BATCH_TO_SPACE_ND")
def lower_batch_to_space(op, graph, ctx) -> Step:
    x, y, bh, bw, crops = _nd_operands(op, graph)
    require(crops.shape == (2, 2) and bool(np.all(crops >= 0)), op, graph, f"crops {crops.tolist()}")
    n, h, w, c = x.shape
    require(n % (bh * bw) == 0, op, graph, f"batch {n} not divisible by the block {[bh, bw]}")
    want = (n // (bh * bw), h * bh - int(crops[0].sum()), w * bw - int(crops[1].sum()), c)
    require(tuple(y.shape) == want and want[1] > 0 and want[2] > 0, op, graph,
            f"output shape {list(y.shape)} (expected {list(want)})")
    p = ctx.name(f"op{op.index}")
    decls = [cdecl.struct("tinyml_batch_to_space_params", f"{p}_params", block_h=bh, block_w=bw,
                          crop_top=int(crops[0][0]), crop_left=int(crops[1][0])),
             cdecl.struct("tinyml_dims", f"{p}_in", **dict(zip("nhwc", dims4(x)))),
             cdecl.struct("tinyml_dims", f"{p}_out", **dict(zip("nhwc", dims4(y))))]
    ins, outs = activations(graph, op)
    call = Call("tinyml_batch_to_space_s8", [f"&{p}_params", f"&{p}_in", TRef(x.index), f"&{p}_out", TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                comment=f"block {[bh, bw]} crops {crops.tolist()}")
