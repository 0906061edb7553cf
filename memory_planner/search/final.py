"""The winner's final training, int8 export, the re-plan of the exported file and
the bit-exact check of its generated C against TensorFlow Lite."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable

from .report import log

if TYPE_CHECKING:
    from .candidates import Candidate


START = {"rerank": "its re-rank fine-tuning", "supernet": "inherited supernet weights",
         "keras": "Keras' initial weights"}    # where a final training starts (metrics["start"])


def final_train(c: Candidate, ds, epochs: int, out_dir: str, seed: int, tag: str,
                may_continue: Callable[[list[float]], bool] | None = None,
                progress: bool = False, init: Callable | None = None,
                deadline: float | None = None, eval_deadline: float | None = None,
                start: str = "keras") -> tuple[dict, str]:
    """Train (from `init(model)`'s weights when given: `start` says whose, "rerank" for the
    re-rank's fine-tuned ones, "supernet" for inherited ones), export int8, measure.
    metrics["train_seconds"] is the training alone (the rest of the call is export and evaluation).
    `deadline` (time.time()) cuts the training between two batches; `eval_deadline` bounds
    the int8 test evaluation (at least its first 50 images: metrics["int8_test_count"])."""
    from tinyml.tinyvit.train import train
    log(f"final training ({tag}) from {START[start]}: {c.config.name}, up to {epochs} epochs")
    r = train(c.config, ds, epochs=epochs, out_dir=os.path.join(out_dir, tag), seed=seed,
              quiet=False, progress=progress, may_continue=may_continue, init=init, deadline=deadline,
              int8_eval_deadline=eval_deadline)
    return dict(r.metrics), os.path.abspath(r.tflite_path)


def check_export(c: Candidate, tflite: str) -> dict:
    """Plan the exported file through the importer: it must match the fast path."""
    from tinyml.codegen.pipeline import plan_model
    rep, _ = plan_model(tflite)
    return {"arena_bytes_exported": rep.arena_bytes, "arena_bytes_fast_path": c.cost.arena_bytes,
            "flash_bytes_exported": rep.flash_bytes, "flash_bytes_fast_path": c.cost.flash_bytes,
            # The arena must agree to the byte; the fast path's flash is an upper bound
            # (trained values let identical tables be shared, see fused_common.shared_array).
            "match": rep.arena_bytes == c.cost.arena_bytes and rep.flash_bytes <= c.cost.flash_bytes}


def verify_export(tflite: str, count: int = 10, seed: int = 0) -> dict:
    """Generated C (host build) against TFLite's reference interpreter on `count` random inputs."""
    from tinyml.codegen.verify import verify
    r = verify(tflite, count=count, seed=seed)
    return {"bit_exact": r.bit_exact, "oracle": r.oracle, "inputs_compared": r.inputs_compared,
            "output_bytes_compared": r.output_bytes_compared, "mismatching_bytes": r.mismatching_bytes,
            "max_abs_diff": r.max_abs_diff}
