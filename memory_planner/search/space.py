"""The tinyvit search space: patch size, width, depth, heads, MLP ratio, low-rank ranks.

Ranks are searched as fractions of the embedding width (0 = full rank), the
patch-embedding rank as absolute values below min(patch*patch*channels, D).
Every sampled config is one `memory_planner.search.vit_ir` models exactly.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from tinyml.errors import TinymlError
from tinyml.tinyvit.config import ViTConfig

RANK_KEYS = ("qkv_rank", "proj_rank", "mlp_rank")


@dataclass
class SearchSpace:
    image_size: int
    channels: int
    num_classes: int
    activation: str = "relu"
    pool: str = "mean"
    head: str = "classify"
    patch_sizes: tuple[int, ...] = ()
    embed_dims: tuple[int, ...] = (16, 24, 32, 48, 64, 96, 128)
    depths: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    heads: tuple[int, ...] = (1, 2, 4)
    mlp_ratios: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0)
    rank_fractions: tuple[float, ...] = (0.0, 0.125, 0.25, 0.5)
    patch_ranks: tuple[int, ...] = (0, 4, 8, 16)
    min_head_dim: int = 4
    train_hints: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.patch_sizes:
            self.patch_sizes = tuple(p for p in range(2, self.image_size // 2 + 1)
                                     if self.image_size % p == 0)
        if not self.patch_sizes:
            raise TinymlError(f"no patch size divides the {self.image_size}x{self.image_size} "
                              "input into at least 2x2 patches", "search space",
                              "use a larger or non-prime input size")

    # ------------------------------------------------------------------
    def _ranks(self, d: int) -> list[int]:
        out = sorted({0} | {int(round(f * d)) for f in self.rank_fractions if f > 0
                            and int(round(f * d)) >= 2})
        return out

    def _patch_ranks(self, p: int, d: int) -> list[int]:
        k = p * p * self.channels
        return [r for r in self.patch_ranks if r == 0 or (2 <= r < min(k, d))]

    def valid(self, cfg: ViTConfig) -> bool:
        try:
            cfg.validate()
        except TinymlError:
            return False
        return cfg.grid >= 2 and cfg.head_dim >= self.min_head_dim and cfg.mlp_dim >= 2

    def make(self, patch: int, dim: int, depth: int, heads: int, mlp_ratio: float,
             qkv: int = 0, proj: int = 0, mlp: int = 0, patch_rank: int = 0) -> ViTConfig:
        name = (f"vit_p{patch}_d{dim}_l{depth}_h{heads}_m{mlp_ratio:g}"
                + (f"_q{qkv}" if qkv else "") + (f"_o{proj}" if proj else "")
                + (f"_f{mlp}" if mlp else "") + (f"_e{patch_rank}" if patch_rank else ""))
        return ViTConfig(name=name, image_size=self.image_size, channels=self.channels,
                         patch_size=patch, embed_dim=dim, depth=depth, num_heads=heads,
                         mlp_ratio=float(mlp_ratio), activation=self.activation, qkv_rank=qkv,
                         proj_rank=proj, mlp_rank=mlp, patch_rank=patch_rank, pool=self.pool,
                         num_classes=self.num_classes, head=self.head, train=dict(self.train_hints))

    def sample(self, rng: random.Random) -> ViTConfig:
        for _ in range(1000):
            p = rng.choice(self.patch_sizes)
            d = rng.choice(self.embed_dims)
            h = rng.choice(self.heads)
            if d % h or d // h < self.min_head_dim:
                continue
            ranks = self._ranks(d)
            cfg = self.make(p, d, rng.choice(self.depths), h, rng.choice(self.mlp_ratios),
                            rng.choice(ranks), rng.choice(ranks), rng.choice(ranks),
                            rng.choice(self._patch_ranks(p, d)))
            if self.valid(cfg):
                return cfg
        raise TinymlError("could not sample a valid config", "search space", "widen the space")

    def with_depths(self, cfg: ViTConfig) -> list[ViTConfig]:
        """`cfg` at every depth of the space (valid ones)."""
        out = []
        for depth in self.depths:
            c = self.make(cfg.patch_size, cfg.embed_dim, depth, cfg.num_heads, cfg.mlp_ratio,
                          cfg.qkv_rank, cfg.proj_rank, cfg.mlp_rank, cfg.patch_rank)
            if self.valid(c):
                out.append(c)
        return out

    def size(self) -> int:
        n = 0
        for p, d, h in itertools.product(self.patch_sizes, self.embed_dims, self.heads):
            if d % h or d // h < self.min_head_dim:
                continue
            n += (len(self.depths) * len(self.mlp_ratios) * len(self._ranks(d)) ** 3
                  * len(self._patch_ranks(p, d)))
        return n

    def full_rank(self, patch: int) -> list[ViTConfig]:
        """Every full-rank config with a fixed patch size (the comparison baseline's space)."""
        out = []
        for d, depth, h, m in itertools.product(self.embed_dims, self.depths, self.heads,
                                                self.mlp_ratios):
            if d % h or d // h < self.min_head_dim:
                continue
            cfg = self.make(patch, d, depth, h, m)
            if self.valid(cfg):
                out.append(cfg)
        return out

    def mutate(self, cfg: ViTConfig, rng: random.Random) -> ViTConfig:
        """One or two knobs moved to a neighbouring value."""
        knobs = _knobs(cfg)
        choices = {"patch": self.patch_sizes, "dim": self.embed_dims, "depth": self.depths,
                   "heads": self.heads, "mlp_ratio": self.mlp_ratios}
        for _ in range(100):
            k = dict(knobs)
            for key in rng.sample(sorted(k), rng.choice([1, 2])):
                if key in choices:
                    vals = list(choices[key])
                    i = vals.index(k[key]) if k[key] in vals else 0
                    k[key] = vals[max(0, min(len(vals) - 1, i + rng.choice([-1, 1])))]
                elif key == "patch_rank":
                    k[key] = rng.choice(self._patch_ranks(k["patch"], k["dim"]))
                else:
                    k[key] = rng.choice(self._ranks(k["dim"]))
            new = self.make(**self._repair(k, knobs["dim"]))
            if self.valid(new) and new.name != cfg.name:
                return new
        return cfg

    def _repair(self, k: dict, old_dim: int) -> dict:
        """Ranks follow the width: keep the same fraction when the width moved."""
        for key in ("qkv", "proj", "mlp"):
            if k[key] and k[key] not in self._ranks(k["dim"]):
                frac = k[key] / old_dim
                k[key] = min(self._ranks(k["dim"]), key=lambda r: abs(r - frac * k["dim"]))
        if k["patch_rank"] not in self._patch_ranks(k["patch"], k["dim"]):
            k["patch_rank"] = 0
        return k

    def crossover(self, a: ViTConfig, b: ViTConfig, rng: random.Random) -> ViTConfig:
        """Each knob from one parent or the other (ranks snapped to the child's width)."""
        ka, kb = _knobs(a), _knobs(b)
        for _ in range(100):
            pick = {key: rng.random() < 0.5 for key in ka}
            k = {key: (ka if pick[key] else kb)[key] for key in ka}
            rank_parent = ka if pick["qkv"] else kb
            new = self.make(**self._repair(k, rank_parent["dim"]))
            if self.valid(new):
                return new
        return a


def _knobs(cfg: ViTConfig) -> dict:
    return dict(patch=cfg.patch_size, dim=cfg.embed_dim, depth=cfg.depth, heads=cfg.num_heads,
                mlp_ratio=cfg.mlp_ratio, qkv=cfg.qkv_rank, proj=cfg.proj_rank, mlp=cfg.mlp_rank,
                patch_rank=cfg.patch_rank)


def space_for_dataset(name: str) -> SearchSpace:
    """The default space for a bundled dataset."""
    if name == "digits":
        return SearchSpace(image_size=28, channels=1, num_classes=10)
    if name == "digits8":
        return SearchSpace(image_size=8, channels=1, num_classes=10, patch_sizes=(2, 4),
                           embed_dims=(16, 24, 32, 48, 64), depths=(1, 2, 3, 4))
    if name in ("digits-canvas", "digits-canvas-det"):
        # 128x128: the int8 input alone is 16 KiB and the token tensors grow as
        # (128/patch)^2 x width (patch 8, width 256: about 260 KiB), so 64 / 128 / 320 KiB
        # budgets bind on patch and width; under the task's MAC cap the widest fit only low-rank.
        return SearchSpace(image_size=128, channels=1, num_classes=10, patch_sizes=(8, 16, 32),
                           embed_dims=(16, 24, 32, 48, 64, 96, 128, 192, 256), depths=(1, 2, 3, 4),
                           head="detect" if name.endswith("-det") else "classify")
    raise TinymlError(f"search does not know dataset {name!r}", "--dataset",
                      "use digits (28x28 MNIST digits), digits8 (8x8 scikit-learn digits) or "
                      "digits-canvas / digits-canvas-det (128x128 canvases)")


MAX_TOKENS = 1024     # finer patch grids than this are left out of a user-data space


def space_for_data(image_size: int, channels: int, num_classes: int, task: str = "classify") -> SearchSpace:
    """The space for a user's dataset: its input size and channels, its class count.

    Patch sizes are the divisors of the side that leave 2x2 to 32x32 patches (at
    most MAX_TOKENS tokens); a detector's patch is its grid cell, so detection
    keeps patches of 4 pixels or more (cells large enough to hold an object centre)."""
    patches = tuple(p for p in range(2, image_size // 2 + 1)
                    if image_size % p == 0 and (image_size // p) ** 2 <= MAX_TOKENS
                    and (task != "detect" or p >= 4))
    if not patches:
        raise TinymlError(f"no patch size divides the {image_size}x{image_size} input into 2x2 to 32x32 "
                          f"patches{' of 4 pixels or more' if task == 'detect' else ''}", "--input-size",
                          "use an input side with small divisors, e.g. --input-size 96x96")
    return SearchSpace(image_size=image_size, channels=channels, num_classes=num_classes, head=task,
                       patch_sizes=patches)
