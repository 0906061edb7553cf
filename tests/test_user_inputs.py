"""User files other than models (issue 18, item 6): the inputs `tinyml run` sends
over serial (deploy/inputs.py) and the datasets `tinyml train` reads
(tinyvit/data.py). Bad images, wrong sizes, truncated files and special files
(FIFO, folder, /dev/zero, socket, huge) each end in one line naming the cause
and a fix, with a non-zero exit from the CLI; nothing hangs."""
from __future__ import annotations

import io
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import pytest
from PIL import Image

from tinyml.deploy.inputs import InputSpec, load_input
from tinyml.errors import TinymlError
from tinyml.tinyvit.data import load_dataset

SPEC = InputSpec((1, 8, 8, 1), "int8", 1 / 255, -128)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VIT = os.path.join(ROOT, "tinyvit", "pretrained", "vit_digits.tflite")   # input 1x28x28x1 int8


def _png_bytes(w: int = 12, h: int = 10, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w)).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _zero_png_cut() -> bytes:
    """A 12x10 black PNG cut inside its IDAT chunk: zlib still yields every row
    from the bytes left, so only the missing CRC and IEND show the truncation."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(buf, "PNG")
    return buf.getvalue()[:50]


def _png_header_only(w: int, h: int) -> bytes:
    """A PNG signature + IHDR (+ IEND) claiming w x h pixels, with no image data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IEND", b""))


def _one_line(exc: pytest.ExceptionInfo) -> str:
    line = exc.value.line()
    assert "\n" not in line and line.startswith("error: ")
    return line


@pytest.fixture
def specials(tmp_path):
    fifo = tmp_path / "pipe.bin"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.bin"
    folder.mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock.bin"))
    yield {"fifo": str(fifo), "folder": str(folder), "socket": str(tmp_path / "sock.bin"), "dev": "/dev/zero"}
    sock.close()


@pytest.mark.timeout(30)
def test_serial_inputs_special_files(specials, tmp_path):
    expect = {"fifo": "is a named pipe, not a file", "folder": "is a folder, not a file",
              "socket": "is a socket, not a file", "dev": "is a device, not a file"}
    for spec in (SPEC, None):
        for key, path in specials.items():
            with pytest.raises(TinymlError) as exc:
                load_input(path, spec)
            assert expect[key] in _one_line(exc), (key, spec)
    with pytest.raises(TinymlError, match="does not exist"):
        load_input(str(tmp_path / "nope.bin"), SPEC)
    # the same for names with an image extension
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(TinymlError, match="is a named pipe"):
        load_input(str(tmp_path / "pipe.png"), SPEC)


