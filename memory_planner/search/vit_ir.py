"""The graph IR of a tinyvit model, built straight from its `ViTConfig`.

`build_graph(cfg)` returns the `codegen.ir.Graph` that importing the model's
int8 .tflite would give (tinyvit.export, TensorFlow 2.21's converter), without
training, Keras or conversion: the same ops in the same order, the same
tensors with the same indices, shapes, dtypes and quantization structure
(per-channel weights and biases on axis 0, per-tensor activations, float32
LayerNorm islands). Constant payloads are zeros (shape constants, axes and
permutations carry their real values); quantization scales are placeholders.
Everything the planner and the flash count depend on is exact; only the
numbers inside the kernels' parameters are not.

What the converter does to the Keras graph, as measured on exports (see
tests/test_search_ir.py, which checks this file against real exports):

- patch embedding: CONV_2D (always with an int32 bias, zeros when the layer has
  none) -> [1,g,g,D]; with patch_rank r: CONV_2D to r channels, then
  FULLY_CONNECTED (keep_num_dims) on the 4-D tensor; RESHAPE to [1,N,D];
  cls pool: CONCATENATION of the constant class token in front.
- position embedding: ADD of a constant [1,N,D].
- LayerNorm: 13 ops, MEAN, DEQUANTIZE/NEG/QUANTIZE (float negation of the
  mean), SQUARED_DIFFERENCE, MEAN, ADD eps, RSQRT, MUL gamma, MUL, ADD beta,
  MUL, ADD.
- dense on [1,N,D]: full rank FULLY_CONNECTED keep_num_dims=True; low rank
  two FULLY_CONNECTED with keep_num_dims=False ([N,r] then [N,out]), the first
  without bias. ReLU fuses into the FC; GELU / HARD_SWISH are separate ops
  (after a RESHAPE back to [1,N,hidden] in the low-rank case).
- attention: k (FC, RESHAPE [1,N,H,dh], TRANSPOSE [0,2,3,1]), q (FC, RESHAPE,
  TRANSPOSE [0,2,1,3]), BATCH_MATMUL, MUL by the 1/sqrt(dh) constant,
  SOFTMAX, v (FC, RESHAPE, TRANSPOSE), BATCH_MATMUL, TRANSPOSE, RESHAPE to
  [N,D], projection FC (2-D), residual ADD broadcasting [1,N,D] + [N,D]. With
  one head, the size-1 transposes become RESHAPEs or vanish.
- head: MEAN over tokens (keep_dims False) or STRIDED_SLICE of token 0, FC;
  detector: FC (keep_num_dims) and RESHAPE to [1,g,g,5+C].
- tensors: input 0; then int32 shape constants (reshape shapes, axes,
  permutations, slice bounds) in order of first use, deduplicated by value;
  then the other constants in reverse order of first use (identical scalar
  constants, the LayerNorm epsilon and the attention scale, are shared); then
  every op output in op order.

Unsupported corners (the converter rewrites them in ways not modelled here)
raise `TinymlError` from `check_supported`: a 1x1 token grid, head_dim 1,
rank 1.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from tinyml import op_options as oo
from tinyml.ir import Graph, Op, Quant, Tensor
from tinyml.op_options import Activation, Padding
from tinyml.errors import TinymlError
from tinyml.tinyvit.config import ViTConfig

# Options exactly as the importer decodes them from converter output (tinyml.op_options).
_FC = oo.FullyConnectedOptions(activation=Activation.NONE, weights_format=0, keep_num_dims=True,
                               asymmetric_quantize_inputs=False, quantized_bias_type=0)
_ADD = oo.AddOptions(activation=Activation.NONE, pot_scale_int16=True)
_MUL = oo.MulOptions(activation=Activation.NONE)
_BMM = oo.BatchMatMulOptions(adj_x=False, adj_y=False, asymmetric_quantize_inputs=False)
_SLICE = oo.StridedSliceOptions(begin_mask=5, end_mask=5, ellipsis_mask=0, new_axis_mask=0,
                                shrink_axis_mask=2, offset=False)

# Placeholder quantization (structure exact, values plausible).
_INPUT_Q = (1.0 / 255.0, -128)
_SOFTMAX_Q = (1.0 / 256.0, -128)
_ACT_Q = (0.05, 0)
_ZERO = {"int8": np.zeros((), np.int8), "int32": np.zeros((), np.int32)}


class Placeholders:
    """Read-only zero payloads and placeholder quantizations, shared by the graphs built with
    one instance (never mutated by lowering or planning; a LoweringCache keys quantization by
    layout and memoizes it by identity, so sharing saves work). A CostModel owns one."""

    MAX_ZEROS = 4096

    def __init__(self) -> None:
        self._zeros: dict[tuple, np.ndarray] = {}
        self._q: dict[tuple, Quant] = {}
        self._qc: dict[tuple, Quant] = {}

    def zeros(self, dtype: str, shape: tuple) -> np.ndarray:
        """A zero payload of `shape` (no allocation: a broadcast view)."""
        key = (dtype, shape)
        z = self._zeros.get(key)
        if z is None:
            if len(self._zeros) >= self.MAX_ZEROS:
                self._zeros.clear()
            z = self._zeros[key] = np.broadcast_to(_ZERO[dtype], shape)
        return z

    def q(self, scale: float, zp: int) -> Quant:
        """Per-tensor placeholder."""
        key = (scale, zp)
        q = self._q.get(key)
        if q is None:
            q = self._q[key] = Quant(scale=np.array([scale], np.float32),
                                     zero_point=np.array([zp], np.int64))
        return q

    def qc(self, n: int, scale: float, layer: int = 0) -> Quant:
        """Per-channel placeholder (axis 0): scales spread over powers of two in a pattern that
        differs per layer, so no two layers' requantization shift tables coincide."""
        key = (n, scale, layer)
        q = self._qc.get(key)
        if q is None:
            i = np.arange(n)
            exps = ((i * (layer % 5 + 1) + layer) % 7) - 3
            q = self._qc[key] = Quant(scale=(scale * np.exp2(exps) * (1.0 + 0.013 * i)).astype(np.float32),
                                      zero_point=np.zeros(n, np.int64), axis=0)
        return q


