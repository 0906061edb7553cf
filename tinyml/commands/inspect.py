"""`tinyml inspect MODEL`: ops, tensors, parameter bytes, what is supported."""
from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("inspect", help="list a model's ops, tensors and parameters; flag unsupported ops")
    p.add_argument("model", help="int8 .tflite file")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--tensors", action="store_true", help="also list every tensor")
    p.set_defaults(func=run)


def inspect_model(path: str) -> dict:
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.lower import LOWERINGS, supported_ops

    g = import_tflite(path)
    ops = [{"index": op.index, "kind": op.kind, "supported": op.kind in LOWERINGS,
            "inputs": op.inputs, "outputs": op.outputs} for op in g.ops]
    tensors = [{"index": t.index, "name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                "const": t.is_const, "bytes": t.nbytes,
                "per_channel": bool(t.quant and t.quant.per_channel),
                "scale": float(t.quant.s) if t.quant else None,
                "zero_point": int(t.quant.zp) if t.quant else None} for t in g.tensors]
    unsupported = sorted({o["kind"] for o in ops if not o["supported"]})
    acct = None
    if not unsupported:
        from tinyml.codegen.pipeline import accounting, compile
        from tinyml.errors import TinymlError
        try:
            acct = accounting(compile(g)).to_dict()
        except TinymlError:
            acct = None        # a variant lowering refuses: the op list below says what is supported
    io = lambda idx: [{"index": i, "shape": list(g.t(i).shape), "dtype": g.t(i).dtype,
                       "scale": float(g.t(i).quant.s) if g.t(i).quant else None,
                       "zero_point": int(g.t(i).quant.zp) if g.t(i).quant else None} for i in idx]
    return {"model": path, "ops": ops, "op_counts": g.op_counts(), "tensors": tensors,
            "inputs": io(g.inputs), "outputs": io(g.outputs), "param_bytes": g.param_bytes(), "accounting": acct,
            "unsupported_ops": unsupported, "supported": not unsupported,
            "supported_op_set": supported_ops()}


def run(args) -> int:
    info = inspect_model(args.model)
    if args.json:
        print(json.dumps(info))
        return 0 if info["supported"] else 1
    out = sys.stdout
    print(f"model: {args.model}", file=out)
    for io in info["inputs"]:
        print(f"input  t{io['index']} {io['shape']} {io['dtype']} scale={io['scale']} zp={io['zero_point']}", file=out)
    for io in info["outputs"]:
        print(f"output t{io['index']} {io['shape']} {io['dtype']} scale={io['scale']} zp={io['zero_point']}", file=out)
    print(f"ops ({len(info['ops'])}): " + ", ".join(f"{k} x{v}" for k, v in info["op_counts"].items()), file=out)
    print(f"parameters: {info['param_bytes']:,} bytes", file=out)
    if info["accounting"] is not None:
        from tinyml.memory_planner.report import Accounting
        for line in Accounting(**info["accounting"]).lines():
            print(line, file=out)
    if args.tensors:
        for t in info["tensors"]:
            print(f"  t{t['index']:<4} {str(t['shape']):<18} {t['dtype']:<8} {'const' if t['const'] else '':<5} "
                  f"{t['bytes']:>8} B  {t['name']}", file=out)
    if info["unsupported_ops"]:
        for o in info["ops"]:
            if not o["supported"]:
                print(f"unsupported: op {o['index']} {o['kind']}", file=out)
        print("supported ops: " + ", ".join(info["supported_op_set"]), file=out)
        return 1
    print("all ops supported", file=out)
    return 0
