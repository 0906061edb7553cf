"""Detector post-processing: Python decode/NMS/mAP against hand-derived values,
and the firmware C routine (host-compiled) against the Python decode."""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from tinyml.paths import FIRMWARE
from tinyml.tinyvit.config import ViTConfig
from tinyml.tinyvit.detect import (average_precision, decode, encode_targets,
                            mean_average_precision, nms)

POST = os.path.join(FIRMWARE, "postprocess")


def test_ap_matches_hand_computed_voc_value():
    # one class, two objects; detections TP (0.9), FP (0.8), TP (0.7)
    # recall 0.5, 0.5, 1.0; precision 1, 0.5, 2/3 -> envelope area 0.5*1 + 0.5*2/3
    gt = [np.array([[0, 0, 0, 10, 10], [0, 20, 20, 30, 30]], np.float32)]
    det = [np.array([[0.9, 0, 0, 0, 10, 10], [0.8, 0, 40, 40, 50, 50],
                     [0.7, 0, 21, 21, 31, 31]])]
    assert mean_average_precision(det, gt, 1) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision(np.array([1.0]), np.array([1.0])) == pytest.approx(1.0)


def test_map_duplicates_and_wrong_class_are_false_positives():
    gt = [np.array([[1, 0, 0, 10, 10]], np.float32)]
    # duplicate of the same box: second one is an FP; wrong class does not count
    det = [np.array([[0.9, 1, 0, 0, 10, 10], [0.8, 1, 1, 1, 10, 10], [0.95, 0, 0, 0, 10, 10]])]
    assert mean_average_precision(det, gt, 2) == pytest.approx(1.0)   # FP after full recall
    det2 = [np.array([[0.9, 1, 1, 1, 10, 10], [0.95, 1, 30, 30, 40, 40]])]
    # FP first then TP: precision at recall 1 is 0.5
    assert mean_average_precision(det2, gt, 2) == pytest.approx(0.5)


def test_nms_keeps_best_per_class():
    d = np.array([[0.5, 0, 0, 0, 10, 10], [0.9, 0, 1, 1, 11, 11], [0.8, 1, 0, 0, 10, 10]])
    out = nms(d, 0.45)
    assert out[:, 0].tolist() == [0.9, 0.8]


def test_encode_then_decode_recovers_boxes():
    cfg = ViTConfig(image_size=64, patch_size=8, num_classes=10, head="detect")
    boxes = [np.array([[3, 5, 6, 20, 30], [7, 40, 33, 60, 62]], np.float32)]
    t = encode_targets(boxes, cfg)[0]
    # turn targets into logits: objectness/class +-12, offsets through logit()
    g = np.full_like(t, -12.0)
    pos = t[..., 0] > 0
    g[..., 0] = np.where(pos, 12.0, -12.0)
    off = np.clip(t[..., 1:3], 1e-6, 1 - 1e-6)
    g[..., 1:3] = np.log(off / (1 - off))
    g[..., 3:5] = t[..., 3:5]
    g[..., 5:] = np.where(t[..., 5:] > 0, 12.0, -12.0)
    dets = decode(g, cfg, 0.5)
    dets = dets[np.argsort(dets[:, 1])]
    assert dets[:, 1].tolist() == [3, 7]
    np.testing.assert_allclose(dets[:, 2:], boxes[0][:, 1:], atol=1e-3)


@pytest.fixture(scope="module")
def post_binary(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    d = tmp_path_factory.mktemp("detect_post")
    main = d / "main.c"
    main.write_text(r'''
#include <stdio.h>
#include <stdlib.h>
#include "detect_post.h"
int main(int argc, char **argv) {
    tinyml_detect_params p;
    if (argc != 10) return 4;
    p.grid_h = atoi(argv[1]); p.grid_w = atoi(argv[2]); p.num_classes = atoi(argv[3]);
    p.cell_size = (float)atof(argv[4]); p.scale = (float)atof(argv[5]);
    p.zero_point = atoi(argv[6]); p.score_threshold = (float)atof(argv[7]);
    p.iou_threshold = (float)atof(argv[8]); p.max_boxes = atoi(argv[9]);
    static int8_t buf[65536]; static tinyml_box scratch[4096], res[256];
    size_t n = fread(buf, 1, sizeof buf, stdin);
    if (n != (size_t)(p.grid_h * p.grid_w * (5 + p.num_classes))) return 3;
    int32_t k = tinyml_detect_decode(&p, buf, scratch, res);
    for (int32_t i = 0; i < k; ++i)
        printf("%.7g %d %.7g %.7g %.7g %.7g\n", res[i].score, (int)res[i].cls,
               res[i].x1, res[i].y1, res[i].x2, res[i].y2);
    return k < 0 ? 2 : 0;
}
''')
    exe = d / "post"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{POST}",
                    str(main), os.path.join(POST, "detect_post.c"), "-lm", "-o", str(exe)],
                   check=True, timeout=60)
    return str(exe)