def check_supported(cfg: ViTConfig) -> None:
    """Raise for configs whose converter output this module does not model."""
    cfg.validate()
    where = f"config {cfg.name}"
    if cfg.grid < 2:
        raise TinymlError(f"patch_size {cfg.patch_size} leaves a {cfg.grid}x{cfg.grid} token grid",
                          where, "use a patch size at most half the image size")
    if cfg.head_dim < 2:
        raise TinymlError(f"head_dim {cfg.head_dim} (embed_dim / num_heads) is below 2", where,
                          "use fewer heads or a wider embedding")
    for k in ("qkv_rank", "proj_rank", "mlp_rank", "patch_rank"):
        if getattr(cfg, k) == 1:
            raise TinymlError(f"{k} 1 is not modelled", where, "use 0 (full rank) or >= 2")
    if cfg.mlp_dim < 2:
        raise TinymlError(f"mlp hidden size {cfg.mlp_dim} is below 2", where, "raise mlp_ratio")
    if cfg.head == "detect" and getattr(cfg, "det_split", False):
        raise TinymlError("the split detector head (det_split=True: three output tensors) is not modelled",
                          where, "plan the exported .tflite with `tinyml plan` instead")


class _Builder:
    """Collects tensors with provisional keys, ops in order; numbers them like the converter."""

    def __init__(self, ph: Placeholders) -> None:
        self.ph = ph
        self.acts: list[Tensor] = []          # op outputs (and the graph input first)
        self.shape_consts: list[Tensor] = []  # int32, first-use order
        self.consts: list[Tensor] = []        # other constants, first-use order
        self._shape_key: dict[tuple, Tensor] = {}
        self._scalar_key: dict[tuple, Tensor] = {}
        self.ops: list[tuple[str, list[Tensor | None], list[Tensor], dict]] = []
        self._k = 0

    # -- tensors --
    def generic_q(self) -> Quant:
        """A per-tensor placeholder in general position: no two tensors share scale or zero
        point, as after calibration, so no lowering table coincides with another by accident."""
        self._k += 1
        k = self._k
        return self.ph.q(_ACT_Q[0] * (1.0 + 0.0037 * k), (k * 37) % 199 - 99 or 1)

    def counter(self) -> int:
        self._k += 1
        return self._k

    def act(self, name: str, shape, dtype: str = "int8", quant: Quant | None = None) -> Tensor:
        if quant is None and dtype == "int8":
            quant = self.generic_q()
        t = Tensor(index=-1, name=name, shape=tuple(map(int, shape)), dtype=dtype, quant=quant)
        self.acts.append(t)
        return t

    def shape_const(self, name: str, values, scalar: bool = False) -> Tensor:
        vals = tuple(int(v) for v in values)
        shape = () if scalar else (len(vals),)
        key = (shape, vals)
        if key not in self._shape_key:
            t = Tensor(index=-1, name=name, shape=shape, dtype="int32",
                       data=np.array(vals, np.int32).reshape(shape))
            self._shape_key[key] = t
            self.shape_consts.append(t)
        return self._shape_key[key]

    def const(self, name: str, shape, dtype: str, quant: Quant) -> Tensor:
        shape = tuple(map(int, shape))
        # read-only zeros without allocating the payload
        t = Tensor(index=-1, name=name, shape=shape, dtype=dtype, quant=quant,
                   data=self.ph.zeros(dtype, shape))
        self.consts.append(t)
        return t

    def scalar(self, key: str, scale: float) -> Tensor:
        """A shared int8 scalar constant (epsilon, attention scale)."""
        if key not in self._scalar_key:
            t = Tensor(index=-1, name=key, shape=(), dtype="int8", quant=self.ph.q(scale, -128),
                       data=np.full((), 127, np.int8))
            self._scalar_key[key] = t
            self.consts.append(t)
        return self._scalar_key[key]

    def op(self, kind: str, inputs: list[Tensor | None], outputs: list[Tensor],
           options: oo.OpOptions | None = None):
        self.ops.append((kind, inputs, outputs, options if options is not None else oo.default_options(kind)))
        return outputs[0]

    # -- numbering --
    def finish(self, name: str) -> Graph:
        ordered = [self.acts[0]] + self.shape_consts + self.consts[::-1] + self.acts[1:]
        for i, t in enumerate(ordered):
            t.index = i
        ops = [Op(index=k, kind=kind, inputs=[t.index if t is not None else -1 for t in ins],
                  outputs=[t.index for t in outs], options=opts)
               for k, (kind, ins, outs, opts) in enumerate(self.ops)]
        return Graph(name=name, tensors=ordered, ops=ops, inputs=[0], outputs=[ops[-1].outputs[0]],
                     source=f"<vit_ir:{name}>")


