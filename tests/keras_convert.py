"""Test support: TensorFlow's standard post-training integer recipe, written once.

`TFLiteConverter.from_keras_model`, `optimizations=[DEFAULT]`, a representative
dataset, `TFLITE_BUILTINS_INT8` (or the 16x8 op set) and int8 (int16) input and
output: what a user runs, used by every test that exports its own Keras model.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np


def batches(data: np.ndarray) -> Callable[[], Iterable[list[np.ndarray]]]:
    """A representative dataset yielding each row of `data` as a batch of one."""
    def rep():
        for i in range(len(data)):
            yield [data[i:i + 1]]
    return rep


def standard_int8(model, representative: Callable[[], Iterable], *, int16: bool = False,
                  float_fallback: bool = False, float_io: bool = False, float_out: bool = False,
                  custom_ops: bool = False, per_channel: bool = True) -> bytes:
    """The converted flatbuffer. `int16`: 16x8 (int16 activations, int8 weights), with
    `float_fallback` adding TFLITE_BUILTINS after it (TFLite's documented recipe for ops it
    cannot quantize to 16x8); `float_io` (16x8 only) keeps the converter's float32 input and output,
    `float_out` its float32 output; `custom_ops` allows custom ops (the SSD post-process);
    `per_channel=False` asks for per-tensor weight scales."""
    import tensorflow as tf

    from tinyml.tinyvit.export import _quiet_stdout
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.allow_custom_ops = custom_ops
    if int16:
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8] + (
            [tf.lite.OpsSet.TFLITE_BUILTINS] if float_fallback else [])
        if not float_io:
            conv.inference_input_type = tf.int16
            conv.inference_output_type = tf.int16
    else:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        if not float_out:
            conv.inference_output_type = tf.int8
    if not per_channel:
        conv._experimental_disable_per_channel = True
    with _quiet_stdout():
        return conv.convert()


def write(blob: bytes, path: str) -> str:
    with open(path, "wb") as f:
        f.write(blob)
    return path


def perturb(model, seed: int = 1, sigma: float = 0.3) -> None:
    """Random non-trivial weights added to the initial ones (LayerNorm gamma/beta included)."""
    rng = np.random.default_rng(seed)
    model.set_weights([(w + rng.normal(0.0, sigma, w.shape)).astype(w.dtype) for w in model.get_weights()])
