"""A one-shot weight-sharing supernet over the tinyvit family (classifiers).

One set of weights covers every sub-network (a `ViTConfig`) up to the largest
width, depth, head count, MLP width and ranks of a `SupernetSpace`:

- width, MLP width, ranks: a sub-network uses the first k rows / columns /
  channels of the largest tensor (slicing), e.g. a Dense(d -> e) of rank r uses
  A[:d, :r] @ B[:r, :e], a full-rank one W[:d, :e]. Full-rank and low-rank
  versions of a layer are separate tensors (W vs A, B); the output bias is shared.
- depth: the first `depth` blocks (block tensors are stacked on a leading block
  axis; one traced block runs in a `tf.while_loop`); heads: the first d channels split into h
  contiguous heads of d/h channels (as the exported model's Reshape does).
- patch size: one patch embedding (full kernel, low-rank kernel + projection)
  and one position table per patch size (token counts differ); the blocks,
  LayerNorms and classifier are either shared by all patch sizes
  (`SupernetSpace.shared_blocks`) or one set per patch size (a "tower": the
  search's default, since one block set serving 196 tokens of 2x2 pixels and 4
  tokens of 14x14 pixels ranked sub-networks no better than chance).

Training (`train`) follows the sandwich rule: each step sums the gradients of
the largest sub-network, the smallest, and two random ones (the caller gives
them, e.g. drawn from the configs that fit the board; optionally the largest
teaches the others its soft labels: in-place distillation, and trains alone
for a warm-up), under
`tf.distribute.MirroredStrategy` (each replica takes its shard of the batch, gradients
summed across them). The forward pass is one `tf.function` with
the other dimensions as int32 tensors (dynamic slices) and the patches
flattened outside the graph (`patchify`; the patch embedding is a matmul with
the kernel reshaped, the patch size an index into `tf.switch_case`), so one
trace serves every sub-network. A sub-network's accuracy is read with its inherited weights
(`accuracy`); `keras_model` builds the standalone Keras model
(`tinyvit.model.build_model`) carrying those weights, which computes the same
function (tests/test_supernet.py).

TensorFlow is imported inside the functions.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from tinyml.errors import TinymlError
from tinyml.tinyvit.config import ViTConfig

LN_EPS = 1e-5
LINEARS = ("q", "k", "v", "proj", "mlp1", "mlp2")


@dataclass(frozen=True)
class SupernetSpace:
    image_size: int
    channels: int
    num_classes: int
    patch_sizes: tuple[int, ...]
    max_dim: int
    max_depth: int
    max_hidden: int           # MLP hidden width
    max_rank: int             # qkv / proj / mlp ranks
    max_patch_rank: int
    activation: str = "relu"
    # False: each patch size has its own blocks, final LayerNorm and classifier (a tower),
    # shared by its sub-networks only; True: one set shared by every patch size
    shared_blocks: bool = True

    @classmethod
    def covering(cls, configs: list[ViTConfig], shared_blocks: bool = True) -> "SupernetSpace":
        """The smallest supernet holding every config of `configs`."""
        if not configs:
            raise TinymlError("no configs to build a supernet from", "supernet", "pass at least one config")
        c0 = configs[0]
        return cls(c0.image_size, c0.channels, c0.num_classes,
                   tuple(sorted({c.patch_size for c in configs})),
                   max(c.embed_dim for c in configs), max(c.depth for c in configs),
                   max(c.mlp_dim for c in configs),
                   max(max(c.qkv_rank, c.proj_rank, c.mlp_rank) for c in configs) or 1,
                   max(c.patch_rank for c in configs) or 1, c0.activation, shared_blocks)

    def covers(self, cfg: ViTConfig) -> bool:
        return not self._why_not(cfg)

    def check(self, cfg: ViTConfig) -> None:
        why = self._why_not(cfg)
        if why:
            raise TinymlError(f"{cfg.name} is not a sub-network of the supernet: {'; '.join(why)}",
                              "supernet", "build the supernet to cover every config it is asked about")

    def towers(self) -> list[str]:
        """Name prefixes of the block / final LayerNorm / classifier tensors: one shared set
        (""), or one per patch size ("p4_", ...)."""
        return [""] if self.shared_blocks else [f"p{p}_" for p in self.patch_sizes]

    def tower(self, patch: int) -> str:
        return "" if self.shared_blocks else f"p{patch}_"

    def _why_not(self, cfg: ViTConfig) -> list[str]:
        why = []
        if (cfg.image_size, cfg.channels, cfg.num_classes) != (self.image_size, self.channels, self.num_classes):
            why.append("input/classes differ")
        if cfg.patch_size not in self.patch_sizes:
            why.append(f"patch {cfg.patch_size} not in {list(self.patch_sizes)}")
        if cfg.embed_dim > self.max_dim or cfg.depth > self.max_depth or cfg.mlp_dim > self.max_hidden:
            why.append("wider or deeper than the supernet")
        if max(cfg.qkv_rank, cfg.proj_rank, cfg.mlp_rank) > self.max_rank or cfg.patch_rank > self.max_patch_rank:
            why.append("a rank above the supernet's")
        if cfg.head != "classify" or cfg.pool != "mean" or cfg.activation != self.activation:
            why.append("the supernet holds mean-pooled classifiers with one activation")
        return why


def arch_vector(cfg: ViTConfig) -> list[int]:
    """The dimensions the forward pass reads as tensors."""
    return [cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.mlp_dim, cfg.qkv_rank, cfg.proj_rank,
            cfg.mlp_rank, cfg.patch_rank]


def _glorot(rng: np.random.Generator, fan_in: int, fan_out: int, shape) -> np.ndarray:
    lim = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-lim, lim, shape).astype(np.float32)


def initial_weights(sp: SupernetSpace, seed: int = 0) -> dict[str, np.ndarray]:
    """Every tensor of the supernet at its largest shape (Keras-like initialisation)."""
    rng = np.random.default_rng(seed)
    D, H, R, Rp, C = sp.max_dim, sp.max_hidden, sp.max_rank, sp.max_patch_rank, sp.channels
    w: dict[str, np.ndarray] = {}
    for p in sp.patch_sizes:
        k = p * p * C
        w[f"p{p}_embed_w"] = _glorot(rng, k, D, (p, p, C, D))
        w[f"p{p}_embed_a"] = _glorot(rng, k, Rp, (p, p, C, Rp))
        w[f"p{p}_embed_b"] = _glorot(rng, Rp, D, (Rp, D))
        w[f"p{p}_embed_bias"] = np.zeros(D, np.float32)
        w[f"p{p}_pos"] = (rng.standard_normal((1, (sp.image_size // p) ** 2, D)) * 0.02).astype(np.float32)
    shapes = {"q": (D, D), "k": (D, D), "v": (D, D), "proj": (D, D), "mlp1": (D, H), "mlp2": (H, D)}
    L = sp.max_depth          # block tensors are stacked: [block, ...]
    for t in sp.towers():
        for ln in ("ln1", "ln2"):
            w[f"{t}blk_{ln}_g"] = np.ones((L, D), np.float32)
            w[f"{t}blk_{ln}_b"] = np.zeros((L, D), np.float32)
        for name, (fi, fo) in shapes.items():
            w[f"{t}blk_{name}_w"] = _glorot(rng, fi, fo, (L, fi, fo))
            w[f"{t}blk_{name}_a"] = _glorot(rng, fi, R, (L, fi, R))
            w[f"{t}blk_{name}_b"] = _glorot(rng, R, fo, (L, R, fo))
            w[f"{t}blk_{name}_bias"] = np.zeros((L, fo), np.float32)
        w[f"{t}final_ln_g"] = np.ones(D, np.float32)
        w[f"{t}final_ln_b"] = np.zeros(D, np.float32)
        w[f"{t}logits_w"] = _glorot(rng, D, sp.num_classes, (D, sp.num_classes))
        w[f"{t}logits_bias"] = np.zeros(sp.num_classes, np.float32)
    return w


def _rank_of(cfg: ViTConfig, name: str) -> int:
    return {"q": cfg.qkv_rank, "k": cfg.qkv_rank, "v": cfg.qkv_rank, "proj": cfg.proj_rank,
            "mlp1": cfg.mlp_rank, "mlp2": cfg.mlp_rank}[name]


def keras_weights(w: dict[str, np.ndarray], cfg: ViTConfig) -> dict[str, list[np.ndarray]]:
    """The sliced weights of sub-network `cfg`, by layer name of `tinyvit.model.build_model(cfg)`."""
    d, e, p = cfg.embed_dim, cfg.mlp_dim, cfg.patch_size
    t = f"p{p}_" if f"p{p}_blk_q_w" in w else ""        # this patch size's tower, or the shared one
    out: dict[str, list[np.ndarray]] = {}
    if cfg.patch_rank:
        r = cfg.patch_rank
        out["patch_embed_lr"] = [w[f"p{p}_embed_a"][..., :r]]
        out["patch_embed"] = [w[f"p{p}_embed_b"][:r, :d], w[f"p{p}_embed_bias"][:d]]
    else:
        out["patch_embed"] = [w[f"p{p}_embed_w"][..., :d], w[f"p{p}_embed_bias"][:d]]
    out["pos_embed"] = [w[f"p{p}_pos"][..., :d]]
    dims = {"q": (d, d), "k": (d, d), "v": (d, d), "proj": (d, d), "mlp1": (d, e), "mlp2": (e, d)}
    for i in range(cfg.depth):
        for ln in ("ln1", "ln2"):
            out[f"block{i}_{ln}"] = [w[f"{t}blk_{ln}_g"][i, :d], w[f"{t}blk_{ln}_b"][i, :d]]
        for name, (fi, fo) in dims.items():
            layer = f"block{i}_attn_{name}" if name in ("q", "k", "v", "proj") else f"block{i}_{name}"
            r = _rank_of(cfg, name)
            if r:
                out[f"{layer}_lr"] = [w[f"{t}blk_{name}_a"][i, :fi, :r]]
                out[layer] = [w[f"{t}blk_{name}_b"][i, :r, :fo], w[f"{t}blk_{name}_bias"][i, :fo]]
            else:
                out[layer] = [w[f"{t}blk_{name}_w"][i, :fi, :fo], w[f"{t}blk_{name}_bias"][i, :fo]]
    out["final_ln"] = [w[f"{t}final_ln_g"][:d], w[f"{t}final_ln_b"][:d]]
    out["logits"] = [w[f"{t}logits_w"][:d], w[f"{t}logits_bias"]]
    return {k: [np.array(a) for a in v] for k, v in out.items()}


class Supernet:
    """The supernet's variables (created under `strategy`) and its forward pass."""

    def __init__(self, space: SupernetSpace, seed: int = 0, strategy=None) -> None:
        import tensorflow as tf
        self.tf = tf
        self.space = space
        self.strategy = strategy or tf.distribute.MirroredStrategy()
        init = initial_weights(space, seed)
        with self.strategy.scope():
            self.vars = {k: tf.Variable(v, name=k) for k, v in init.items()}
        self._fwd: Callable | None = None
        self._steps: tuple | None = None
        self._slots: list | None = None
        self.steps = 0

    # ------------------------------------------------------------------ forward
    def _dense(self, x, name: str, i, din, dout, rank, t: str = ""):
        """Block i's linear `name` of tower `t`."""
        tf = self.tf
        v = self.vars
        y = tf.cond(rank > 0,
                    lambda: tf.matmul(tf.matmul(x, v[f"{t}blk_{name}_a"][i, :din, :rank]),
                                      v[f"{t}blk_{name}_b"][i, :rank, :dout]),
                    lambda: tf.matmul(x, v[f"{t}blk_{name}_w"][i, :din, :dout]))
        return y + v[f"{t}blk_{name}_bias"][i, :dout]

    def _ln(self, x, g, b):
        tf = self.tf
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + LN_EPS) * g + b

    def _block(self, x, i, arch, t: str = ""):
        import keras
        tf = self.tf
        v = self.vars
        d, h, e, rq, ro, rm = arch[0], arch[2], arch[3], arch[4], arch[5], arch[6]
        b, n = tf.shape(x)[0], tf.shape(x)[1]
        dh = d // h
        y = self._ln(x, v[f"{t}blk_ln1_g"][i, :d], v[f"{t}blk_ln1_b"][i, :d])

        def heads(t):
            return tf.transpose(tf.reshape(t, [b, n, h, dh]), [0, 2, 1, 3])
        q, k, val = (heads(self._dense(y, nm, i, d, d, rq, t)) for nm in ("q", "k", "v"))
        s = tf.matmul(q, k, transpose_b=True) * (1.0 / tf.sqrt(tf.cast(dh, tf.float32)))
        o = tf.matmul(tf.nn.softmax(s, axis=-1), val)
        o = tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [b, n, d])
        x = x + self._dense(o, "proj", i, d, d, ro, t)
        y = self._ln(x, v[f"{t}blk_ln2_g"][i, :d], v[f"{t}blk_ln2_b"][i, :d])
        y = keras.activations.get(self.space.activation)(self._dense(y, "mlp1", i, d, e, rm, t))
        return x + self._dense(y, "mlp2", i, e, d, rm, t)

    def _forward(self, patches, pidx, arch):
        """Logits from flattened patches (B, N, p*p*C) of the patch size with index `pidx`."""
        tf = self.tf
        v = self.vars
        d, depth, rp = arch[0], arch[1], arch[7]
        sizes = self.space.patch_sizes
        k = tf.shape(patches)[2]

        def embed(p):
            full = lambda: tf.matmul(patches, tf.reshape(v[f"p{p}_embed_w"][..., :d], [k, d]))  # noqa: E731
            low = lambda: tf.matmul(tf.matmul(patches, tf.reshape(v[f"p{p}_embed_a"][..., :rp], [k, rp])),  # noqa: E731
                                    v[f"p{p}_embed_b"][:rp, :d])
            return tf.cond(rp > 0, low, full) + v[f"p{p}_embed_bias"][:d] + v[f"p{p}_pos"][:, :, :d]
        def body(z, t):
            # one traced block, run `depth` times on the stacked block tensors of tower t
            _, z = tf.while_loop(lambda i, z: i < depth, lambda i, z: (i + 1, self._block(z, i, arch, t)),
                                 [tf.constant(0), z],
                                 shape_invariants=[tf.TensorShape([]), tf.TensorShape([None, None, None])])
            z = self._ln(z, v[f"{t}final_ln_g"][:d], v[f"{t}final_ln_b"][:d])
            return tf.matmul(tf.reduce_mean(z, axis=1), v[f"{t}logits_w"][:d]) + v[f"{t}logits_bias"]
        if self.space.shared_blocks:
            return body(tf.switch_case(pidx, [lambda p=p: embed(p) for p in sizes]), "")
        return tf.switch_case(pidx, [lambda p=p: body(embed(p), f"p{p}_") for p in sizes])

    def _var_names(self, p: int) -> list[str]:
        own = [k for k in self.vars if k.startswith(f"p{p}_")]
        return own + [k for k in self.vars if not k.startswith("p")]

    def _inputs(self, cfg: ViTConfig, x: np.ndarray) -> tuple:
        tf = self.tf
        return (tf.constant(patchify(x, cfg.patch_size)), tf.constant(self.space.patch_sizes.index(cfg.patch_size)),
                tf.constant(arch_vector(cfg), tf.int32))

    def logits(self, cfg: ViTConfig, x: np.ndarray, batch: int = 500) -> np.ndarray:
        """The sub-network's float logits with inherited weights."""
        self.space.check(cfg)
        fwd = self._forward_fn()
        return np.concatenate([fwd(*self._inputs(cfg, x[i:i + batch])).numpy()
                               for i in range(0, len(x), batch)])

    def _forward_fn(self) -> Callable:
        """The traced forward pass (patches, patch index, arch vector) -> logits."""
        if self._fwd is None:
            sig = _SIGNATURE(self.tf)
            self._fwd = self.tf.function(self._forward, input_signature=[sig[0], sig[2], sig[3]])
        return self._fwd

    def accuracy(self, cfg: ViTConfig, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(np.argmax(self.logits(cfg, x), -1) == y))

    def reset(self, seed: int) -> None:
        """Fresh initial weights (`initial_weights(space, seed)`) and optimizer state, keeping the
        traces: a stand-alone training of one sub-network reuses them."""
        init = initial_weights(self.space, seed)
        with self.strategy.scope():
            for k, v in self.vars.items():
                v.assign(init[k])
            for slot in self._slots or []:
                for v in slot:
                    v.assign(self.tf.zeros_like(v))
        self.steps = 0

    def numpy_weights(self) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self.vars.items()}

    def keras_model(self, cfg: ViTConfig):
        """`tinyvit.model.build_model(cfg)` with the sub-network's inherited weights."""
        from tinyml.tinyvit.model import build_model
        self.space.check(cfg)
        m = build_model(cfg)
        load_into(m, keras_weights(self.numpy_weights(), cfg))
        return m

    # ------------------------------------------------------------------ training
    def _step_fns(self) -> tuple[Callable, Callable]:
        """Two traced functions: `accumulate` adds one sub-network's loss gradients (per replica
        on its shard of the batch, summed over replicas) to accumulators; `apply` is the AdamW
        update from the accumulators, which it then clears. One trace each serves every
        sub-network (a traced sandwich of four forward passes took 5x longer to trace)."""
        if self._steps is not None:
            return self._steps
        tf = self.tf
        names = sorted(self.vars)
        strategy = self.strategy
        n_rep = strategy.num_replicas_in_sync
        with strategy.scope():
            self._slots = [[tf.Variable(tf.zeros_like(self.vars[k]), trainable=False) for k in names]
                           for _ in range(3)]
        acc, m, s = self._slots

        def replica(x, y, pidx, arch, global_batch, soft, kd):
            r = tf.distribute.get_replica_context().replica_id_in_sync_group    # this replica's shard
            x, y, soft = x[r::n_rep], y[r::n_rep], soft[r::n_rep]
            with tf.GradientTape() as tape:
                logits = self._forward(x, pidx, arch)
                # (1 - kd) x cross-entropy on the labels + kd x cross-entropy on the teacher's
                # probabilities `soft` (in-place distillation; kd 0: labels only)
                per = ((1.0 - kd) * tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
                       + kd * tf.nn.softmax_cross_entropy_with_logits(soft, logits))
                loss = tf.reduce_sum(per) / global_batch
            grads = tape.gradient(loss, [self.vars[k] for k in names],
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return [loss] + grads

        @tf.function(input_signature=_SIGNATURE(tf) + [tf.TensorSpec([], tf.float32),
                                                      tf.TensorSpec([None, None], tf.float32),
                                                      tf.TensorSpec([], tf.float32)])
        def accumulate(x, y, pidx, arch, global_batch, soft, kd):
            per = strategy.run(replica, args=(x, y, pidx, arch, global_batch, soft, kd))
            out = [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in per]
            for a, g in zip(acc, out[1:]):
                a.assign_add(g)
            return out[0]

        scalar = tf.TensorSpec([], tf.float32)

        @tf.function(input_signature=[tf.TensorSpec([len(names)], tf.float32), scalar, scalar, scalar])
        def apply(used, t, lr, wd):
            self._adamw(names, acc, m, s, used, t, lr, wd)
            for a in acc:
                a.assign(tf.zeros_like(a))
        self._steps = (accumulate, apply)
        return self._steps

    def train(self, x: np.ndarray, y: np.ndarray, sample: Callable[[np.random.Generator], list[ViTConfig]],
              steps: int, deadline: float | None = None, lr: float = 2e-3, wd: float = 0.05, batch: int = 64,
              max_shift: int = 2, seed: int = 0, clock: Callable[[], float] = time.monotonic,
              on_step: Callable[[int], None] | None = None, distill: float = 0.0,
              warmup: int = 0) -> dict:
        """Sandwich-rule training: each step sums the gradients of the sub-networks
        `sample(rng)` returns (largest first, then smallest, two random), then one AdamW
        update (cosine learning rate over `steps`, or over the steps the `deadline` leaves
        at the measured step time). Stops after `steps` or at `deadline` (a `clock`
        value; the first step always runs). Returns what was done.

        In-place distillation (`distill` > 0, as BigNAS / Once-for-All): the first
        sub-network learns from the labels; every other one from (1 - distill) x the
        labels + distill x the first one's softmax on the same images (its logits
        with the weights before this step's update, no gradient through them).
        `warmup`: the first `warmup` steps train only the first sub-network (the
        largest), so the teacher knows something before it teaches."""
        tf = self.tf
        from tinyml.tinyvit.data import random_shift
        rng = np.random.default_rng(seed)
        names = sorted(self.vars)
        if deadline is not None and math.isinf(deadline):
            deadline = None
        t0, losses, done, nets, step_secs = clock(), [], 0, 0, []
        order = rng.permutation(len(x))
        pos = 0
        horizon = steps      # the cosine schedule's length: `steps`, or what the deadline leaves
        for step in range(steps):
            now = clock()
            if step and deadline is not None and now >= deadline:
                break
            if deadline is not None and len(step_secs) >= 3:
                recent = float(np.median(step_secs[-10:]))
                horizon = min(steps, step + max(1, int((deadline - now) / max(recent, 1e-6))))
            if pos + batch > len(x):
                order, pos = rng.permutation(len(x)), 0
            idx = order[pos:pos + batch]
            pos += batch
            xb = random_shift(x[idx], rng, max_shift) if max_shift else x[idx]
            cfgs = sample(rng)
            if step < warmup:
                cfgs = cfgs[:1]
            used: set[str] = set()
            for cfg in cfgs:
                self.space.check(cfg)
                used.update(self._var_names(cfg.patch_size))
            lr_t = lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, horizon)))))
            accumulate, apply = self._step_fns()
            yb = tf.constant(y[idx].astype(np.int32))
            none = tf.zeros([len(idx), self.space.num_classes], tf.float32)
            soft = none
            if distill > 0 and len(cfgs) > 1:
                soft = tf.nn.softmax(self._forward_fn()(*self._inputs(cfgs[0], xb)))
            with self.strategy.scope():
                per_net = []
                for j, c in enumerate(cfgs):
                    kd = distill if j and distill > 0 else 0.0
                    per_net.append(float(accumulate(*self._inputs(c, xb)[:1], yb, *self._inputs(c, xb[:1])[1:],
                                             tf.constant(float(len(idx))), soft if kd else none,
                                             tf.constant(float(kd)))))
                loss = sum(per_net)
                apply(tf.constant([1.0 if k in used else 0.0 for k in names]), tf.constant(float(step + 1)),
                      tf.constant(lr_t), tf.constant(wd))
            losses.append(loss)
            if hasattr(sample, "observe"):      # a sampler that balances by loss (oneshot.Sandwich)
                sample.observe(cfgs, per_net)
            nets += len(cfgs)
            step_secs.append(clock() - now)
            done += 1
            if on_step is not None:
                on_step(done)
        self.steps += done
        return {"steps": done, "subnets_trained": nets, "seconds": round(clock() - t0, 3),
                "replicas": self.strategy.num_replicas_in_sync,
                "loss_first": round(losses[0], 4) if losses else None,
                "loss_last_10": round(float(np.mean(losses[-10:])), 4) if losses else None}

    def _adamw(self, names: list[str], grads: list, m: list, s: list, used, t, lr, wd, b1: float = 0.9,
               b2: float = 0.999, eps: float = 1e-7, clipnorm: float = 1.0) -> None:
        """AdamW (inside the traced step); `used[i]` 0 leaves variable i and its moments untouched
        (another patch size's embedding). Gradients clipped to a global norm of `clipnorm`."""
        tf = self.tf
        norm = tf.sqrt(tf.add_n([tf.reduce_sum(g * g) for g in grads]))
        scale = tf.minimum(1.0, clipnorm / tf.maximum(norm, 1e-12))
        for i, k in enumerate(names):
            var, u, g = self.vars[k], used[i], grads[i] * scale
            m_new = b1 * m[i] + (1 - b1) * g
            s_new = b2 * s[i] + (1 - b2) * g * g
            step = lr * ((m_new / (1 - b1 ** t)) / (tf.sqrt(s_new / (1 - b2 ** t)) + eps)
                         + (wd * var if var.shape.rank >= 2 else 0.0))
            m[i].assign(u * m_new + (1 - u) * m[i])
            s[i].assign(u * s_new + (1 - u) * s[i])
            var.assign(var - u * step)


def _SIGNATURE(tf) -> list:    # noqa: N802 (patches, labels, patch index, arch vector): shapes left open
    return [tf.TensorSpec([None, None, None], tf.float32), tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([], tf.int32), tf.TensorSpec([8], tf.int32)]


def patchify(x: np.ndarray, p: int) -> np.ndarray:
    """(B, H, W, C) -> (B, (H/p)*(W/p), p*p*C): row-major patches, each flattened (row, column,
    channel) like a Conv2D kernel (p, p, C, D) reshaped to (p*p*C, D)."""
    b, h, w, c = x.shape
    g, gw = h // p, w // p
    return np.ascontiguousarray(x.reshape(b, g, p, gw, p, c).transpose(0, 1, 3, 2, 4, 5)
                                .reshape(b, g * gw, p * p * c), dtype=np.float32)


def load_into(model, weights: dict[str, list[np.ndarray]]) -> None:
    """Set every layer of `model` that has weights from `weights` (by layer name)."""
    for layer in model.layers:
        if layer.weights:
            if layer.name not in weights:
                raise TinymlError(f"no supernet weights for layer {layer.name}", "supernet",
                                  "build the Keras model from the same config")
            layer.set_weights(weights[layer.name])
