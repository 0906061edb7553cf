"""`tinyml train` / `tinyml models` through the real CLI, and the dataset loaders."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import sys

import numpy as np
import pytest



def tinyml(*args, timeout=600, cwd=None):
    """The installed CLI, run from outside the checkout (as a user would)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], cwd=cwd or tempfile.gettempdir(), env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(120)
def test_models_json_lists_shipped_models():
    r = tinyml("models", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)           # exactly one JSON object on stdout
    names = {m["name"]: m for m in doc["models"]}
    from tinyml.tinyvit.pretrained import PRETRAINED_DIR
    shipped = sorted(f[:-7] for f in os.listdir(PRETRAINED_DIR) if f.endswith(".tflite"))
    assert sorted(names) == shipped
    for m in doc["models"]:
        assert os.path.isabs(m["path"]) and os.path.isfile(m["path"])
        assert m["task"] in ("classify", "detect")
        assert len(m["input_shape"]) == 4


@pytest.mark.timeout(600)
def test_train_cli_quick_run_writes_keras_tflite_and_json(tmp_path):
    cfg = {"name": "cli_tiny", "patch_size": 7, "embed_dim": 16, "depth": 1, "num_heads": 2}
    cfg_path = tmp_path / "tiny.json"
    cfg_path.write_text(json.dumps(cfg))
    out = tmp_path / "out"
    r = tinyml("train", "--model", str(cfg_path), "--dataset", "digits", "--epochs", "1",
               "--limit", "200", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and doc["metric"] == "accuracy"
    for k in ("float_accuracy", "int8_accuracy", "params", "macs", "int8_param_bytes"):
        assert k in doc
    assert 0.0 <= doc["int8_accuracy"] <= 1.0
    assert os.path.isfile(doc["tflite_path"]) and os.path.isfile(doc["keras_path"])
    assert "train cli_tiny" in r.stderr or "epoch" in r.stderr       # progress on stderr
    # the exported model's reference-kernel accuracy is what was reported
    from tinyml.tinyvit.data import mnist_digits
    from tinyml.tinyvit.export import run_int8
    ds = mnist_digits()
    x, y = ds.test.x[:50], ds.test.y[:50]
    acc = float(np.mean(np.argmax(run_int8(doc["tflite_path"], x), -1) == y))
    assert acc == pytest.approx(doc["int8_accuracy"], abs=1e-9)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args,needle", [
    (["--model", "no_such_model", "--dataset", "digits"], "unknown model name"),
    (["--model", "vit_tiny", "--dataset", "/no/such/dir"], "unknown dataset"),
    (["--model", "vit_tiny", "--dataset", "digits-det", "--epochs", "1"], "does not match"),
])
def test_train_cli_bad_input_is_one_line(args, needle):
    r = tinyml("train", *args, "--limit", "20")
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert needle in r.stderr.strip().splitlines()[-1]


def _png(path, arr):
    from PIL import Image
    Image.fromarray(arr.astype(np.uint8)).save(path)


def test_image_folder_loader(tmp_path):
    from tinyml.tinyvit.data import load_dataset
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(10):
            _png(tmp_path / c / f"{i}.png", rng.integers(0, 256, (20, 30)))
    ds = load_dataset(str(tmp_path), 16, 1)
    assert ds.task == "classify" and ds.class_names == ["cat", "dog"]
    assert ds.train.x.shape[1:] == (16, 16, 1)
    assert len(ds.train.x) + len(ds.val.x) + len(ds.test.x) == 20
    assert 0.0 <= ds.train.x.min() and ds.train.x.max() <= 1.0


def test_yolo_and_coco_loaders_agree(tmp_path):
    from tinyml.tinyvit.data import load_dataset
    yolo = tmp_path / "yolo"
    (yolo / "images").mkdir(parents=True)
    (yolo / "labels").mkdir()
    coco = {"images": [], "annotations": [], "categories": [{"id": 7, "name": "a"},
                                                            {"id": 9, "name": "b"}]}
    for i in range(10):
        _png(yolo / "images" / f"{i}.png", np.zeros((40, 80)))
        # box x 8..24, y 4..20 in an 80x40 image, class 1
        (yolo / "labels" / f"{i}.txt").write_text(f"1 {16 / 80} {12 / 40} {16 / 80} {16 / 40}\n")
        coco["images"].append({"id": i, "file_name": f"yolo/images/{i}.png", "width": 80,
                               "height": 40})
        coco["annotations"].append({"id": i, "image_id": i, "category_id": 9,
                                    "bbox": [8, 4, 16, 16]})
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    dy = load_dataset(str(yolo), 32, 1)
    dc = load_dataset(str(tmp_path / "coco.json"), 32, 1)
    assert dy.task == dc.task == "detect"
    assert dc.class_names == ["a", "b"]
    expect = [1, 8 * 32 / 80, 4 * 32 / 40, 24 * 32 / 80, 20 * 32 / 40]
    for ds in (dy, dc):
        np.testing.assert_allclose(ds.train.y[0][0], expect, atol=1e-4)


def test_digit_splits_are_fixed_and_disjoint():
    from tinyml.tinyvit.data import mnist_digits
    a, b = mnist_digits(0), mnist_digits(0)
    np.testing.assert_array_equal(a.test.x, b.test.x)
    assert (len(a.train.x), len(a.val.x), len(a.test.x)) == (4000, 500, 500)
    assert np.bincount(a.test.y).tolist() == [50] * 10
    tr = {x.tobytes() for x in a.train.x}
    assert not any(x.tobytes() in tr for x in a.test.x)


def test_detection_canvases_are_deterministic_with_kept_boxes():
    from tinyml.tinyvit.data import compose_canvases, mnist_digits
    d = mnist_digits()
    x1, b1 = compose_canvases(d.test.x, d.test.y, 30, seed=5)
    x2, b2 = compose_canvases(d.test.x, d.test.y, 30, seed=5)
    np.testing.assert_array_equal(x1, x2)
    for img, bs in zip(x1, b1):
        assert 1 <= len(bs) <= 4
        for cls, x0, y0, xe, ye in bs:
            assert 0 <= cls <= 9 and 0 <= x0 < xe <= 64 and 0 <= y0 < ye <= 64
            assert img[int(y0):int(ye), int(x0):int(xe)].max() > 0.2   # ink inside the box
