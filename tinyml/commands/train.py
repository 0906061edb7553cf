"""`tinyml train`: train a tinyvit model, export .keras + int8 .tflite, report metrics."""
from __future__ import annotations

import json
import os
import sys

from tinyml.errors import TinymlError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a tinyvit classifier/detector and export int8 .tflite")
    p.add_argument("--model", required=True,
                   help="ViTConfig JSON file or a preset name (vit_digits, vit_digits_det, vit_tiny)")
    p.add_argument("--dataset", required=True,
                   help="digits | digits8 | digits-det | digits-canvas | digits-canvas-det | class-per-folder dir | .npz (x, y) | YOLO dir | COCO .json")
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: config or 30)")
    p.add_argument("--out", default="tinyvit_out", help="output folder (default: tinyvit_out)")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience in epochs")
    p.add_argument("--limit", type=int, default=None,
                   help="use at most N training images (quick runs)")
    p.add_argument("--seed", type=int, default=0, help="split / augmentation seed")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--verbose", action="store_true", help="let TensorFlow's own log lines through")
    p.set_defaults(func=run)


def load_config(spec: str):
    from tinyml.tinyvit.config import ViTConfig, preset
    if spec.endswith(".json") or os.path.sep in spec or os.path.isfile(spec):
        return ViTConfig.load(spec)
    return preset(spec)


def run(args) -> int:
    from tinyml.commands._quiet import quiet_native_stderr
    with quiet_native_stderr(not args.verbose):
        return _run(args)


def _run(args) -> int:
    import numpy as np
    from tinyml.tinyvit.data import Split, load_dataset
    from tinyml.tinyvit.train import train

    cfg = load_config(args.model)
    if args.epochs is not None and args.epochs < 1:
        raise TinymlError(f"--epochs must be >= 1, got {args.epochs}", "--epochs", "use e.g. 20")
    if args.limit is not None and args.limit < 10:
        raise TinymlError(f"--limit must be >= 10, got {args.limit}", "--limit", "use e.g. 500")
    if args.dataset == "digits-det":
        from tinyml.tinyvit.data import digits_detection
        n = args.limit or 6000
        ds = digits_detection(args.seed, n_train=n, n_val=max(50, min(500, n // 8)),
                              n_test=max(50, min(500, n // 8)),
                              canvas=cfg.image_size, cell=cfg.patch_size)
    else:
        ds = load_dataset(args.dataset, cfg.image_size, cfg.channels, seed=args.seed)
        if args.limit:
            ds.train = Split(ds.train.x[:args.limit], ds.train.y[:args.limit])
            keep = max(50, args.limit // 8)
            ds.val = Split(ds.val.x[:keep], ds.val.y[:keep])
            ds.test = Split(ds.test.x[:keep], ds.test.y[:keep])
    epochs = args.epochs or int(cfg.train.get("epochs", 30))
    kw = {}
    if args.patience is not None:
        kw["patience"] = args.patience
    print(f"training {cfg.name} on {ds.name}: {len(ds.train.x)} train / {len(ds.val.x)} val / "
          f"{len(ds.test.x)} test images, up to {epochs} epochs", file=sys.stderr)
    res = train(cfg, ds, epochs=epochs, out_dir=args.out, seed=args.seed,
                quiet=False, progress=True, **kw)
    m = dict(res.metrics)
    m.update({"ok": True, "keras_path": os.path.abspath(res.keras_path),
              "tflite_path": os.path.abspath(res.tflite_path),
              "config_path": os.path.abspath(os.path.join(args.out, f"{cfg.name}.json"))})
    if args.json:
        print(json.dumps(m, default=_np_default))
    else:
        key = m["metric"]
        print(f"{cfg.name}: float {key} {m['float_' + key]:.4f}, int8 {key} "
              f"{m['int8_' + key]:.4f} on {m['test_count']} test images; "
              f"{m['params']} params ({m['int8_param_bytes']} B int8), {m['macs']} MACs; "
              f"wrote {m['tflite_path']}")
    del np
    return 0


def _np_default(o):
    import numpy as np
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)
