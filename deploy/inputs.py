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

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm")


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
    if not os.path.isfile(path):
        raise TinymlError(f"input file {path} does not exist", path, "pass an image or a raw .bin")
    ext = os.path.splitext(path)[1].lower()
    if ext not in IMAGE_EXTS:
        with open(path, "rb") as f:
            data = f.read()
        if spec is not None and len(data) not in (spec.nbytes, 4 * spec.nbytes):
            raise TinymlError(f"raw input has {len(data)} bytes, the model input needs {spec.nbytes}", path,
                              f"pass a {spec.nbytes}-byte file (shape {list(spec.shape)}), or for an "
                              f"MLPerf Tiny ad01 device a {4 * spec.nbytes}-byte float32 window")
        return data
    if spec is None:
        raise TinymlError("an image input needs the model's input shape and quantization", path,
                          "pass --model MODEL.tflite (or a raw .bin input)")
    return quantize_image(path, spec, pixels)


def quantize_image(path: str, spec: InputSpec, pixels: str = "auto") -> bytes:
    from PIL import Image, UnidentifiedImageError
    if len(spec.shape) != 4:
        raise TinymlError(f"model input shape {list(spec.shape)} is not an image (N,H,W,C)", path,
                          "pass a raw .bin input instead")
    _, h, w, c = spec.shape
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise TinymlError(f"cannot read image ({exc})", path, "pass a PNG, JPEG or BMP file") from None
    if c not in (1, 3):
        raise TinymlError(f"model input has {c} channels; images give 1 or 3", path, "pass a raw .bin input")
    img = img.convert("L" if c == 1 else "RGB")
    if img.size != (w, h):
        img = img.resize((w, h), Image.BILINEAR)
    px = np.asarray(img, dtype=np.uint8).reshape(h, w, c)
    if pixels == "raw":
        return px.tobytes()
    qmin, qmax = (-128, 127) if spec.dtype == "int8" else (0, 255)
    if pixels == "auto":
        lo, hi = (qmin - spec.zero_point) * spec.scale, (qmax - spec.zero_point) * spec.scale
    else:
        try:
            lo, hi = (float(v) for v in pixels.split(","))
        except ValueError:
            raise TinymlError(f"bad --pixels value {pixels!r}", path, "use auto, raw, or LO,HI (e.g. 0,1)") from None
    real = lo + px.astype(np.float64) / 255.0 * (hi - lo)
    q = np.clip(np.round(real / spec.scale) + spec.zero_point, qmin, qmax)
    return q.astype(np.int8 if spec.dtype == "int8" else np.uint8).tobytes()
