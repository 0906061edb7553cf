"""Shipped tinyvit models: `<name>.tflite` + `<name>.json` (ViTConfig) +
`<name>.metrics.json` (recorded test metrics). Reproduce with
`python -m tinyml.tinyvit.make_defaults` (see README.md in this folder)."""
from __future__ import annotations

import json
import os

from tinyml.errors import TinymlError

PRETRAINED_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CLASSIFIER = "vit_digits"
DEFAULT_DETECTOR = "vit_digits_det"


def model_path(name: str) -> str:
    path = os.path.join(PRETRAINED_DIR, f"{name}.tflite")
    if not os.path.isfile(path):
        raise TinymlError(f"shipped model {name!r} is missing", path,
                          "run `python -m tinyml.tinyvit.make_defaults` to rebuild it")
    return path


def default_classifier_path() -> str:
    """Absolute path of the default int8 classifier .tflite (28x28x1 digits)."""
    return model_path(DEFAULT_CLASSIFIER)


def default_detector_path() -> str:
    """Absolute path of the default int8 detector .tflite (64x64x1 digit canvases)."""
    return model_path(DEFAULT_DETECTOR)


def list_models() -> list[dict]:
    """Every shipped model: name, task, file, input shape and recorded metrics."""
    out = []
    for f in sorted(os.listdir(PRETRAINED_DIR)):
        if not f.endswith(".tflite"):
            continue
        name = f[:-len(".tflite")]
        cfg_path = os.path.join(PRETRAINED_DIR, f"{name}.json")
        met_path = os.path.join(PRETRAINED_DIR, f"{name}.metrics.json")
        cfg = _read_json(cfg_path)
        metrics = _read_json(met_path)
        out.append({
            "name": name,
            "task": cfg.get("head", metrics.get("task", "unknown")),
            "path": os.path.join(PRETRAINED_DIR, f),
            "config_path": cfg_path if os.path.isfile(cfg_path) else None,
            "input_shape": metrics.get("input_shape") or
            [1, cfg.get("image_size"), cfg.get("image_size"), cfg.get("channels")],
            "metrics": {k: v for k, v in metrics.items() if k not in ("ops", "input_shape")},
        })
    return out


def _read_json(path: str) -> dict:
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as fh:
            d = json.load(fh)
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        raise TinymlError("shipped model metadata is not valid JSON", path,
                          "run `python -m tinyml.tinyvit.make_defaults` to rebuild it") from None
