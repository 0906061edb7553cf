"""Render a compiled model (codegen.pipeline.Compiled) to C with Jinja2 templates.

`generate(model, out_dir, options)` = `compile` + `emit`. Everything written
here comes from the IR, the steps and the plan; templates only format.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace

import jinja2
import numpy as np

from tinyml import __version__, paths
from tinyml.ir import Graph
from tinyml.memory_planner.plan import Plan
from tinyml.steps import Call, ScratchRef, Step, TRef, call_constants

from .lowering import LowerCtx
from .pipeline import Compiled, CompileOptions, compile


@dataclass
class Generated:
    graph: Graph
    steps: list[Step]
    plan: Plan
    out_dir: str
    files: list[str]
    stream: object = None           # codegen.stream.StreamInfo with --stream-input


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(paths.TEMPLATES),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True)


def weight_symbol(t: int) -> str:
    return f"tinyml_w{t}"


class Renderer:
    """Turns symbolic call arguments into C expressions under a plan."""

    def __init__(self, graph: Graph, plan: Plan, steps: list[Step] | None = None) -> None:
        self.graph, self.plan = graph, plan
        self.steps = steps or []
        self._scratch_names: dict[int, str] = {}
        taken: set[str] = set()
        for pos, s in enumerate(self.steps):
            if any(isinstance(a, ScratchRef) for c in s.calls for a in c.args):
                name = f"op{s.index}_scratch"
                if name in taken:
                    name = f"op{s.index}_{pos}_scratch"
                taken.add(name)
                self._scratch_names[pos] = name

    def scratch_name(self, pos: int) -> str:
        """The named tinyml_ctx (arena address + planned bytes) of step `pos`."""
        return self._scratch_names[pos]

    def scratch_contexts(self) -> list[dict]:
        """One named context per step whose kernel takes scratch: name, arena offset
        (None for 0 planned bytes), planned bytes, the kernel's own size call."""
        out = []
        for pos, name in self._scratch_names.items():
            s = self.steps[pos]
            ref = next(a for c in s.calls for a in c.args if isinstance(a, ScratchRef))
            out.append({"name": name, "op": s.index, "kind": s.kind, "bytes": s.scratch_bytes,
                        "offset": self.plan.scratch_offset(pos) if s.scratch_bytes > 0 else None,
                        "symbol": self.plan.symbol_of_buffer(self.plan.scratch_buffer[pos])
                        if s.scratch_bytes > 0 else "",
                        "size_call": ref.size, "kernel": ref.size.split("_scratch_size(")[0]})
        return out

    def tensor(self, t: int) -> str:
        ten = self.graph.t(t)
        if ten.is_const:
            return weight_symbol(t)
        return f"(({ten.ctype} *)({self.plan.symbol_of(t)} + {self.plan.offset_of(t)}))"

    def arg(self, a, pos: int) -> str:
        if isinstance(a, TRef):
            return self.tensor(a.tensor)
        if isinstance(a, ScratchRef):
            return f"&{self.scratch_name(pos)}"
        return str(a)

    def call(self, c: Call, pos: int) -> str:
        return f"{c.func}(" + ", ".join(self.arg(a, pos) for a in c.args) + ")"


def _c_values(arr: np.ndarray, ctype: str) -> str:
    if ctype == "float":
        vals = [repr(float(v)) + "f" if np.isfinite(v) else "0.0f" for v in arr.astype(np.float32)]
    else:
        vals = [str(int(v)) for v in arr]
    per = 16
    return ",\n    ".join(", ".join(vals[i:i + per]) for i in range(0, len(vals), per))


