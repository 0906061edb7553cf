"""A small image-folder dataset the search has never seen: coloured shapes on noise.

Three classes (circle, square, triangle) at random position and size on a noisy
dark background of random tint; each class leans to one colour channel
(circle red, square green, triangle blue, with random variation), so a short
training learns it. Written as PNG, JPEG and BMP files under ROOT/<class>/.
Deterministic for a seed. Not derived from any shipped data.
"""
from __future__ import annotations

import os

import numpy as np

CLASSES = ("circle", "square", "triangle")


def draw(kind: str, size: int, rng: np.random.Generator, channels: int = 3):
    from PIL import Image, ImageDraw
    bg = rng.integers(0, 90, 3)
    noise = rng.normal(0, 18, (size, size, 3))
    arr = np.clip(bg[None, None, :] + noise, 0, 255).astype(np.uint8)
    im = Image.fromarray(arr, "RGB")
    d = ImageDraw.Draw(im)
    r = int(rng.integers(size // 6, size // 3))
    cx, cy = (int(v) for v in rng.integers(r + 1, size - r - 1, 2))
    fg = rng.integers(60, 150, 3)
    fg[CLASSES.index(kind)] = rng.integers(200, 256)
    fg = tuple(int(v) for v in fg)
    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif kind == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fg)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    return im.convert("L") if channels == 1 else im


def make_shapes(root: str, per_class: int = 100, size: int = 96, seed: int = 0,
                channels: int = 3) -> str:
    rng = np.random.default_rng(seed)
    exts = (".png", ".jpg", ".bmp")
    for kind in CLASSES:
        os.makedirs(os.path.join(root, kind), exist_ok=True)
        for i in range(per_class):
            im = draw(kind, size, rng, channels)
            path = os.path.join(root, kind, f"{kind}_{i:04d}{exts[i % 3]}")
            im.save(path, quality=95) if path.endswith(".jpg") else im.save(path)
    return root


def make_yolo(root: str, count: int = 40, size: int = 64, seed: int = 0) -> str:
    """A YOLO folder: ROOT/images/*.png (RGB) and ROOT/labels/*.txt, one to two
    filled squares per image, class = colour channel (0 red, 1 green)."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    os.makedirs(os.path.join(root, "labels"), exist_ok=True)
    for n in range(count):
        im = Image.fromarray(rng.integers(0, 60, (size, size, 3)).astype(np.uint8), "RGB")
        d = ImageDraw.Draw(im)
        rows = []
        for k in range(int(rng.integers(1, 3))):
            s = int(rng.integers(size // 6, size // 3))
            x0 = int(rng.integers(0, size // 2 - s)) + (size // 2) * k
            y0 = int(rng.integers(0, size - s))
            cls = int(rng.integers(0, 2))
            colour = [40, 40, 40]
            colour[cls] = 230
            d.rectangle([x0, y0, x0 + s - 1, y0 + s - 1], fill=tuple(colour))
            rows.append(f"{cls} {(x0 + s / 2) / size:.6f} {(y0 + s / 2) / size:.6f} {s / size:.6f} {s / size:.6f}")
        im.save(os.path.join(root, "images", f"{n:04d}.png"))
        with open(os.path.join(root, "labels", f"{n:04d}.txt"), "w") as f:
            f.write("\n".join(rows) + "\n")
    return root
