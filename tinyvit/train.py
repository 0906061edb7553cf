"""Training loop for tinyvit classifiers and detectors.

One entry point, `train(cfg, dataset, ...)`, used by `tinyml train` and by
`tinyml.tinyvit.make_defaults`: shift augmentation, AdamW with cosine decay, early
stopping on validation (best weights kept), then export to .keras and int8
.tflite and evaluation of both on the test split.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from tinyml.errors import TinymlError
from tinyml.tinyvit.config import ViTConfig
from tinyml.tinyvit.data import Dataset, random_affine, random_shift


@dataclass
class TrainResult:
    config: ViTConfig
    metrics: dict
    keras_path: str | None = None
    tflite_path: str | None = None
    history: list[dict] = field(default_factory=list)


def _log(msg: str, quiet: bool = False) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _optimizer(lr: float, steps: int, wd: float):
    import keras
    sched = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, steps), alpha=0.02,
                                                   warmup_target=None)
    return keras.optimizers.AdamW(learning_rate=sched, weight_decay=wd, clipnorm=1.0)


def _cls_loss(num_classes: int, smoothing: float):
    import keras
    if not smoothing:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    cce = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing)

    def loss(y_true, y_pred):
        from keras import ops
        return cce(ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), num_classes),
                   y_pred)
    return loss


def check_compatible(cfg: ViTConfig, ds: Dataset) -> None:
    if tuple(ds.input_shape) != tuple(cfg.input_shape):
        raise TinymlError(f"dataset images are {ds.input_shape} but the model expects "
                          f"{cfg.input_shape}", "--dataset",
                          "set image_size/channels in the config to match the data")
    if ds.task != cfg.head:
        raise TinymlError(f"dataset task {ds.task!r} does not match model head {cfg.head!r}",
                          "--dataset", "use a detect config for detection data and "
                          "a classify config for classification data")
    if len(ds.class_names) > cfg.num_classes:
        raise TinymlError(f"dataset has {len(ds.class_names)} classes but the model has "
                          f"{cfg.num_classes}", "--model", "raise num_classes in the config")


def _StopAt(deadline: float):     # noqa: N802 (a Keras callback class, built when Keras is imported)
    import keras

    class StopAt(keras.callbacks.Callback):
        """Ends training after the batch during which time.time() passed `deadline`."""
        cut = False

        def on_train_batch_end(self, batch, logs=None):
            if time.time() >= deadline:
                self.cut = True
                self.model.stop_training = True
    return StopAt()


def fit(model, cfg: ViTConfig, ds: Dataset, epochs: int, lr: float = 2e-3, wd: float = 0.05,
        batch: int = 64, patience: int = 8, max_shift: int = 2, rotate: float = 0.0,
        label_smoothing: float = 0.0, seed: int = 0,
        quiet: bool = False, progress: bool = True,
        may_continue: Callable[[list[float]], bool] | None = None,
        deadline: float | None = None) -> list[dict]:
    """Train in place; best-on-validation weights are restored at the end.
    `may_continue(epoch_seconds)`, asked before every epoch after the first,
    stops training when it returns False (a time budget). `deadline` (a time.time()
    value) also ends an epoch between two batches (after at least one batch): the
    cut epoch is validated and is the last."""
    import keras
    if cfg.head == "detect":
        from tinyml.tinyvit import detect as det
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    steps = epochs * math.ceil(len(ds.train.x) / batch)
    if cfg.head == "detect":
        loss = det.DetectionLoss(cfg)
        model.compile(optimizer=_optimizer(lr, steps, wd), loss=loss)
        y_val = det.encode_targets(ds.val.y, cfg)
    else:
        model.compile(optimizer=_optimizer(lr, steps, wd),
                      loss=_cls_loss(cfg.num_classes, label_smoothing),
                      metrics=["accuracy"])
    best, best_w, wait, hist = -math.inf, None, 0, []
    bar = None
    if progress and not quiet:
        from tqdm import tqdm
        bar = tqdm(total=epochs, desc=f"train {cfg.name}", unit="epoch", file=sys.stderr,
                   dynamic_ncols=True)
    for ep in range(epochs):
        if ep and may_continue is not None and not may_continue([h["seconds"] for h in hist]):
            _log(f"time budget: stopping after {ep} of {epochs} epochs", quiet)
            break
        t0 = time.time()
        if cfg.head == "detect":
            x_tr, b_tr = det.augment_shift(ds.train.x, ds.train.y, rng, max_shift * 2)
            y_tr = det.encode_targets(b_tr, cfg)
        else:
            if rotate:
                x_tr = random_affine(ds.train.x, rng, max_shift, rotate)
            elif max_shift:
                x_tr = random_shift(ds.train.x, rng, max_shift)
            else:
                x_tr = ds.train.x
            y_tr = ds.train.y
        stop = [] if deadline is None else [_StopAt(deadline)]
        h = model.fit(x_tr, y_tr, batch_size=batch, epochs=1, verbose=0, shuffle=True, callbacks=stop)
        cut = bool(stop and stop[0].cut)
        train_loss = float(h.history["loss"][-1])
        if cfg.head == "detect":
            val_loss = float(model.evaluate(ds.val.x, y_val, batch_size=256, verbose=0))
            # early stopping follows the metric that is reported (val mAP@0.5)
            score = det.evaluate_map(model.predict(ds.val.x, batch_size=256, verbose=0),
                                     list(ds.val.y), cfg)
            rec = {"epoch": ep + 1, "loss": train_loss, "val_loss": val_loss,
                   "val_map50": round(score, 4)}
        else:
            val_loss, val_acc = model.evaluate(ds.val.x, ds.val.y, batch_size=256, verbose=0)
            score = float(val_acc)
            rec = {"epoch": ep + 1, "loss": train_loss, "val_loss": float(val_loss),
                   "val_accuracy": float(val_acc)}
        rec["seconds"] = round(time.time() - t0, 2)
        hist.append(rec)
        if score > best:
            best, best_w, wait = score, model.get_weights(), 0
        else:
            wait += 1
        if bar is not None:
            bar.set_postfix({k: round(v, 4) for k, v in rec.items() if k not in ("epoch",)})
            bar.update(1)
        elif not quiet:
            _log(json.dumps(rec))
        if cut:
            _log(f"time budget: epoch {ep + 1} cut at the deadline", quiet)
            break
        if wait >= patience:
            _log(f"early stop at epoch {ep + 1} (no validation improvement for {patience})",
                 quiet)
            break
    if bar is not None:
        bar.close()
    if best_w is not None:
        model.set_weights(best_w)
    return hist


def finetune(model, cfg: ViTConfig, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
             steps: int, at: tuple[int, ...] = (), lr: float = 1e-3, wd: float = 0.05, batch: int = 64,
             max_shift: int = 2, seed: int = 0, deadline: float | None = None,
             clock: Callable[[], float] = time.monotonic) -> dict[int, float]:
    """Short fine-tuning of a classifier that starts from inherited weights (a supernet's
    sub-network, `Supernet.keras_model`), to re-rank candidates: up to `steps` AdamW steps
    (weight decay, clipnorm 1.0 and shift augmentation as `fit`; a constant learning rate, so
    the accuracy after k steps is the same whether or not the run goes on), batches drawn
    from (x, y) in a seeded order. Returns {k: validation accuracy on (x_val, y_val) after k
    steps} for every k in `at` (0: before any step) and for the last step done. Stops
    between two steps at `deadline` (a `clock` value); the steps reached are the last key."""
    import keras
    if cfg.head != "classify":
        raise ValueError("finetune re-ranks classifiers only")
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=lr, weight_decay=wd, clipnorm=1.0),
                  loss=_cls_loss(cfg.num_classes, 0.0), metrics=["accuracy"])

    def acc() -> float:       # in chunks of 250: one or two traced shapes, bounded memory
        logits = np.concatenate([np.asarray(model.predict_on_batch(x_val[i:i + 250]))
                                 for i in range(0, len(x_val), 250)])
        return float(np.mean(np.argmax(logits, -1) == y_val))
    out: dict[int, float] = {}
    if 0 in at:
        out[0] = acc()
    order, pos, done = rng.permutation(len(x)), 0, 0
    for k in range(1, steps + 1):
        if deadline is not None and clock() >= deadline:
            break
        if pos + batch > len(x):
            order, pos = rng.permutation(len(x)), 0
        idx = order[pos:pos + batch]
        pos += batch
        xb = random_shift(x[idx], rng, max_shift) if max_shift else x[idx]
        model.train_on_batch(xb, y[idx])
        done = k
        if k in at and k != steps:
            out[k] = acc()
    if done not in out:
        out[done] = acc()
    return out


def evaluate_float(model, cfg: ViTConfig, x: np.ndarray, y) -> float:
    out = model.predict(x, batch_size=256, verbose=0)
    if cfg.head == "detect":
        from tinyml.tinyvit import detect as det
        return det.evaluate_map(out, list(y), cfg)
    return float(np.mean(np.argmax(out, -1) == y))


def evaluate_int8(tflite: bytes | str, cfg: ViTConfig, x: np.ndarray, y) -> float:
    from tinyml.tinyvit.export import run_int8
    out = run_int8(tflite, x)
    if cfg.head == "detect":
        from tinyml.tinyvit import detect as det
        return det.evaluate_map(out, list(y), cfg)
    return float(np.mean(np.argmax(out, -1) == y))


INT8_EVAL_MIN = 50


def int8_score(tflite: bytes | str, cfg: ViTConfig, x: np.ndarray, y, deadline: float | None = None
               ) -> tuple[float, int]:
    """(int8 test score, images used): all of `x`, or with `deadline` (time.time()) the first
    images in chunks of INT8_EVAL_MIN until the deadline, at least INT8_EVAL_MIN of them."""
    if deadline is None:
        return evaluate_int8(tflite, cfg, x, y), int(len(x))
    from tinyml.tinyvit.export import run_int8
    outs, n = [], 0
    while n < len(x) and (n < INT8_EVAL_MIN or time.time() < deadline):
        outs.append(run_int8(tflite, x[n:n + INT8_EVAL_MIN]))
        n = min(len(x), n + INT8_EVAL_MIN)
    out = np.concatenate(outs, 0)
    if cfg.head == "detect":
        from tinyml.tinyvit import detect as det
        return det.evaluate_map(out, list(y[:n]), cfg), n
    return float(np.mean(np.argmax(out, -1) == y[:n])), n


def train(cfg: ViTConfig, ds: Dataset, epochs: int = 30, out_dir: str | None = None,
          quiet: bool = False, progress: bool = True, seed: int = 0,
          init: Callable[[object], None] | None = None, int8_eval_deadline: float | None = None,
          **fit_kw) -> TrainResult:
    """Build, train, export (.keras + int8 .tflite) and measure one model.
    `init(model)` sets the initial weights (e.g. inherited from a supernet).
    `int8_eval_deadline` (time.time()): the int8 test evaluation (TFLite reference kernels,
    ~0.5 s per 128x128 image on a loaded core) stops there after at least
    INT8_EVAL_MIN test images; metrics["int8_test_count"] says how many were used."""
    import keras
    from tinyml.tinyvit.export import check_graph, to_int8_tflite
    from tinyml.tinyvit.model import build_model, count_macs, count_params
    check_compatible(cfg, ds)
    hints = dict(cfg.train)
    for k in ("lr", "wd", "batch", "patience", "max_shift", "rotate", "label_smoothing"):
        if k in hints and k not in fit_kw:
            fit_kw[k] = hints[k]
    t0 = time.time()
    keras.utils.set_random_seed(seed)       # seeds the initial weights as well as the training
    model = build_model(cfg)
    if init is not None:
        init(model)
    hist = fit(model, cfg, ds, epochs, seed=seed, quiet=quiet, progress=progress, **fit_kw)
    train_s = time.time() - t0
    _log("exporting int8 .tflite", quiet)
    tfl = to_int8_tflite(model, cfg, ds.train.x)
    report = check_graph(tfl)
    metric = "map50" if cfg.head == "detect" else "accuracy"
    f_score = evaluate_float(model, cfg, ds.test.x, ds.test.y)
    q_score, n_q = int8_score(tfl, cfg, ds.test.x, ds.test.y, int8_eval_deadline)
    params = count_params(model)
    metrics = {
        "name": cfg.name, "task": cfg.head, "dataset": ds.name,
        "metric": metric, f"float_{metric}": round(f_score, 4),
        f"int8_{metric}": round(q_score, 4),
        "test_count": int(len(ds.test.x)), "int8_test_count": n_q, "train_count": int(len(ds.train.x)),
        "params": params, "int8_param_bytes": params, "float_param_bytes": params * 4,
        "macs": count_macs(cfg), "tflite_bytes": len(tfl),
        "epochs_run": len(hist), "train_seconds": round(train_s, 1),
        "input_shape": [1, *cfg.input_shape],
        "ops": report.ops, "graph_ok": report.ok,
    }
    res = TrainResult(cfg, metrics, history=hist)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        res.keras_path = os.path.join(out_dir, f"{cfg.name}.keras")
        res.tflite_path = os.path.join(out_dir, f"{cfg.name}.tflite")
        model.save(res.keras_path)
        with open(res.tflite_path, "wb") as f:
            f.write(tfl)
        cfg.save(os.path.join(out_dir, f"{cfg.name}.json"))
        with open(os.path.join(out_dir, f"{cfg.name}.metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2, sort_keys=True)
            f.write("\n")
    res.model = model  # type: ignore[attr-defined]
    res.tflite = tfl   # type: ignore[attr-defined]
    return res