def _weights(graph: Graph, steps: list[Step], ctx: LowerCtx) -> list[dict]:
    used = dict.fromkeys(t for s in steps for t in call_constants(s, graph))
    out = []
    for t in used:
        ten = graph.t(t)
        out.append({"symbol": weight_symbol(t), "ctype": ten.ctype, "count": max(ten.numel, 1),
                    "data": _c_values(ten.data.reshape(-1), ten.ctype),
                    "comment": f"tensor {t} '{ten.name}' {list(ten.shape)} {ten.dtype}"})
    for arr in ctx.arrays:
        out.append({"symbol": arr.symbol, "ctype": arr.ctype, "count": max(arr.values.size, 1),
                    "data": _c_values(arr.values, arr.ctype), "comment": "derived at generate time"})
    return out


def _io_info(graph: Graph, plan: Plan, which: list[int]) -> list[dict]:
    out = []
    for t in which:
        ten = graph.t(t)
        dims = list(ten.shape) + [1] * (4 - len(ten.shape))
        out.append({
            "tensor": t, "name": ten.name.replace('"', "'"), "bytes": ten.nbytes, "dims": dims[:4],
            "ndims": len(ten.shape), "dtype": ten.dtype,
            "scale": repr(float(ten.quant.s)) + "f" if ten.quant else "0.0f",
            "zero_point": ten.quant.zp if ten.quant else 0,
            "offset": plan.offset_of(t), "symbol": plan.symbol_of(t),
        })
    return out


def _describe(graph: Graph, step: Step, plan: Plan) -> str:
    def t(i: int) -> str:
        ten = graph.t(i)
        k = plan.region_of(plan.tensor_buffer[i]) if i in plan.tensor_buffer else 0
        where = f"{plan.regions[k].name}:" if k else ""
        return f"t{i}{list(ten.shape)}@{where}{plan.offset_of(i)}"
    ins = ", ".join(t(i) for i in step.inputs)
    outs = ", ".join(t(o) for o in step.outputs)
    s = f"{ins} -> {outs}"
    if step.comment:
        s += f"; {step.comment}"
    return s


def _sharing(graph: Graph, step: Step, plan: Plan) -> list[str]:
    """Why this call may write where it reads: the in-place pair or the overlap fact that makes the
    planned placement legal, said at the call (empty when output and input bytes are disjoint)."""
    out = []
    for tin in step.inputs:
        for tout in step.outputs:
            if tin not in plan.tensor_buffer or tout not in plan.tensor_buffer:
                continue
            bi, bo = plan.tensor_buffer[tin], plan.tensor_buffer[tout]
            a, b = plan.buffers[bi], plan.buffers[bo]
            if bi == bo and (tin, tout) in step.inplace_ok:
                out.append(f"in place: t{tout} takes t{tin}'s bytes at {a.offset} (the kernel is correct "
                           f"when output and input coincide)")
                continue
            if bi == bo or b.offset + b.size <= a.offset or a.offset + a.size <= b.offset:
                continue
            if plan.region_of(bi) != plan.region_of(bo):
                continue              # different RAM regions: the bytes are disjoint
            down, up = plan.overlaps.get((bo, bi)), plan.overlaps_up.get((bo, bi))
            if down is not None and b.offset <= a.offset - down:
                out.append(f"overlap: t{tout}@{b.offset} starts {a.offset - b.offset} B before dying "
                           f"t{tin}@{a.offset} (>= {down} B needed: output rows written top to bottom)")
            elif up is not None and b.offset + b.size >= a.offset + a.size + up:
                out.append(f"overlap: t{tout}@{b.offset} ends {b.offset + b.size - a.offset - a.size} B after "
                           f"dying t{tin}@{a.offset} ends (>= {up} B needed: rows written bottom to top)")
    return out


