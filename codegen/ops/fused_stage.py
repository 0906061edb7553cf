"""FUSED_STAGE: a CNN's first layers as one row pipeline (issue 17, item 2).

The first stage of a MobileNetV1-style CNN (CONV_2D 3x3/2 -> DEPTHWISE 3x3 ->
CONV_2D 1x1 -> DEPTHWISE 3x3/2 -> ...) holds the largest feature maps. Run
layer by layer, a step holds a whole input and a whole output map at its
peak. `tinyml_fused_stage_s8` (firmware/kernels/src/fused_stage.c) runs the
first `depth` layers as one step instead: rows are pulled top to bottom, and
each intermediate map exists only as a ring of its consumer's window height
(mirrored for a depthwise consumer). Every row is computed once, so there is
no halo recomputation (unlike MCUNetV2's patches) and the arithmetic is the
member kernels' own (tinyml_conv2d_packed_rows_s8, tinyml_depthwise_conv2d_s8
on one row): same bytes as the unfused chain.

This is a rewrite of already-lowered steps, not a graph pattern: which depth
is best depends on the plan, so `codegen.pipeline` asks `stage_chain` for the
eligible leading steps, plans each depth (`lower_stage`) and keeps the one
with the smallest arena. The fused step reuses the member steps' param
structs; the depthwise weights and biases move to derived arrays (their
tensors are then referenced by no call, so flash holds them once).

Input: the resident image, or (`stream=True`, --stream-input) a ring of the
first layer's window height filled one row at a time through
`tinyml_read_input_rows()`, so the image never exists in the arena.

Overlap: the kernel writes output row r after layer 0 computed some rows;
`overlap_down_bytes` replays the schedule: the output may start that far
before the (resident) input.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyml.ir import Graph
from tinyml.steps import Call, Overlap, ScratchRef, Step, TRef

from tinyml.codegen import cdecl
from tinyml.codegen.lowering import LowerCtx
from tinyml.codegen.ops.conv import geometry

MAX_LAYERS = 12                  # TINYML_STAGE_MAX_LAYERS (tinyml/stage.h)
READ_ROWS = "tinyml_read_input_rows"
KIND = "FUSED_STAGE"


@dataclass(frozen=True)
class LayerGeom:
    """One layer's height axis and row bytes (as the kernel's stage_geom)."""
    depthwise: bool
    in_h: int
    out_h: int
    stride: int
    pad: int
    reach: int                   # (k_h - 1) * dilation_h
    dilation: int
    k_h: int
    in_row: int
    out_row: int

    def need(self, r: int) -> int:
        """Last input row output row r reads (clamped to the image)."""
        return min(r * self.stride - self.pad + self.reach, self.in_h - 1)


def _geom(graph: Graph, step: Step) -> LayerGeom | None:
    """The layer geometry of a single-op CONV_2D (packed) or DEPTHWISE_CONV_2D (any multiplier) step."""
    if len(step.ops) != 1 or len(step.calls) != 1 or len(step.inputs) != 1 or len(step.outputs) != 1:
        return None
    op = graph.ops[step.ops[0]]
    call = step.calls[0]
    if step.kind not in ("CONV_2D", "DEPTHWISE_CONV_2D") or len(op.inputs) < 2:
        return None
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    if len(x.shape) != 4 or len(y.shape) != 4 or x.shape[0] != 1 or x.dtype != "int8" or y.dtype != "int8":
        return None
    w = graph.t(op.inputs[1])
    if step.kind == "CONV_2D" and call.func == "tinyml_conv2d_packed_s8":
        dw = False
    elif step.kind == "DEPTHWISE_CONV_2D" and call.func == "tinyml_depthwise_conv2d_s8" and y.shape[3] % x.shape[3] == 0:
        dw = True
    else:
        return None
    k_h = w.shape[1]
    geo = geometry(op, graph, x.shape, k_h, w.shape[2], y.shape)      # as the lowering computed it
    sh, dh, pad = geo["stride_h"], geo["dilation_h"], geo["pad_h"]
    _, ih, iw, ic = x.shape
    _, oh, ow, oc = y.shape
    g = LayerGeom(dw, ih, oh, sh, pad, (k_h - 1) * dh, dh, k_h, iw * ic, ow * oc)
    if dw:                       # every window must reach the image (the kernel refuses others)
        for r in range(oh):
            top = r * sh - pad
            first = top if top >= 0 else top + (-top + dh - 1) // dh * dh
            if first > min(top + g.reach, ih - 1):
                return None
    return g


def stage_chain(graph: Graph, steps: list[Step]) -> list[LayerGeom]:
    """Geometry of the leading steps that can form a stage (possibly fewer than 2: none).

    The first step reads the (only) graph input, which nothing else reads; each
    later step reads the previous step's output, read by nothing else and not a
    graph output."""
    if len(graph.inputs) != 1 or not steps:
        return []
    tin = graph.inputs[0]
    if steps[0].inputs != [tin] or any(tin in s.inputs for s in steps[1:]):
        return []
    chain: list[LayerGeom] = []
    for k, s in enumerate(steps[:MAX_LAYERS]):
        g = _geom(graph, s)
        if g is None:
            break
        if k > 0:
            prev = steps[k - 1].outputs[0]
            if s.inputs != [prev] or prev in graph.outputs or any(prev in t.inputs for t in steps[k + 1:]):
                break
        chain.append(g)
    return chain


def schedule(chain: list[LayerGeom]):
    """(layer, row) in the order tinyml_fused_stage_s8 computes them."""
    n = len(chain)
    nxt = [0] * n
    while nxt[-1] < chain[-1].out_h:
        i = n - 1
        while i > 0 and nxt[i - 1] <= chain[i].need(nxt[i]):
            i -= 1
        yield i, nxt[i]
        nxt[i] += 1


def overlap_down_bytes(chain: list[LayerGeom]) -> int:
    """How far the output may start before the resident input (tinyml.steps.Overlap.down_bytes).

    When output row r is written, layer 0 has computed rows < n0; later it reads
    input rows >= max(0, n0*stride - pad) only, so bytes up to
    out_start + (r+1)*out_row must stay below that row's start."""
    g0, top = chain[0], len(chain) - 1
    n0, down = 0, 0
    for i, r in schedule(chain):
        if i == 0:
            n0 = r + 1
        if i == top and n0 < g0.out_h:
            down = max(down, (r + 1) * chain[top].out_row - max(0, n0 * g0.stride - g0.pad) * g0.in_row)
    return max(0, down)


