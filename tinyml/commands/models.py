"""`tinyml models`: list the shipped tinyvit models and their recorded metrics."""
from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list shipped models (name, task, file, metrics)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    from tinyml.tinyvit.pretrained import list_models
    models = list_models()
    if args.json:
        print(json.dumps({"ok": True, "models": models}))
        return 0
    if not models:
        print("no shipped models (run `python -m tinyml.tinyvit.make_defaults`)", file=sys.stderr)
        return 0
    for m in models:
        met = m["metrics"]
        key = met.get("metric", "accuracy")
        score = met.get(f"int8_{key}")
        shape = "x".join(str(v) for v in m["input_shape"])
        extra = f"int8 {key} {score:.4f}" if isinstance(score, (int, float)) else "no metrics"
        print(f"{m['name']:<18} {m['task']:<9} {shape:<12} {extra:<24} {m['path']}")
    return 0
