"""Rebuild the shipped models in tinyvit/pretrained/ (run once; results are committed).

    python -m tinyml.tinyvit.make_defaults [--only classifier|detector|vit_digits|vit_digits_det]
                                    [--keras-dir DIR]

Writes `<name>.tflite`, `<name>.json` and `<name>.metrics.json` into
tinyvit/pretrained/ and the float `<name>.keras` into --keras-dir (not shipped).
Seeds are fixed; TensorFlow on CPU is not bit-reproducible across thread
counts, so a rerun lands within noise of the recorded metrics, not on them.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

from tinyml.tinyvit.config import preset
from tinyml.tinyvit.pretrained import PRETRAINED_DIR

RECIPES = {
    "vit_digits": dict(epochs=150, train=dict(lr=2e-3, wd=0.05, batch=64, patience=40,
                                              max_shift=2, rotate=10.0, label_smoothing=0.1),
                       overrides=dict()),
    "vit_digits_det": dict(epochs=60, train=dict(lr=2e-3, wd=0.05, batch=64, patience=15,
                                                 max_shift=2), overrides=dict(),
                           n_train=12000),
}
ALIASES = {"classifier": "vit_digits", "detector": "vit_digits_det"}


CHECK_COUNT = 200   # test canvases the shipped-detector test re-measures (fast subset)


def record_detector_check(name: str) -> dict:
    """Measure the shipped detector's int8 mAP@0.5 on the first CHECK_COUNT test
    canvases (TFLite reference kernels) and store it in its metrics JSON as
    `check_count` / `check_int8_map50`, the figure tests/test_tinyvit_pretrained.py
    re-measures; the full 500-canvas figure stays `int8_map50`."""
    from tinyml.tinyvit.config import ViTConfig
    from tinyml.tinyvit.data import digits_detection
    from tinyml.tinyvit.detect import evaluate_map
    from tinyml.tinyvit.export import run_int8
    cfg = ViTConfig.load(os.path.join(PRETRAINED_DIR, f"{name}.json"))
    ds = digits_detection(0, n_train=0, n_val=0, n_test=CHECK_COUNT, canvas=cfg.image_size,
                          cell=cfg.patch_size)
    score = evaluate_map(run_int8(os.path.join(PRETRAINED_DIR, f"{name}.tflite"), ds.test.x),
                         list(ds.test.y), cfg)
    met_path = os.path.join(PRETRAINED_DIR, f"{name}.metrics.json")
    with open(met_path) as fh:
        metrics = json.load(fh)
    metrics.update(check_count=CHECK_COUNT, check_int8_map50=round(score, 4))
    with open(met_path, "w") as fh:
        json.dump(metrics, fh, indent=2, sort_keys=True)
        fh.write("\n")
    return metrics


def build(name: str, keras_dir: str, progress: bool = True) -> dict:
    from tinyml.tinyvit.data import digits_detection, mnist_digits
    from tinyml.tinyvit.train import train
    recipe = RECIPES[name]
    cfg = preset(name)
    for k, v in recipe["overrides"].items():
        setattr(cfg, k, v)
    cfg.train = dict(recipe["train"], epochs=recipe["epochs"])
    cfg.validate()
    if cfg.head == "detect":
        ds = digits_detection(0, n_train=recipe.get("n_train", 6000), canvas=cfg.image_size,
                              cell=cfg.patch_size)
    else:
        ds = mnist_digits(0)
    with tempfile.TemporaryDirectory() as tmp:
        res = train(cfg, ds, epochs=recipe["epochs"], out_dir=tmp, progress=progress)
        for suffix in (".tflite", ".json", ".metrics.json"):
            shutil.copy(os.path.join(tmp, name + suffix), os.path.join(PRETRAINED_DIR, name + suffix))
        os.makedirs(keras_dir, exist_ok=True)
        shutil.copy(os.path.join(tmp, name + ".keras"), os.path.join(keras_dir, name + ".keras"))
    if cfg.head == "detect":
        return record_detector_check(name)
    return res.metrics


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinyml.tinyvit.make_defaults", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(RECIPES) + sorted(ALIASES), action="append",
                    help="rebuild only this model (repeatable; 'classifier' and 'detector' "
                    "name the two defaults)")
    ap.add_argument("--keras-dir", default=os.path.join("build", "tinyvit"),
                    help="where the float .keras files go (default build/tinyvit)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    names = [ALIASES.get(n, n) for n in args.only] if args.only else list(RECIPES)
    for name in dict.fromkeys(names):
        m = build(name, args.keras_dir, progress=not args.no_progress)
        print(json.dumps({k: v for k, v in m.items() if k != "ops"}), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
