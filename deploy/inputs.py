"""Turn user inputs (images, raw .bin) into the bytes of a model's input tensor.

Images (PNG/JPEG/BMP, via Pillow) are converted to the model's channel count,
resized to its H x W, and quantized with the input tensor's scale and zero
point. Which real range a pixel maps to is not stored in a .tflite; the
default (`auto`) maps 0..255 onto the range the int8 input can represent,
(qmin - zp) * scale .. (qmax - zp) * scale, which is what the MLPerf Tiny and
TFLM vision models use ([0,1] for VWW, [0,255] for the ResNet, [-1,1] for
person_detect). `raw` sends the decoded pixel bytes unchanged (the TFLM
person_detection test does this).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from tinyml.errors import TinymlError
from tinyml.userfiles import read_bounded, regular_file

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm")
# Bounds on what is read: a raw input is a model input (MCU SRAM is a few MiB
# at most); an image is decoded and resized, so its file may be larger.
MAX_RAW_BYTES = 16 * 1024 * 1024
MAX_IMAGE_BYTES = 64 * 1024 * 1024
MAX_IMAGE_PIXELS = 50_000_000


@dataclass
class InputSpec:
    shape: tuple[int, ...]      # e.g. (1, 96, 96, 1)
    dtype: str                  # "int8" | "uint8"
    scale: float
    zero_point: int

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape))


def input_spec(model_path: str) -> InputSpec:
    from tinyml.codegen.importer import import_tflite
    g = import_tflite(model_path)
    t = g.t(g.inputs[0])
    if t.dtype not in ("int8", "uint8") or t.quant is None:
        raise TinymlError(f"model input is {t.dtype} without quantization; `tinyml run` sends int8/uint8",
                          model_path, "use an int8-quantized model")
    return InputSpec(tuple(int(d) for d in t.shape), t.dtype, float(t.quant.s), int(t.quant.zp))


def load_input(path: str, spec: InputSpec | None, pixels: str = "auto") -> bytes:
    """Bytes to send for one INPUT file."""
    fix = "pass an image (PNG/JPEG/BMP) or a raw .bin input"
    ext = os.path.splitext(path)[1].lower()
    if ext not in IMAGE_EXTS:
        if spec is not None:
            st = regular_file(path, "input file", fix)
            if st.st_size not in (spec.nbytes, 4 * spec.nbytes):
                short = "truncated? " if 0 < st.st_size < spec.nbytes else ""
                raise TinymlError(f"raw input has {st.st_size} bytes, the model input needs {spec.nbytes} "
                                  f"({short}shape {list(spec.shape)}, {spec.dtype})", path,
                                  f"pass a {spec.nbytes}-byte file, an image, or for an MLPerf Tiny ad01 "
                                  f"device a {4 * spec.nbytes}-byte float32 window")
        data = read_bounded(path, "input file", fix, MAX_RAW_BYTES if spec is None else 4 * spec.nbytes)
        if not data:
            raise TinymlError("input file is empty", path, fix)
        if spec is not None and len(data) not in (spec.nbytes, 4 * spec.nbytes):
            raise TinymlError(f"raw input changed size while being read ({len(data)} bytes)", path, fix)
        return data
    regular_file(path, "input image", fix, MAX_IMAGE_BYTES)
    if spec is None:
        raise TinymlError("an image input needs the model's input shape and quantization", path,
                          "pass --model MODEL.tflite (or a raw .bin input)")
    return quantize_image(path, spec, pixels)


def pixel_range(pixels: str, where: str) -> tuple[float, float] | None:
    """--pixels LO,HI as two finite floats with LO < HI (None for auto/raw)."""
    if pixels in ("auto", "raw"):
        return None
    try:
        lo, hi = (float(v) for v in pixels.split(","))
    except ValueError:
        lo = hi = float("nan")
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise TinymlError(f"bad --pixels value {pixels!r}", where,
                          "use auto, raw, or LO,HI with finite LO < HI (e.g. 0,1)")
    return lo, hi


def quantize_image(path: str, spec: InputSpec, pixels: str = "auto") -> bytes:
    from PIL import Image
    if len(spec.shape) != 4:
        raise TinymlError(f"model input shape {list(spec.shape)} is not an image (N,H,W,C)", path,
                          "pass a raw .bin input instead")
    _, h, w, c = spec.shape
    if c not in (1, 3):
        raise TinymlError(f"model input has {c} channels; images give 1 or 3", path, "pass a raw .bin input")
    rng = pixel_range(pixels, path)
    try:
        with Image.open(path) as probe:
            if probe.width * probe.height > MAX_IMAGE_PIXELS:
                raise TinymlError(f"image is {probe.width} x {probe.height} pixels, more than "
                                  f"{MAX_IMAGE_PIXELS:,} pixels", path, "pass a smaller image")
            probe.verify()      # chunk CRCs and the end marker: a truncated PNG may otherwise decode
        with Image.open(path) as img:
            img.load()
            img = img.convert("L" if c == 1 else "RGB")
            if img.size != (w, h):
                img = img.resize((w, h), Image.BILINEAR)
    except TinymlError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError,
        # EOFError, DecompressionBombError, ... for corrupt or truncated files
        detail = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise TinymlError(f"cannot decode image ({detail})", path,
                          "pass a complete PNG, JPEG or BMP file") from None
    px = np.asarray(img, dtype=np.uint8).reshape(h, w, c)
    if pixels == "raw":
        return px.tobytes()
    qmin, qmax = (-128, 127) if spec.dtype == "int8" else (0, 255)
    if rng is None:
        lo, hi = (qmin - spec.zero_point) * spec.scale, (qmax - spec.zero_point) * spec.scale
    else:
        lo, hi = rng
    real = lo + px.astype(np.float64) / 255.0 * (hi - lo)
    q = np.clip(np.round(real / spec.scale) + spec.zero_point, qmin, qmax)
    return q.astype(np.int8 if spec.dtype == "int8" else np.uint8).tobytes()
