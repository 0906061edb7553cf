"""Static shapes for models exported with a dynamic batch, and shape-arithmetic folding.

Keras models exported the standard way keep a batch of None: the file's
shape signatures carry -1, and Flatten, Tensordot, UpSampling2D or an RNN's
initial state compute their shapes at run time (SHAPE -> STRIDED_SLICE ->
PACK -> RESHAPE and the like). `resolve_shapes` does what TFLM does at
allocation: the batch becomes 1, then every tensor's static shape is
propagated op by op, ops whose inputs are all known values (shape arithmetic
on int32, FILL of a constant) are evaluated here and leave the graph as
constants, and RESHAPE / TRANSPOSE_CONV / TILE ... get their now constant shape
inputs. A shape that depends on the model's input data is a `ModelError`
naming the tensor and the operator that makes it.

Tensors whose signature has no -1 keep the file's shape (the converter's).
The value semantics follow the TFLite reference kernels of the same names
(strided_slice.cc's index clamping, gather.cc, pack.cc, fill.cc, ...).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from tinyml.errors import ModelError
from tinyml.ir import Graph, Op

Shape = tuple[int, ...]

# Ops evaluated at compile time when every input value is known.
FOLDABLE = frozenset({
    "SHAPE", "PACK", "UNPACK", "STRIDED_SLICE", "SLICE", "CONCATENATION", "GATHER", "FILL",
    "BROADCAST_ARGS", "BROADCAST_TO", "RESHAPE", "CAST", "ADD", "SUB", "MUL", "FLOOR_DIV", "DIV",
    "FLOOR_MOD", "MAXIMUM", "MINIMUM", "REDUCE_PROD", "SUM", "EXPAND_DIMS", "SQUEEZE", "RANGE",
    "TILE", "TRANSPOSE", "ZEROS_LIKE", "NEG", "REDUCE_MAX", "REDUCE_MIN",
})
# Kinds folded whatever the output type (their output is a pure function of known values,
# copied bit for bit: no arithmetic on quantized data).
_FOLD_ANY_DTYPE = frozenset({"SHAPE", "FILL", "BROADCAST_TO", "ZEROS_LIKE"})
_INT_DTYPES = ("int32", "int64", "bool")

_UNARY = frozenset({
    "QUANTIZE", "DEQUANTIZE", "NEG", "RSQRT", "SQRT", "GELU", "LOGISTIC", "TANH", "RELU", "RELU6",
    "RELU_N1_TO_1", "RELU_0_TO_1", "HARD_SWISH", "LEAKY_RELU", "SOFTMAX", "LOG_SOFTMAX", "ABS", "EXP",
    "LOG", "CAST", "ELU", "SQUARE", "FLOOR", "CEIL", "ROUND", "SIN", "COS", "L2_NORMALIZATION",
    "ZEROS_LIKE", "LOCAL_RESPONSE_NORMALIZATION", "SIGN", "LOGICAL_NOT", "CUMSUM", "REVERSE_V2",
})
_BROADCAST = frozenset({
    "ADD", "SUB", "MUL", "DIV", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM", "POW", "FLOOR_DIV",
    "FLOOR_MOD", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL",
    "LOGICAL_AND", "LOGICAL_OR", "SELECT", "SELECT_V2", "PRELU", "ADD_N",
})
# Output = input 0's batch followed by the file's other output dims (spatial ops whose
# other dims do not depend on the batch).
_BATCH_CARRY = frozenset({
    "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D",
    "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "SPACE_TO_DEPTH", "DEPTH_TO_SPACE",
    "UNIDIRECTIONAL_SEQUENCE_LSTM", "UNIDIRECTIONAL_SEQUENCE_RNN", "BIDIRECTIONAL_SEQUENCE_LSTM",
    "SVDF", "CONV_3D",
})


class _Unknown(Exception):
    """An input shape or value the rule needs is not known."""


def slice_axis(size: int, begin: int, end: int, stride: int, bmask: bool, emask: bool,
               shrink: bool) -> tuple[int, int]:
    """TFLite strided_slice logic for one axis: (start, count) of the elements taken."""
    def clamp(v, lo, hi):
        return hi if v > hi else lo if v < lo else v
    if size == 0:
        return 0, 0
    start = begin
    if bmask:
        start = -(1 << 31) if stride > 0 else (1 << 31) - 1
    if start < 0:
        start += size
    start = clamp(start, 0, size) if stride > 0 else clamp(start, -1, size - 1)
    if shrink:
        stop = start + 1
    else:
        stop = end
        if emask:
            stop = (1 << 31) - 1 if stride > 0 else -(1 << 31)
        if stop < 0:
            stop += size
        stop = clamp(stop, 0, size) if stride > 0 else clamp(stop, -1, size - 1)
    if stride > 0:
        count = max(0, -(-(stop - start) // stride))
    else:
        count = max(0, -(-(start - stop) // -stride))
    return start, count


def _broadcast(shapes: list[Shape]) -> Shape:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise _Unknown("shapes do not broadcast") from None


def _axis(a: int, rank: int) -> int:
    return a + rank if a < 0 else a


class _Folder:
    """One pass over the graph in op order: shapes[i] and values[i] as far as known."""

    def __init__(self, graph: Graph, dynamic: dict[int, Shape]) -> None:
        self.g = graph
        self.dynamic = dynamic
        self.shapes: dict[int, Shape] = {}
        self.values: dict[int, np.ndarray] = {}
        for t in graph.tensors:
            if t.index not in dynamic:
                self.shapes[t.index] = tuple(t.shape)
            if t.is_const:
                self.values[t.index] = t.data
        for i in graph.inputs:
            sig = dynamic.get(i)
            if sig is None:
                continue
            if any(d < 0 for d in sig[1:]):
                t = graph.t(i)
                raise ModelError(f"input tensor {i} '{t.name}' has a dynamic shape {list(sig)} "
                                 "beyond the batch dimension", where=graph.source,
                                 fix="export with fixed input sizes (only the batch may be None)")
            self.shapes[i] = (1,) + tuple(sig[1:])

    # --- known facts -------------------------------------------------------------------
    def shape(self, i: int) -> Shape:
        if i < 0 or i not in self.shapes:
            raise _Unknown(f"shape of tensor {i}")
        return self.shapes[i]

    def value(self, i: int) -> np.ndarray:
        if i < 0 or i not in self.values:
            raise _Unknown(f"value of tensor {i}")
        return self.values[i]

    def ints(self, i: int) -> list[int]:
        return [int(v) for v in np.asarray(self.value(i)).reshape(-1)]

    # --- shape rules ---------------------------------------------------------------------
    def out_shapes(self, op: Op) -> list[Shape]:
        k, ins, g = op.kind, op.inputs, self.g
        file_out = [tuple(g.t(o).shape) for o in op.outputs]
        if k in _UNARY:
            return [self.shape(ins[0])]
        if k in _BROADCAST:
            return [_broadcast([self.shape(i) for i in ins if i >= 0])]
        if k in _BATCH_CARRY:
            x = self.shape(ins[0])
            if tuple(x[1:]) != tuple(g.t(ins[0]).shape[1:]):
                raise _Unknown("non-batch input dims differ from the file")
            return [(x[0],) + f[1:] if f else f for f in file_out]
        if k == "FULLY_CONNECTED":
            x, w = self.shape(ins[0]), self.shape(ins[1])
            units, depth = w[0], w[-1]
            if op.options.keep_num_dims:
                return [tuple(x[:-1]) + (units,)]
            n = int(np.prod(x, dtype=np.int64))
            if depth == 0 or n % depth:
                raise _Unknown("input size is not a multiple of the weights' depth")
            return [(n // depth, units)]
        if k == "BATCH_MATMUL":
            a, b = self.shape(ins[0]), self.shape(ins[1])
            o = op.options
            m = a[-1] if o.adj_x else a[-2]
            n = b[-2] if o.adj_y else b[-1]
            return [_broadcast([a[:-2], b[:-2]]) + (m, n)]
        if k in ("RESHAPE",):
            return [self._reshape(op)]
        if k == "SQUEEZE":
            x = self.shape(ins[0])
            f = file_out[0]
            # the squeezed axes: the input's size-1 axes the file's output rank drops
            if len(x) != len(g.t(ins[0]).shape):
                raise _Unknown("input rank")
            keep = _squeeze_keep(tuple(g.t(ins[0]).shape), f, self.dynamic.get(ins[0]))
            return [tuple(x[a] for a in keep)]
        if k == "EXPAND_DIMS":
            x = self.shape(ins[0])
            a = self.ints(ins[1])[0]
            a = a + len(x) + 1 if a < 0 else a
            return [tuple(x[:a]) + (1,) + tuple(x[a:])]
        if k == "TRANSPOSE":
            x = self.shape(ins[0])
            perm = [_axis(p, len(x)) for p in self.ints(ins[1])]
            return [tuple(x[p] for p in perm)]
        if k in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "REDUCE_ANY"):
            x = self.shape(ins[0])
            axes = {_axis(a, len(x)) for a in self.ints(ins[1])}
            if op.options.keep_dims:
                return [tuple(1 if a in axes else d for a, d in enumerate(x))]
            return [tuple(d for a, d in enumerate(x) if a not in axes)]
        if k in ("ARG_MAX", "ARG_MIN"):
            x = self.shape(ins[0])
            a = _axis(self.ints(ins[1])[0], len(x))
            return [tuple(d for j, d in enumerate(x) if j != a)]
        if k == "CONCATENATION":
            xs = [self.shape(i) for i in ins]
            a = _axis(op.options.axis, len(xs[0]))
            out = list(xs[0])
            out[a] = sum(s[a] for s in xs)
            return [tuple(out)]
        if k == "PACK":
            x = self.shape(ins[0])
            a = _axis(op.options.axis, len(x) + 1)
            return [tuple(x[:a]) + (len(ins),) + tuple(x[a:])]
        if k == "UNPACK":
            x = self.shape(ins[0])
            a = _axis(op.options.axis, len(x))
            return [tuple(d for j, d in enumerate(x) if j != a)] * len(op.outputs)
        if k == "SPLIT":
            x = self.shape(ins[1])
            a = _axis(self.ints(ins[0])[0], len(x))
            n = len(op.outputs)
            if x[a] % n:
                raise _Unknown("split size")
            return [tuple(x[a] // n if j == a else d for j, d in enumerate(x))] * n
        if k == "SPLIT_V":
            x = self.shape(ins[0])
            sizes = self.ints(ins[1])
            a = _axis(self.ints(ins[2])[0], len(x))
            if -1 in sizes:
                sizes[sizes.index(-1)] = x[a] - (sum(sizes) + 1)
            return [tuple(s if j == a else d for j, d in enumerate(x)) for s in sizes]
        if k == "STRIDED_SLICE":
            return [self._strided_slice_shape(op)]
        if k == "SLICE":
            x = self.shape(ins[0])
            begin, size = self.ints(ins[1]), self.ints(ins[2])
            return [tuple(x[a] - begin[a] if size[a] == -1 else size[a] for a in range(len(x)))]
        if k == "GATHER":
            p, idx = self.shape(ins[0]), self.shape(ins[1])
            o = op.options
            a = _axis(o.axis, len(p))
            bd = o.batch_dims + len(idx) if o.batch_dims < 0 else o.batch_dims
            return [tuple(p[:a]) + tuple(idx[bd:]) + tuple(p[a + 1:])]
        if k == "SHAPE":
            return [(len(self.shape(ins[0])),)]
        if k in ("FILL", "BROADCAST_TO"):
            return [tuple(self.ints(ins[1] if k == "BROADCAST_TO" else ins[0]))]
        if k == "BROADCAST_ARGS":
            return [(max(self.shape(ins[0])[0], self.shape(ins[1])[0]),)]
        if k == "TILE":
            x = self.shape(ins[0])
            return [tuple(d * m for d, m in zip(x, self.ints(ins[1])))]
        if k in ("PAD", "PADV2", "MIRROR_PAD"):
            x = self.shape(ins[0])
            p = np.asarray(self.value(ins[1])).reshape(-1, 2)
            return [tuple(d + int(p[j, 0]) + int(p[j, 1]) for j, d in enumerate(x))]
        if k == "TRANSPOSE_CONV":
            return [tuple(self.ints(ins[0]))]
        if k == "RANGE":
            s, lim, d = (float(np.asarray(self.value(i)).reshape(-1)[0]) for i in ins[:3])
            return [(max(0, int(np.ceil((lim - s) / d))),)]
        raise _Unknown(f"no shape rule for {k}")

    def _reshape(self, op: Op) -> Shape:
        x = self.shape(op.inputs[0])
        if len(op.inputs) > 1 and op.inputs[1] >= 0:
            new = self.ints(op.inputs[1])
        else:
            raise _Unknown("RESHAPE without a shape input")
        n = int(np.prod(x, dtype=np.int64))
        if new.count(-1) == 1:
            rest = int(np.prod([d for d in new if d != -1], dtype=np.int64))
            if rest == 0 or n % rest:
                raise _Unknown("reshape sizes")
            new[new.index(-1)] = n // rest
        if int(np.prod(new, dtype=np.int64)) != n:
            raise _Unknown("reshape element count")
        return tuple(new)

    def _strided_slice_shape(self, op: Op) -> Shape:
        x = self.shape(op.inputs[0])
        o = op.options
        if o.ellipsis_mask or o.new_axis_mask or o.offset:
            raise _Unknown("ellipsis/new-axis/offset slices")
        begin, end = self.ints(op.inputs[1]), self.ints(op.inputs[2])
        strides = self.ints(op.inputs[3]) if len(op.inputs) > 3 else [1] * len(begin)
        out = []
        for a in range(len(x)):
            if a < len(begin):
                shrink = bool(o.shrink_axis_mask >> a & 1)
                _, cnt = slice_axis(x[a], begin[a], end[a], strides[a], bool(o.begin_mask >> a & 1),
                                    bool(o.end_mask >> a & 1), shrink)
                if not shrink:
                    out.append(cnt)
            else:
                out.append(x[a])
        return tuple(out)

    # --- value rules ---------------------------------------------------------------------
    def out_values(self, op: Op, shapes: list[Shape]) -> list[np.ndarray]:
        k, ins, g = op.kind, op.inputs, self.g
        dt = [np.dtype(_np_dtype(g.t(o).dtype)) for o in op.outputs]
        if k == "SHAPE":
            return [np.asarray(self.shape(ins[0]), dtype=dt[0])]
        if k == "FILL":
            return [np.full(shapes[0], np.asarray(self.value(ins[1])).reshape(-1)[0], dtype=dt[0])]
        if k == "ZEROS_LIKE":
            return [np.zeros(shapes[0], dtype=dt[0])]
        v = [np.asarray(self.value(i)) if i >= 0 else None for i in ins]
        if k == "BROADCAST_TO":
            return [np.broadcast_to(v[0], shapes[0]).astype(dt[0])]
        if k == "PACK":
            return [np.stack(v, axis=_axis(op.options.axis, v[0].ndim + 1)).astype(dt[0])]
        if k == "UNPACK":
            a = _axis(op.options.axis, v[0].ndim)
            return [np.take(v[0], j, axis=a).astype(dt[j]) for j in range(len(op.outputs))]
        if k == "CONCATENATION":
            return [np.concatenate(v, axis=_axis(op.options.axis, v[0].ndim)).astype(dt[0])]
        if k == "STRIDED_SLICE":
            x = v[0]
            o = op.options
            begin, end = self.ints(ins[1]), self.ints(ins[2])
            strides = self.ints(ins[3]) if len(ins) > 3 else [1] * len(begin)
            idx = []
            for a in range(x.ndim):
                if a < len(begin):
                    shrink = bool(o.shrink_axis_mask >> a & 1)
                    s0, cnt = slice_axis(x.shape[a], begin[a], end[a], strides[a],
                                         bool(o.begin_mask >> a & 1), bool(o.end_mask >> a & 1), shrink)
                    idx.append(np.arange(cnt) * strides[a] + s0)
                else:
                    idx.append(np.arange(x.shape[a]))
            return [x[np.ix_(*idx)].reshape(shapes[0]).astype(dt[0])]
        if k == "SLICE":
            sl = tuple(slice(b, b + s) for b, s in zip(self.ints(ins[1]), shapes[0]))
            return [v[0][sl].astype(dt[0])]
        if k == "GATHER":
            if op.options.batch_dims:
                raise _Unknown("batch_dims")
            return [np.take(v[0], v[1].astype(np.int64), axis=_axis(op.options.axis, v[0].ndim)).astype(dt[0])]
        if k in ("RESHAPE", "EXPAND_DIMS", "SQUEEZE"):
            return [v[0].reshape(shapes[0]).astype(dt[0])]
        if k == "CAST":
            return [v[0].astype(dt[0])]
        if k == "NEG":
            return [(-v[0]).astype(dt[0])]
        if k == "TRANSPOSE":
            return [np.transpose(v[0], [_axis(p, v[0].ndim) for p in self.ints(ins[1])]).astype(dt[0])]
        if k == "TILE":
            return [np.tile(v[0], self.ints(ins[1])).astype(dt[0])]
        if k == "BROADCAST_ARGS":
            return [np.asarray(_broadcast([tuple(self.ints(ins[0])), tuple(self.ints(ins[1]))]),
                               dtype=dt[0])]
        if k == "RANGE":
            return [np.arange(v[0].reshape(-1)[0], v[1].reshape(-1)[0], v[2].reshape(-1)[0]).astype(dt[0])]
        if k in ("REDUCE_PROD", "SUM", "REDUCE_MAX", "REDUCE_MIN"):
            fn = {"REDUCE_PROD": np.prod, "SUM": np.sum, "REDUCE_MAX": np.max, "REDUCE_MIN": np.min}[k]
            axes = tuple(_axis(a, v[0].ndim) for a in self.ints(ins[1]))
            return [np.asarray(fn(v[0], axis=axes, keepdims=op.options.keep_dims)).astype(dt[0])]
        a, b = v[0].astype(np.int64), v[1].astype(np.int64)
        if k == "ADD":
            r = a + b
        elif k == "SUB":
            r = a - b
        elif k == "MUL":
            r = a * b
        elif k in ("FLOOR_DIV",):
            r = np.floor_divide(a, b)
        elif k == "DIV":           # integer DIV truncates toward zero
            r = np.trunc(a / b).astype(np.int64)
        elif k == "FLOOR_MOD":
            r = np.mod(a, b)
        elif k == "MAXIMUM":
            r = np.maximum(a, b)
        elif k == "MINIMUM":
            r = np.minimum(a, b)
        else:
            raise _Unknown(f"no value rule for {k}")
        return [r.astype(dt[0])]


def _np_dtype(name: str):
    return {"bool": np.bool_}.get(name, name)


def _squeeze_keep(file_in: Shape, file_out: Shape, sig: Shape | None) -> list[int]:
    """Axes of the input a SQUEEZE keeps, matched from the file's shapes (greedy, left to right)."""
    keep, j = [], 0
    for a, d in enumerate(file_in):
        if j < len(file_out) and file_out[j] == d and not (d == 1 and len(file_in) - a > len(file_out) - j
                                                          and (sig is None or sig[a] != -1)):
            keep.append(a)
            j += 1
    if j != len(file_out):
        raise _Unknown("squeeze axes")
    return keep


