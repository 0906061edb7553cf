"""Test support: the models of issue 13's first table, exported the standard way.

Every builder makes a small Keras model with seeded random weights (no
downloads), converts it the way a user would (`TFLiteConverter.from_keras_model`,
`optimizations=[DEFAULT]`, a representative dataset, `TFLITE_BUILTINS_INT8`,
int8 input and output) and writes `DIR/<name>.tflite`. The Keras models keep
the default batch dimension (None), so the files carry batch -1 and the shape
arithmetic Keras emits for it. Tests of other features import these builders:

    from zoo_models import BUILDERS, export
    path = export("ds_cnn", tmp_path)
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np

from keras_convert import batches, perturb, standard_int8, write


def _keras():
    import keras
    keras.utils.set_random_seed(0)
    return keras


def _convert(model, path: str, samples: int = 32, seed: int = 0, int16: bool = False,
             float_io: bool = False, custom_ops: bool = False, float_out: bool = False,
             float_fallback: bool = False) -> str:
    """The standard int8 recipe (or 16x8 with `int16`; float32 input/output with `float_io`,
    the converter's default types; `float_fallback` adds TFLITE_BUILTINS after the 16x8 op set,
    TFLite's documented recipe for ops it cannot quantize to 16x8, which stay float32 between
    DEQUANTIZE and QUANTIZE); writes `path`, returns it. `custom_ops` adds
    `allow_custom_ops = True` (SSD exports: the post-process is a custom op); `float_out`
    keeps the converter's float32 outputs (the Object Detection API's SSD recipe)."""
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    data = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(samples, *shape)).astype(np.float32)
    return write(standard_int8(model, batches(data), int16=int16, float_fallback=float_fallback,
                               float_io=float_io, float_out=float_out, custom_ops=custom_ops), path)


def _perturb(model, seed: int = 1, sigma: float = 0.2) -> None:
    """Non-trivial weights everywhere (LayerNorm gamma/beta included; no BatchNorm here)."""
    perturb(model, seed, sigma)


def mobilenet_v2():
    """keras.applications.MobileNetV2(alpha=0.35), 96x96x3, random weights, 10 logits.

    No final softmax: with untrained weights the logits' int8 scale is so large that
    TFLite's SoftmaxPrepare aborts the process (PreprocessSoftmaxScaling overflows)."""
    keras = _keras()
    return keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10,
                                          classifier_activation=None)


def vit():
    """The keras.io "image classification with ViT" shape, tiny: Conv2D patches + Reshape,
    a learned position embedding, 2 blocks of LayerNorm + MultiHeadAttention + residual,
    LayerNorm + Dense(gelu) MLP + residual, then LayerNorm, Flatten and a Dense head."""
    keras = _keras()
    from keras import layers

    class AddPosition(layers.Layer):
        def build(self, shape):
            self.pos = self.add_weight(shape=(1, shape[1], shape[2]), initializer="random_normal")

        def call(self, x):
            return x + self.pos

    inp = keras.Input((16, 16, 3))
    x = layers.Conv2D(16, 4, strides=4)(inp)
    x = layers.Reshape((16, 16))(x)
    x = AddPosition()(x)
    for _ in range(2):
        h = layers.LayerNormalization(epsilon=1e-6)(x)
        h = layers.MultiHeadAttention(num_heads=2, key_dim=8)(h, h)
        x = layers.Add()([h, x])
        h = layers.LayerNormalization(epsilon=1e-6)(x)
        h = layers.Dense(32, activation="gelu")(h)
        h = layers.Dense(16)(h)
        x = layers.Add()([h, x])
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(10)(x)
    model = keras.Model(inp, x)
    _perturb(model, sigma=0.1)
    return model