def generate(model: str | Graph, out_dir: str, options: CompileOptions | None = None, **kw) -> Generated:
    """compile + emit. Keyword arguments override fields of `options` (policy, fuse,
    stream_input, rounding; see CompileOptions).

    `rounding` selects the requantization rounding of the reference runtime the
    output must match: "tflite" (default: TFLite's reference kernels in
    TensorFlow 2.21; FULLY_CONNECTED rounds once) or "tflm" (the tflite_micro
    wheel: gemmlowp double rounding everywhere). Generating never runs an
    oracle or imports TensorFlow; `verify` and `build` choose the rounding of
    the oracle they compare with (codegen.oracle.choose_oracle).
    """
    options = replace(options or CompileOptions(), **kw)
    compiled = compile(model, options)
    return emit(compiled, out_dir)


CONFIG_H = """/* Generated by tinyml: kernel configuration for this model. */
#ifndef TINYML_CONFIG_H
#define TINYML_CONFIG_H
#define TINYML_SINGLE_ROUNDING {single}
#endif
"""


def emit(compiled: Compiled, out_dir: str) -> Generated:
    """Write model.h/.c, weights.h/.c, CMakeLists.txt, plan.json and kernels/ to `out_dir`."""
    graph, steps, ctx, plan, stream = (compiled.graph, compiled.steps, compiled.ctx, compiled.plan,
                                       compiled.stream)
    rounding = compiled.options.rounding
    os.makedirs(out_dir, exist_ok=True)
    r = Renderer(graph, plan, steps)
    env = _env()
    rendered_steps = []
    for pos, s in enumerate(steps):
        rendered_steps.append({
            "index": s.index, "kind": s.kind, "pos": pos,
            "describe": _describe(graph, s, plan).replace("*/", "* /"),
            "alias": s.alias_of is not None,
            "sharing": [x.replace("*/", "* /") for x in _sharing(graph, s, plan)],
            "calls": [r.call(c, pos) for c in s.calls],
        })
    decls = [d for s in steps for d in s.decls]
    trace = [{"op": s.index, "tensor": o, "offset": plan.offset_of(o), "bytes": graph.t(o).nbytes}
             for s in steps if s.alias_of is None and s.calls for o in s.outputs]
    ctx_vars = {
        "version": __version__, "source": os.path.basename(graph.source) or graph.name,
        "name": graph.name, "plan": plan, "steps": rendered_steps, "decls": decls,
        "inputs": _io_info(graph, plan, graph.inputs), "outputs": _io_info(graph, plan, graph.outputs),
        "weights": _weights(graph, steps, ctx), "trace": trace, "scratch": r.scratch_contexts(),
        "stream": stream.to_dict() if stream is not None else None,
    }
    files = []
    for tmpl, name in (("model.h.j2", "model.h"), ("model.c.j2", "model.c"),
                       ("weights.h.j2", "weights.h"), ("weights.c.j2", "weights.c"),
                       ("CMakeLists.txt.j2", "CMakeLists.txt")):
        path = os.path.join(out_dir, name)
        with open(path, "w") as f:
            f.write(env.get_template(tmpl).render(**ctx_vars))
        files.append(path)
    plan_path = os.path.join(out_dir, "plan.json")
    with open(plan_path, "w") as f:
        d = plan.to_dict()
        d["model"] = graph.name
        if stream is not None:
            d["stream_input"] = stream.to_dict()
        d["steps"] = [{"pos": i, "op": s.index, "ops": s.ops, "kind": s.kind, "inputs": s.inputs,
                       "outputs": s.outputs, "alias_of": s.alias_of, "scratch_bytes": s.scratch_bytes}
                      for i, s in enumerate(steps)]
        json.dump(d, f, indent=1)
    files.append(plan_path)
    kdst = os.path.join(out_dir, "kernels")
    if os.path.exists(kdst):
        shutil.rmtree(kdst)
    shutil.copytree(paths.KERNELS, kdst, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    with open(os.path.join(kdst, "include", "tinyml", "config.h"), "w") as f:
        f.write(CONFIG_H.format(single=1 if rounding == "tflite" else 0))
    files.append(kdst)
    return Generated(graph=graph, steps=steps, plan=plan, out_dir=out_dir, files=files, stream=stream)
