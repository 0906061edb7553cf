"""codegen.validate: each semantic rule refuses a model mutated to break it, in one line.

Mutations are made here with TensorFlow's flatbuffer object API (unpack, edit,
repack), on the shared reference models and on test-made single-op models;
each test first checks the unmutated model passes, so only the edit can fail it.
"""
import os
import signal
import subprocess
import sys

import flatbuffers
import numpy as np
import pytest

from tinyml import paths
from tinyml.codegen.importer import import_bytes, import_tflite
from tinyml.errors import ModelError

from opmodels import Spec, _schema, single_op_model

MODELS = paths.shared_models()
AD01 = os.path.join(MODELS, "mlperf-tiny", "ad01_int8.tflite")
KWS = os.path.join(MODELS, "mlperf-tiny", "kws_ref_model.tflite")
RESNET = os.path.join(MODELS, "mlperf-tiny", "pretrainedResnet_quant.tflite")


def edit(data: bytes, fn) -> bytes:
    s = _schema()
    m = s.ModelT.InitFromPackedBuf(data, 0)
    fn(m)
    b = flatbuffers.Builder(1 << 16)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def refused(data: bytes, *words) -> str:
    """`words[0]` may be the mutation (then the repacked original must pass), else `data` is the mutant."""
    if callable(words[0]):
        import_bytes(edit(data, lambda m: None), "unmutated.tflite")
        data, words = edit(data, words[0]), words[1:]
    with pytest.raises(ModelError) as e:
        import_bytes(data, "mutant.tflite")
    line = str(e.value)
    assert "\n" not in line and line.startswith("error: ") and "(rule: " in line and "mutant.tflite" in line
    for w in words:
        assert w in line, line
    return line


def fc_model(w=None, bias=None, in_scale=0.1, w_scale=0.02, out_scale=0.2, act=0):
    w = np.ones((4, 8), np.int8) if w is None else w
    bias = np.zeros(4, np.int32) if bias is None else bias
    return single_op_model("FULLY_CONNECTED", [Spec((1, 8), scale=in_scale), Spec((4, 8), scale=w_scale, data=w),
                                               Spec((4,), "int32", scale=in_scale * w_scale, data=bias)],
                           [Spec((1, 4), scale=out_scale)],
                           options=("FullyConnectedOptions", {"fusedActivationFunction": act}))


def conv_model(**fields):
    return single_op_model(
        "CONV_2D", [Spec((1, 4, 4, 2), scale=0.1), Spec((2, 1, 1, 2), scale=[0.02, 0.03], axis=0,
                                                          data=np.ones((2, 1, 1, 2), np.int8)),
                    Spec((2,), "int32", scale=[0.002, 0.003], data=np.zeros(2, np.int32))],
        [Spec((1, 4, 4, 2), scale=0.2)],
        options=("Conv2DOptions", {"padding": 1, "strideH": 1, "strideW": 1, **fields}))


def ad01() -> bytes:
    return open(AD01, "rb").read()


@pytest.mark.parametrize("code,name", [(5, "string"), (8, "complex64"), (15, "uint32"), (17, "int4"),
                                       (18, "bfloat16"), (99, "code 99")])
def test_unknown_or_unsupported_dtype(code, name):
    def f(m):
        m.subgraphs[0].tensors[3].type = code
    refused(ad01(), f, f"has type {name}", "tensor 3")


@pytest.mark.parametrize("dims,words", [([0, 128], "zero dimension"), ([2 ** 31 - 1, 128], "each dimension <="),
                                        ([1 << 13, 1 << 14], "elements")])
def test_shapes_positive_and_bounded(dims, words):
    def f(m):
        t = m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]]
        t.shape = np.asarray(dims, np.int32)
    refused(ad01(), f, words)


def test_constant_buffer_size_is_shape_times_element_size():
    def f(m):
        t = m.subgraphs[0].tensors[1]                       # the FC weights [4, 8]
        t.shape = np.asarray([4, 9], np.int32)
    refused(fc_model(), f, "holds 32 bytes", "needs 36")


def test_buffer_index_out_of_range_is_an_error_not_an_activation():
    """The issue's kws example: tensor 20's buffer index set to 0xffffffff."""
    def f(m):
        m.subgraphs[0].tensors[20].buffer = 0xFFFFFFFF
    refused(open(KWS, "rb").read(), f, "tensor 20", "buffer index 4294967295", "buffer index is in range")