@pytest.mark.timeout(30)
def test_serial_inputs_wrong_sizes_and_bad_images(tmp_path):
    short = tmp_path / "short.bin"
    short.write_bytes(bytes(40))
    with pytest.raises(TinymlError) as exc:
        load_input(str(short), SPEC)
    assert "raw input has 40 bytes, the model input needs 64 (truncated? shape [1, 8, 8, 1], int8)" in _one_line(exc)
    long = tmp_path / "long.bin"
    long.write_bytes(bytes(65))
    with pytest.raises(TinymlError, match=r"has 65 bytes, the model input needs 64 \(shape"):
        load_input(str(long), SPEC)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(TinymlError, match="input file is empty"):
        load_input(str(empty), None)
    huge = tmp_path / "huge.bin"
    with open(huge, "wb") as f:
        f.truncate(17 * 1024 * 1024)      # sparse: refused on its size, not read
    with pytest.raises(TinymlError, match="more than the 16 MiB allowed"):
        load_input(str(huge), None)
    assert load_input(str(tmp_path / "long.bin"), None) == bytes(65)   # no model: sent as is

    good = _png_bytes()
    (tmp_path / "ok.png").write_bytes(good)
    assert len(load_input(str(tmp_path / "ok.png"), SPEC)) == 64
    cases = {
        "truncated.png": (good[: len(good) // 2], "cannot decode image"),
        "cut_black.png": (_zero_png_cut(), "cannot decode image (Truncated File Read)"),
        "text.png": (b"hello, not an image\n", "cannot decode image (cannot identify image file"),
        "zero.png": (bytes(1000), "cannot decode image"),
        "bomb.png": (_png_header_only(100_000, 100_000), "cannot decode image"),
        "big.png": (_png_header_only(8000, 8000), "image is 8000 x 8000 pixels, more than 50,000,000 pixels"),
    }
    for name, (data, needle) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(TinymlError) as exc:
            load_input(str(tmp_path / name), SPEC)
        assert needle in _one_line(exc), name
    for bad in ("nan,1", "1,0", "0,inf", "abc", "1,2,3"):
        with pytest.raises(TinymlError, match="bad --pixels value"):
            load_input(str(tmp_path / "ok.png"), SPEC, pixels=bad)


@pytest.mark.timeout(120)
def test_run_cli_refuses_bad_inputs_before_the_port(tmp_path):
    """One line and exit 2 for each; the port does not exist, so any port access would say so."""
    fifo = tmp_path / "fifo.bin"
    os.mkfifo(fifo)
    (tmp_path / "short.bin").write_bytes(bytes(100))
    (tmp_path / "cut.png").write_bytes(_png_bytes()[:50])
    port = str(tmp_path / "ttyUSB9")
    cases = [
        ([str(fifo)], "is a named pipe, not a file"),
        (["/dev/zero"], "is a device, not a file"),
        ([str(tmp_path)], "is a folder, not a file"),
        (["--model", VIT, str(tmp_path / "short.bin")], "raw input has 100 bytes, the model input needs 784"),
        (["--model", VIT, str(tmp_path / "cut.png")], "cannot decode image"),
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for args, needle in cases:
        r = subprocess.run([sys.executable, "-m", "tinyml.cli", "run", "--port", port, *args],
                           capture_output=True, text=True, timeout=60, env=env, cwd=tempfile.gettempdir())
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr and r.stdout == ""
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, r.stderr)


def _class_tree(root, per_class: int = 10) -> None:
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            (root / c / f"{i}.png").write_bytes(_png_bytes(seed=i))


@pytest.mark.timeout(60)
def test_image_folder_dataset_bad_files(tmp_path):
    cases = {}
    for name, setup, needle in [
        ("fifo", lambda d: os.mkfifo(d / "a" / "x.png"), "is a named pipe, not a file"),
        ("dir", lambda d: (d / "a" / "x.png").mkdir(), "is a folder, not a file"),
        ("dev", lambda d: os.symlink("/dev/zero", d / "a" / "x.png"), "is a device, not a file"),
        ("cut", lambda d: (d / "b" / "x.png").write_bytes(_png_bytes()[:60]), "cannot decode image"),
        ("cut_black", lambda d: (d / "b" / "x.png").write_bytes(_zero_png_cut()), "cannot decode image"),
        ("text", lambda d: (d / "b" / "x.jpg").write_text("not a jpeg"), "cannot decode image"),
        ("empty_class", lambda d: (d / "c").mkdir(), "class folder 'c' has no images"),
    ]:
        root = tmp_path / name
        _class_tree(root)
        setup(root)
        cases[name] = (root, needle)
    few = tmp_path / "few"
    _class_tree(few, per_class=3)
    cases["few"] = (few, "6 images are too few: the 80/10/10 split leaves no validation or test image")
    for name, (root, needle) in cases.items():
        with pytest.raises(TinymlError) as exc:
            load_dataset(str(root), 16, 1)
        assert needle in _one_line(exc), name
    ds = load_dataset(str(_ok_tree(tmp_path)), 16, 1)      # the same tree without the bad file loads
    assert len(ds.train.x) + len(ds.val.x) + len(ds.test.x) == 20


def _ok_tree(tmp_path):
    root = tmp_path / "ok"
    _class_tree(root)
    return root


def _yolo(root, label: bytes | None = b"0 0.5 0.5 0.2 0.2\n", n: int = 4):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(n):
        (root / "images" / f"{i}.png").write_bytes(_png_bytes(seed=i))
        (root / "labels" / f"{i}.txt").write_bytes(b"0 0.5 0.5 0.2 0.2\n")
    if label is not None:
        (root / "labels" / "0.txt").write_bytes(label)


@pytest.mark.timeout(60)
def test_yolo_dataset_bad_labels(tmp_path):
    _yolo(tmp_path / "ok")
    assert load_dataset(str(tmp_path / "ok"), 16, 1).task == "detect"
    for name, label, needle in [
        ("binary", b"\xff\xfe\x00\x01", "YOLO label file is not UTF-8 text (byte 0)"),
        ("nan", b"0 nan 0.5 0.2 0.2\n", "YOLO label line 1 is out of range"),
        ("neg", b"-1 0.5 0.5 0.2 0.2\n", "YOLO label line 1 is out of range"),
        ("big", b"0 0.5 0.5 1.5 0.2\n", "YOLO label line 1 is out of range"),
        ("four", b"0 0.5 0.5 0.2\n", "bad YOLO label line 1"),
        ("word", b"cat 0.5 0.5 0.2 0.2\n", "bad YOLO label line 1"),
    ]:
        root = tmp_path / name
        _yolo(root, label)
        with pytest.raises(TinymlError) as exc:
            load_dataset(str(root), 16, 1)
        assert needle in _one_line(exc), name
    root = tmp_path / "fifo_label"
    _yolo(root, None)
    os.remove(root / "labels" / "1.txt")
    os.mkfifo(root / "labels" / "1.txt")
    with pytest.raises(TinymlError, match="is a named pipe, not a file"):
        load_dataset(str(root), 16, 1)
    root = tmp_path / "names"
    _yolo(root, b"3 0.5 0.5 0.2 0.2\n")
    (root / "classes.txt").write_text("a\nb\n")
    with pytest.raises(TinymlError, match="classes.txt names 2 classes, the labels use class 3"):
        load_dataset(str(root), 16, 1)


@pytest.mark.timeout(60)
def test_coco_dataset_bad_json(tmp_path):
    for i in range(4):
        (tmp_path / f"{i}.png").write_bytes(_png_bytes(seed=i))
    good = {"images": [{"id": i, "file_name": f"{i}.png"} for i in range(4)],
            "annotations": [{"image_id": 0, "category_id": 1, "bbox": [1, 1, 4, 4]}],
            "categories": [{"id": 1, "name": "x"}]}
    (tmp_path / "ok.json").write_text(json.dumps(good))
    assert load_dataset(str(tmp_path / "ok.json"), 16, 1).class_names == ["x"]

    def variant(**kw):
        d = json.loads(json.dumps(good))
        for k, v in kw.items():
            d[k] = v
        return d
    cases = {
        "trunc.json": (json.dumps(good)[:40], "not a readable COCO json (JSONDecodeError"),
        "list.json": ("[1, 2]", "not a readable COCO json (TypeError"),
        "nobbox.json": (variant(annotations=[{"image_id": 0, "category_id": 1}]), "annotation 0 is unusable"),
        "badcat.json": (variant(annotations=[{"image_id": 0, "category_id": 5, "bbox": [1, 1, 4, 4]}]),
                        "annotation 0 is unusable (KeyError: 5"),
        "negbox.json": (variant(annotations=[{"image_id": 0, "category_id": 1, "bbox": [1, 1, -4, 4]}]),
                        "annotation 0 has bbox [1, 1, -4, 4]"),
        "nanbox.json": (variant(annotations=[{"image_id": 0, "category_id": 1, "bbox": [1, "x", 4, 4]}]),
                        "annotation 0 is unusable (ValueError"),
        "intname.json": (variant(images=[{"id": 0, "file_name": 7}]), "image entry 0 needs an id and a file_name"),
        "missing.json": (variant(images=[{"id": 0, "file_name": "gone.png"}]),
                         "image gone.png listed in the json is missing"),
    }
    for name, (doc, needle) in cases.items():
        (tmp_path / name).write_text(doc if isinstance(doc, str) else json.dumps(doc))
        with pytest.raises(TinymlError) as exc:
            load_dataset(str(tmp_path / name), 16, 1)
        assert needle in _one_line(exc), name
    os.mkfifo(tmp_path / "pipe.json")
    with pytest.raises(TinymlError, match="COCO json .* is a named pipe, not a file"):
        load_dataset(str(tmp_path / "pipe.json"), 16, 1)
    with pytest.raises(TinymlError, match="unknown dataset '/dev/null/x'"):
        load_dataset("/dev/null/x", 16, 1)
