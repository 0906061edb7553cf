"""The CNN reference models: real layers as single-op models, and whole models end to end.

Layer tests rebuild individual CONV_2D / DEPTHWISE_CONV_2D / AVERAGE_POOL_2D
layers of the shared models (their real weights, biases, shapes and
quantization) as one-op .tflite files and compare our C with the TFLite
reference; they need nothing but the conv-group kernels. The whole-model
tests run `codegen.verify.verify` (generated C vs. TFLite, or tflite_micro
for person_detect) and skip while an op of the model has no lowering yet.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from tinyml.codegen.importer import import_tflite
from tinyml.codegen.lower import unsupported_ops
from tinyml.codegen.verify import verify
from opmodels import Spec, check_bit_exact, single_op_model
from tinyml import paths

MODELS = paths.shared_models()
VWW = os.path.join(MODELS, "mlperf-tiny", "vww_96_int8.tflite")
RESNET = os.path.join(MODELS, "mlperf-tiny", "pretrainedResnet_quant.tflite")
KWS = os.path.join(MODELS, "mlperf-tiny", "kws_ref_model.tflite")
PERSON = os.path.join(MODELS, "tflm", "person_detect.tflite")
BMPS = [os.path.join(os.path.dirname(MODELS), "data", "person_detection", f"{n}.bmp")
        for n in ("person", "no_person")]

_ACT = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
_PAD = {"SAME": 0, "VALID": 1}

_graphs: dict[str, object] = {}


def _graph(path):
    if not os.path.exists(path):
        pytest.skip(f"shared model missing: {path}")
    if path not in _graphs:
        _graphs[path] = import_tflite(path)
    return _graphs[path]


def _spec(t, data=False) -> Spec:
    q = t.quant
    scale = None if q is None else [float(s) for s in q.scale] if q.per_channel else float(q.scale[0])
    zp = 0 if q is None else [int(z) for z in q.zero_point] if q.per_channel else int(q.zero_point[0])
    return Spec(tuple(t.shape), t.dtype, scale=scale, zero_point=zp,
                axis=q.axis if q is not None and q.axis is not None else 0,
                data=t.data if data else None)


def layer_model(graph, index: int) -> bytes:
    """One op of a real model as a standalone .tflite (weights and quantization kept)."""
    op = graph.ops[index]
    o = op.options
    common = {"padding": _PAD[o.padding], "strideH": o.stride_h, "strideW": o.stride_w,
              "fusedActivationFunction": _ACT[o.activation]}
    if op.kind == "CONV_2D":
        opts = ("Conv2DOptions", {**common, "dilationHFactor": o.dilation_h, "dilationWFactor": o.dilation_w})
    elif op.kind == "DEPTHWISE_CONV_2D":
        opts = ("DepthwiseConv2DOptions", {**common, "dilationHFactor": o.dilation_h,
                                           "dilationWFactor": o.dilation_w,
                                           "depthMultiplier": o.depth_multiplier})
    else:
        opts = ("Pool2DOptions", {**common, "filterHeight": o.filter_h, "filterWidth": o.filter_w})
    ins = [_spec(graph.t(i), data=graph.t(i).is_const) for i in op.inputs if i >= 0]
    outs = [_spec(graph.t(i)) for i in op.outputs]
    return single_op_model(op.kind, ins, outs, options=opts, version=3 if op.kind != "AVERAGE_POOL_2D" else 2)


# (model, op index, why it is interesting)
LAYERS = [
    (VWW, 0, "3-channel stem, stride 2 SAME, input zp -128, per-channel"),
    (VWW, 1, "depthwise 3x3 stride 1"),
    (VWW, 3, "depthwise 3x3 stride 2"),
    (VWW, 24, "1x1 conv 128->256"),
    (VWW, 27, "global average pool 3x3"),
    (RESNET, 1, "3x3 conv 16->16 SAME"),
    (RESNET, 6, "1x1 conv stride 2 (shortcut)"),
    (RESNET, 8, "3x3 conv stride 2, 32->64"),
    (KWS, 0, "10x4 kernel on a 1-channel spectrogram, input zp 83"),
    (KWS, 9, "25x5 average pool"),
    (PERSON, 0, "depthwise multiplier 8 on 1 channel, RELU6, per-tensor weights"),
    (PERSON, 2, "1x1 conv, per-tensor weights, RELU6"),
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path,index,why", LAYERS,
                         ids=[f"{os.path.basename(p).split('.')[0]}-op{i}" for p, i, _ in LAYERS])
def test_real_layer_bit_exact(path, index, why):
    g = _graph(path)
    check_bit_exact(layer_model(g, index), count=2, seed=index, sanitize=True)


CONV_GROUP = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D")


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("path", [VWW, RESNET, KWS, PERSON], ids=["vww", "resnet8", "kws", "person_detect"])
def test_every_conv_group_layer_bit_exact(path):
    """Each CONV_2D / DEPTHWISE_CONV_2D / AVERAGE_POOL_2D of the model, standalone (intermediate tensors)."""
    g = _graph(path)
    seen = set()
    for op in g.ops:
        if op.kind in CONV_GROUP:
            # Layers that differ only in weights take the same code path: check one of them.
            x, w = g.t(op.inputs[0]), g.t(op.inputs[1]) if len(op.inputs) > 1 else None
            sig = (op.kind, x.shape, x.quant.zp, None if w is None else w.shape, repr(op.options))
            if sig in seen:
                continue
            seen.add(sig)
            try:
                check_bit_exact(layer_model(g, op.index), count=1, seed=op.index, sanitize=False)
            except AssertionError as exc:
                raise AssertionError(f"op {op.index} {op.kind}: {exc}") from None


def _skip_unsupported(path):
    bad = unsupported_ops(_graph(path))
    if bad:
        pytest.skip("model needs ops without a lowering yet: " + ", ".join(sorted({k for _, k in bad})))


def _check(path, count, seed, extra=None, sanitize=False):
    _skip_unsupported(path)
    res = verify(path, count=count, seed=seed, extra_inputs=extra, sanitize=sanitize)
    assert res.inputs_compared == count + len(extra or [])
    assert res.mismatching_bytes == 0, res.first_mismatch
    return res


@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", [VWW, RESNET, KWS], ids=["vww", "resnet8", "kws"])
def test_mlperf_cnn_bit_exact_10_inputs(path):
    res = _check(path, 10, seed=1)
    assert res.oracle == "tflite-reference"


@pytest.mark.timeout(900)
def test_kws_bit_exact_sanitized():
    _check(KWS, 3, seed=5, sanitize=True)


@pytest.mark.timeout(900)
def test_person_detect_bit_exact_with_bmps():
    for b in BMPS:
        if not os.path.exists(b):
            pytest.skip(f"missing test image {b}")
    res = _check(PERSON, 10, seed=2, extra=BMPS)
    assert res.oracle == "tflite-micro"


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("path", [VWW, RESNET, KWS, PERSON], ids=["vww", "resnet8", "kws", "person_detect"])
def test_cnn_bit_exact_100_inputs(path):
    extra = BMPS if path == PERSON else None
    _check(path, 100, seed=100, extra=extra)