def _fc(b: _Builder, x: Tensor, units: int, out_shape, name: str, keep: bool, bias: bool = True,
        relu: bool = False) -> Tensor:
    fin = x.shape[-1]
    k = b.counter()
    w = b.const(f"{name}/w", (units, fin), "int8", b.ph.qc(units, 0.01, k))
    bt = b.const(f"{name}/b", (units,), "int32", b.ph.qc(units, 0.0005, k)) if bias else None
    y = b.act(name, out_shape)
    opts = dataclasses.replace(_FC, keep_num_dims=keep, activation=Activation.RELU if relu else Activation.NONE)
    return b.op("FULLY_CONNECTED", [x, w, bt], [y], opts)


def _dense_tokens(b: _Builder, x: Tensor, units: int, rank: int, name: str, relu: bool = False) -> Tensor:
    """Dense on [1,N,in]: full rank keeps [1,N,units]; low rank gives [N,units]."""
    n = x.shape[-2] if len(x.shape) >= 2 else 1
    if rank > 0:
        rows = int(np.prod(x.shape[:-1]))
        h = _fc(b, x, rank, (rows, rank), f"{name}_lr", keep=False, bias=False)
        return _fc(b, h, units, (rows, units), name, keep=False, relu=relu)
    if len(x.shape) == 2:
        return _fc(b, x, units, (x.shape[0], units), name, keep=False, relu=relu)
    return _fc(b, x, units, (*x.shape[:-1], units), name, keep=True, relu=relu)
    del n


