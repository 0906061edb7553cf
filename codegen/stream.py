"""`--stream-input`: patch-embedding decomposition with a streamed image.

A ViT's patch embedding is a CONV_2D whose kernel height equals its vertical
stride (kernel == stride == patch size P) with VALID padding: output row r
reads exactly input rows r*P .. r*P + P - 1 and no other. With
`--stream-input` the generated model runs that first convolution one patch
row at a time. Before output row r it calls the application's

    int32_t tinyml_read_input_rows(int8_t *dst, int32_t row0, int32_t nrows);

(declared in model.h) to fetch input rows row0 .. row0 + nrows - 1 (NHWC,
each row W * C bytes) into a stripe buffer of P * W * C bytes, then computes
output row r with the packed convolution's row entry point
(tinyml_conv2d_packed_rows_s8, the stripe as a P-row ring). The
output bytes are those of the whole-image call (each output pixel depends on
its own window only); the full image never exists in the arena. The planner
sizes the graph input's buffer as one stripe (`plan_steps(...,
stream_input_bytes=...)`).

A CNN whose first layers form a FUSED_STAGE (codegen/ops/fused_stage.py,
lowered with stream=True) streams too: the stage reads the image one row at a
time, in ascending order and each row once, into a ring of its first layer's
window height (StreamInfo.rows slots, one read per image row).

`check_stream_input` says why a model cannot stream (a one-line
`StreamInputError` naming the op); `stream_steps` rewrites the first step.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from tinyml.errors import ModelError

from tinyml.ir import Graph
from tinyml.steps import Call, ScratchRef, Step, TRef

from .ops.fused_stage import KIND as STAGE, first_ring_rows, is_streamed

READ_ROWS = "tinyml_read_input_rows"
FIX = ("drop --stream-input, or export the model so that its first op is the patch embedding "
       "(CONV_2D with kernel height == stride height, VALID padding, no dilation) or its first two or more "
       "layers are CONV_2D / DEPTHWISE_CONV_2D (a fused stage; needs fusion on)")


class StreamInputError(ModelError):
    """The model's first op cannot consume the image in row stripes."""


@dataclass(frozen=True)
class StreamInfo:
    """How the graph input is streamed into the first convolution."""
    input_tensor: int
    op_index: int          # TFLite index of the consuming CONV_2D
    rows: int              # image rows per stripe (the patch height P)
    width: int             # image width W
    channels: int          # image channels C
    stripes: int           # output rows of the conv = number of stripes read
    image_rows: int        # input height H (rows >= stripes * rows are never read)
    out_row_bytes: int     # bytes of one conv output row

    @property
    def row_bytes(self) -> int:
        return self.width * self.channels

    @property
    def stripe_bytes(self) -> int:
        return self.rows * self.row_bytes

    @property
    def image_bytes(self) -> int:
        return self.image_rows * self.row_bytes

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(row_bytes=self.row_bytes, stripe_bytes=self.stripe_bytes, image_bytes=self.image_bytes)
        return d


def _fail(cause: str, graph: Graph) -> StreamInputError:
    return StreamInputError(f"--stream-input: {cause}", where=graph.source or graph.name, fix=FIX)


def check_stream_input(graph: Graph, steps: list[Step]) -> StreamInfo:
    """The stream geometry, or a StreamInputError naming what prevents streaming."""
    if len(graph.inputs) != 1:
        raise _fail(f"the model has {len(graph.inputs)} inputs; streaming needs exactly one", graph)
    tin = graph.inputs[0]
    x = graph.t(tin)
    readers = [pos for pos, s in enumerate(steps) if tin in s.inputs]
    if not steps or readers != [0]:
        first = steps[0] if steps else None
        what = f"operator {first.index} ({first.kind})" if first else "no operator"
        raise _fail(f"the input tensor {tin} '{x.name}' must be read by the first operator only "
                    f"(first is {what}, readers at steps {readers})", graph)
    s = steps[0]
    if is_streamed(s):
        return _stage_info(graph, s)
    if s.kind != "CONV_2D" or len(s.ops) != 1:
        raise _fail(f"the first operator, operator {s.index} ({s.kind}), is not a patch-embedding CONV_2D", graph)
    op = graph.ops[s.ops[0]]
    if op.inputs[0] != tin:
        raise _fail(f"operator {op.index} (CONV_2D) reads the image as its filter or bias", graph)
    if len(x.shape) != 4 or x.shape[0] != 1 or x.dtype != "int8":
        raise _fail(f"the input tensor {tin} is {x.dtype} {list(x.shape)}, not an int8 [1,H,W,C] image",
                    graph)
    w = graph.t(op.inputs[1])
    y = graph.t(op.outputs[0])
    _, kh, _, _ = w.shape
    o = op.options
    stride_h = o.stride_h or 1
    dil = o.dilation_h or 1
    pad = str(o.padding)
    if pad != "VALID" or stride_h != kh or dil != 1:
        raise _fail(f"operator {op.index} (CONV_2D) is a {kh}x{w.shape[2]} conv with stride {stride_h}, "
                    f"dilation {dil}, {pad} padding; a patch embedding has kernel height == stride, "
                    "VALID, no dilation", graph)
    call = s.calls[0] if len(s.calls) == 1 else None
    if call is None or call.func != "tinyml_conv2d_packed_s8" or len(call.args) != 6:
        raise _fail(f"operator {op.index} (CONV_2D) is lowered to "
                    f"{call.func if call else 'several kernel calls'}, not the one-group packed "
                    "convolution (tinyml_conv2d_packed_s8) that streams; grouped patch embeddings "
                    "do not stream", graph)
    _, h, wd, c = x.shape
    _, oh, ow, oc = y.shape
    return StreamInfo(input_tensor=tin, op_index=op.index, rows=kh, width=wd, channels=c, stripes=oh,
                      image_rows=h, out_row_bytes=ow * oc)