def _foldable(op: Op, graph: Graph, folder: _Folder) -> bool:
    if op.kind not in FOLDABLE:
        return False
    if op.kind != "SHAPE" and not all(i < 0 or i in folder.values for i in op.inputs):
        return False
    if op.kind == "SHAPE" and op.inputs[0] not in folder.shapes:
        return False
    outs = [graph.t(o) for o in op.outputs]
    if op.kind in _FOLD_ANY_DTYPE:
        return True
    return all(t.dtype in _INT_DTYPES and t.quant is None for t in outs)


def _producer_error(graph: Graph, op: Op, tensor: int, why: str) -> ModelError:
    t = graph.t(tensor)
    sig = list(t.shape)
    return ModelError(
        f"tensor {tensor} '{t.name}' has a data-dependent shape: operator {op.index} ({op.kind}) "
        f"makes it and its size cannot be known before running the model ({why}; file shape {sig})",
        where=graph.source,
        fix="export with static shapes (a fixed batch and sizes that do not depend on the input data)")


def resolve_shapes(graph: Graph, dynamic: dict[int, Shape]) -> Graph:
    """Resolve a dynamic batch to 1 and fold shape arithmetic; returns the static graph.

    `dynamic` maps tensor index -> shape signature for the tensors whose signature has a -1.
    Ops folded away leave the graph (the rest are renumbered in order; `FoldResult.folded`
    `Graph.folded` keeps their file indices). A graph without dynamic tensors or shape ops is
    returned as is.
    """
    if not dynamic and not any(op.kind in ("SHAPE", "FILL") for op in graph.ops):
        return graph
    folded: list[tuple[int, str]] = []
    f = _Folder(graph, dynamic)
    keep: list[Op] = []
    for op in graph.ops:
        outs = op.outputs
        try:
            shapes = f.out_shapes(op)
            err = None
        except _Unknown as exc:
            shapes, err = None, str(exc)
        except (IndexError, ValueError, AttributeError, TypeError) as exc:
            shapes, err = None, f"{type(exc).__name__}: {exc}"
        if shapes is None:
            shapes = []
            for o in outs:
                if o in f.shapes:           # static in the file: the converter's shape stands
                    shapes.append(f.shapes[o])
                    continue
                sig = dynamic[o]
                ins_as_file = all(i < 0 or f.shapes.get(i) == tuple(graph.t(i).shape) for i in op.inputs)
                if ins_as_file and all(d >= 0 for d in sig[1:]):
                    shapes.append((1,) + tuple(sig[1:]))   # batch-only dynamic, inputs as exported
                else:
                    raise _producer_error(graph, op, o, err or "unknown")
        for o, s in zip(outs, shapes):
            if o not in f.shapes or o in dynamic:
                f.shapes[o] = tuple(int(d) for d in s)
        if _foldable(op, graph, f):
            try:
                vals = f.out_values(op, [f.shapes[o] for o in outs])
            except _Unknown:
                vals = None
            if vals is not None:
                for o, v in zip(outs, vals):
                    f.values[o] = v
                    f.shapes[o] = tuple(v.shape)
                folded.append((op.index, op.kind))
                continue
        keep.append(op)

    tensors = []
    for t in graph.tensors:
        shape = f.shapes.get(t.index, tuple(t.shape))
        data = t.data
        if data is None and t.index in f.values:
            data = np.asarray(f.values[t.index])
        if shape != tuple(t.shape) or data is not t.data:
            t = replace(t, shape=shape, data=data)
        tensors.append(t)
    # a folded value that is a graph output stays computed (no op writes it): keep it an error
    for o in graph.outputs:
        if tensors[o].is_const and o not in {x for op in keep for x in op.outputs}:
            raise ModelError(f"output tensor {o} '{tensors[o].name}' is a constant after shape folding",
                             where=graph.source, fix="the model computes nothing from its input")
    ops = [replace(op, index=n) for n, op in enumerate(keep)]
    return _squash_tiles(replace(graph, tensors=tensors, ops=ops, folded=folded))


