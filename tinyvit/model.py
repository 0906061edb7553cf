"""Keras 3 builders for the tinyvit family.

Everything here is written so that TensorFlow Lite's int8 converter emits only
static-shape, at most 4-D, int8 builtin ops:

- patch embedding is a Conv2D with kernel = stride = patch (or a low-rank pair:
  Conv2D with r filters and no bias, then Dense(r->D));
- attention uses separate static-shape Dense layers for q, k and v, Reshape to
  (B, N, H, dh), Transpose to (B, H, N, dh), batched matmul, softmax; never
  Keras' MultiHeadAttention (which emits dynamic-shape ops) nor 5-D reshapes;
- LayerNorm is Keras' LayerNormalization, which converts to MEAN,
  SQUARED_DIFFERENCE, RSQRT, MUL and ADD.

`build_model(cfg)` is the batched training graph; `export_model(model, cfg)`
builds the batch-1 graph with identical layers and copies the weights.
"""
from __future__ import annotations

import math

import keras
from keras import layers, ops

from tinyml.tinyvit.config import ViTConfig

PACKAGE = "tinyvit"


@keras.saving.register_keras_serializable(package=PACKAGE)
class PositionEmbedding(layers.Layer):
    """Adds a learned (1, N, D) table to the tokens."""

    def build(self, input_shape):
        self.table = self.add_weight(name="table", shape=(1, input_shape[1], input_shape[2]),
                                     initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, x):
        return x + self.table


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClassToken(layers.Layer):
    """Prepends a learned class token: (B, N, D) -> (B, N+1, D)."""

    def build(self, input_shape):
        self.token = self.add_weight(name="token", shape=(1, 1, input_shape[2]),
                                     initializer="zeros")

    def call(self, x):
        batch = ops.shape(x)[0]
        tok = ops.broadcast_to(self.token, (batch, 1, ops.shape(x)[2]))
        return ops.concatenate([tok, x], axis=1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class TakeToken(layers.Layer):
    """Selects token `index`: (B, N, D) -> (B, D)."""

    def __init__(self, index: int = 0, **kw):
        super().__init__(**kw)
        self.index = index

    def call(self, x):
        return x[:, self.index, :]

    def get_config(self):
        return {**super().get_config(), "index": self.index}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MatMul(layers.Layer):
    """Batched matmul of two 4-D tensors (BATCH_MATMUL in TFLite)."""

    def __init__(self, transpose_b: bool = False, **kw):
        super().__init__(**kw)
        self.transpose_b = transpose_b

    def call(self, inputs):
        a, b = inputs
        if self.transpose_b:
            b = ops.transpose(b, (0, 1, 3, 2))
        return ops.matmul(a, b)

    def get_config(self):
        return {**super().get_config(), "transpose_b": self.transpose_b}


def _act(name: str):
    return {"relu": "relu", "gelu": "gelu", "hard_swish": "hard_swish"}[name]


def dense(x, units: int, rank: int, name: str, activation=None, use_bias: bool = True):
    """Dense(in->units), or Dense(in->rank, no bias) + Dense(rank->units) when rank > 0."""
    if rank and rank > 0:
        x = layers.Dense(rank, use_bias=False, name=f"{name}_lr")(x)
    return layers.Dense(units, activation=activation, use_bias=use_bias, name=name)(x)


def attention(x, cfg: ViTConfig, prefix: str):
    n, d, h, dh = cfg.num_tokens, cfg.embed_dim, cfg.num_heads, cfg.head_dim
    q = dense(x, d, cfg.qkv_rank, f"{prefix}_q")
    k = dense(x, d, cfg.qkv_rank, f"{prefix}_k")
    v = dense(x, d, cfg.qkv_rank, f"{prefix}_v")

    def heads(t, tag):
        t = layers.Reshape((n, h, dh), name=f"{prefix}_{tag}_split")(t)
        return layers.Permute((2, 1, 3), name=f"{prefix}_{tag}_heads")(t)  # (B, H, N, dh)

    q, k, v = heads(q, "q"), heads(k, "k"), heads(v, "v")
    scores = MatMul(transpose_b=True, name=f"{prefix}_qk")([q, k])       # (B, H, N, N)
    scores = layers.Rescaling(1.0 / math.sqrt(dh), name=f"{prefix}_scale")(scores)
    probs = layers.Softmax(axis=-1, name=f"{prefix}_softmax")(scores)
    out = MatMul(name=f"{prefix}_pv")([probs, v])                         # (B, H, N, dh)
    out = layers.Permute((2, 1, 3), name=f"{prefix}_merge")(out)         # (B, N, H, dh)
    out = layers.Reshape((n, d), name=f"{prefix}_concat")(out)
    return dense(out, d, cfg.proj_rank, f"{prefix}_proj")


def block(x, cfg: ViTConfig, i: int):
    p = f"block{i}"
    y = layers.LayerNormalization(epsilon=1e-5, name=f"{p}_ln1")(x)
    x = layers.Add(name=f"{p}_res1")([x, attention(y, cfg, f"{p}_attn")])
    y = layers.LayerNormalization(epsilon=1e-5, name=f"{p}_ln2")(x)
    y = dense(y, cfg.mlp_dim, cfg.mlp_rank, f"{p}_mlp1", activation=_act(cfg.activation))
    y = dense(y, cfg.embed_dim, cfg.mlp_rank, f"{p}_mlp2")
    return layers.Add(name=f"{p}_res2")([x, y])


def build_model(cfg: ViTConfig, batch_size: int | None = None,
                for_export: bool = False) -> keras.Model:
    """The ViT graph. `batch_size=None` for training, 1 for export.

    A split detector (`cfg.det_split`) has three outputs (objectness, box,
    class logits) when `for_export`; the training graph concatenates them into
    the same (B, G, G, 5 + C) layout as the fused head (no weights involved)."""
    cfg.validate()
    inp = keras.Input(shape=cfg.input_shape, batch_size=batch_size, name="image")
    p, g, d = cfg.patch_size, cfg.grid, cfg.embed_dim
    if cfg.patch_rank > 0:
        x = layers.Conv2D(cfg.patch_rank, p, strides=p, use_bias=False, name="patch_embed_lr")(inp)
        x = layers.Dense(d, name="patch_embed")(x)
    else:
        x = layers.Conv2D(d, p, strides=p, name="patch_embed")(inp)
    x = layers.Reshape((g * g, d), name="tokens")(x)
    if cfg.pool == "cls":
        x = ClassToken(name="cls_token")(x)
    x = PositionEmbedding(name="pos_embed")(x)
    for i in range(cfg.depth):
        x = block(x, cfg, i)
    x = layers.LayerNormalization(epsilon=1e-5, name="final_ln")(x)
    if cfg.head == "detect" and cfg.det_split:
        parts = []
        for tag, k in (("obj", 1), ("box", 4), ("cls", cfg.num_classes)):
            y = layers.Dense(k, name=f"det_{tag}")(x)                          # (B, N, k)
            parts.append(layers.Reshape((g, g, k), name=f"det_{tag}_grid")(y))
        if for_export:
            return keras.Model(inp, parts, name=cfg.name)
        out = layers.Concatenate(axis=-1, name="det_grid")(parts)
    elif cfg.head == "detect":
        out = layers.Dense(cfg.det_channels, name="det_head")(x)              # (B, N, 5+C)
        out = layers.Reshape((g, g, cfg.det_channels), name="det_grid")(out)
    else:
        if cfg.pool == "cls":
            x = TakeToken(0, name="take_cls")(x)
        else:
            x = layers.GlobalAveragePooling1D(name="pool")(x)
        out = layers.Dense(cfg.num_classes, name="logits")(x)
    return keras.Model(inp, out, name=cfg.name)


def export_model(model: keras.Model, cfg: ViTConfig) -> keras.Model:
    """A batch-1 copy of `model` (same layer names, same weights)."""
    m1 = build_model(cfg, batch_size=1, for_export=True)
    for layer in m1.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return m1


def count_params(model: keras.Model) -> int:
    return int(sum(int(math.prod(w.shape)) for w in model.weights))


def count_macs(cfg: ViTConfig) -> int:
    """Multiply-accumulates of one inference (matrix products only)."""
    n, d, np_ = cfg.num_tokens, cfg.embed_dim, cfg.num_patches
    k = cfg.patch_size * cfg.patch_size * cfg.channels

    def lin(rows, fin, fout, rank):
        return rows * (fin * rank + rank * fout) if rank else rows * fin * fout

    macs = lin(np_, k, d, cfg.patch_rank)
    per_block = (3 * lin(n, d, d, cfg.qkv_rank) + 2 * n * n * d + lin(n, d, d, cfg.proj_rank)
                 + lin(n, d, cfg.mlp_dim, cfg.mlp_rank) + lin(n, cfg.mlp_dim, d, cfg.mlp_rank))
    macs += cfg.depth * per_block
    macs += np_ * d * cfg.det_channels if cfg.head == "detect" else d * cfg.num_classes
    return int(macs)
