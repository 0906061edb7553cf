"""`ViTConfig`: every knob of the tinyvit model family in one JSON-serialisable object.

Rank knobs follow one rule: 0 means full rank; r > 0 replaces a Dense(in->out)
by Dense(in->r, no bias) followed by Dense(r->out). `patch_rank` does the same
for the patch embedding (a Conv2D with r filters, no bias, then Dense(r->D)).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

from tinyml.errors import TinymlError

ACTIVATIONS = ("gelu", "relu", "hard_swish")
POOLS = ("mean", "cls")
HEADS = ("classify", "detect")


@dataclass
class ViTConfig:
    name: str = "vit"
    image_size: int = 28
    channels: int = 1
    patch_size: int = 4
    embed_dim: int = 64
    depth: int = 4
    num_heads: int = 2
    mlp_ratio: float = 2.0
    activation: str = "relu"
    qkv_rank: int = 0
    proj_rank: int = 0
    mlp_rank: int = 0
    patch_rank: int = 0
    pool: str = "mean"
    num_classes: int = 10
    head: str = "classify"
    # detect head only: False = one (G, G, 5 + C) output tensor; True = three
    # output tensors objectness (G, G, 1), box (G, G, 4), class logits (G, G, C),
    # so each gets its own int8 scale (training still sees them concatenated)
    det_split: bool = False
    # training hints (not architecture); kept here so one JSON reproduces a run
    train: dict = field(default_factory=dict)

    # ---- derived -------------------------------------------------------
    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    @property
    def num_tokens(self) -> int:
        return self.num_patches + (1 if self.pool == "cls" else 0)

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def mlp_dim(self) -> int:
        return int(round(self.embed_dim * self.mlp_ratio))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, self.channels)

    @property
    def det_channels(self) -> int:
        """Per-cell detector outputs: objectness, tx, ty, tw, th, then class logits."""
        return 5 + self.num_classes

    # ---- checks --------------------------------------------------------
    def validate(self, where: str = "ViTConfig") -> "ViTConfig":
        def bad(cause: str, fix: str) -> TinymlError:
            return TinymlError(cause, where, fix)

        for key in ("image_size", "channels", "patch_size", "embed_dim", "depth",
                    "num_heads", "num_classes"):
            v = getattr(self, key)
            if not isinstance(v, int) or v <= 0:
                raise bad(f"{key} must be a positive integer, got {v!r}", f"set {key} >= 1")
        for key in ("qkv_rank", "proj_rank", "mlp_rank", "patch_rank"):
            v = getattr(self, key)
            if not isinstance(v, int) or v < 0:
                raise bad(f"{key} must be an integer >= 0, got {v!r}", "use 0 for full rank")
        if self.image_size % self.patch_size:
            raise bad(f"image_size {self.image_size} is not a multiple of patch_size "
                      f"{self.patch_size}", "pick a patch size that divides the image size")
        if self.embed_dim % self.num_heads:
            raise bad(f"embed_dim {self.embed_dim} is not divisible by num_heads "
                      f"{self.num_heads}", "pick num_heads dividing embed_dim")
        if self.mlp_ratio <= 0:
            raise bad(f"mlp_ratio must be > 0, got {self.mlp_ratio}", "use e.g. 2.0")
        if self.activation not in ACTIVATIONS:
            raise bad(f"unknown activation {self.activation!r}", f"use one of {ACTIVATIONS}")
        if self.pool not in POOLS:
            raise bad(f"unknown pool {self.pool!r}", f"use one of {POOLS}")
        if self.head not in HEADS:
            raise bad(f"unknown head {self.head!r}", f"use one of {HEADS}")
        if not isinstance(self.det_split, bool):
            raise bad(f"det_split must be true or false, got {self.det_split!r}",
                      "use true for separate objectness/box/class output tensors")
        if self.head == "detect" and self.pool == "cls":
            raise bad("the detect head predicts from patch tokens and has no use for a cls "
                      "token", "set pool to 'mean' for detectors")
        return self

    # ---- JSON ----------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> "ViTConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise TinymlError(f"unknown config keys {unknown}", where,
                              f"valid keys are {sorted(known)}")
        cfg = cls(**d)
        if isinstance(cfg.mlp_ratio, int):
            cfg.mlp_ratio = float(cfg.mlp_ratio)
        return cfg.validate(where)

    @classmethod
    def from_json(cls, text: str, where: str = "config") -> "ViTConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TinymlError(f"config is not valid JSON ({exc.msg} at line {exc.lineno})",
                              where, "fix the JSON syntax") from None
        if not isinstance(d, dict):
            raise TinymlError("config JSON must be an object", where, "wrap keys in {...}")
        return cls.from_dict(d, where)

    def save(self, path: str) -> None:
        with open(path, "w") as f:
            f.write(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str) -> "ViTConfig":
        if not os.path.isfile(path):
            raise TinymlError(f"config file not found: {path}", path,
                              "pass a ViTConfig JSON file or a shipped model name")
        with open(path) as f:
            return cls.from_json(f.read(), where=path)


def preset(name: str) -> ViTConfig:
    """Named configurations (the shipped defaults and tiny test configs)."""
    presets = {
        "vit_digits": ViTConfig(name="vit_digits", image_size=28, channels=1, patch_size=4,
                                embed_dim=64, depth=4, num_heads=4, mlp_ratio=2.0,
                                activation="relu", pool="mean", num_classes=10),
        "vit_digits_det": ViTConfig(name="vit_digits_det", image_size=64, channels=1,
                                    patch_size=8, embed_dim=64, depth=4, num_heads=4,
                                    mlp_ratio=2.0, activation="relu", pool="mean",
                                    num_classes=10, head="detect", det_split=True),
        # 224x224 RGB, 16x16 patches (196 tokens): the patch-embedding
        # decomposition / --stream-input demonstration for the STM32F746
        "vit_224_stream": ViTConfig(name="vit_224_stream", image_size=224, channels=3,
                                    patch_size=16, embed_dim=64, depth=4, num_heads=2,
                                    mlp_ratio=2.0, activation="relu", pool="mean",
                                    num_classes=10),
        "vit_tiny": ViTConfig(name="vit_tiny", image_size=28, channels=1, patch_size=7,
                              embed_dim=16, depth=1, num_heads=2, mlp_ratio=2.0,
                              activation="relu", num_classes=10),
    }
    if name not in presets:
        raise TinymlError(f"unknown model name {name!r}", "--model",
                          f"use a config JSON path or one of {sorted(presets)}")
    return presets[name].validate(name)