def ds_cnn():
    """A DS-CNN keyword spotter (MLPerf Tiny KWS shape, narrow): 49x10 MFCC input,
    Conv2D 10x4 stride 2, depthwise-separable blocks with BatchNorm + ReLU,
    AveragePooling2D, Flatten, Dense, softmax."""
    keras = _keras()
    from keras import layers
    inp = keras.Input((49, 10, 1))
    x = layers.Conv2D(16, (10, 4), strides=(2, 2), padding="same")(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for _ in range(2):
        x = layers.DepthwiseConv2D(3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.Conv2D(16, 1)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.AveragePooling2D(pool_size=(25, 5))(x)
    x = layers.Flatten()(x)
    x = layers.Dense(12, activation="softmax")(x)
    return keras.Model(inp, x)


def yolo():
    """A YOLO-style detector neck: strided Conv2Ds, UpSampling2D + Concatenate (FPN),
    a Conv2DTranspose, and a 1x1 detection head."""
    keras = _keras()
    from keras import layers
    inp = keras.Input((32, 32, 3))
    c1 = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)    # 16x16
    c2 = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(c1)    # 8x8
    u = layers.UpSampling2D(2)(c2)                                                 # 16x16
    x = layers.Concatenate()([u, c1])
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(x)  # 32x32
    x = layers.Conv2D(3 * 6, 1)(x)
    return keras.Model(inp, x)


def resize_nearest():
    """`keras.layers.Resizing(interpolation="nearest")` in front of a small CNN."""
    keras = _keras()
    from keras import layers
    inp = keras.Input((20, 20, 3))
    x = layers.Resizing(12, 12, interpolation="nearest")(inp)
    x = layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(4)(x)
    return keras.Model(inp, x)


def lstm():
    """LSTM(unroll=True) over 8 steps of 6 features, Dense head."""
    keras = _keras()
    from keras import layers
    inp = keras.Input((8, 6))
    x = layers.LSTM(12, unroll=True)(inp)
    x = layers.Dense(4)(x)
    return keras.Model(inp, x)


def lstm_fused():
    """tf_keras (Keras 2) LSTM(12) over 8 steps of 6 features with a fixed batch of 1
    (`Input(batch_size=1)`), Dense head: the one Keras export that TensorFlow 2.21 converts to
    the fused int8 UNIDIRECTIONAL_SEQUENCE_LSTM (Keras 3 and batch None do not)."""
    import tf_keras
    tf_keras.utils.set_random_seed(0)
    inp = tf_keras.Input((8, 6), batch_size=1)
    x = tf_keras.layers.LSTM(12)(inp)
    x = tf_keras.layers.Dense(4)(x)
    return tf_keras.Model(inp, x)


def gru():
    """GRU(unroll=True) over 8 steps of 6 features, Dense head."""
    keras = _keras()
    from keras import layers
    inp = keras.Input((8, 6))
    x = layers.GRU(12, unroll=True)(inp)
    x = layers.Dense(4)(x)
    return keras.Model(inp, x)


# SSD head of `ssd()`: anchors per cell, classes (plus background), post-process options
SSD_GRID, SSD_ANCHORS, SSD_CLASSES, SSD_MAX_DETECTIONS = 8, 2, 3, 10


def ssd_implements(max_detections: int = SSD_MAX_DETECTIONS, num_classes: int = SSD_CLASSES,
                   max_classes_per_detection: int = 1, use_regular_nms: bool = False,
                   score_threshold: float = 0.3, iou_threshold: float = 0.5,
                   scales: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)) -> str:
    """The `experimental_implements` signature the TF Object Detection API's TFLite SSD export
    (export_tflite_graph_tf2) puts on its post-processing tf.function: the converter replaces
    a function carrying it with the TFLite_Detection_PostProcess custom op and these options."""
    y, x, h, w = scales
    attrs = [("max_detections", "i", max_detections), ("max_classes_per_detection", "i", max_classes_per_detection),
             ("use_regular_nms", "b", str(use_regular_nms).lower()), ("nms_score_threshold", "f", score_threshold),
             ("nms_iou_threshold", "f", iou_threshold), ("y_scale", "f", y), ("x_scale", "f", x),
             ("h_scale", "f", h), ("w_scale", "f", w), ("num_classes", "i", num_classes)]
    return " ".join(['name: "TFLite_Detection_PostProcess"'] +
                    [f'attr {{ key: "{k}" value {{ {t}: {v} }} }}' for k, t, v in attrs])


