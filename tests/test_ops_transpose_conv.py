"""TRANSPOSE_CONV (int8, per-channel and per-tensor weights, with and without bias,
SAME/VALID, strides 1 and 2, fused RELU) against TFLite's reference interpreter,
plus a Keras Conv2DTranspose converted the standard way."""
import itertools

import numpy as np
import pytest

from opgraph import OpCase, i32, multi_op_model
from opmodels import Spec, check_bit_exact


def tconv_case(rng, in_shape, k, out_c, stride, padding, bias, per_channel, act=0, in_zp=-3, out_zp=5,
               out_hw=None):
    n, ih, iw, ic = in_shape
    kh, kw = k
    sh, sw = stride
    if out_hw is None:
        out_hw = ((ih * sh, iw * sw) if padding == "SAME"
                  else ((ih - 1) * sh + kh, (iw - 1) * sw + kw))
    out = (n, out_hw[0], out_hw[1], out_c)
    w = rng.integers(-127, 128, size=(out_c, kh, kw, ic)).astype(np.int8)
    wscale = (rng.uniform(0.002, 0.02, size=out_c).astype(np.float32) if per_channel
              else np.float32(0.01))
    ins = [i32(out), Spec(w.shape, "int8", scale=wscale, zero_point=0, axis=0, data=w),
           Spec(in_shape, "int8", scale=0.04, zero_point=in_zp)]
    if bias:
        bscale = np.float32(0.04) * np.atleast_1d(wscale).astype(np.float32)
        b = rng.integers(-3000, 3000, size=out_c).astype(np.int32)
        ins.append(Spec((out_c,), "int32", scale=bscale if per_channel else float(bscale[0]), zero_point=0,
                        data=b))
    opts = {"padding": 0 if padding == "SAME" else 1, "strideH": sh, "strideW": sw, "fusedActivationFunction": act}
    return OpCase("TRANSPOSE_CONV", ins, [Spec(out, "int8", scale=0.35, zero_point=out_zp)],
                  options=("TransposeConvOptions", opts), version=4)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_transpose_conv_sweep():
    """2 input shapes x 3 kernels x strides (1,1)/(2,2)/(2,1) x SAME/VALID x bias/no bias,
    per-channel or per-tensor alternating = 72 ops, plus fused RELU, batch 2 and odd output sizes."""
    rng = np.random.default_rng(7)
    cases = []
    for t, (shape, k, stride, padding, bias) in enumerate(itertools.product(
            [(1, 3, 4, 3), (1, 5, 5, 2)], [(1, 1), (3, 3), (2, 4)], [(1, 1), (2, 2), (2, 1)],
            ["SAME", "VALID"], [True, False])):
        cases.append(tconv_case(rng, shape, k, 4 if t % 3 else 1, stride, padding, bias, per_channel=t % 2 == 0,
                                in_zp=(-3, 0, 17)[t % 3]))
    cases.append(tconv_case(rng, (1, 4, 4, 5), (3, 3), 6, (2, 2), "SAME", True, True, act=1))      # RELU
    cases.append(tconv_case(rng, (2, 3, 3, 2), (3, 3), 3, (2, 2), "SAME", True, True))              # batch 2
    cases.append(tconv_case(rng, (1, 3, 3, 2), (3, 3), 3, (2, 2), "SAME", True, True, out_hw=(5, 5)))
    cases.append(tconv_case(rng, (1, 3, 3, 2), (2, 2), 3, (2, 2), "VALID", False, True, out_hw=(7, 7)))
    check_bit_exact(multi_op_model(cases), count=2, sanitize=False)   # sanitized in test_ops_data


def _tile_as_version_1(model: bytes) -> bytes:
    """The same model with TILE's opcode version set to 1. The converter writes int8
    TILE as version 3, which TensorFlow 2.21's BUILTIN_REF resolver does not register
    (its BUILTIN resolver does; tile.cc has one kernel for every version and type), so
    the reference interpreter could not run the standard export at all otherwise."""
    import flatbuffers

    from opmodels import _schema
    s = _schema()
    m = s.ModelT.InitFromPackedBuf(model, 0)
    for code in m.operatorCodes:
        if max(code.builtinCode, code.deprecatedBuiltinCode) == s.BuiltinOperator.TILE:
            code.version = 1
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_keras_decoder_export(tmp_path):
    """Conv2DTranspose (SAME stride 2 with bias + ReLU; VALID stride 2 without bias),
    UpSampling2D (5-D RESHAPE -> TILE -> RESHAPE chains) and Resizing(nearest,
    half-pixel centers), converted with the standard int8 recipe."""
    import keras

    from test_fuse_helpers import convert
    from tinyml.codegen.importer import import_tflite
    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    a = keras.layers.Conv2DTranspose(6, 3, strides=2, padding="same", activation="relu")(x)
    b = keras.layers.Conv2D(6, 1)(keras.layers.UpSampling2D(2)(x))
    c = keras.layers.Add()([a, b])
    d = keras.layers.Conv2DTranspose(4, 2, strides=2, padding="valid", use_bias=False)(c)
    e = keras.layers.Resizing(12, 12, interpolation="nearest")(d)
    path = convert(keras.Model(inp, e), (8, 8, 3), str(tmp_path / "decoder.tflite"))
    kinds = [o.kind for o in import_tflite(path).ops]
    assert kinds.count("TRANSPOSE_CONV") == 2 and "TILE" in kinds and "RESIZE_NEAREST_NEIGHBOR" in kinds, kinds
    with open(path, "rb") as f:
        model = _tile_as_version_1(f.read())
    check_bit_exact(model, count=3, sanitize=False)