def _stage_info(graph: Graph, s: Step) -> StreamInfo:
    """A streamed FUSED_STAGE: one read per image row into a ring of its first window's height."""
    x, y = graph.t(s.inputs[0]), graph.t(s.outputs[0])
    _, h, wd, c = x.shape
    rows = first_ring_rows(graph, s.ops[0])
    return StreamInfo(input_tensor=s.inputs[0], op_index=s.index, rows=rows, width=wd, channels=c, stripes=h,
                      image_rows=h, out_row_bytes=y.shape[2] * y.shape[3])


def stream_steps(graph: Graph, steps: list[Step], info: StreamInfo) -> list[Step]:
    """Steps with the first CONV_2D replaced by a stripe loop (a static function in model.c).

    The packed conv call is `tinyml_conv2d_packed_s8(ctx, &params, n, in, filter, out)`;
    the loop computes output row r with the kernel's row entry point
    (tinyml_conv2d_packed_rows_s8) on a P-row ring that holds stripe r.
    A streamed FUSED_STAGE already reads its rows itself: unchanged."""
    s = steps[0]
    if s.kind == STAGE:
        return list(steps)
    c = s.calls[0]
    scratch, params, _, _, filt, _ = c.args
    assert isinstance(params, str) and params.startswith("&") and isinstance(filt, str)
    assert isinstance(scratch, ScratchRef)
    fn = f"tinyml_stream_op{info.op_index}"
    decl = f"""/* op {info.op_index} CONV_2D, streamed: the {info.image_rows}x{info.width}x{info.channels} image
 * arrives as {info.stripes} stripes of {info.rows} rows ({info.stripe_bytes} B) from
 * {READ_ROWS}(); stripe r gives output row r ({info.out_row_bytes} B). Image row
 * r * {info.rows} + k is row k of the stripe buffer, i.e. a {info.rows}-row ring for the row
 * entry point. Same bytes as one whole-image call: each output pixel reads only its own
 * {info.rows}-row window. */
static tinyml_status {fn}(const tinyml_ctx *ctx, int8_t *stripe, int8_t *output)
{{
    for (int32_t r = 0; r < {info.stripes}; ++r) {{
        if ({READ_ROWS}(stripe, r * {info.rows}, {info.rows}) != 0) {{
            return TINYML_ERROR_ARG;
        }}
        const tinyml_status st = tinyml_conv2d_packed_rows_s8(ctx, {params}, {info.rows}, stripe, {filt}, r, r + 1,
                                                              output + (size_t)r * {info.out_row_bytes});
        if (st != TINYML_OK) {{
            return st;
        }}
    }}
    return TINYML_OK;
}}"""
    call = Call(fn, [scratch, TRef(info.input_tensor), TRef(s.outputs[0])])
    new = Step(index=s.index, kind=s.kind, inputs=list(s.inputs), outputs=list(s.outputs), calls=[call],
               decls=list(s.decls) + [decl], scratch_bytes=s.scratch_bytes, alias_of=None,
               inplace_ok=[], comment=s.comment + f"; streamed: t{info.input_tensor} is a {info.stripe_bytes}-B stripe "
                                           f"buffer filled {info.stripes} times ({info.rows} rows each) by "
                                           f"{READ_ROWS}()",
               ops=list(s.ops), overlap=s.overlap)   # the planner refuses it for the stripe buffer
    return [new] + list(steps[1:])
