"""Squeeze a trained tinyvit model by truncated SVD of its Dense layers.

A Dense kernel W (in x out) becomes A (in x r, no bias) @ B (r x out) with
W = U S V^T, A = U_r sqrt(S_r), B = sqrt(S_r) V_r^T; the bias stays on B.
The patch-embedding Conv2D is factored the same way on its (p*p*C x D) matrix.
The factored model is a plain ViTConfig model with qkv/proj/mlp/patch ranks
set, so it exports like any other; a short fine-tune recovers accuracy.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import numpy as np

from tinyml.errors import TinymlError
from tinyml.tinyvit.config import ViTConfig


@dataclass
class LowRankReport:
    ranks: dict
    params_before: int
    params_after: int
    accuracy_before: float           # original model
    accuracy_factored: float         # right after SVD, no fine-tune
    accuracy_finetuned: float        # after the fine-tune
    finetune_epochs: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def svd_factor(w: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Best rank-`rank` factors (A, B) of a 2-D matrix, A @ B ~= w."""
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    r = min(rank, len(s))
    root = np.sqrt(s[:r])
    return (u[:, :r] * root).astype(np.float32), (root[:, None] * vt[:r]).astype(np.float32)


def factor_model(model, cfg: ViTConfig, qkv_rank: int = 0, proj_rank: int = 0,
                 mlp_rank: int = 0, patch_rank: int = 0):
    """A new (uncompiled) model with the requested ranks, weights from `model`."""
    from tinyml.tinyvit.model import build_model
    if any((cfg.qkv_rank, cfg.proj_rank, cfg.mlp_rank, cfg.patch_rank)):
        raise TinymlError("the model is already low-rank", cfg.name,
                          "factor a full-rank model (all *_rank = 0)")
    new_cfg = dataclasses.replace(cfg, name=f"{cfg.name}_lr", qkv_rank=qkv_rank,
                                  proj_rank=proj_rank, mlp_rank=mlp_rank, patch_rank=patch_rank,
                                  train=dict(cfg.train))
    new_cfg.validate()
    new = build_model(new_cfg)
    for layer in new.layers:
        if not layer.weights:
            continue
        name = layer.name
        if name.endswith("_lr"):
            continue                            # set together with its partner below
        src = model.get_layer(name)
        lr_name = f"{name}_lr"
        try:
            partner = new.get_layer(lr_name)
        except ValueError:
            partner = None
        if partner is None:
            layer.set_weights(src.get_weights())
            continue
        kernel, bias = src.get_weights()
        rank = partner.weights[0].shape[-1]
        if kernel.ndim == 4:                    # patch embedding conv (p, p, C, D)
            p1, p2, c, d = kernel.shape
            a, b = svd_factor(kernel.reshape(p1 * p2 * c, d), rank)
            partner.set_weights([a.reshape(p1, p2, c, rank)])
        else:
            a, b = svd_factor(kernel, rank)
            partner.set_weights([a])
        layer.set_weights([b, bias])
    return new, new_cfg


def _accuracy(model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, batch_size=256, verbose=0), -1) == y))


def squeeze(model, cfg: ViTConfig, ds, qkv_rank: int = 0, proj_rank: int = 0,
            mlp_rank: int = 0, patch_rank: int = 0, finetune_epochs: int = 3,
            lr: float = 3e-4, quiet: bool = True):
    """Factor, measure, fine-tune, measure. Returns (model, cfg, LowRankReport).
    Classification models only; accuracy is on the test split (float)."""
    from tinyml.tinyvit.model import count_params
    from tinyml.tinyvit.train import fit
    if cfg.head != "classify":
        raise TinymlError("low-rank squeezing reports accuracy; it supports classifiers",
                          cfg.name, "use a classify model")
    acc0 = _accuracy(model, ds.test.x, ds.test.y)
    new, new_cfg = factor_model(model, cfg, qkv_rank, proj_rank, mlp_rank, patch_rank)
    import keras
    new.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    acc1 = _accuracy(new, ds.test.x, ds.test.y)
    if finetune_epochs > 0:
        fit(new, new_cfg, ds, finetune_epochs, lr=lr, patience=finetune_epochs + 1,
            quiet=quiet, progress=False)
    acc2 = _accuracy(new, ds.test.x, ds.test.y)
    rep = LowRankReport(dict(qkv=qkv_rank, proj=proj_rank, mlp=mlp_rank, patch=patch_rank),
                        count_params(model), count_params(new), acc0, acc1, acc2,
                        finetune_epochs)
    if not quiet:
        print(f"low-rank {rep.ranks}: params {rep.params_before} -> {rep.params_after}, "
              f"accuracy {acc0:.4f} -> {acc1:.4f} (SVD) -> {acc2:.4f} (fine-tuned)",
              file=sys.stderr)
    return new, new_cfg, rep
