"""`tinyml inspect MODEL`: ops with their status, quantization, tensors, parameter bytes.

Exit 0 only when `plan` would compile the model: every op supported (or folded
away at import), fully int8, and the lowering accepts every op's parameters.
"""
from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("inspect", help="list a model's ops with their status (supported / unsupported / "
                                       "folded), its quantization and parameters; exit 1 if it cannot compile")
    p.add_argument("model", help="int8 .tflite file")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--tensors", action="store_true", help="also list every tensor")
    p.set_defaults(func=run)


def quantization_kind(graph) -> str:
    """"int8", "16x8" (int16 activations, int8 weights), "dynamic-range" (float activations,
    int8 weights) or "float", from the activation tensors (the model's inputs and op outputs)."""
    acts = {graph.t(o).dtype for op in graph.ops for o in op.outputs if o >= 0}
    acts |= {graph.t(i).dtype for i in graph.inputs}
    consts = {graph.t(i).dtype for op in graph.ops for i in op.inputs if i >= 0 and graph.t(i).is_const}
    if "int16" in acts:
        return "16x8"
    from tinyml.op_options import DETECTION_POSTPROCESS   # a float op inside int8 SSD models
    float_ops = [op for op in graph.ops if op.kind not in ("DEQUANTIZE", "NEG", "QUANTIZE", DETECTION_POSTPROCESS)
                 and any(graph.t(o).dtype == "float32" for o in op.outputs if o >= 0)]
    if float_ops or (graph.inputs and all(graph.t(i).dtype == "float32" for i in graph.inputs)
                     and "int8" not in acts):
        return "dynamic-range" if ("int8" in consts or "int8" in acts) else "float"
    return "int8"


def _tagged(op: dict) -> str:
    """The op's kind, `KIND (16x8)` when it runs on int16 activations (as in `plan`'s errors)."""
    return f"{op['kind']} (16x8)" if op["precision"] == "16x8" else op["kind"]


def inspect_model(path: str) -> dict:
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.lower import lower_graph, lowering_for, supported_ops
    from tinyml.codegen.lowering import is_16x8
    from tinyml.errors import TinymlError

    g = import_tflite(path)
    ops = [{"index": op.index, "kind": op.kind, "precision": "16x8" if is_16x8(op, g) else "int8",
            "status": "supported" if lowering_for(op, g) else "unsupported",
            "supported": lowering_for(op, g) is not None, "inputs": op.inputs, "outputs": op.outputs} for op in g.ops]
    folded = [{"file_index": i, "kind": k, "status": "folded"} for i, k in g.folded]
    tensors = [{"index": t.index, "name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                "const": t.is_const, "bytes": t.nbytes,
                "per_channel": bool(t.quant and t.quant.per_channel),
                "scale": float(t.quant.s) if t.quant else None,
                "zero_point": int(t.quant.zp) if t.quant else None} for t in g.tensors]
    unsupported = sorted({_tagged(o) for o in ops if not o["supported"]})
    error = None
    try:
        lower_graph(g)          # what `plan` would say (unsupported op, float compute, parameters)
    except TinymlError as exc:
        error = exc.line()
    acct = None
    if error is None:
        from tinyml.codegen.pipeline import accounting, compile
        try:
            acct = accounting(compile(g)).to_dict()
        except TinymlError as exc:
            error = exc.line()
    io = lambda idx: [{"index": i, "shape": list(g.t(i).shape), "dtype": g.t(i).dtype,
                       "scale": float(g.t(i).quant.s) if g.t(i).quant else None,
                       "zero_point": int(g.t(i).quant.zp) if g.t(i).quant else None} for i in idx]
    return {"model": path, "ops": ops, "folded_ops": folded, "op_counts": g.op_counts(), "tensors": tensors,
            "inputs": io(g.inputs), "outputs": io(g.outputs), "param_bytes": g.param_bytes(), "accounting": acct,
            "quantization": quantization_kind(g),
            "unsupported_ops": unsupported, "supported": error is None, "error": error,
            "supported_op_set": supported_ops()}


def run(args) -> int:
    info = inspect_model(args.model)
    if args.json:
        print(json.dumps(info))
        return 0 if info["supported"] else 1
    out = sys.stdout
    print(f"model: {args.model}", file=out)
    print(f"quantization: {info['quantization']}", file=out)
    for io in info["inputs"]:
        print(f"input  t{io['index']} {io['shape']} {io['dtype']} scale={io['scale']} zp={io['zero_point']}", file=out)
    for io in info["outputs"]:
        print(f"output t{io['index']} {io['shape']} {io['dtype']} scale={io['scale']} zp={io['zero_point']}", file=out)
    print(f"ops ({len(info['ops'])}): " + ", ".join(f"{k} x{v}" for k, v in info["op_counts"].items()), file=out)
    for o in info["ops"]:
        print(f"  op {o['index']:<4} {_tagged(o):<24} {o['status']}", file=out)
    if info["folded_ops"]:
        print(f"folded at import ({len(info['folded_ops'])} shape ops evaluated at compile time; "
              "ops above renumbered): "
              + ", ".join(f"{f['kind']} (file op {f['file_index']})" for f in info["folded_ops"]), file=out)
    print(f"parameters: {info['param_bytes']:,} bytes", file=out)
    if info["accounting"] is not None:
        from tinyml.memory_planner.report import Accounting
        for line in Accounting(**info["accounting"]).lines():
            print(line, file=out)
    if args.tensors:
        for t in info["tensors"]:
            print(f"  t{t['index']:<4} {str(t['shape']):<18} {t['dtype']:<8} {'const' if t['const'] else '':<5} "
                  f"{t['bytes']:>8} B  {t['name']}", file=out)
    if info["error"]:
        if info["unsupported_ops"]:
            print("unsupported: " + ", ".join(info["unsupported_ops"]), file=out)
        print(info["error"], file=sys.stderr)
        return 1
    print("all ops supported", file=out)
    return 0
