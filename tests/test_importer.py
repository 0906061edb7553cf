"""Importer: the real reference models, and every kind of bad input."""
import dataclasses
import os
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tinyml.codegen.importer import import_bytes, import_tflite
from tinyml.codegen.lower import check_graph
from tinyml import paths
from tinyml.errors import ModelError, UnsupportedOpError
from tinyml.op_options import (OPTIONS_FOR_KIND, Activation, BatchMatMulOptions, Conv2DOptions, NoOptions,
                               Padding, Pool2DOptions)

from opmodels import Spec, single_op_model

MODELS = paths.shared_models()
AD01 = os.path.join(MODELS, "mlperf-tiny", "ad01_int8.tflite")
PERSON = os.path.join(MODELS, "tflm", "person_detect.tflite")


def test_ad01_structure():
    g = import_tflite(AD01)
    assert g.op_counts() == {"FULLY_CONNECTED": 10}
    assert g.t(g.inputs[0]).shape == (1, 640) and g.t(g.inputs[0]).dtype == "int8"
    assert g.t(g.outputs[0]).shape == (1, 640)
    w = g.t(g.ops[0].inputs[1])
    assert w.is_const and w.data.shape == (128, 640) and w.data.dtype == np.int8


def test_person_detect_quantized_dimension_quirk():
    """person_detect's 1-D biases carry quantized_dimension=3; TFLite itself refuses the file."""
    g = import_tflite(PERSON)
    biases = [g.t(op.inputs[2]) for op in g.ops if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert biases and all(b.quant.axis in (0, None) for b in biases)
    assert any(b.quant.per_channel for b in biases)


def test_single_scale_is_per_tensor_whatever_the_dimension():
    m = single_op_model("FULLY_CONNECTED",
                        [Spec((1, 4), scale=0.1), Spec((3, 4), scale=0.02, axis=3, data=np.ones((3, 4), np.int8)),
                         None], [Spec((1, 3), scale=0.3)], options=("FullyConnectedOptions", {}))
    g = import_bytes(m, "q3.tflite")
    assert g.t(g.ops[0].inputs[1]).quant.axis is None


def test_vit_ops_and_options():
    g = import_tflite(os.path.join(MODELS, "vit", "vit_relu_d64x4.tflite"))
    counts = g.op_counts()
    assert counts["BATCH_MATMUL"] == 8 and counts["SOFTMAX"] == 4
    bmm = [op for op in g.ops if op.kind == "BATCH_MATMUL"]
    assert bmm[0].options.adj_y is True and bmm[0].options == BatchMatMulOptions(adj_x=False, adj_y=True)
    conv = g.ops[0]
    assert isinstance(conv.options, Conv2DOptions)
    assert conv.options.stride_w == 4 and conv.options.padding == Padding.VALID
    assert conv.options.dilation_h == 1 and conv.options.activation is Activation.NONE
    assert all(isinstance(op.options, NoOptions) for op in g.ops if op.kind in ("RESHAPE", "TRANSPOSE"))


def test_every_option_field_typed():
    """Every op of every reference model gets its kind's frozen options class; no dicts."""
    for rel in ("mlperf-tiny/kws_ref_model.tflite", "mlperf-tiny/vww_96_int8.tflite", "tflm/person_detect.tflite",
                "mlperf-tiny/ad01_int8.tflite"):
        g = import_tflite(os.path.join(MODELS, rel))
        for op in g.ops:
            assert type(op.options) is OPTIONS_FOR_KIND.get(op.kind, NoOptions), (rel, op.index, op.kind)
            with pytest.raises(dataclasses.FrozenInstanceError):
                op.options.__setattr__("x", 1)
    pool = [op for op in import_tflite(os.path.join(MODELS, "mlperf-tiny", "kws_ref_model.tflite")).ops
            if op.kind == "AVERAGE_POOL_2D"][0]
    assert isinstance(pool.options, Pool2DOptions) and pool.options.filter_h > 1


def _conv_model(**fields) -> bytes:
    ic, oc = 2, 2
    return single_op_model(
        "CONV_2D", [Spec((1, 4, 4, ic), scale=0.1), Spec((oc, 1, 1, ic), scale=0.02, data=np.ones((oc, 1, 1, ic), np.int8)),
                    Spec((oc,), "int32", scale=0.002, data=np.zeros(oc, np.int32))],
        [Spec((1, 4, 4, oc), scale=0.2)],
        options=("Conv2DOptions", {"padding": 0, "strideH": 1, "strideW": 1, **fields}))


@pytest.mark.parametrize("fields,what", [({"fusedActivationFunction": 9}, "fused activation function code 9"),
                                         ({"padding": 7}, "padding code 7")])
def test_unknown_enum_is_one_clear_error(fields, what, tmp_path):
    path = str(tmp_path / "bad_enum.tflite")
    with open(path, "wb") as f:
        f.write(_conv_model(**fields))
    with pytest.raises(ModelError) as e:
        import_tflite(path)
    line = str(e.value)
    assert line.startswith("error: operator 0 (CONV_2D) has " + what) and "\n" not in line
    assert "bad_enum.tflite" in line and "-- re-export" in line
    # the CLI prints it as the one line, exit 2, no traceback
    import subprocess, sys
    r = subprocess.run([sys.executable, "-m", "tinyml.cli", "inspect", path], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == line and "Traceback" not in r.stderr


def test_known_enums_decode():
    g = import_bytes(_conv_model(fusedActivationFunction=3, padding=1), "ok.tflite")
    o = g.ops[0].options
    assert (o.activation, o.padding) == (Activation.RELU6, Padding.VALID) and f"{o.padding}" == "VALID"


def _err(path):
    with pytest.raises(ModelError) as e:
        import_tflite(path)
    return str(e.value)


def test_missing_file(tmp_path):
    assert "not found" in _err(str(tmp_path / "nope.tflite"))


def test_zero_length(tmp_path):
    p = tmp_path / "empty.tflite"
    p.write_bytes(b"")
    assert "empty" in _err(str(p))


def test_not_a_flatbuffer(tmp_path):
    p = tmp_path / "text.tflite"
    p.write_text("hello, this is not a model at all")
    assert "not a TFLite flatbuffer" in _err(str(p))


def test_random_bytes(tmp_path):
    p = tmp_path / "rand.tflite"
    p.write_bytes(bytes(random.Random(1).randrange(256) for _ in range(4096)))
    assert "not a TFLite flatbuffer" in _err(str(p))


def test_truncated(tmp_path):
    data = open(AD01, "rb").read()
    p = tmp_path / "trunc.tflite"
    p.write_bytes(data[: len(data) // 3])
    msg = _err(str(p))
    assert "corrupt or truncated" in msg or "truncated" in msg


def test_directory(tmp_path):
    assert "directory" in _err(str(tmp_path))


def test_unsupported_op_named_with_index():
    m = single_op_model("SQRT", [Spec((1, 8), "int8", scale=0.1)], [Spec((1, 8), "int8", scale=0.1)])
    g = import_bytes(m, "sqrt.tflite")
    with pytest.raises(UnsupportedOpError) as e:
        check_graph(g)
    assert "operator 0 is SQRT" in str(e.value) and "supported ops:" in str(e.value)


def test_float_model_rejected():
    m = single_op_model("FULLY_CONNECTED",
                        [Spec((1, 4), "float32"), Spec((3, 4), "float32", data=np.ones((3, 4), np.float32)), None],
                        [Spec((1, 3), "float32")], options=("FullyConnectedOptions", {}))
    g = import_bytes(m, "float.tflite")
    with pytest.raises(ModelError) as e:
        check_graph(g)
    assert "not fully int8-quantized" in str(e.value)


def test_five_d_rejected():
    m = single_op_model("RESHAPE", [Spec((1, 2, 3, 4, 5), scale=0.1), None], [Spec((1, 2, 3, 4, 5), scale=0.1)])
    g = import_bytes(m, "5d.tflite")
    with pytest.raises(ModelError) as e:
        check_graph(g)
    assert "5 dimensions" in str(e.value)


def test_dynamic_shape_rejected():
    from tinyml.codegen.oracle import import_tf
    import_tf()
    from tensorflow.lite.python import schema_py_generated as s
    import flatbuffers
    m = s.ModelT.InitFromPackedBuf(single_op_model(
        "RESHAPE", [Spec((1, 8), scale=0.1), None], [Spec((1, 8), scale=0.1)]), 0)
    m.subgraphs[0].tensors[0].shapeSignature = np.array([1, -1], dtype=np.int32)
    b = flatbuffers.Builder(256)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    with pytest.raises(ModelError) as e:
        import_bytes(bytes(b.Output()), "dyn.tflite")
    assert "dynamic shape" in str(e.value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_mutated_models_never_crash(data):
    """Mutated model bytes either import or raise ModelError; nothing else escapes."""
    base = bytearray(open(AD01, "rb").read()[:20000]) if data.draw(st.booleans()) else \
        bytearray(single_op_model("ADD", [Spec((1, 4), scale=0.1), Spec((1, 4), scale=0.1)],
                                  [Spec((1, 4), scale=0.2)]))
    for _ in range(data.draw(st.integers(1, 12))):
        i = data.draw(st.integers(0, len(base) - 1))
        base[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        base = base[: data.draw(st.integers(0, len(base)))]
    try:
        g = import_bytes(bytes(base), "fuzz.tflite")
    except ModelError:
        return
    assert g.ops is not None