def tile_axes(shape: Shape, multiples: list[int]) -> tuple[Shape, list[int]]:
    """The fewest axes giving the same TILE bytes: axis a+1 merges into axis a when
    multiples[a+1] == 1 (tiling [A, B] by [m, 1] repeats whole rows, as tiling [A*B] by m)."""
    dims, mult = [shape[0]], [multiples[0]]
    for d, m in zip(shape[1:], multiples[1:]):
        if m == 1:
            dims[-1] *= d
        else:
            dims.append(d)
            mult.append(m)
    return tuple(dims), mult


def _squash_tiles(graph: Graph) -> Graph:
    """UpSampling2D's Repeat (EXPAND_DIMS -> 5-D TILE -> RESHAPE) on <= 4 axes.

    The EXPAND_DIMS and TILE outputs get the merged shapes of `tile_axes` (same bytes),
    the TILE a new constant multiples tensor; the RESHAPE after it is unchanged."""
    prod, cons = graph.producers(), graph.consumers()
    tensors = list(graph.tensors)
    ops = list(graph.ops)
    for n, op in enumerate(ops):
        if op.kind != "TILE" or len(op.inputs) < 2:
            continue
        x, mt, y = op.inputs[0], op.inputs[1], op.outputs[0]
        if len(tensors[y].shape) <= 4 or not tensors[mt].is_const or tensors[x].is_const:
            continue
        src = prod.get(x)
        if src is None or ops[src].kind not in ("EXPAND_DIMS", "RESHAPE") or cons.get(x) != [op.index]:
            continue
        if any(ops[c].kind not in ("RESHAPE", "SQUEEZE") for c in cons.get(y, [])) or y in graph.outputs:
            continue
        multiples = [int(v) for v in np.asarray(tensors[mt].data).reshape(-1)]
        dims, mult = tile_axes(tuple(tensors[x].shape), multiples)
        if len(dims) > 4:
            continue
        new_m = len(tensors)
        tensors.append(replace(tensors[mt], index=new_m, name=tensors[mt].name + "/squashed",
                               shape=(len(mult),), data=np.asarray(mult, dtype=tensors[mt].data.dtype)))
        tensors[x] = replace(tensors[x], shape=dims)
        tensors[y] = replace(tensors[y], shape=tuple(d * m for d, m in zip(dims, mult)))
        ops[n] = replace(op, inputs=[x, new_m] + list(op.inputs[2:]))
    return replace(graph, tensors=tensors, ops=ops)
