"""codegen.shape_fold on hand-made flatbuffers: what is folded, what is resolved, and the
one-line error for a shape that depends on data."""
from __future__ import annotations

import numpy as np
import pytest

from opmodels import Spec, single_op_model
from tinyml.codegen.importer import import_bytes
from tinyml.errors import ModelError


def _schema():
    from tinyml.codegen.oracle import import_tf
    import_tf()
    from tensorflow.lite.python import schema_py_generated as s
    return s


def _pack(m) -> bytes:
    import flatbuffers
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_reshape_to_a_shape_given_at_run_time_is_named():
    """RESHAPE whose shape is a model input: the size depends on data, one line names it."""
    s = _schema()
    m = s.ModelT.InitFromPackedBuf(single_op_model(
        "RESHAPE", [Spec((1, 8), scale=0.1), Spec((2,), dtype="int32")], [Spec((1, 8), scale=0.1)]), 0)
    sg = m.subgraphs[0]
    out = sg.outputs[0]
    sg.tensors[out].shape = np.array([1, 1], dtype=np.int32)
    sg.tensors[out].shapeSignature = np.array([-1, -1], dtype=np.int32)
    with pytest.raises(ModelError) as e:
        import_bytes(_pack(m), "dd.tflite")
    line = e.value.line()
    assert "\n" not in line
    assert f"tensor {out}" in line and "data-dependent shape" in line
    assert "operator 0 (RESHAPE)" in line and "(in dd.tflite)" in line


def test_dynamic_batch_reshape_resolves_and_folds():
    """x[-1, 2, 4] -> SHAPE -> STRIDED_SLICE(0:1, shrink) -> PACK(., 8) -> RESHAPE: Flatten's chain.
    At batch 1 the reshape is [1, 8] and the three shape ops leave the graph."""
    s = _schema()
    m = s.ModelT.InitFromPackedBuf(single_op_model(
        "RESHAPE", [Spec((1, 2, 4), scale=0.1), Spec((2,), dtype="int32")], [Spec((1, 8), scale=0.1)]), 0)
    sg = m.subgraphs[0]
    x, shp = sg.operators[0].inputs
    y = sg.outputs[0]
    sg.inputs = np.array([x], dtype=np.int32)
    sg.tensors[x].shapeSignature = np.array([-1, 2, 4], dtype=np.int32)
    sg.tensors[y].shape = np.array([1, 1], dtype=np.int32)          # as the converter writes [-1, -1]
    sg.tensors[y].shapeSignature = np.array([-1, -1], dtype=np.int32)

    def tensor(shape, dtype, data=None):
        t = s.TensorT()
        t.shape = np.array(shape, dtype=np.int32)
        t.type = {"int32": 2}[dtype]
        buf = s.BufferT()
        if data is not None:
            buf.data = np.frombuffer(np.asarray(data, np.int32).tobytes(), np.uint8)
        m.buffers.append(buf)
        t.buffer = len(m.buffers) - 1
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    def opcode(code):
        oc = s.OperatorCodeT()
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)
        oc.version = 1
        m.operatorCodes.append(oc)
        return len(m.operatorCodes) - 1

    shape_out = tensor([3], "int32")
    b0, b1 = tensor([1], "int32", [0]), tensor([1], "int32", [1])
    batch = tensor([], "int32")
    eight = tensor([], "int32", [8])
    ops = []
    o = s.OperatorT()
    o.opcodeIndex, o.inputs, o.outputs = opcode(77), [x], [shape_out]          # SHAPE
    ops.append(o)
    o = s.OperatorT()
    o.opcodeIndex, o.inputs, o.outputs = opcode(45), [shape_out, b0, b1, b1], [batch]  # STRIDED_SLICE
    o.builtinOptionsType = s.BuiltinOptions.StridedSliceOptions
    o.builtinOptions = s.StridedSliceOptionsT()
    o.builtinOptions.shrinkAxisMask = 1
    ops.append(o)
    o = s.OperatorT()
    o.opcodeIndex, o.inputs, o.outputs = opcode(83), [batch, eight], [shp]      # PACK
    o.builtinOptionsType = s.BuiltinOptions.PackOptions
    o.builtinOptions = s.PackOptionsT()
    o.builtinOptions.valuesCount = 2
    ops.append(o)
    sg.operators = ops + sg.operators
    g = import_bytes(_pack(m), "flatten.tflite")
    assert [k for _, k in g.folded] == ["SHAPE", "STRIDED_SLICE", "PACK"]
    assert [(op.index, op.kind) for op in g.ops] == [(0, "RESHAPE")]
    assert g.t(y).shape == (1, 8) and g.t(x).shape == (1, 2, 4)
    assert [int(v) for v in g.t(shp).data] == [1, 8]


