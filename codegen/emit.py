"""Render a compiled model (codegen.pipeline.Compiled) to C with Jinja2 templates.

`generate(model, out_dir, options)` = `compile` + `emit`. Everything written
here comes from the IR, the steps and the plan; templates only format.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, replace

import jinja2
import numpy as np

from tinyml import __version__, paths
from tinyml.errors import TinymlError
from tinyml.ir import DTYPE_BYTES, Graph
from tinyml.memory_planner.plan import Plan
from tinyml.steps import Call, ScratchRef, StateRef, Step, TRef, call_constants

from .lowering import LowerCtx
from .pipeline import Compiled, CompileOptions, accounting, compile
from .quant import flash_target, requant_floor_bytes


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


DEFAULT_PREFIX = "tinyml"
_PREFIX_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline "
    "int long register restrict return short signed sizeof static struct switch typedef union unsigned "
    "void volatile while".split())


def check_prefix(prefix: str) -> str:
    """`prefix` if it can start every generated C name (a C identifier of at most 32 characters,
    starting with a letter, not a keyword); otherwise a one-line TinymlError."""
    if not _PREFIX_RE.fullmatch(prefix or "") or prefix in _C_KEYWORDS or prefix.endswith("_"):
        raise TinymlError(f"--prefix {prefix!r} is not usable as a C name prefix", "tinyml generate/build",
                          "use letters, digits and _ (start with a letter, no trailing _, at most 32 "
                          "characters), e.g. --prefix kws")
    return prefix


@dataclass(frozen=True)
class Names:
    """How one generated library names what it defines: `<prefix>_arena`, `<prefix>_run`, the
    `<PREFIX>_*` macros, the weight arrays. The default prefix `tinyml` gives the historical names;
    another prefix lets several libraries link into one program (the kernel API, `tinyml_*` kernels
    and types and TINYML_OK, is shared and keeps its names)."""
    prefix: str = DEFAULT_PREFIX

    @property
    def macro(self) -> str:
        return self.prefix.upper()

    def global_symbol(self, sym: str) -> str:
        """A weights.c symbol chosen during lowering (`tinyml_w5`, `op3_lut`, the streamed input's
        `tinyml_read_input_rows`), namespaced under this prefix."""
        if self.prefix == DEFAULT_PREFIX:
            return sym
        if sym.startswith(DEFAULT_PREFIX + "_"):
            return self.prefix + sym[len(DEFAULT_PREFIX):]
        return f"{self.prefix}_{sym}"


def weight_symbol(t: int, names: Names = Names()) -> str:
    return names.global_symbol(f"tinyml_w{t}")


class Renderer:
    """Turns symbolic call arguments into C expressions under a plan."""

    def __init__(self, graph: Graph, plan: Plan, steps: list[Step] | None = None,
                 names: Names = Names(), renames: dict[str, str] | None = None) -> None:
        self.graph, self.plan = graph, plan
        self.steps = steps or []
        self.names = names
        # global symbols the lowering wrote into calls and decls -> their namespaced names
        self.renames = renames or {}
        self._rename_re = (re.compile(r"\b(" + "|".join(map(re.escape, sorted(self.renames, key=len, reverse=True)))
                                      + r")\b") if self.renames else None)
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
                        "symbol": self.names.global_symbol(self.plan.symbol_of_buffer(self.plan.scratch_buffer[pos]))
                        if s.scratch_bytes > 0 else "",
                        "size_call": ref.size, "kernel": ref.size.split("_scratch_size(")[0]})
        return out

    def rename(self, text: str) -> str:
        """C text from the lowering with its global symbols namespaced (identity for the default prefix)."""
        if self._rename_re is None:
            return text
        return self._rename_re.sub(lambda m: self.renames[m.group(1)], text)

    def tensor(self, t: int) -> str:
        ten = self.graph.t(t)
        if ten.is_const:
            return weight_symbol(t, self.names)
        return f"(({ten.ctype} *)({self.names.global_symbol(self.plan.symbol_of(t))} + {self.plan.offset_of(t)}))"

    def arg(self, a, pos: int) -> str:
        if isinstance(a, TRef):
            return self.tensor(a.tensor)
        if isinstance(a, ScratchRef):
            return f"&{self.scratch_name(pos)}"
        if isinstance(a, StateRef):
            ten = self.graph.t(a.tensor)
            return (f"(({ten.ctype} *)({self.names.global_symbol('tinyml_state')} + "
                    f"{self.plan.state_offsets[a.tensor]}))")
        return str(a)

    def call(self, c: Call, pos: int) -> str:
        return self.rename(f"{c.func}(" + ", ".join(self.arg(a, pos) for a in c.args) + ")")


def state_fills(graph: Graph, plan: Plan) -> list[dict]:
    """Byte ranges of the state block that start (and reset) at a non-zero byte: TFLite and
    TFLM reset an int8 variable tensor to its zero point (ResetVariableTensor), others to 0."""
    fills = []
    for t, off in sorted(plan.state_offsets.items(), key=lambda kv: kv[1]):
        ten = graph.t(t)
        zp = ten.quant.zp if ten.quant is not None else 0
        if ten.dtype == "int8" and zp != 0:
            fills.append({"tensor": t, "first": off, "last": off + ten.nbytes - 1, "byte": zp & 0xFF})
    return fills


def _c_values(arr: np.ndarray, ctype: str) -> str:
    if ctype == "float":
        vals = [repr(float(v)) + "f" if np.isfinite(v) else "0.0f" for v in arr.astype(np.float32)]
    else:
        vals = [str(int(v)) for v in arr]
    per = 16
    return ",\n    ".join(", ".join(vals[i:i + per]) for i in range(0, len(vals), per))


def _renames(graph: Graph, steps: list[Step], ctx: LowerCtx, names: Names) -> dict[str, str]:
    """Every global symbol the generated files define or call by a lowering-chosen name."""
    if names.prefix == DEFAULT_PREFIX:
        return {}
    syms = [f"tinyml_w{t}" for s in steps for t in call_constants(s, graph)]
    syms += [a.symbol for a in ctx.arrays] + ["tinyml_read_input_rows"]
    return {s: names.global_symbol(s) for s in syms}


def _weights(graph: Graph, steps: list[Step], ctx: LowerCtx, names: Names = Names()) -> list[dict]:
    used = dict.fromkeys(t for s in steps for t in call_constants(s, graph))
    out = []
    for t in used:
        ten = graph.t(t)
        out.append({"symbol": weight_symbol(t, names), "ctype": ten.ctype, "count": max(ten.numel, 1),
                    "data": _c_values(ten.data.reshape(-1), ten.ctype), "role": "parameter",
                    "bytes": DTYPE_BYTES[ten.dtype] * max(ten.numel, 1),
                    "comment": f"tensor {t} '{ten.name}' {list(ten.shape)} {ten.dtype}"})
    for arr in ctx.arrays:
        out.append({"symbol": names.global_symbol(arr.symbol), "ctype": arr.ctype, "count": max(arr.values.size, 1),
                    "data": _c_values(arr.values, arr.ctype), "role": arr.role, "bytes": arr.nbytes,
                    "comment": f"derived at generate time ({arr.role})"})
    return out


def _io_info(graph: Graph, plan: Plan, which: list[int], names: Names = Names()) -> list[dict]:
    out = []
    for t in which:
        ten = graph.t(t)
        dims = list(ten.shape) + [1] * (4 - len(ten.shape))
        out.append({
            "tensor": t, "name": ten.name.replace('"', "'"), "bytes": ten.nbytes, "dims": dims[:4],
            "ndims": len(ten.shape), "dtype": ten.dtype,
            "scale": repr(float(ten.quant.s)) + "f" if ten.quant else "0.0f",
            "zero_point": ten.quant.zp if ten.quant else 0,
            "offset": plan.offset_of(t), "symbol": names.global_symbol(plan.symbol_of(t)),
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


def generate(model: str | Graph, out_dir: str, options: CompileOptions | None = None,
             prefix: str = DEFAULT_PREFIX, **kw) -> Generated:
    """compile + emit. Keyword arguments override fields of `options` (policy, fuse,
    stream_input, rounding; see CompileOptions). `prefix` namespaces every name the library
    defines (see `Names`; checked by `check_prefix` before anything is compiled or written).

    `rounding` selects the requantization rounding of the reference runtime the
    output must match: "tflite" (default: TFLite's reference kernels in
    TensorFlow 2.21; FULLY_CONNECTED rounds once) or "tflm" (the tflite_micro
    wheel: gemmlowp double rounding everywhere). Generating never runs an
    oracle or imports TensorFlow; `verify` and `build` choose the rounding of
    the oracle they compare with (codegen.oracle.choose_oracle).
    """
    check_prefix(prefix)
    options = replace(options or CompileOptions(), **kw)
    compiled = compile(model, options)
    return emit(compiled, out_dir, prefix)


CONFIG_H = """/* Generated by tinyml: kernel configuration for this model. */
#ifndef TINYML_CONFIG_H
#define TINYML_CONFIG_H
#define TINYML_SINGLE_ROUNDING {single}
#endif
"""


def emit(compiled: Compiled, out_dir: str, prefix: str = DEFAULT_PREFIX) -> Generated:
    """Write model.h/.c, weights.h/.c, CMakeLists.txt, library.json, plan.json and kernels/ to
    `out_dir`, every defined name under `prefix`."""
    names = Names(check_prefix(prefix))
    graph, steps, ctx, plan, stream = (compiled.graph, compiled.steps, compiled.ctx, compiled.plan,
                                       compiled.stream)
    rounding = compiled.options.rounding
    os.makedirs(out_dir, exist_ok=True)
    r = Renderer(graph, plan, steps, names, _renames(graph, steps, ctx, names))
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
    decls = [r.rename(d) for s in steps for d in s.decls]
    weights = _weights(graph, steps, ctx, names)
    trace = [{"op": s.index, "tensor": o, "offset": plan.offset_of(o), "bytes": graph.t(o).nbytes}
             for s in steps if s.alias_of is None and s.calls for o in s.outputs]
    ctx_vars = {
        "version": __version__, "source": os.path.basename(graph.source) or graph.name,
        "name": graph.name, "plan": plan, "steps": rendered_steps, "decls": decls,
        "inputs": _io_info(graph, plan, graph.inputs, names), "outputs": _io_info(graph, plan, graph.outputs, names),
        "g": names.global_symbol, "p": names.prefix, "P": names.macro, "rounding": rounding,
        "weights": weights, "trace": trace, "scratch": r.scratch_contexts(),
        "stream": stream.to_dict() if stream is not None else None,
        "state_fills": state_fills(graph, plan),
    }
    files = []
    for tmpl, name in (("model.h.j2", "model.h"), ("model.c.j2", "model.c"),
                       ("weights.h.j2", "weights.h"), ("weights.c.j2", "weights.c"),
                       ("CMakeLists.txt.j2", "CMakeLists.txt"), ("library.json.j2", "library.json")):
        path = os.path.join(out_dir, name)
        with open(path, "w") as f:
            f.write(env.get_template(tmpl).render(**ctx_vars))
        files.append(path)
    plan_path = os.path.join(out_dir, "plan.json")
    with open(plan_path, "w") as f:
        d = plan.to_dict()
        d["model"] = graph.name
        d["prefix"] = names.prefix
        d["accounting"] = accounting(compiled).to_dict()
        # weights.c's arrays by role, for the flash split (firmware.mapfile.flash_split)
        # and the requantization floor and issue 15's target beside them
        d["flash"] = {"arrays": [{"symbol": w["symbol"], "role": w["role"], "bytes": w["bytes"]} for w in weights],
                      "requant_floor_bytes": requant_floor_bytes(graph), "target": flash_target(graph)}
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
