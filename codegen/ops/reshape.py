"""RESHAPE / SQUEEZE / EXPAND_DIMS: the output is the input's bytes under a new shape."""
from __future__ import annotations

from tinyml.steps import Step

from tinyml.codegen.lowering import activations, lowering, require


@lowering("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def lower_reshape(op, graph, ctx) -> Step:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    require(x.nbytes == y.nbytes, op, graph, "a reshape that changes the byte size")
    ins, outs = activations(graph, op)
    if x.is_const:
        # A reshape of a constant: give the output the constant's data.
        y.data = x.data.reshape(y.shape)
        return Step(index=op.index, kind=op.kind, inputs=[], outputs=[], comment="constant folded")
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs, alias_of=x.index,
                comment="alias")