def ring_layout(chain: list[LayerGeom]) -> list[tuple[int, bool]]:
    """(ring rows, mirrored) of each layer's output; the last layer writes the output (0 rows)."""
    out = []
    for i in range(len(chain) - 1):
        nxt = chain[i + 1]
        out.append((nxt.reach + 1, nxt.depthwise))
    return out + [(0, False)]


def stage_scratch(chain: list[LayerGeom], conv_scratch: int) -> int:
    """Planned scratch of tinyml_fused_stage_s8 (checked against its scratch-size function)."""
    a4 = lambda n: (n + 3) // 4 * 4                                    # noqa: E731
    return sum(a4((2 if m else 1) * rows * g.out_row) for g, (rows, m) in zip(chain, ring_layout(chain))) \
        + conv_scratch


def stream_rows(chain: list[LayerGeom]) -> int:
    """Row slots of the streamed input ring (mirrored when the first layer is a depthwise)."""
    return (chain[0].reach + 1) * (2 if chain[0].depthwise else 1)


def is_streamed(step: Step) -> bool:
    """A FUSED_STAGE step lowered with stream=True (its call is the model.c read loop)."""
    return step.kind == KIND and len(step.calls) == 1 and step.calls[0].func != "tinyml_fused_stage_s8"


def first_ring_rows(graph: Graph, op_index: int) -> int:
    """Row slots of the streamed input ring of a stage whose first op is `op_index`."""
    op = graph.ops[op_index]
    w = graph.t(op.inputs[1])
    dw = op.kind == "DEPTHWISE_CONV_2D"
    return ((w.shape[1] - 1) * (op.options.dilation_h or 1) + 1) * (2 if dw else 1)


