"""PAD / PADV2 (int8, constant padding).

PAD fills with the output zero point (a real 0); PADV2 fills with its
constant_values tensor's int8 value, as TFLite's reference Pad does.
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.steps import Call, Step, TRef
from tinyml.codegen.lowering import activations, dims4, lowering, require


@lowering("PAD", "PADV2")
def lower_pad(op, graph, ctx) -> Step:
    x, pads, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.outputs[0])
    require(x.dtype == "int8" and y.dtype == "int8", op, graph, f"{x.dtype} -> {y.dtype} padding")
    require(pads.is_const and pads.dtype in ("int32", "int64"), op, graph, "non-constant paddings")
    rank = len(x.shape)
    require(rank <= 4, op, graph, f"{rank}-D padding")
    pv = np.asarray(pads.data, dtype=np.int64).reshape(-1, 2)
    require(pv.shape[0] == rank, op, graph, f"paddings of shape {list(pads.shape)} for a {rank}-D input")
    require(bool(np.all(pv >= 0)), op, graph, "negative paddings")
    want = tuple(int(d + a + b) for d, (a, b) in zip(x.shape, pv))
    require(want == tuple(y.shape), op, graph, f"output shape {list(y.shape)} (paddings give {list(want)})")
    if op.kind == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        cv = graph.t(op.inputs[2])
        require(cv.is_const and cv.dtype == "int8" and cv.numel == 1, op, graph, "a non-constant or non-int8 pad value")
        value = int(np.asarray(cv.data).reshape(-1)[0])
    else:
        require(y.quant is not None, op, graph, "an unquantized output")
        value = int(y.quant.zp)
    before = [0] * (4 - rank) + [int(a) for a, _ in pv]
    after = [0] * (4 - rank) + [int(b) for _, b in pv]
    p = ctx.name(f"op{op.index}")
    decls = [
        cdecl.struct("tinyml_pad_params", f"{p}_params", before=before, after=after, pad_value=value),
        cdecl.struct("tinyml_dims", f"{p}_in", **dict(zip("nhwc", dims4(x)))),
    ]
    ins, outs = activations(graph, op)
    call = Call("tinyml_pad_s8", [f"&{p}_params", f"&{p}_in", TRef(x.index), TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=decls,
                comment=f"before {before} after {after} value {value}")