def test_issue_byte_offsets_are_named_by_the_validator():
    """The issue's exact bytes (found again here, not trusted): kws tensor 20's buffer index at
    31724-31727, resnet's scale -1 at 82300-82303, ad01's op order at 272004."""
    kws = bytearray(open(KWS, "rb").read())
    assert int.from_bytes(kws[31724:31728], "little") < 64     # a real buffer index lives there
    kws[31724:31728] = b"\xff" * 4
    refused(bytes(kws), "tensor 20", "buffer index 4294967295")
    res = bytearray(open(RESNET, "rb").read())
    assert np.frombuffer(bytes(res[82300:82304]), np.float32)[0] > 0
    res[82300:82304] = b"\x00\x00\x80\xbf"
    refused(bytes(res), "scale -1.0", "finite and positive")
    a = bytearray(ad01())
    a[272004] = 0x1C
    refused(bytes(a), "writes later", "execution order")


def test_buffer_outside_the_file():
    def f(m):
        buf = m.buffers[m.subgraphs[0].tensors[1].buffer]
        buf.data, buf.offset, buf.size = None, 1 << 24, 32
    refused(fc_model(), f, "past the end", "inside the file")


@pytest.mark.parametrize("scale,words", [(0.0, "finite and positive"), (float("nan"), "finite and positive"),
                                         (-1.0, "finite and positive"), (float("inf"), "finite and positive"),
                                         (1e30, "[2^-64, 2^16]"), (1e-30, "[2^-64, 2^16]")])
def test_scales_finite_positive_bounded(scale, words):
    def f(m):
        m.subgraphs[0].tensors[0].quantization.scale = np.asarray([scale], np.float32)
    refused(fc_model(), f, "tensor 0 'in0'", words)


def test_zero_point_in_dtype_range():
    def f(m):
        m.subgraphs[0].tensors[0].quantization.zeroPoint = np.asarray([1000], np.int64)
    refused(fc_model(), f, "zero point 1000", "[-128, 127]")


def test_per_channel_length_is_the_dimension():
    def f(m):
        m.subgraphs[0].tensors[1].quantization.scale = np.asarray([0.02, 0.03, 0.04], np.float32)
        m.subgraphs[0].tensors[1].quantization.zeroPoint = np.zeros(3, np.int64)
    refused(conv_model(), f, "3 scales", "dimension's size")


def test_operator_tensor_index_in_range():
    def f(m):
        m.subgraphs[0].operators[0].inputs = np.asarray([999, 1, 2], np.int32)
    refused(fc_model(), f, "operator 0 (FULLY_CONNECTED) names tensor 999")


def test_missing_required_input_is_one_line():
    """Was IndexError in codegen/ops/fully_connected.py."""
    def f(m):
        m.subgraphs[0].operators[0].inputs = np.asarray([0], np.int32)
    refused(fc_model(), f, "operator 0 (FULLY_CONNECTED) has inputs [0]", "required inputs")
    def g(m):
        m.subgraphs[0].operators[0].inputs = np.asarray([0, -1, 2], np.int32)
    refused(fc_model(), g, "required inputs")


def test_weighted_op_shapes_agree():
    """Found by the fuzzer: ad01's FC bias swapped for another constant was a numpy broadcast
    ValueError in plan and generate; an FC output of [255, 128] for a [1, 128] input made the
    generated code read out of bounds (ASan)."""
    a = ad01()
    def bias(m):
        op = m.subgraphs[0].operators[0]
        op.inputs = np.asarray([op.inputs[0], op.inputs[1], 5], np.int32)   # tensor 5: 8 values
    refused(a, bias, "operator 0 (FULLY_CONNECTED) has a bias of shape", "shapes agree")
    def depth(m):
        m.subgraphs[0].tensors[1].shape = np.asarray([4, 4, 2], np.int32)    # same 32 bytes, rank 3
    refused(fc_model(), depth, "filter [4, 4, 2]", "shapes agree")
    def batch(m):
        m.subgraphs[0].tensors[27].shape = np.asarray([255, 128], np.int32)   # FC 6's output, FC 7's input
    refused(a, batch, "operator 6 (FULLY_CONNECTED) has input [1, 128]", "shapes agree")   # fuzz seed 304

    def channels(m):
        m.subgraphs[0].tensors[0].shape = np.asarray([1, 4, 4, 3], np.int32)
    refused(conv_model(), channels, "input [1, 4, 4, 3]", "shapes agree")