def _layernorm(b: _Builder, x: Tensor, name: str) -> Tensor:
    n, d = x.shape[1], x.shape[2]
    axis = b.shape_const("mean_axis", [-1])
    eps = b.scalar("ln_eps", 1e-5 / 127.0)
    m = b.op("MEAN", [x, axis], [b.act(f"{name}/mean", (1, n, 1))], oo.ReducerOptions(keep_dims=True))
    f = b.op("DEQUANTIZE", [m], [b.act(f"{name}/deq", (1, n, 1), "float32")])
    f2 = b.op("NEG", [f], [b.act(f"{name}/neg", (1, n, 1), "float32")])
    nm = b.op("QUANTIZE", [f2], [b.act(f"{name}/quant", (1, n, 1))])
    sd = b.op("SQUARED_DIFFERENCE", [x, m], [b.act(f"{name}/sqdiff", (1, n, d))])
    var = b.op("MEAN", [sd, axis], [b.act(f"{name}/var", (1, n, 1))], oo.ReducerOptions(keep_dims=True))
    ve = b.op("ADD", [var, eps], [b.act(f"{name}/add_eps", (1, n, 1))], _ADD)
    r = b.op("RSQRT", [ve], [b.act(f"{name}/rsqrt", (1, n, 1))])
    gamma = b.const(f"{name}/gamma", (1, 1, d), "int8", b.generic_q())
    inv = b.op("MUL", [r, gamma], [b.act(f"{name}/mul", (1, n, d))], _MUL)
    a = b.op("MUL", [nm, inv], [b.act(f"{name}/mul_1", (1, n, d))], _MUL)
    beta = b.const(f"{name}/beta", (1, 1, d), "int8", b.generic_q())
    bb = b.op("ADD", [a, beta], [b.act(f"{name}/add_1", (1, n, d))], _ADD)
    c = b.op("MUL", [x, inv], [b.act(f"{name}/mul_2", (1, n, d))], _MUL)
    return b.op("ADD", [c, bb], [b.act(f"{name}/add_2", (1, n, d))], _ADD)


def _same_q(t: Tensor) -> Quant:
    return t.quant  # shared object: RESHAPE / TRANSPOSE / slices keep the input's quantization


def _attention(b: _Builder, x: Tensor, cfg: ViTConfig, p: str) -> Tensor:
    n, d, h, dh = cfg.num_tokens, cfg.embed_dim, cfg.num_heads, cfg.head_dim
    split = b.shape_const("heads_shape", [1, n, h, dh])

    def proj(tag: str) -> Tensor:
        return _dense_tokens(b, x, d, cfg.qkv_rank, f"{p}_{tag}")

    def reshape(t: Tensor, shape, name: str) -> Tensor:
        c = b.shape_const(f"{name}_shape", shape)
        return b.op("RESHAPE", [t, c], [b.act(name, shape, quant=_same_q(t))])

    def transpose(t: Tensor, perm, name: str) -> Tensor:
        c = b.shape_const(f"{name}_perm", perm)
        shape = tuple(t.shape[i] for i in perm)
        return b.op("TRANSPOSE", [t, c], [b.act(name, shape, quant=_same_q(t))])

    k = proj("k")
    if h > 1:
        k = b.op("RESHAPE", [k, split], [b.act(f"{p}_k_split", (1, n, h, dh), quant=_same_q(k))])
    else:
        k = reshape(k, (1, n, 1, dh), f"{p}_k_split")
    kt = transpose(k, (0, 2, 3, 1), f"{p}_k_heads")                      # [1,H,dh,N]
    q = proj("q")
    if h > 1:
        q = b.op("RESHAPE", [q, split], [b.act(f"{p}_q_split", (1, n, h, dh), quant=_same_q(q))])
        q = transpose(q, (0, 2, 1, 3), f"{p}_q_heads")                  # [1,H,N,dh]
    else:
        q = reshape(q, (1, 1, n, dh), f"{p}_q_heads")
    s = b.op("BATCH_MATMUL", [q, kt], [b.act(f"{p}_qk", (1, h, n, n))], _BMM)
    scale = b.scalar("attn_scale", (1.0 / math.sqrt(dh)) / 127.0)
    s = b.op("MUL", [s, scale], [b.act(f"{p}_scale", (1, h, n, n))], _MUL)
    pr = b.op("SOFTMAX", [s], [b.act(f"{p}_softmax", (1, h, n, n), quant=b.ph.q(*_SOFTMAX_Q))],
             oo.SoftmaxOptions(beta=1.0))
    v = proj("v")
    if h > 1:
        v = b.op("RESHAPE", [v, split], [b.act(f"{p}_v_split", (1, n, h, dh), quant=_same_q(v))])
        v = transpose(v, (0, 2, 1, 3), f"{p}_v_heads")
    else:
        v = reshape(v, (1, 1, n, dh), f"{p}_v_heads")
    o = b.op("BATCH_MATMUL", [pr, v], [b.act(f"{p}_pv", (1, h, n, dh))], _BMM)
    if h > 1:
        o = transpose(o, (0, 2, 1, 3), f"{p}_merge")
        o = reshape(o, (n, d), f"{p}_concat")
    if cfg.proj_rank > 0:
        hdn = _fc(b, o, cfg.proj_rank, (n, cfg.proj_rank), f"{p}_proj_lr", keep=False, bias=False)
        return _fc(b, hdn, d, (n, d), f"{p}_proj", keep=False)
    return _fc(b, o, d, (n, d), f"{p}_proj", keep=False)


