"""The accuracy proxy: validation accuracy after a short seeded training run.

Keras and TensorFlow are imported inside the functions: importing the search for
memory-only work does not start TensorFlow.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from tinyml.tinyvit.config import ViTConfig


@dataclass
class ProxySettings:
    epochs: int = 2
    train_images: int = 2000
    val_images: int = 500
    batch: int = 64
    lr: float = 2e-3
    seed: int = 0
    # At least this many optimizer steps: on a small dataset `epochs` epochs are a
    # handful of steps, which rank nothing (every candidate stays at chance); epochs
    # after the first cost little next to the first one's tracing.
    min_steps: int = 0

    def epochs_for(self, n_train: int) -> int:
        steps_per_epoch = max(1, math.ceil(min(n_train, self.train_images) / self.batch))
        return max(self.epochs, math.ceil(self.min_steps / steps_per_epoch))

    def describe(self, dataset: str, task: str = "classify") -> str:
        metric = "validation mAP@0.5" if task == "detect" else "validation accuracy"
        steps = f", at least {self.min_steps} steps" if self.min_steps else ""
        return (f"short-training proxy: {metric} after {self.epochs} epoch(s){steps} on "
                f"{self.train_images} {dataset} training images ({self.val_images} validation images)")


@dataclass(frozen=True)
class DataSpec:
    """Where the search's data comes from: a bundled name (digits, digits8), a
    class-per-folder tree, an .npz (x, y) or a YOLO folder; `size` / `channels`
    None take them from the images. Picklable: Ray workers load it themselves
    (a path must then exist on every worker)."""
    source: str
    size: int | None = None
    channels: int | None = None
    seed: int = 0

    def load(self):
        from tinyml.tinyvit.data import load_dataset
        return load_dataset(self.source, self.size, self.channels, seed=self.seed)


def proxy_train(cfg: ViTConfig, ds, settings: ProxySettings, deadline: float | None = None) -> tuple[float, float]:
    """(validation accuracy, seconds) after a short training run (cut between two batches at
    `deadline`, a time.time() value)."""
    import keras
    from tinyml.tinyvit.data import Dataset, Split
    from tinyml.tinyvit.model import build_model
    from tinyml.tinyvit.train import fit
    small = Dataset(ds.name, ds.task, Split(ds.train.x[:settings.train_images],
                                            ds.train.y[:settings.train_images]),
                    Split(ds.val.x[:settings.val_images], ds.val.y[:settings.val_images]),
                    ds.test, ds.class_names)
    t0 = time.time()
    keras.backend.clear_session()
    keras.utils.set_random_seed(settings.seed)      # initial weights too: same config, same proxy score
    model = build_model(cfg)
    epochs = settings.epochs_for(len(small.train.x))
    hist = fit(model, cfg, small, epochs, lr=settings.lr, batch=settings.batch,
               patience=epochs + 1, seed=settings.seed, quiet=True, progress=False, deadline=deadline)
    acc = max(h["val_map50" if cfg.head == "detect" else "val_accuracy"] for h in hist)
    return float(acc), time.time() - t0


class ProxyJob:
    """Picklable proxy-training job: loads the dataset where it runs (once), unless given."""

    def __init__(self, data: DataSpec | str, settings: ProxySettings, ds=None, deadline: float | None = None) -> None:
        if isinstance(data, str):
            data = DataSpec(data, seed=settings.seed)
        self.data, self.settings = data, settings
        self._ds = ds
        self.deadline = deadline        # time.time() value: trainings still running then are cut

    def __getstate__(self) -> dict:
        return {"data": self.data, "settings": self.settings, "_ds": None, "deadline": self.deadline}

    def __call__(self, cfg: ViTConfig) -> tuple[float, float]:
        if self._ds is None:
            self._ds = self.data.load()
        return proxy_train(cfg, self._ds, self.settings, self.deadline)