def ssd_anchors(grid: int = SSD_GRID, per_cell: int = SSD_ANCHORS) -> np.ndarray:
    """Anchors (y, x, h, w) centred on the grid cells, `per_cell` aspect ratios each."""
    rows = []
    for i in range(grid):
        for j in range(grid):
            for a in range(per_cell):
                size = 0.2 * (1.5 ** a)
                rows.append(((i + 0.5) / grid, (j + 0.5) / grid, size, size / (1.0 + 0.5 * a)))
    return np.asarray(rows, dtype=np.float32)


def ssd(regular: bool = False):
    """SSD-style detector: a small conv backbone (32x32x3 -> 8x8x16), box and class heads
    (2 anchors per cell, 3 classes + background, sigmoid scores) and the post-process attached
    the Object Detection API way: a tf.function with `experimental_implements` (whose body only
    returns placeholders of the output shapes), called on the heads and constant anchors."""
    import tensorflow as tf
    keras = _keras()
    from keras import layers
    n, c, d = SSD_GRID * SSD_GRID * SSD_ANCHORS, SSD_CLASSES, SSD_MAX_DETECTIONS
    anchors = ssd_anchors()

    @tf.function(experimental_implements=ssd_implements(use_regular_nms=regular))
    def post_process(box_encodings, class_predictions, anchors):
        return (tf.zeros([1, d, 4]), tf.zeros([1, d]), tf.zeros([1, d]), tf.zeros([1]))

    class PostProcess(layers.Layer):
        def call(self, boxes, scores):
            return post_process(boxes, scores, tf.constant(anchors))

    inp = keras.Input((32, 32, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    boxes = layers.Reshape((n, 4))(layers.Conv2D(SSD_ANCHORS * 4, 3, padding="same")(x))
    scores = layers.Reshape((n, c + 1))(layers.Conv2D(SSD_ANCHORS * (c + 1), 3, padding="same")(x))
    scores = layers.Activation("sigmoid")(scores)
    return keras.Model(inp, PostProcess()(boxes, scores))


def cnn_16x8():
    """A small CNN exported with 16x8 quantization (int16 activations, int8 weights)."""
    keras = _keras()
    from keras import layers
    inp = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(4)(x)
    return keras.Model(inp, x)


def log_softmax():
    """Dense -> log-softmax: LOG_SOFTMAX (int8, output 16/256 and 127)."""
    keras = _keras()
    from keras import layers
    inp = keras.Input((8,))
    x = layers.Dense(6)(inp)
    x = layers.Activation("log_softmax")(x)
    return keras.Model(inp, x)


def sqrt_head():
    """Dense -> ReLU -> sqrt: int8 SQRT, an op tinyml does not support (the error-path example;
    TFLite 2.21 has an int8 SQRT, TFLM none)."""
    keras = _keras()
    from keras import layers, ops
    inp = keras.Input((8,))
    x = layers.Dense(6, activation="relu")(inp)
    x = layers.Lambda(lambda t: ops.sqrt(t))(x)
    return keras.Model(inp, x)


def mobilenet():
    """keras.applications.MobileNet (v1, alpha=0.25), 96x96x3, random weights, 10 logits."""
    keras = _keras()
    return keras.applications.MobileNet(input_shape=(96, 96, 3), alpha=0.25, weights=None, classes=10,
                                        classifier_activation=None)


def mobilenet_v3_small():
    """keras.applications.MobileNetV3Small (minimalistic=False: hard-swish, squeeze-excite),
    alpha=0.75, 64x64x3 (its own Rescaling in front), random weights, 10 logits."""
    keras = _keras()
    return keras.applications.MobileNetV3Small(input_shape=(64, 64, 3), alpha=0.75, minimalistic=False,
                                               weights=None, classes=10, classifier_activation=None)


def cnn_heads_16x8():
    """A small CNN for the 16x8 recipe with the table activations: a sigmoid Conv2D, a tanh
    Dense and a softmax head (LOGISTIC, TANH, SOFTMAX in int16)."""
    keras = _keras()
    from keras import layers
    inp = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
    x = layers.Conv2D(8, 3, activation="sigmoid")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(12, activation="tanh")(x)
    x = layers.Dense(5, activation="softmax")(x)
    return keras.Model(inp, x)


def resnet():
    """A ResNet-style CNN: a stem conv, two residual blocks (Conv-BN-ReLU-Conv-BN + Add + ReLU,
    the second with a strided 1x1 projection shortcut), global average pooling, Dense."""
    keras = _keras()
    from keras import layers
    inp = keras.Input((32, 32, 3))
    x = layers.Conv2D(16, 3, padding="same", use_bias=False)(inp)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for filters, stride in ((16, 1), (32, 2)):
        h = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        h = layers.ReLU()(layers.BatchNormalization()(h))
        h = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(h))
        s = x if stride == 1 else layers.BatchNormalization()(layers.Conv2D(filters, 1, strides=stride)(x))
        x = layers.ReLU()(layers.Add()([h, s]))
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(10)(x)
    return keras.Model(inp, x)


def conv1d():
    """A Conv1D time-series classifier: 64 steps x 3 channels, Conv1D + MaxPooling1D,
    Conv1D, GlobalAveragePooling1D, Dense."""
    keras = _keras()
    from keras import layers
    inp = keras.Input((64, 3))
    x = layers.Conv1D(8, 5, activation="relu")(inp)
    x = layers.MaxPooling1D(2)(x)
    x = layers.Conv1D(16, 3, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dense(4)(x)
    return keras.Model(inp, x)


BUILDERS: dict[str, Callable] = {
    "mobilenet_v2": mobilenet_v2, "vit": vit, "ds_cnn": ds_cnn, "yolo": yolo,
    "resize_nearest": resize_nearest, "lstm": lstm, "lstm_fused": lstm_fused, "gru": gru, "cnn_16x8": cnn_16x8,
    "cnn_heads_16x8": cnn_heads_16x8,
    "log_softmax": log_softmax, "sqrt_head": sqrt_head, "mobilenet": mobilenet, "mobilenet_v3_small": mobilenet_v3_small,
    "resnet": resnet, "conv1d": conv1d,
    # SSD exports: `ssd` fast NMS with float32 outputs (the Object Detection API's recipe),
    # `ssd_regular` regular NMS with the standard int8 outputs (QUANTIZE after the post-process)
    "ssd": ssd, "ssd_regular": lambda: ssd(regular=True),
}


# models whose 16x8 export needs the float fallback: Keras' LayerNormalization negates the mean
# (NEG), which the converter cannot quantize to 16x8 ("Quantization to 16x8-bit not yet supported
# for op: 'NEG'")
FLOAT_FALLBACK_16X8 = {"vit"}


def export(name: str, out_dir: str | os.PathLike, int16: bool = False, float_io: bool = False) -> str:
    """Build model `name`, convert it the standard way, return the .tflite path. With `int16`
    the 16x8 recipe (EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8, int16 input and
    output, or float32 ones with `float_io`; plus TFLITE_BUILTINS for FLOAT_FALLBACK_16X8) writes
    DIR/<name>_16x8[_float].tflite."""
    int16 = int16 or name.endswith("16x8")
    suffix = ("_16x8" if int16 and not name.endswith("16x8") else "") + ("_float" if float_io else "")
    path = os.path.join(os.fspath(out_dir), f"{name}{suffix}.tflite")
    return _convert(BUILDERS[name](), path, int16=int16, float_io=float_io, custom_ops=name.startswith("ssd"),
                    float_out=name == "ssd", float_fallback=int16 and name in FLOAT_FALLBACK_16X8)