def _block(b: _Builder, x: Tensor, cfg: ViTConfig, i: int) -> Tensor:
    p = f"block{i}"
    n, d = cfg.num_tokens, cfg.embed_dim
    y = _layernorm(b, x, f"{p}_ln1")
    a = _attention(b, y, cfg, f"{p}_attn")
    x = b.op("ADD", [x, a], [b.act(f"{p}_res1", (1, n, d))], _ADD)
    y = _layernorm(b, x, f"{p}_ln2")
    relu = cfg.activation == "relu"
    hdim = cfg.mlp_dim
    y = _dense_tokens(b, y, hdim, cfg.mlp_rank, f"{p}_mlp1", relu=relu)
    if not relu:
        if len(y.shape) == 2:
            c = b.shape_const("mlp_shape", (1, n, hdim))
            y = b.op("RESHAPE", [y, c], [b.act(f"{p}_mlp1_3d", (1, n, hdim), quant=_same_q(y))])
        kind = "GELU" if cfg.activation == "gelu" else "HARD_SWISH"
        opts = oo.GeluOptions(approximate=False) if kind == "GELU" else oo.NoOptions()
        y = b.op(kind, [y], [b.act(f"{p}_act", y.shape)], opts)
    y = _dense_tokens(b, y, d, cfg.mlp_rank, f"{p}_mlp2")
    return b.op("ADD", [x, y], [b.act(f"{p}_res2", (1, n, d))], _ADD)


def build_graph(cfg: ViTConfig) -> Graph:
    """The IR TensorFlow Lite's converter produces for `cfg` (see the module doc)."""
    return build_vit(cfg)[0]


def build_vit(cfg: ViTConfig, ph: Placeholders | None = None) -> tuple[Graph, VitLayout]:
    """`build_graph(cfg)` and where its segments (prologue, blocks, epilogue) sit; constants
    and quantization placeholders from `ph` (shared with its other graphs) or a new one."""
    check_supported(cfg)
    b = _Builder(ph if ph is not None else Placeholders())
    hw, c, p, g, d = cfg.image_size, cfg.channels, cfg.patch_size, cfg.grid, cfg.embed_dim
    x = b.act("image", (1, hw, hw, c), quant=b.ph.q(*_INPUT_Q))
    conv_out = cfg.patch_rank if cfg.patch_rank > 0 else d
    w = b.const("patch_embed/w", (conv_out, p, p, c), "int8", b.ph.qc(conv_out, 0.011))
    bias = b.const("patch_embed/b", (conv_out,), "int32", b.ph.qc(conv_out, 0.00051))
    x = b.op("CONV_2D", [x, w, bias], [b.act("patch_embed", (1, g, g, conv_out))],
             oo.Conv2DOptions(padding=Padding.VALID, stride_h=p, stride_w=p, dilation_h=1, dilation_w=1,
                              activation=Activation.NONE, quantized_bias_type=0))
    if cfg.patch_rank > 0:
        x = _fc(b, x, d, (1, g, g, d), "patch_embed_up", keep=True)
    shp = b.shape_const("tokens_shape", (1, g * g, d))
    x = b.op("RESHAPE", [x, shp], [b.act("tokens", (1, g * g, d), quant=_same_q(x))])
    n = cfg.num_tokens
    if cfg.pool == "cls":
        tok = b.const("cls_token", (1, 1, d), "int8", x.quant)
        x = b.op("CONCATENATION", [tok, x], [b.act("with_cls", (1, n, d), quant=x.quant)],
                 oo.ConcatenationOptions(axis=1, activation=Activation.NONE))
    pos = b.const("pos_embed", (1, n, d), "int8", b.generic_q())
    x = b.op("ADD", [x, pos], [b.act("pos_embed", (1, n, d))], _ADD)
    block_start = len(b.ops)
    marks = []                 # (acts, consts, ops) counts where each block and the epilogue start
    for i in range(cfg.depth):
        marks.append((len(b.acts) - 1, len(b.consts), len(b.ops)))
        x = _block(b, x, cfg, i)
    marks.append((len(b.acts) - 1, len(b.consts), len(b.ops)))
    per_block = (len(b.ops) - block_start) // cfg.depth
    x = _layernorm(b, x, "final_ln")
    if cfg.head == "detect":
        k = cfg.det_channels
        y = _fc(b, x, k, (1, n, k), "det_head", keep=True)
        shp = b.shape_const("det_shape", (1, g, g, k))
        b.op("RESHAPE", [y, shp], [b.act("det_grid", (1, g, g, k), quant=_same_q(y))])
    else:
        if cfg.pool == "cls":
            begin = b.shape_const("slice_begin", (0, 0, 0))
            end = b.shape_const("slice_end", (0, 1, 0))
            strides = b.shape_const("slice_strides", (1, 1, 1))
            x = b.op("STRIDED_SLICE", [x, begin, end, strides], [b.act("take_cls", (1, d), quant=x.quant)],
                     _SLICE)
        else:
            axis = b.shape_const("pool_axis", [1], scalar=True)
            x = b.op("MEAN", [x, axis], [b.act("pool", (1, d))], oo.ReducerOptions(keep_dims=False))
        _fc(b, x, cfg.num_classes, (1, cfg.num_classes), "logits", keep=False)
    g = b.finish(cfg.name)
    marks.append((len(b.acts) - 1, len(b.consts), len(b.ops)))
    return g, VitLayout(block_start, per_block, cfg.depth, len(b.shape_consts), tuple(marks))