@pytest.mark.parametrize("shape,multiples", [
    ((1, 8, 1, 8, 16), [1, 1, 2, 1, 1]),      # UpSampling2D(2): rows
    ((1, 16, 8, 1, 16), [1, 1, 1, 2, 1]),     # UpSampling2D(2): columns
    ((2, 3, 1, 4, 1, 5), [1, 3, 2, 1, 4, 1]),
    ((3, 1, 2), [2, 2, 1]),
    ((1, 1, 1, 1, 1), [1, 1, 1, 1, 1]),
])
def test_tile_axes_keeps_the_bytes(shape, multiples):
    """Merged axes tile to the same bytes as the original (numpy's tile is the reference)."""
    from tinyml.codegen.shape_fold import tile_axes
    x = np.random.default_rng(0).integers(-128, 128, size=shape).astype(np.int8)
    dims, mult = tile_axes(shape, multiples)
    assert int(np.prod(dims)) == x.size
    assert np.tile(x.reshape(dims), mult).tobytes() == np.tile(x, multiples).tobytes()
    assert len(dims) == 1 + sum(1 for m in multiples[1:] if m != 1)


class _Builder:
    """A TFLite flatbuffer from (kind, inputs, outputs, options) rows, through TensorFlow's schema API."""

    TYPES = {"int8": 9, "int32": 2, "int64": 4}

    def __init__(self):
        self.s = _schema()
        self.m = self.s.ModelT()
        self.m.version = 3
        self.m.buffers = [self.s.BufferT()]
        self.m.operatorCodes = []
        self.tensors, self.ops = [], []

    def tensor(self, shape, dtype="int32", data=None, sig=None, scale=None):
        s = self.s
        t = s.TensorT()
        t.shape = np.asarray(shape, dtype=np.int32)
        if sig is not None:
            t.shapeSignature = np.asarray(sig, dtype=np.int32)
        t.type = self.TYPES[dtype]
        t.name = f"t{len(self.tensors)}"
        buf = s.BufferT()
        if data is not None:
            buf.data = np.frombuffer(np.asarray(data, dtype=dtype).tobytes(), np.uint8)
        self.m.buffers.append(buf)
        t.buffer = len(self.m.buffers) - 1
        if scale is not None:
            q = s.QuantizationParametersT()
            q.scale, q.zeroPoint = np.asarray([scale], np.float32), np.asarray([0], np.int64)
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, kind, inputs, outputs, options=None):
        s = self.s
        code = getattr(s.BuiltinOperator, kind)
        oc = s.OperatorCodeT()
        oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
        self.m.operatorCodes.append(oc)
        o = s.OperatorT()
        o.opcodeIndex = len(self.m.operatorCodes) - 1
        o.inputs, o.outputs = np.asarray(inputs, np.int32), np.asarray(outputs, np.int32)
        if options:
            name, fields = options
            opt = getattr(s, name + "T")()
            for k, v in fields.items():
                setattr(opt, k, v)
            o.builtinOptionsType, o.builtinOptions = getattr(s.BuiltinOptions, name), opt
        self.ops.append(o)

    def finish(self, inputs, outputs) -> bytes:
        s = self.s
        sg = s.SubGraphT()
        sg.tensors, sg.operators = self.tensors, self.ops
        sg.inputs, sg.outputs = np.asarray(inputs, np.int32), np.asarray(outputs, np.int32)
        self.m.subgraphs = [sg]
        return _pack(self.m)