@pytest.fixture(scope="module")
def split_binary(tmp_path_factory):
    """Harness for tinyml_detect_decode_split: stdin = obj, box, cls tensors back to back."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    d = tmp_path_factory.mktemp("detect_post_split")
    main = d / "main.c"
    main.write_text(r'''
#include <stdio.h>
#include <stdlib.h>
#include "detect_post.h"
int main(int argc, char **argv) {
    tinyml_detect_params p;
    tinyml_detect_view v[3];
    if (argc != 14) return 4;
    p.grid_h = atoi(argv[1]); p.grid_w = atoi(argv[2]); p.num_classes = atoi(argv[3]);
    p.cell_size = (float)atof(argv[4]); p.scale = 0.0f; p.zero_point = 0;
    p.score_threshold = (float)atof(argv[5]); p.iou_threshold = (float)atof(argv[6]);
    p.max_boxes = atoi(argv[7]);
    static int8_t buf[65536]; static tinyml_box scratch[4096], res[256];
    const int32_t cells = p.grid_h * p.grid_w;
    const int32_t ch[3] = {1, 4, p.num_classes};
    size_t n = fread(buf, 1, sizeof buf, stdin);
    if (n != (size_t)(cells * (5 + p.num_classes))) return 3;
    int32_t off = 0;
    for (int k = 0; k < 3; ++k) {
        v[k].data = buf + off; v[k].stride = ch[k];
        v[k].scale = (float)atof(argv[8 + 2 * k]); v[k].zero_point = atoi(argv[9 + 2 * k]);
        off += cells * ch[k];
    }
    int32_t k = tinyml_detect_decode_split(&p, &v[0], &v[1], &v[2], scratch, res);
    for (int32_t i = 0; i < k; ++i)
        printf("%.7g %d %.7g %.7g %.7g %.7g\n", res[i].score, (int)res[i].cls,
               res[i].x1, res[i].y1, res[i].x2, res[i].y2);
    return k < 0 ? 2 : 0;
}
''')
    exe = d / "post_split"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{POST}",
                    str(main), os.path.join(POST, "detect_post.c"), "-lm", "-o", str(exe)],
                   check=True, timeout=60)
    return str(exe)


def _run_c(exe, q, g, c, cell, scale, zp, thr, iou, max_boxes):
    out = subprocess.run([exe, str(g), str(g), str(c), str(cell), repr(scale), str(zp),
                          repr(thr), repr(iou), str(max_boxes)],
                         input=q.astype(np.int8).tobytes(), capture_output=True, timeout=30)
    assert out.returncode == 0, out
    rows = [list(map(float, ln.split())) for ln in out.stdout.decode().splitlines()]
    return np.array(rows, np.float64).reshape(-1, 6)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_c_decode_matches_python(post_binary, seed):
    rng = np.random.default_rng(seed)
    g, c, cell = (8, 10, 8) if seed % 2 == 0 else (4, 3, 7)
    scale, zp = [0.0625, 0.11][seed % 2], [-3, 10][seed % 2]
    q = rng.integers(-128, 128, (g, g, 5 + c)).astype(np.int8)
    cfg = ViTConfig(image_size=g * cell, patch_size=cell, num_classes=c, head="detect",
                    embed_dim=8, num_heads=1)
    deq = scale * (q.astype(np.float64) - zp)
    ref = decode(deq, cfg, score_threshold=0.05, iou_threshold=0.45, max_boxes=20)
    got = _run_c(post_binary, q, g, c, cell, scale, zp, 0.05, 0.45, 20)
    assert len(ref) > 0
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got[:, 1], ref[:, 1])
    np.testing.assert_allclose(got[:, 0], ref[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[:, 2:], ref[:, 2:], rtol=1e-5, atol=1e-3)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_c_split_decode_matches_python(split_binary, seed):
    """Three heads, three different scales/zero points: C == Python decode of the
    dequantized heads concatenated as [obj, box, cls]."""
    rng = np.random.default_rng(100 + seed)
    g, c, cell = (8, 10, 8) if seed != 1 else (4, 3, 7)
    quant = [(0.09, 20), (0.035, -10), (0.12, -25)] if seed != 2 else \
        [(0.05, -100), (0.2, 3), (0.04, 60)]
    heads = [rng.integers(-128, 128, (g, g, k)).astype(np.int8) for k in (1, 4, c)]
    deq = np.concatenate([s * (h.astype(np.float64) - z) for h, (s, z) in zip(heads, quant)], -1)
    cfg = ViTConfig(image_size=g * cell, patch_size=cell, num_classes=c, head="detect",
                    embed_dim=8, num_heads=1, det_split=True)
    ref = decode(deq, cfg, score_threshold=0.05, iou_threshold=0.45, max_boxes=20)
    args = [split_binary, str(g), str(g), str(c), str(cell), "0.05", "0.45", "20"]
    for s_, z_ in quant:
        args += [repr(s_), str(z_)]
    out = subprocess.run(args, input=b"".join(h.tobytes() for h in heads),
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out
    got = np.array([list(map(float, ln.split())) for ln in out.stdout.decode().splitlines()],
                   np.float64).reshape(-1, 6)
    assert len(ref) > 0
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got[:, 1], ref[:, 1])
    np.testing.assert_allclose(got[:, 0], ref[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[:, 2:], ref[:, 2:], rtol=1e-5, atol=1e-3)