# ---------------------------------------------------------------------------
# layout facts, returned beside the graph

@dataclass(frozen=True)
class VitLayout:
    """Where the segments (prologue, block 0..depth-1, epilogue) of a `build_vit` graph sit.

    Transformer blocks are built by the same code from the same config, so block k's
    ops are block 0's shifted by k * per_block: `relative` gives an op's (block, offset),
    which codegen.lower_cache uses to look a block-relative position up once per graph
    (its self-check compares with lower_graph). marks[k] = (activations, constants, ops)
    created before segment k+1 starts; the prologue starts at (0, 0, 0), the last mark
    is the end of the graph (depth families, `expand_depth`).
    """
    block_start: int    # first op of block 0
    per_block: int      # ops per block
    depth: int
    n_shape: int        # int32 shape constants (tensors 1..n_shape)
    marks: tuple[tuple[int, int, int], ...]

    def relative(self, op: int) -> tuple[int, int] | None:
        """(block, offset inside the block) of op index `op`, or None outside the blocks."""
        k = op - self.block_start
        if k < 0 or k >= self.per_block * self.depth:
            return None
        return divmod(k, self.per_block)

    def bounds(self) -> list[tuple[tuple[int, int], tuple[int, int], tuple[int, int]]]:
        """Per segment ((act lo, hi), (const lo, hi), (op lo, hi))."""
        pts = [(0, 0, 0), *self.marks]
        return [tuple((pts[k][j], pts[k + 1][j]) for j in range(3)) for k in range(len(pts) - 1)]


# ---------------------------------------------------------------------------
# the same graph at another depth, by copying blocks (memory_planner.search.cost's depth families)


REFERENCE_DEPTH = 3


