"""SVDF (integer: int8 input/output, int8 feature weights, int16 time weights,
int32 bias, int16 variable state), as TFLite's EvalIntegerSVDF; the kernel
contract is in firmware/kernels/include/tinyml/svdf.h.

The activation state is a TFLite variable tensor: it persists between
invocations. It is a `StateRef` in the model's state block (outside the
arena, zeroed at start-up and by <prefix>_reset()); the planner counts it as
`Plan.state_bytes` and never places it in the arena. Scales as TFLite's
Prepare: float32 products/quotients of the tensor scales, then
QuantizeMultiplier in double.

Planner: scratch of one int32 per filter; no in-place or overlap facts (the
output is written after the whole input has been read, but outputs are
small).
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.codegen.lowering import activations, lowering, require
from tinyml.codegen.quant import quantize_multiplier
from tinyml.steps import Call, ScratchRef, StateRef, Step, TRef


def _scale(a: float, b: float, c: float) -> float:
    """float32(a * b / c) in double, as TFLite's Prepare (float tensor scales)."""
    return float(np.float32(np.float32(a) * np.float32(b)) / np.float32(c))


@lowering("SVDF")
def lower_svdf(op, graph, ctx) -> Step:
    require(len(op.inputs) == 5 and len(op.outputs) == 1, op, graph, f"{len(op.inputs)} inputs (5 expected)")
    x, wf, wt, y = graph.t(op.inputs[0]), graph.t(op.inputs[1]), graph.t(op.inputs[2]), graph.t(op.outputs[0])
    bias = graph.t(op.inputs[3]) if op.inputs[3] >= 0 else None
    st = graph.t(op.inputs[4])
    require(x.dtype == "int8" and y.dtype == "int8", op, graph, f"{x.dtype} -> {y.dtype} (int8 -> int8 only: "
            "the float and hybrid SVDF are not supported)")
    require(wf.is_const and wf.dtype == "int8" and wt.is_const and wt.dtype == "int16", op, graph,
            f"{wf.dtype} feature / {wt.dtype} time weights (constant int8 / int16 expected)")
    require(bias is None or (bias.is_const and bias.dtype == "int32"), op, graph, "a non-constant or non-int32 bias")
    require(st.variable and st.dtype == "int16" and not st.is_const, op, graph,
            "an activation state that is not an int16 variable tensor")
    for t in (x, wf, wt, st, y):
        require(t.quant is not None and not t.quant.per_channel, op, graph,
                f"tensor {t.index} without per-tensor quantization")
    require(st.quant.zp == 0, op, graph, f"state zero point {st.quant.zp} (TFLite assumes 0)")
    require(len(x.shape) == 2 and len(wf.shape) == 2 and len(wt.shape) == 2, op, graph,
            "input/weights that are not 2-D")
    batches, n_input = int(x.shape[0]), int(x.shape[1])
    filters, memory = int(wf.shape[0]), int(wt.shape[1])
    rank = op.options.rank
    require(rank > 0 and filters % rank == 0, op, graph, f"rank {rank} for {filters} filters")
    units = filters // rank
    require(int(wf.shape[1]) == n_input and int(wt.shape[0]) == filters, op, graph, "weight shapes")
    require(st.numel == batches * memory * filters, op, graph, f"state of {st.numel} values")
    require(y.numel == batches * units, op, graph, f"output of {y.numel} values")
    require(bias is None or bias.numel == units, op, graph, "bias size")
    m1, s1 = quantize_multiplier(_scale(x.quant.s, wf.quant.s, st.quant.s))
    m2, s2 = quantize_multiplier(_scale(st.quant.s, wt.quant.s, y.quant.s))
    require(-31 <= s1 <= 30 and -31 <= s2 <= 30, op, graph, "an effective scale outside 2^-31..2^30")
    p = ctx.name(f"op{op.index}")
    decl = cdecl.struct("tinyml_svdf_params", f"{p}_params", batches=batches, input_size=n_input, filters=filters,
                        rank=rank, memory=memory, input_zp=int(x.quant.zp), output_zp=int(y.quant.zp),
                        quant1={"multiplier": m1, "shift": s1}, quant2={"multiplier": m2, "shift": s2})
    ins, outs = activations(graph, op)
    ins = [i for i in ins if i != st.index]
    call = Call("tinyml_svdf_s8", [ScratchRef(f"tinyml_svdf_s8_scratch_size(&{p}_params)"), f"&{p}_params",
                                   TRef(x.index), TRef(wf.index), TRef(wt.index),
                                   TRef(bias.index) if bias is not None else "NULL", StateRef(st.index),
                                   TRef(y.index)])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, calls=[call], decls=[decl],
                scratch_bytes=4 * filters, state=[st.index],
                comment=f"{units} units x rank {rank}, memory {memory}, state t{st.index} "
                        f"({st.nbytes} B, kept between inferences)")
