"""TFLite_Detection_PostProcess (the SSD custom op): a parameter sweep in one model, byte for
byte against TFLite's reference interpreter (and tflite_micro for one class per detection,
the only form TFLM writes within its outputs), and the refusals that name the cause.

Scores are multiples of 1/256 (what DEQUANTIZE of an int8 sigmoid gives), so equal scores are
common and the tie order of every sort is exercised. TFLite leaves the output slots fast NMS
does not fill unwritten: only the filled slots (and the count) are compared."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from flatbuffers import flexbuffers

from opgraph import OpCase, multi_op_model
from opmodels import Spec, run_generated, run_reference
from opmodels import tflm_oracle as _tflm

OP = "CUSTOM:TFLite_Detection_PostProcess"


def det_case(regular: bool, rng, n: int = 64, classes: int = 3, per_det: int = 1, background: bool = True,
             max_det: int = 10, per_class: int = 100, score: float = 0.3, iou: float = 0.5,
             scales=(10.0, 10.0, 5.0, 5.0), stride: int = 4, box_dtype: str = "float32") -> OpCase:
    opts = dict(max_detections=max_det, max_classes_per_detection=per_det, detections_per_class=per_class,
                use_regular_nms=regular, nms_score_threshold=score, nms_iou_threshold=iou, num_classes=classes,
                y_scale=scales[0], x_scale=scales[1], h_scale=scales[2], w_scale=scales[3])
    anchors = np.concatenate([rng.uniform(0.1, 0.9, (n, 2)), rng.uniform(0.05, 0.3, (n, 2))], 1).astype(np.float32)
    d = max_det * per_det
    box = Spec((1, n, stride), box_dtype, scale=0.05 if box_dtype != "float32" else None)
    return OpCase(OP, [box, Spec((1, n, classes + int(background)), "float32"),
                       Spec((n, 4), "float32", data=anchors)],
                  [Spec((1, d, 4), "float32"), Spec((1, d), "float32"), Spec((1, d), "float32"),
                   Spec((1,), "float32")], custom_options=flexbuffers.Dumps(opts))


def records(cases, count: int, seed: int, levels: int = 256) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        rec = []
        for c in cases:
            rec.append(rng.standard_normal(tuple(c.inputs[0].shape)).astype(np.float32))
            rec.append((rng.integers(0, levels, tuple(c.inputs[1].shape)) / levels).astype(np.float32))
        out.append(rec)
    return out


def filled(case: OpCase, count: float) -> np.ndarray:
    """Slots the reference writes: all for regular NMS, per detected anchor for fast NMS."""
    o = flexbuffers.Loads(case.custom_options)
    slots = o["max_detections"] * o["max_classes_per_detection"]
    mask = np.zeros(slots, dtype=bool)
    if o["use_regular_nms"]:
        mask[:] = True
    else:
        per = o["max_classes_per_detection"]
        for b in range(int(count)):
            mask[b * per:b * per + min(per, o["num_classes"])] = True
    return mask


def compare(cases, recs, got, oracle, what) -> int:
    detections = 0
    for r, rec in enumerate(recs):
        want = oracle(rec)
        for c, case in enumerate(cases):
            g, w = got[r][4 * c:4 * c + 4], [np.asarray(x) for x in want[4 * c:4 * c + 4]]
            assert g[3].tobytes() == w[3].reshape(g[3].shape).tobytes(), f"{what}: record {r} case {c} count"
            mask = filled(case, w[3].reshape(-1)[0])
            detections += int(w[3].reshape(-1)[0])
            for k in range(3):
                gg = g[k].reshape(mask.size, -1)[mask]
                ww = w[k].reshape(mask.size, -1)[mask]
                assert gg.tobytes() == ww.tobytes(), f"{what}: record {r} case {c} output {k}: {gg.ravel()[:8]} vs {ww.ravel()[:8]}"
    return detections


def sweep_cases(rng) -> list[OpCase]:
    return [
        det_case(False, rng),                                          # the SSD default: fast, 1 class
        det_case(False, rng, classes=6, per_det=3),                    # 3 classes per anchor (heap tie order)
        det_case(False, rng, classes=2, per_det=3, background=False),  # more per anchor than classes
        det_case(False, rng, score=0.97, iou=0.3, scales=(1.0, 2.0, 1.0, 3.0), stride=6),  # few, keypoint columns
        det_case(True, rng),                                           # regular, 100 per class
        det_case(True, rng, classes=5, max_det=20, per_class=4),       # regular, few per class
        det_case(True, rng, classes=4, background=False, score=0.0, iou=1.0, max_det=7),  # keep all, no background
        det_case(True, rng, n=40, classes=2, iou=0.05, max_det=3),     # heavy suppression
    ]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_detection_postprocess_sweep_tflite():
    """8 option sets (fast NMS with 1 / 3 classes per anchor, with and without background, score
    and IoU thresholds, scales, 6-column encodings; regular NMS with 100 / 4 per class, no
    background, threshold 0, IoU 1 and 0.05) x 6 inputs: TFLite's reference bytes."""
    cases = sweep_cases(np.random.default_rng(0))
    model = multi_op_model(cases)
    recs = records(cases, 6, seed=1)
    got = run_generated(model, recs, sanitize=True)
    detections = compare(cases, recs, got, lambda rec: run_reference(model, rec), "tflite")
    assert detections > 6 * 8 * 3      # the sweep compares real detections, not empty outputs


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_detection_postprocess_sweep_tflm():
    """One class per detection (TFLM's only in-bounds form): fast and regular NMS, coarse
    scores (16 levels, many ties): tflite_micro's bytes with --rounding tflm."""
    rng = np.random.default_rng(2)
    cases = [det_case(False, rng), det_case(False, rng, classes=4, background=False, iou=0.3),
             det_case(True, rng), det_case(True, rng, classes=5, max_det=20, per_class=4)]
    model = multi_op_model(cases)
    recs = records(cases, 6, seed=3, levels=16)
    got = run_generated(model, recs, sanitize=False, rounding="tflm")
    compare(cases, recs, got, _tflm(model).run, "tflm")
    compare(cases, recs, got, lambda rec: run_reference(model, rec), "tflite")   # the two agree here


def _plan_error(tmp_path, case: OpCase) -> str:
    path = tmp_path / "det.tflite"
    path.write_bytes(multi_op_model([case]))
    p = subprocess.run([sys.executable, "-m", "tinyml.cli", "plan", str(path)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr
    errs = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errs) == 1, p.stderr
    return errs[0]


@pytest.mark.parametrize("kw,what", [({"box_dtype": "uint8"}, "uint8 box encodings"),
                                     ({"iou": 0.0}, "nms_iou_threshold 0.0"),
                                     ({"regular": True, "per_class": 0}, "detections_per_class")])
def test_detection_postprocess_refusals_name_the_cause(tmp_path, kw, what):
    kw = {"regular": False, **kw}
    line = _plan_error(tmp_path, det_case(rng=np.random.default_rng(0), **kw))
    assert OP in line and what in line, line