class DepthRecipe:
    """A depth-3 reference graph taken apart for `expand_depth` (built once per reference).

    Every tensor a segment's ops read or write is coded (category, value) so that its
    index in a copy is `base[category] + value`: 0 fixed (graph input, shape constants,
    -1), 1 a constant of the segment itself, 2 a shared scalar of block 0, 3 an
    activation of the segment itself, 4 an activation of the previous segment (the
    residual stream coming in).
    """

    def __init__(self, ref: Graph, lay: VitLayout) -> None:
        self.graph = ref
        self.layout = lay
        self.segs = segs = lay.bounds()                  # pro, b0, b1, b2, epi
        self.S = S = lay.n_shape
        nc = lay.marks[-1][1]
        if len(segs) != REFERENCE_DEPTH + 2:
            raise ValueError("not a depth-3 reference")
        if not (segs[2][1][1] - segs[2][1][0] == segs[3][1][1] - segs[3][1][0]
                and segs[1][0][1] - segs[1][0][0] == segs[2][0][1] - segs[2][0][0]
                == segs[3][0][1] - segs[3][0][0]):
            raise ValueError("reference blocks differ in size")
        where: list[tuple[str, int, int]] = []
        for i in range(len(ref.tensors)):
            if i <= S:
                where.append(("fixed", -1, i))
            elif i <= S + nc:
                j = nc - 1 - (i - 1 - S)
                k = next(k for k, (_, (lo, hi), _) in enumerate(segs) if lo <= j < hi)
                where.append(("const", k, j - segs[k][1][0]))
            else:
                m = i - 1 - S - nc
                k = next(k for k, ((lo, hi), _, _) in enumerate(segs) if lo <= m < hi)
                where.append(("act", k, m - segs[k][0][0]))
        self.where = where
        self.codes: list[dict[int, tuple[int, int]]] = []
        self.tensors: list[list[tuple[Tensor, int, int]]] = []   # (ref tensor, category, value)
        self.ops: list[list[tuple[str, list, list, dict]]] = []
        for src in range(len(segs)):
            (alo, ahi), (clo, chi), (olo, ohi) = segs[src]
            code: dict[int, tuple[int, int]] = {-1: (0, -1)}
            self.codes.append(code)
            own = [(ref.tensors[1 + S + nc + alo + m], 3, m) for m in range(ahi - alo)]
            own += [(ref.tensors[1 + S + (nc - 1 - (clo + j))], 1, -j) for j in range(chi - clo)]
            self.tensors.append(own)
            ops = []
            for k in range(olo, ohi):
                op = ref.ops[k]
                ops.append((op.kind, [self.code(src, i) for i in op.inputs],
                            [self.code(src, i) for i in op.outputs], op.options))
            self.ops.append(ops)

    def code(self, src: int, i: int) -> tuple[int, int]:
        memo = self.codes[src]
        c = memo.get(i)
        if c is None:
            kind, seg, pos = self.where[i]
            if kind == "fixed":
                c = (0, i)
            elif kind == "const" and seg == src:
                c = (1, -pos)
            elif kind == "const" and seg == 1:
                c = (2, -pos)
            elif kind == "act" and seg == src:
                c = (3, pos)
            elif kind == "act" and seg == src - 1:
                c = (4, pos)
            else:
                raise ValueError(f"segment {src} reads tensor {i} of segment {seg}")
            memo[i] = c
        return c


def expand_depth(rec: DepthRecipe, cfg: ViTConfig) -> tuple[Graph, VitLayout, list[tuple[int, tuple, int]]]:
    """`build_vit(cfg)` from `rec`, the recipe of `build_vit(cfg with depth REFERENCE_DEPTH)`.

    Blocks are built by the same code, so block k of the deeper graph is a copy of
    a reference block with its tensors renumbered: block 0 copies reference block 0,
    the last block copies the last reference block (so the neighbourhoods of the
    first and last block are the reference's), the blocks between copy the middle
    one; depth 1 is block 0 followed by the epilogue (tests/test_search_ir.py checks
    all of these against build_graph and lower_graph). Returns the graph, its layout
    and, per copy in order, (reference segment, index bases, op index shift): a
    reference tensor coded (category, value) by `DepthRecipe.code` has index
    `bases[category] + value` in the copy. Raises ValueError when a reference does
    not fit that scheme (callers then build the graph).
    """
    ref = rec.graph
    L = cfg.depth
    if L < 1:
        raise ValueError("expand_depth needs depth >= 1")
    segs, S = rec.segs, rec.S
    # source segment per copy (depth 1: block 0 straight before the epilogue)
    order = [0, 1] + [2] * (L - 2) + [3, 4] if L >= 2 else [0, 1, 4]
    a0, c0, o0 = [], [], []
    marks = []
    na = nc = no = 0
    for src in order:
        (alo, ahi), (clo, chi), (olo, ohi) = segs[src]
        a0.append(na); c0.append(nc); o0.append(no)
        na += ahi - alo; nc += chi - clo; no += ohi - olo
        marks.append((na, nc, no))
    tensors: list = [None] * (1 + S + nc + na)
    tensors[:S + 1] = ref.tensors[:S + 1]                # input and shape constants: shared
    copies = []
    ops: list[Op] = []
    for c, src in enumerate(order):
        bases = (0, S + nc - c0[c], S + nc - c0[1], 1 + S + nc + a0[c],
                 1 + S + nc + (a0[c - 1] if c else 0))
        shift = o0[c] - segs[src][2][0]
        copies.append((src, bases, shift))
        old_p = new_p = None
        if src in (2, 3):
            old_p, new_p = f"block{src - 1}_", f"block{c - 1}_"
        for t, cat, val in rec.tensors[src]:
            i = bases[cat] + val
            name = t.name
            if old_p is not None and name.startswith(old_p):
                name = new_p + name[len(old_p):]
            # payloads and quantization are shared with the reference (read-only)
            tensors[i] = Tensor(i, name, t.shape, t.dtype, t.quant, t.data)
        k = o0[c]
        for kind, ins, outs, opts in rec.ops[src]:
            ops.append(Op(k, kind, [bases[a] + v for a, v in ins], [bases[a] + v for a, v in outs],
                          opts))   # options: read-only, shared with the reference
            k += 1
    g = Graph(name=cfg.name, tensors=tensors, ops=ops, inputs=[0], outputs=[ops[-1].outputs[0]],
              source=f"<vit_ir:{cfg.name}>")
    lay = rec.layout
    return g, VitLayout(lay.block_start, lay.per_block, L, lay.n_shape, tuple(marks)), copies