def test_int8_operand_without_quantization():
    """Found by the fuzzer: a ViT tensor whose quantization table was zeroed was an AttributeError."""
    def f(m):
        m.subgraphs[0].tensors[0].quantization = None
    refused(fc_model(), f, "tensor 0 'in0' of type int8 without quantization", "carry a scale")


def test_elementwise_shapes_agree():
    add = single_op_model("ADD", [Spec((1, 4), scale=0.1), Spec((1, 4), scale=0.1)], [Spec((1, 4), scale=0.2)])
    def out(m):
        m.subgraphs[0].tensors[2].shape = np.asarray([1, 5], np.int32)
    refused(add, out, "combines [1, 4] and [1, 4] into [1, 5]", "broadcast shape")
    def bad(m):
        m.subgraphs[0].tensors[1].shape = np.asarray([1, 3], np.int32)
    refused(add, bad, "broadcast shape")
    relu = single_op_model("RELU", [Spec((1, 8), scale=0.1)], [Spec((1, 8), scale=0.1)])
    def count(m):
        m.subgraphs[0].tensors[1].shape = np.asarray([2, 8], np.int32)
    refused(relu, count, "maps [1, 8] to [2, 8]", "keeps the element count")


def test_op_order_swapped_is_refused():
    def f(m):
        ops = m.subgraphs[0].operators
        ops[3], ops[4] = ops[4], ops[3]
    refused(ad01(), f, "operator 3", "writes later", "execution order")


def test_tensor_read_but_never_written():
    def f(m):
        m.subgraphs[0].inputs = np.asarray([], np.int32)
    refused(fc_model(), f, "neither a constant, a graph input, nor written")


def test_two_writers_and_writing_a_constant():
    def f(m):
        m.subgraphs[0].operators[0].outputs = np.asarray([1], np.int32)
    refused(fc_model(), f, "a constant or graph input")


@pytest.mark.parametrize("field", ["strideH", "dilationWFactor"])
def test_option_ranges(field):
    def f(m):
        setattr(m.subgraphs[0].operators[0].builtinOptions, field, 0)
    refused(conv_model(), f, "operator 0 (CONV_2D)", "lie in [1,")


def test_unknown_enum_is_one_line():
    def f(m):
        m.subgraphs[0].operators[0].builtinOptions.fusedActivationFunction = 42
    data = edit(fc_model(), f)
    with pytest.raises(ModelError) as e:
        import_bytes(data, "enum.tflite")
    assert "fused activation function code 42" in str(e.value)


@pytest.mark.parametrize("code,name", [(4, "TANH"), (5, "SIGN_BIT")])
def test_fused_activation_without_a_kernel(code, name):
    """Found by the fuzzer: TANH fused into person_detect's conv was a ValueError traceback in plan."""
    def f(m):
        m.subgraphs[0].operators[0].builtinOptions.fusedActivationFunction = code
    refused(conv_model(), f, f"fused activation {name}", "NONE, RELU, RELU_N1_TO_1 or RELU6")


def test_accumulator_overflow_refused():
    """|bias| + 256 * sum|w| must stay below 2^31 - 2^9 (no signed overflow in the C accumulator)."""
    import_bytes(fc_model(w=np.full((4, 8), 127, np.int8)), "ok.tflite")
    bias = np.asarray([0, 0, 2 ** 31 - 1000, 0], np.int32)
    refused(fc_model(w=np.full((4, 8), 127, np.int8), bias=bias), "channel 2", "int32 accumulator")


def test_requantization_overflow_refused():
    """The issue's 1e30-scale overflow in fc.c: a multiplier whose product with the accumulator
    bound leaves int32 is refused (here 0.1 * 100 / 1e-5: multiplier 1e6)."""
    import_bytes(fc_model(w_scale=100.0), "ok.tflite")
    line = refused(fc_model(w_scale=100.0, out_scale=1e-5), "requantization multiplier", "< 2^30")
    assert "FULLY_CONNECTED" in line


def test_activation_scale_ratio_refused():
    m = single_op_model("ADD", [Spec((1, 4), scale=0.1), Spec((1, 4), scale=0.1)], [Spec((1, 4), scale=0.2)])
    def f(mm):
        mm.subgraphs[0].tensors[1].quantization.scale = np.asarray([0.1 * 2 ** 18], np.float32)
    refused(m, f, "operator 0 (ADD)", "exceed its output scale by at most 2^16")


