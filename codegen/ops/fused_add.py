"""FUSED_ADD: an int8 ADD of two same-shape tensors as one pass,
for residual connections (x + a FULLY_CONNECTED or convolution output,
possibly reshaped: transformer blocks, ResNets) and constant additions (position embeddings); other ADDs
(e.g. inside a LayerNorm that did not match) keep the unfused kernel.

TFLite's 8-bit ADD rescales each input with its own requantization before the
sum: a = requant_dr((x1 - zp1) << 20, input1), b likewise. The kernel computes
both with one SMMULR each (fused_common.h fused_rescale; the generator checks
all 256 inputs against the unfused lowering's arithmetic, codegen/ops/
fused_common.py rescale_quant), adds, requantizes once and clamps. Broadcasting ADDs keep the unfused kernel.
Registered last (priority 90): ADDs inside other patterns (LayerNorm) stay there.
"""
from __future__ import annotations

from tinyml.codegen import cdecl
from tinyml.codegen.patterns import FusionGroup, GraphIndex, pattern
from tinyml.steps import Call, Step, TRef
from tinyml.codegen.ops.fused_common import fused_add_struct, per_tensor_int8


@pattern("FUSED_ADD", lower=lambda g, graph, ctx: lower_fused_add(g, graph, ctx), priority=90)
def match_add(ix: GraphIndex, op) -> FusionGroup | None:
    if op.kind != "ADD" or len(op.inputs) != 2 or len(op.outputs) != 1:
        return None
    a, b, y = op.inputs[0], op.inputs[1], op.outputs[0]
    if a < 0 or b < 0 or (ix.is_const(a) and ix.is_const(b)):
        return None
    if not per_tensor_int8(ix.graph, a, b, y):
        return None
    if not (_squeezed(ix.t(a).shape) == _squeezed(ix.t(b).shape) == _squeezed(ix.t(y).shape)):
        return None
    if not (ix.is_const(a) or ix.is_const(b) or _from_fc(ix, a) or _from_fc(ix, b)):
        return None
    ins = [t for t in dict.fromkeys([a, b]) if not ix.is_const(t)]
    return FusionGroup("FUSED_ADD", [op.index], inputs=ins, outputs=[y])


# Ops whose output a residual connection adds back (transformer blocks, ResNets).
PRODUCERS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")


def _from_fc(ix: GraphIndex, t: int) -> bool:
    """`t` is a FULLY_CONNECTED / convolution output, possibly renamed by RESHAPEs."""
    p = ix.producer_op(t)
    while p is not None and p.kind == "RESHAPE":
        p = ix.producer_op(p.inputs[0])
    return p is not None and p.kind in PRODUCERS


def _squeezed(shape) -> tuple[int, ...]:
    """Shape without leading 1s (same elements in the same order)."""
    s = list(shape)
    while s and s[0] == 1:
        s.pop(0)
    return tuple(s)


def lower_fused_add(group: FusionGroup, graph, ctx) -> Step:
    op = graph.ops[group.ops[0]]
    p = ctx.name(f"op{op.index}_add")
    fields = fused_add_struct(ctx, p, op, graph)
    y = graph.t(op.outputs[0])
    decls = [cdecl.struct("tinyml_fused_add", f"{p}_params", **fields)]
    a, b = op.inputs
    call = Call("tinyml_fused_add_s8", [f"&{p}_params", y.numel, TRef(a), TRef(b), TRef(y.index)])
    ins = [t for t in dict.fromkeys([a, b]) if not graph.t(t).is_const]
    inplace = [(t, y.index) for t in ins]
    return Step(index=op.index, kind="FUSED_ADD", inputs=ins, outputs=[y.index],
                calls=[call], decls=decls, inplace_ok=inplace,
                comment=f"{list(graph.t(a).shape)} + {list(graph.t(b).shape)}, input rescalings tabulated")