def lower_stage(graph: Graph, steps: list[Step], ctx: LowerCtx, stream: bool = False) -> Step:
    """One FUSED_STAGE step for `steps` (the leading steps stage_chain accepted, at least 2)."""
    chain = [_geom(graph, s) for s in steps]
    assert len(steps) >= 2 and all(g is not None for g in chain) and len(steps) <= MAX_LAYERS
    layers, decls, conv_scratch = [], [], 0
    for s, g, (rows, mirror) in zip(steps, chain, ring_layout(chain)):
        decls += s.decls
        a = s.calls[0].args
        layer = {"depthwise": int(g.depthwise), "ring_rows": rows, "ring_mirror": int(mirror)}
        if g.depthwise:
            op = graph.ops[s.ops[0]]
            p = ctx.name(f"op{op.index}_dw")
            w = graph.t(op.inputs[1])
            # the step's filter symbol when it is already a flash array (the grouped layout)
            wsym = a[5] if isinstance(a[5], str) else ctx.const_array(f"{p}_w", "int8_t",
                                                                        np.asarray(w.data, np.int8).reshape(-1))
            bias = "NULL"
            if isinstance(a[6], TRef):
                bias = ctx.const_array(f"{p}_bias", "int32_t",
                                       np.asarray(graph.t(a[6].tensor).data, np.int32).reshape(-1))
            layer.update(dw=a[0], dw_quant=a[1], dw_in=a[2], dw_filter=a[4], dw_out=a[7], dw_weights=wsym,
                         dw_bias=bias)
        else:
            layer.update(conv=a[1], conv_filter=a[4])
            conv_scratch = max(conv_scratch, s.scratch_bytes)
        layers.append(layer)
    first, last = steps[0], steps[-1]
    x, y = first.inputs[0], last.outputs[0]
    name = ctx.name(f"stage_op{last.index}")
    in_rows = stream_rows(chain) // (2 if chain[0].depthwise else 1) if stream else 0
    # the layers as an array of exactly their count (the struct points at it)
    decls.append(cdecl.array("tinyml_stage_layer", f"{name}_layers", layers))
    decls.append(cdecl.struct("tinyml_stage_params", f"{name}_params", layers=len(layers), layer=f"{name}_layers",
                              in_rows=in_rows, in_mirror=int(stream and chain[0].depthwise)))
    scratch = ScratchRef(f"tinyml_fused_stage_s8_scratch_size(&{name}_params)")
    if stream:
        fn = f"tinyml_{name}"
        decls.append(f"""/* FUSED_STAGE {name}, streamed: the kernel returns whenever it needs the next image
 * row (ascending, each row once) and this loop fetches it with {READ_ROWS}(). */
static tinyml_status {fn}(const tinyml_ctx *ctx, int8_t *ring, int8_t *output)
{{
    tinyml_stage_state st = {{0}};
    for (;;) {{
        const tinyml_status rc = tinyml_fused_stage_s8(ctx, &{name}_params, &st, NULL, ring, output);
        if (rc != TINYML_OK || st.want < 0) {{
            return rc;
        }}
        if ({READ_ROWS}(st.want_dst, st.want, 1) != 0) {{
            return TINYML_ERROR_ARG;
        }}
    }}
}}""")
        call = Call(fn, [scratch, TRef(x), TRef(y)])
    else:
        call = Call("tinyml_fused_stage_s8", [scratch, f"&{name}_params", "NULL", TRef(x), "NULL", TRef(y)])
    ops = [i for s in steps for i in s.ops]
    kinds = " -> ".join(("dw" if g.depthwise else "conv") + f" k{g.k_h}/s{g.stride}" for g in chain)
    xt, yt = graph.t(x), graph.t(y)
    how = (f"; input streamed one row at a time into a {stream_rows(chain)}-row ring by {READ_ROWS}()"
           if stream else "")
    return Step(index=last.index, kind=KIND, inputs=[x], outputs=[y], calls=[call],
                decls=decls, scratch_bytes=stage_scratch(chain, conv_scratch),
                overlap=None if stream else Overlap(down_bytes=overlap_down_bytes(chain)), ops=ops,
                comment=f"{list(xt.shape)} -> {kinds} -> {list(yt.shape)}, {len(chain)} layers row by row "
                        f"(ring rows {[r for r, _ in ring_layout(chain)[:-1]]}, nothing recomputed){how}")