def test_tiny_input_scale_is_accepted():
    """An input scale far below the output's only rounds its multiplier towards 0 (Keras RNN
    exports add a zero state of scale ~1e-8): accepted."""
    from tinyml.codegen.validate import validate_flatbuffer
    m = single_op_model("ADD", [Spec((1, 4), scale=0.1), Spec((1, 4), scale=1e-8)], [Spec((1, 4), scale=0.2)])
    validate_flatbuffer(m, "tiny.tflite")


def test_shared_models_all_pass():
    for rel in ("mlperf-tiny/ad01_int8.tflite", "mlperf-tiny/kws_ref_model.tflite",
                "mlperf-tiny/pretrainedResnet_quant.tflite", "mlperf-tiny/vww_96_int8.tflite",
                "tflm/person_detect.tflite", "vit/vit_relu_d64x4.tflite",
                "mobilenetv2/mobilenetv2_a030_80_int8.tflite"):
        import_tflite(os.path.join(MODELS, rel))


# -- reading files -----------------------------------------------------------------

def _cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def _one_line(r, *words):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.tflite"
    os.mkfifo(fifo)
    _one_line(_cli("inspect", str(fifo), timeout=30), "named pipe (FIFO)")


def test_dev_zero_is_refused():
    _one_line(_cli("plan", "/dev/zero", timeout=30), "character device")


def test_directory_is_refused(tmp_path):
    _one_line(_cli("inspect", str(tmp_path), timeout=30), "is a directory")


def test_huge_file_is_refused_before_reading(tmp_path):
    big = tmp_path / "huge.tflite"
    with open(big, "wb") as f:
        f.truncate((1 << 30) + 1)                 # sparse: no disk used
    _one_line(_cli("inspect", str(big), timeout=30), "1,073,741,825 bytes", "more than the 1,073,741,824")


def test_verify_names_the_validator_problem_before_any_oracle(tmp_path):
    """The issue's kws mutant made verify exit 139 silently; now one line from the validator."""
    def f(m):
        m.subgraphs[0].tensors[20].buffer = 0xFFFFFFFF
    p = tmp_path / "kws_bad.tflite"
    p.write_bytes(edit(open(KWS, "rb").read(), f))
    _one_line(_cli("verify", str(p), "--inputs", "1", timeout=120), "buffer index 4294967295")


# -- the oracle in a child process ------------------------------------------------

@pytest.mark.slow
def test_native_crash_of_the_oracle_is_one_line(tmp_path):
    from tinyml.codegen.oracle import OracleCrash, choose_oracle
    p = tmp_path / "fc.tflite"
    p.write_bytes(fc_model())
    choice = choose_oracle(str(p))
    x = np.zeros((1, 8), np.int8)
    assert choice.oracle.name == "tflite-reference"
    assert choice.oracle.run([x])[0].shape == (1, 4)          # alive and answering
    os.kill(choice.oracle.proc.proc.pid, signal.SIGSEGV)       # what a segfault in TFLite does to it
    with pytest.raises(OracleCrash) as e:
        choice.oracle.run([x])
    line = str(e.value)
    assert "\n" not in line and "TFLite (oracle tflite-reference) was killed by SIGSEGV" in line
    assert "fc.tflite" in line


@pytest.mark.parametrize("shape,what", [((1, 0, 4), "zero dimension"), ((1, 1 << 21), "dimension 2097152"),
                                        ((1, -1, 4), "keeps a dynamic shape"),
                                        ((65, 1024, 1024), "elements")])
def test_shapes_computed_by_shape_folding_meet_the_same_rules(shape, what):
    """codegen.shape_fold can compute shapes the file could not state (a folded RESHAPE or
    FILL): the importer checks them again, one line naming the tensor and the rule."""
    from tinyml.codegen.validate import validate_resolved_shapes
    from tinyml.ir import Graph, Tensor
    ok = Tensor(index=0, name="x", shape=(1, 8), dtype="int8", quant=None)
    bad = Tensor(index=1, name="folded", shape=shape, dtype="int8", quant=None)
    validate_resolved_shapes(Graph(name="g", tensors=[ok], ops=[], inputs=[0], outputs=[0]), "m.tflite")
    with pytest.raises(ModelError) as e:
        validate_resolved_shapes(Graph(name="g", tensors=[ok, bad], ops=[], inputs=[0], outputs=[1]),
                                 "m.tflite")
    line = e.value.line()
    assert "\n" not in line and "tensor 1 'folded'" in line and what in line and "after shape folding" in line