def op_macs(graph: Graph, op: Op) -> int:
    """Multiply-accumulates of one op (CONV_2D, FULLY_CONNECTED, BATCH_MATMUL; else 0)."""
    if op.kind == "CONV_2D":
        w, y = graph.t(op.inputs[1]), graph.t(op.outputs[0])
        return y.numel * w.numel // w.shape[0]
    if op.kind == "FULLY_CONNECTED":
        w, y = graph.t(op.inputs[1]), graph.t(op.outputs[0])
        return y.numel * w.shape[1]
    if op.kind == "BATCH_MATMUL":
        a, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
        return y.numel * a.shape[-1]
    return 0


def op_elements(graph: Graph, op: Op) -> int:
    """Activation elements an op writes (RESHAPE is an alias: none)."""
    return 0 if op.kind == "RESHAPE" else sum(graph.t(o).numel for o in op.outputs)


def graph_macs(graph: Graph) -> int:
    """Multiply-accumulates of the matrix products (CONV_2D, FULLY_CONNECTED, BATCH_MATMUL)."""
    return int(sum(op_macs(graph, op) for op in graph.ops))


def graph_elements(graph: Graph) -> int:
    """Activation elements written by ops that move data (RESHAPE is an alias)."""
    return int(sum(op_elements(graph, op) for op in graph.ops))


def structural_diff(a: Graph, b: Graph, limit: int = 10) -> list[str]:
    """Differences in structure between two graphs (empty list: same structure).

    Compared: op kinds, operand tensor indices and options; every tensor's
    shape, dtype, constness, quantization layout (none / per-tensor /
    per-channel axis and count); the values of int32 unquantized constants
    (shapes, axes, permutations). Not compared: names, scales, weight values.
    """
    out: list[str] = []

    def qdesc(t: Tensor) -> tuple:
        if t.quant is None:
            return ("none",)
        return ("per-channel", t.quant.axis, len(t.quant.scale)) if t.quant.per_channel else ("per-tensor",)

    if len(a.tensors) != len(b.tensors):
        out.append(f"tensor count {len(a.tensors)} != {len(b.tensors)}")
    if len(a.ops) != len(b.ops):
        out.append(f"op count {len(a.ops)} != {len(b.ops)}")
    for oa, ob in zip(a.ops, b.ops):
        if (oa.kind, oa.inputs, oa.outputs, oa.options) != (ob.kind, ob.inputs, ob.outputs, ob.options):
            out.append(f"op {oa.index}: {oa.kind} {oa.inputs}->{oa.outputs} {oa.options} != "
                       f"{ob.kind} {ob.inputs}->{ob.outputs} {ob.options}")
            if len(out) >= limit:
                return out
    for ta, tb in zip(a.tensors, b.tensors):
        da = (tuple(ta.shape), ta.dtype, ta.is_const, qdesc(ta))
        db = (tuple(tb.shape), tb.dtype, tb.is_const, qdesc(tb))
        if da != db:
            out.append(f"tensor {ta.index} ({ta.name} / {tb.name}): {da} != {db}")
        elif ta.is_const and ta.dtype == "int32" and ta.quant is None \
                and not np.array_equal(ta.data, tb.data):
            out.append(f"tensor {ta.index} ({ta.name}): values {ta.data.tolist()} != {tb.data.tolist()}")
        if len(out) >= limit:
            return out
    if (a.inputs, a.outputs) != (b.inputs, b.outputs):
        out.append(f"graph io {a.inputs}->{a.outputs} != {b.inputs}->{b.outputs}")
    return out