def _slice(b, shp):
    src = b.tensor([4], data=[1, 6, 4, 99])
    b.op("SLICE", [src, b.tensor([1], data=[0]), b.tensor([1], data=[3])], [shp])


def _unpack(b, shp):
    src = b.tensor([2, 2], data=[[1, 24], [2, 12]])
    first = b.tensor([2])
    b.op("UNPACK", [src], [first, shp], ("UnpackOptions", {"num": 2, "axis": 0}))


def _broadcast_args(b, shp):
    b.op("BROADCAST_ARGS", [b.tensor([2], data=[4, 1]), b.tensor([2], data=[1, 6])], [shp])


def _cast(b, shp):
    b.op("CAST", [b.tensor([2], "int64", data=[3, 8])], [shp])


def _gather_mul(b, shp, x):
    s = b.tensor([4])
    b.op("SHAPE", [x], [s], ("ShapeOptions", {"outType": 2}))
    g = b.tensor([2])
    b.op("GATHER", [s, b.tensor([2], data=[0, 3])], [g], ("GatherOptions", {"axis": 0}))
    b.op("MUL", [g, b.tensor([2], data=[1, 6])], [shp], ("MulOptions", {}))


def _sub_floordiv_concat(b, shp, x):
    del x
    a = b.tensor([1])
    b.op("SUB", [b.tensor([1], data=[50]), b.tensor([1], data=[2])], [a], ("SubOptions", {}))
    c = b.tensor([1])
    b.op("FLOOR_DIV", [a, b.tensor([1], data=[4])], [c])
    b.op("CONCATENATION", [c, b.tensor([1], data=[2])], [shp], ("ConcatenationOptions", {"axis": 0}))


@pytest.mark.parametrize("chain,want", [
    (_slice, (1, 6, 4)), (_unpack, (2, 12)), (_broadcast_args, (4, 6)), (_cast, (3, 8)),
    (_gather_mul, (1, 24)), (_sub_floordiv_concat, (12, 2)),
])
def test_folded_shape_arithmetic_matches_tflite(chain, want):
    """A RESHAPE of a batch -1 input to a shape computed by `chain`: the importer's static shape
    equals the shape TFLite's interpreter gives the output on the original file at batch 1."""
    b = _Builder()
    x = b.tensor([1, 2, 3, 4], "int8", sig=[-1, 2, 3, 4], scale=0.5)
    shp = b.tensor([len(want)])
    y = b.tensor([1] * len(want), "int8", sig=[-1] * len(want), scale=0.5)
    if chain in (_gather_mul, _sub_floordiv_concat):
        chain(b, shp, x)
    else:
        chain(b, shp)
    b.op("RESHAPE", [x, shp], [y])
    data = b.finish([x], [y])

    from tinyml.codegen.oracle import import_tf, quiet_stderr
    tf = import_tf()
    with quiet_stderr():
        it = tf.lite.Interpreter(model_content=data,
                                 experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        xin = np.arange(24, dtype=np.int8).reshape(1, 2, 3, 4)
        it.set_tensor(it.get_input_details()[0]["index"], xin)
        it.invoke()
        ref = it.get_tensor(it.get_output_details()[0]["index"])
    assert ref.shape == want            # the case is what it says (TFLite agrees)

    g = import_bytes(data, "chain.tflite")
    assert g.t(y).shape == tuple(ref.shape)
    assert [op.kind for op in g.ops] == ["RESHAPE"]
    assert [int(v) for v in g.t(shp).data] == list(ref.shape)
