"""int8 export through TensorFlow Lite's converter, plus graph checks.

The converter gets the batch-1 graph (same weights as training), a
representative dataset drawn from the train split, int8 builtins only, and int8
input and output tensors.
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from tinyml.errors import TinymlError

# Ops the converter leaves around Keras' LayerNormalization: the mean is
# negated in float between a DEQUANTIZE and a QUANTIZE. They are allowed and
# listed by `check_graph`.
LAYERNORM_FLOAT_OPS = ("DEQUANTIZE", "NEG", "QUANTIZE")


@contextlib.contextmanager
def _quiet_stdout():
    """The converter prints its saved-model signature on stdout; keep stdout clean."""
    fd = sys.stdout.fileno() if hasattr(sys.stdout, "fileno") else None
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
    del fd


def representative(x: np.ndarray, count: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x), size=min(count, len(x)), replace=False)

    def gen():
        # pin the input range to [0, 1] so the int8 input is exactly
        # scale 1/255, zero point -128 (device input = uint8 pixel - 128)
        pinned = x[idx[0]:idx[0] + 1].astype(np.float32).copy()
        pinned.reshape(-1)[0] = 0.0
        pinned.reshape(-1)[-1] = 1.0
        yield [pinned]
        for i in idx:
            yield [x[i:i + 1].astype(np.float32)]
    return gen


def to_int8_tflite(model, cfg, calib_x: np.ndarray, count: int = 200) -> bytes:
    """Convert a trained Keras model to a fully int8 .tflite (batch 1)."""
    import tensorflow as tf
    from tinyml.tinyvit.model import export_model
    m1 = export_model(model, cfg)
    conv = tf.lite.TFLiteConverter.from_keras_model(m1)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative(calib_x, count)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    try:
        with _quiet_stdout():
            return conv.convert()
    except Exception as exc:  # converter errors are long; keep the first line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TinymlError(f"int8 conversion failed: {first}", "tinyvit.export",
                          "check the config (activation, shapes) and retry") from None


def reference_interpreter(tflite: bytes | str):
    import tensorflow as tf
    import warnings
    kw = {"model_path": tflite} if isinstance(tflite, str) else {"model_content": tflite}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = tf.lite.Interpreter(
            **kw, experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    return it


def quantize_input(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


def output_details(it) -> list[dict]:
    """The interpreter's outputs in the Keras model's output order.

    The converter names outputs `StatefulPartitionedCall...:k` with k the Keras
    output index, but lists them in its own order (e.g. box, obj, cls for a
    split detector); sort by k when every name carries it."""
    outs = list(it.get_output_details())
    keys = []
    for o in outs:
        tail = str(o["name"]).rsplit(":", 1)
        keys.append(int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else None)
    if len(outs) > 1 and None not in keys and len(set(keys)) == len(keys):
        outs = [o for _, o in sorted(zip(keys, outs), key=lambda t: t[0])]
    return outs


def run_int8(tflite: bytes | str, x: np.ndarray) -> np.ndarray:
    """Run float images through the int8 model (TFLite reference kernels); dequantized output.

    A model with several outputs (a split detector) returns them dequantized,
    each with its own scale, and concatenated on the last axis in Keras order."""
    it = reference_interpreter(tflite)
    inp = it.get_input_details()[0]
    outs = output_details(it)
    s_in, z_in = inp["quantization"]
    res = []
    for i in range(len(x)):
        it.set_tensor(inp["index"], quantize_input(x[i:i + 1], s_in, z_in))
        it.invoke()
        parts = []
        for o in outs:
            s_out, z_out = o["quantization"]
            parts.append((it.get_tensor(o["index"]).astype(np.float32) - z_out) * s_out)
        res.append(parts[0] if len(parts) == 1 else np.concatenate(parts, -1))
    return np.concatenate(res, 0)


@dataclass
class GraphReport:
    ops: dict[str, int]
    max_rank: int
    static: bool
    non_int8_tensors: list[str] = field(default_factory=list)
    float_islands: list[str] = field(default_factory=list)   # allowed LayerNorm exceptions

    @property
    def ok(self) -> bool:
        return self.static and self.max_rank <= 4 and not self.non_int8_tensors


def check_graph(tflite: bytes | str) -> GraphReport:
    """Ops, ranks, static shapes and tensor types of an exported model.

    Activations must be int8 (int32 biases are fine). Float tensors are only
    allowed as the input/output of the LayerNorm DEQUANTIZE->NEG->QUANTIZE
    islands, which are listed in `float_islands`.
    """
    it = reference_interpreter(tflite)
    ops = it._get_ops_details()
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    counts = Counter(o["op_name"] for o in ops)
    max_rank, static = 0, True
    island_tensors: set[int] = set()
    islands = []
    for o in ops:
        if o["op_name"] in LAYERNORM_FLOAT_OPS:
            island_tensors.update(int(i) for i in o["inputs"])
            island_tensors.update(int(i) for i in o["outputs"])
            islands.append(f"{o['index']}:{o['op_name']}")
    activations: set[int] = set(int(d["index"]) for d in it.get_input_details())
    for o in ops:
        activations.update(int(i) for i in o["outputs"])
    bad = []
    for t in tensors.values():
        shape_sig = t.get("shape_signature", t["shape"])
        if any(int(s) < 0 for s in shape_sig):
            static = False
        max_rank = max(max_rank, len(t["shape"]))
        if t["index"] not in activations:
            continue            # constants: int8 weights, int32 biases, shapes, axes
        dt = np.dtype(t["dtype"])
        if dt == np.int8:
            continue
        if t["index"] in island_tensors and dt == np.float32:
            continue
        bad.append(f"{t['index']}:{t['name']}:{dt}")
    return GraphReport(dict(counts), max_rank, static, bad, islands)
