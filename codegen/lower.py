"""Lowering driver: check the graph, then one `Step` per op or fusion group.

The per-op lowerings live in `codegen/ops/` (registered on import of that
package, see `codegen.lowering`); fusion patterns in `codegen/ops/fused_*.py`
(`codegen.patterns`), matched by `codegen.fuse`.
"""
from __future__ import annotations

from tinyml.errors import ModelError, UnsupportedOpError
from tinyml.ir import Graph
from tinyml.op_options import DETECTION_POSTPROCESS
from tinyml.steps import Step

from . import ops  # noqa: F401  (registers every lowering and fusion pattern)
from .fuse import fuse as fusion_groups
from .fuse import lower_group
from .lowering import LOWERINGS, LowerCtx, is_16x8, lowering_for, supported_ops, supported_ops_16x8


def unsupported_ops(graph: Graph) -> list[tuple[int, str]]:
    """(op index, kind) of the ops without a lowering; a 16x8 op's kind reads `KIND (16x8)`."""
    return [(op.index, f"{op.kind} (16x8)" if is_16x8(op, graph) else op.kind)
            for op in graph.ops if lowering_for(op, graph) is None]


def check_graph(graph: Graph) -> None:
    """Raise a one-line error for the first thing we cannot compile."""
    bad = unsupported_ops(graph)
    if bad:
        idx, kind = bad[0]
        more = f" (and {len(bad) - 1} more unsupported op(s))" if len(bad) > 1 else ""
        fix = ("supported 16x8 ops (int16 activations): " + ", ".join(supported_ops_16x8())
               if kind.endswith("(16x8)") else "supported ops: " + ", ".join(supported_ops()))
        raise UnsupportedOpError(
            f"operator {idx} is {kind}, which tinyml does not support{more}",
            where=graph.source, fix=fix)
    for t in graph.tensors:
        if len(t.shape) > 4 and not t.is_const and not _rank_free(graph, t.index):
            raise ModelError(f"tensor {t.index} '{t.name}' has {len(t.shape)} dimensions {list(t.shape)}; "
                             "at most 4 are supported", where=graph.source,
                             fix="reshape attention heads to <= 4-D before export")
    float_ops = _float_compute(graph)
    if float_ops:
        idx, kind = float_ops[0]
        raise ModelError(f"the model is not fully int8-quantized: operator {idx} ({kind}) computes in float32",
                         where=graph.source,
                         fix="convert with a representative dataset and "
                             "supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8]")


# Ops whose lowerings handle any rank themselves (alias, or merge axes down to
# <= 4 and reject by name otherwise): Keras UpSampling2D exports 5-D
# RESHAPE -> TILE -> RESHAPE chains between 4-D tensors.
RANK_FREE_OPS = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TILE", "TRANSPOSE"}


def _rank_free(graph: Graph, tensor: int) -> bool:
    """A >4-D activation is fine when only rank-free ops touch it and it is no graph input/output."""
    if tensor in graph.inputs or tensor in graph.outputs:
        return False
    return all(op.kind in RANK_FREE_OPS for op in graph.ops if tensor in op.inputs or tensor in op.outputs)


# Float ops the converter leaves inside int8 graphs (e.g. Keras LayerNorm's
# DEQUANTIZE -> NEG -> QUANTIZE), CAST (an exact conversion) and the SSD post-process
# (a float op in TFLite and TFLM alike, fed by DEQUANTIZE); anything else computing
# in float is rejected.
FLOAT_ISLAND_OPS = {"NEG", "DEQUANTIZE", "QUANTIZE", "CAST", DETECTION_POSTPROCESS}


def _float_compute(graph: Graph) -> list[tuple[int, str]]:
    out = []
    for op in graph.ops:
        if op.kind in FLOAT_ISLAND_OPS:
            continue
        for i in op.inputs + op.outputs:
            if i >= 0:
                t = graph.t(i)
                if t.dtype == "float32" and not (t.is_const and op.kind in ("RESHAPE",)):
                    out.append((op.index, op.kind))
                    break
    return out


def lower_graph(graph: Graph, fuse: bool = True) -> tuple[list[Step], LowerCtx]:
    """One Step per op; with `fuse`, one Step per fusion group (codegen.fuse) instead of its ops."""
    check_graph(graph)
    ctx = LowerCtx(graph)
    steps: list[Step] = []
    groups, covered = {}, set()
    if fuse:
        for g in fusion_groups(graph):
            groups[g.anchor] = g
            covered |= set(g.ops)
    for op in graph.ops:
        if op.index in groups:
            steps.append(lower_group(groups[op.index], graph, ctx))
            continue
        if op.index in covered:
            continue
        step = lowering_for(op, graph)(op, graph, ctx)
        if not step.ops:
            step.ops = [op.index]
        steps.append(step)
    return steps, ctx
