"""Test support: several independent ops in one TFLite model, so a parameter
sweep compiles and runs the generated C once instead of once per case.

    m = multi_op_model([OpCase("TILE", [Spec((2, 3), scale=0.1), i32([2, 1])], [Spec((4, 3), scale=0.1)]),
                        OpCase("TILE", ...)])
    check_bit_exact(m, count=2)          # opmodels.check_bit_exact: every output of every op

Each case gets its own tensors (graph inputs, constants, outputs); the model's
outputs are every case's outputs in order, so `check_bit_exact` compares each
op's bytes against TFLite's reference interpreter (BUILTIN_REF).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import flatbuffers
import numpy as np

from opmodels import _NP, Spec, _schema, add_tensor_t


@dataclass
class OpCase:
    op: str
    inputs: Sequence[Spec | None]
    outputs: Sequence[Spec]
    options: tuple[str, dict[str, Any]] | None = None
    version: int = 1
    index_bounds: dict[int, int] | None = None   # input position -> exclusive bound of its int32 values
    custom_options: bytes | None = None  # for op "CUSTOM:<name>": the operator's custom options
    intermediates: Sequence[Spec] | None = None   # the operator's intermediate tensors (integer LSTM)


def case_records(cases: Sequence[OpCase], count: int, seed: int = 0) -> list[list[np.ndarray]]:
    """Random inputs for multi_op_model(cases), in graph-input order: int8 over its whole
    range, bool 0/1, int32 in [0, bound) for inputs listed in index_bounds (indices)."""
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(count):
        rec = []
        for case in cases:
            for k, spec in enumerate(case.inputs):
                if spec is None or spec.data is not None or spec.variable:
                    continue
                shape = tuple(spec.shape)
                if spec.dtype == "bool":
                    rec.append(rng.integers(0, 2, size=shape).astype(np.bool_))
                elif spec.dtype == "int32" and case.index_bounds and k in case.index_bounds:
                    rec.append(rng.integers(0, case.index_bounds[k], size=shape).astype(np.int32))
                else:
                    info = np.iinfo(_NP[spec.dtype])
                    rec.append(rng.integers(info.min, info.max + 1, size=shape).astype(_NP[spec.dtype]))
        records.append(rec)
    return records


def i32(values) -> Spec:
    v = np.asarray(values, dtype=np.int32)
    return Spec(v.shape, "int32", data=v)


def multi_op_model(cases: Sequence[OpCase]) -> bytes:
    s = _schema()
    model = s.ModelT()
    model.version = 3
    model.buffers = [s.BufferT()]
    tensors, graph_inputs, graph_outputs, operators, codes = [], [], [], [], {}

    def add_tensor(spec: Spec, name: str) -> int:
        return add_tensor_t(s, model, tensors, spec, name)

    for c, case in enumerate(cases):
        ins = []
        for k, spec in enumerate(case.inputs):
            if spec is None:
                ins.append(-1)
                continue
            i = add_tensor(spec, f"op{c}_in{k}")
            ins.append(i)
            if spec.data is None and not spec.variable:
                graph_inputs.append(i)
        outs = [add_tensor(spec, f"op{c}_out{k}") for k, spec in enumerate(case.outputs)]
        graph_outputs += outs
        key = (case.op, case.version)
        if key not in codes:
            code = s.OperatorCodeT()
            if case.op.startswith("CUSTOM:"):
                bop = s.BuiltinOperator.CUSTOM
                code.customCode = case.op.split(":", 1)[1]
            else:
                bop = getattr(s.BuiltinOperator, case.op)
            code.builtinCode = bop
            code.deprecatedBuiltinCode = min(bop, 127)
            code.version = case.version
            codes[key] = (len(codes), code)
        o = s.OperatorT()
        o.opcodeIndex = codes[key][0]
        o.inputs = np.asarray(ins, dtype=np.int32)
        o.outputs = np.asarray(outs, dtype=np.int32)
        if case.intermediates:
            o.intermediates = np.asarray([add_tensor(spec, f"op{c}_inter{k}")
                                          for k, spec in enumerate(case.intermediates)], dtype=np.int32)
        if case.custom_options is not None:
            o.customOptions = np.frombuffer(case.custom_options, dtype=np.uint8)
        if case.options is not None:
            name, fields = case.options
            opt = getattr(s, name + "T")()
            for f, v in fields.items():
                if not hasattr(opt, f):
                    raise AttributeError(f"{name} has no field {f}; fields: {sorted(vars(opt))}")
                setattr(opt, f, v)
            o.builtinOptionsType = getattr(s.BuiltinOptions, name)
            o.builtinOptions = opt
        operators.append(o)

    model.operatorCodes = [code for _, code in sorted(codes.values(), key=lambda t: t[0])]
    sg = s.SubGraphT()
    sg.tensors = tensors
    sg.inputs = np.asarray(graph_inputs, dtype=np.int32)
    sg.outputs = np.asarray(graph_outputs, dtype=np.int32)
    sg.operators = operators
    sg.name = "main"
    model.subgraphs = [sg]
    model.description = "tinyml multi-op test model"
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())
