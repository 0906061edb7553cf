"""Test support: single-op TFLite models with chosen shapes and quantization.

`single_op_model` writes a real .tflite flatbuffer with TensorFlow's own
schema object API (tensorflow.lite.python.schema_py_generated), so the TFLite
reference interpreter runs exactly the op and quantization parameters a test
asks for. `check_bit_exact` then compares our generated C against it.

    m = single_op_model("ADD", [Spec((1, 4, 4, 8), scale=0.1, zero_point=3),
                                Spec((1, 4, 4, 8), scale=0.2, zero_point=-5)],
                        [Spec((1, 4, 4, 8), scale=0.25, zero_point=0)],
                        options=("AddOptions", {"fusedActivationFunction": 0}))
    check_bit_exact(m, count=8)
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any, Sequence

import flatbuffers
import numpy as np

from tinyml.codegen.oracle import import_tf, quiet_stderr

_TYPES = {"float32": 0, "int32": 2, "uint8": 3, "int64": 4, "bool": 6, "int16": 7, "int8": 9}
_NP = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8, "int64": np.int64,
       "int16": np.int16, "int8": np.int8, "bool": np.bool_}


@dataclass
class Spec:
    """One tensor: shape, dtype, quantization, and constant data if any."""
    shape: Sequence[int]
    dtype: str = "int8"
    scale: float | Sequence[float] | None = None
    zero_point: int | Sequence[int] = 0
    axis: int = 0
    data: np.ndarray | None = None   # constant tensor payload
    variable: bool = False           # a TFLite variable tensor (op state), not a graph input


def _schema():
    import_tf()
    from tensorflow.lite.python import schema_py_generated as s
    return s


def add_tensor_t(s, model, tensors: list, spec: Spec, name: str) -> int:
    """Append a TensorT for `spec` (its buffer, quantization) to `model`'s buffers and `tensors`."""
    t = s.TensorT()
    t.shape = np.asarray(list(spec.shape), dtype=np.int32)
    t.type = _TYPES[spec.dtype]
    t.name = name
    t.isVariable = spec.variable
    buf = s.BufferT()
    if spec.data is not None:
        arr = np.asarray(spec.data, dtype=_NP[spec.dtype]).reshape(tuple(spec.shape))
        buf.data = np.frombuffer(arr.tobytes(), dtype=np.uint8)
    model.buffers.append(buf)
    t.buffer = len(model.buffers) - 1
    if spec.scale is not None:
        q = s.QuantizationParametersT()
        scales = np.atleast_1d(np.asarray(spec.scale, dtype=np.float32))
        zps = np.atleast_1d(np.asarray(spec.zero_point, dtype=np.int64))
        if zps.size == 1 and scales.size > 1:
            zps = np.full(scales.shape, int(zps[0]), dtype=np.int64)
        q.scale = scales
        q.zeroPoint = zps
        q.quantizedDimension = spec.axis
        t.quantization = q
    tensors.append(t)
    return len(tensors) - 1


def single_op_model(op: str, inputs: Sequence[Spec | None], outputs: Sequence[Spec],
                    options: tuple[str, dict[str, Any]] | None = None, version: int = 1) -> bytes:
    """A model with one builtin op. `None` in `inputs` is an omitted optional input (-1).

    `options` is (OptionsTableName, {camelCaseField: value}), e.g.
    ("Conv2DOptions", {"padding": 1, "strideW": 2, "strideH": 2}).
    """
    s = _schema()
    model = s.ModelT()
    model.version = 3
    model.buffers = [s.BufferT()]
    tensors = []
    graph_inputs = []

    def add_tensor(spec: Spec, name: str) -> int:
        return add_tensor_t(s, model, tensors, spec, name)

    in_idx = []
    for k, spec in enumerate(inputs):
        if spec is None:
            in_idx.append(-1)
            continue
        i = add_tensor(spec, f"in{k}")
        in_idx.append(i)
        if spec.data is None:
            graph_inputs.append(i)
    out_idx = [add_tensor(spec, f"out{k}") for k, spec in enumerate(outputs)]

    code = s.OperatorCodeT()
    bop = getattr(s.BuiltinOperator, op)
    code.builtinCode = bop
    code.deprecatedBuiltinCode = min(bop, 127)
    code.version = version
    model.operatorCodes = [code]

    o = s.OperatorT()
    o.opcodeIndex = 0
    o.inputs = np.asarray(in_idx, dtype=np.int32)
    o.outputs = np.asarray(out_idx, dtype=np.int32)
    if options is not None:
        name, fields = options
        opt = getattr(s, name + "T")()
        for k, v in fields.items():
            if not hasattr(opt, k):
                raise AttributeError(f"{name} has no field {k}; fields: {sorted(vars(opt))}")
            setattr(opt, k, v)
        o.builtinOptionsType = getattr(s.BuiltinOptions, name)
        o.builtinOptions = opt

    sg = s.SubGraphT()
    sg.tensors = tensors
    sg.inputs = np.asarray(graph_inputs, dtype=np.int32)
    sg.outputs = np.asarray(out_idx, dtype=np.int32)
    sg.operators = [o]
    sg.name = "main"
    model.subgraphs = [sg]
    model.description = "tinyml single-op test model"

    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def random_input(spec: Spec, rng: np.random.Generator) -> np.ndarray:
    if spec.dtype == "float32":
        return rng.standard_normal(tuple(spec.shape)).astype(np.float32) * 4
    info = np.iinfo(_NP[spec.dtype])
    return rng.integers(info.min, info.max + 1, size=tuple(spec.shape), dtype=np.int64).astype(_NP[spec.dtype])


def run_reference(model: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    tf = import_tf()
    with quiet_stderr():
        it = tf.lite.Interpreter(model_content=model,
                                 experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def random_int8(shape, count: int, seed: int) -> list[np.ndarray]:
    """`count` uniform int8 tensors of `shape`, drawn one after another from one seeded generator."""
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, size=shape).astype(np.int8) for _ in range(count)]


def reference_vectors(model: bytes, inputs: list[np.ndarray]) -> list[tuple[bytes, bytes]]:
    """Self-test vectors for a one-input model: each input with TFLite's reference output (int8 bytes)."""
    return [(x.tobytes(), np.asarray(run_reference(model, [x])[0]).astype(np.int8).tobytes()) for x in inputs]


@dataclass
class M4Build:
    """A self-test firmware of one model for the STM32F4-Discovery (Cortex-M4 with the DSP
    extension, run natively on QEMU netduinoplus2)."""
    out: str               # the firmware folder (model/model.c, firmware.elf)
    vectors: int           # self-test vectors, expected outputs from TFLite's reference kernels

    def model_c(self) -> str:
        with open(os.path.join(self.out, "model", "model.c")) as f:
            return f.read()

    def disassembly(self) -> str:
        import subprocess
        return subprocess.run(["arm-none-eabi-objdump", "-d", os.path.join(self.out, "firmware.elf")],
                              capture_output=True, text=True, check=True).stdout

    def symbols(self) -> str:
        import subprocess
        return subprocess.run(["arm-none-eabi-nm", os.path.join(self.out, "firmware.elf")],
                              capture_output=True, text=True, check=True).stdout

    def run(self, timeout: int = 120):
        """Emulate the self-test; fail unless every vector passes. Returns the emulator's result."""
        from tinyml.firmware.emulate import emulate
        res = emulate(self.out, timeout=timeout)
        assert res.passed and [v.passed for v in res.vectors] == [True] * self.vectors, res.output
        return res


def build_m4(path: str, out: str, count: int = 3, seed: int = 5, inputs: list[np.ndarray] | None = None) -> M4Build:
    """Build the .tflite at `path` for the STM32F4-Discovery into `out` with `count` random int8
    inputs from `seed` (or `inputs`) and TFLite's reference outputs as the self-test vectors."""
    from tinyml.codegen.importer import import_tflite
    from tinyml.firmware.build import build_firmware
    with open(path, "rb") as f:
        model = f.read()
    if inputs is None:
        g = import_tflite(path)
        inputs = random_int8(g.t(g.inputs[0]).shape, count, seed=seed)
    build_firmware(path, "stm32f4-discovery", out, vectors=reference_vectors(model, inputs),
                   oracle="tflite-reference")
    return M4Build(out, len(inputs))


def run_generated(model: bytes, records: list[list[np.ndarray]], sanitize: bool = True,
                  work: str | None = None, rounding: str = "tflite") -> list[list[np.ndarray]]:
    """Generate C for `model` (with the given runtime rounding), compile it on the host and run every record."""
    from tinyml.codegen.emit import generate
    from tinyml.codegen.hostbuild import compile_host, run_host

    tmp = tempfile.TemporaryDirectory(prefix="tinyml-op-") if work is None else None
    work = work or tmp.name
    try:
        path = os.path.join(work, "op.tflite")
        with open(path, "wb") as f:
            f.write(model)
        gen = generate(path, os.path.join(work, "gen"), rounding=rounding)
        g = gen.graph
        exe = compile_host(gen.out_dir, sanitize=sanitize)
        blob = b"".join(np.ascontiguousarray(x).tobytes() for rec in records for x in rec)
        sizes = [g.t(o).nbytes for o in g.outputs]
        raw = run_host(exe, blob, len(records), sum(sizes), work)
        out, off = [], 0
        for _ in records:
            rec = []
            for o, size in zip(g.outputs, sizes):
                t = g.t(o)
                rec.append(np.frombuffer(raw[off:off + size], dtype=_NP[t.dtype]).reshape(t.shape))
                off += size
            out.append(rec)
        return out
    finally:
        if tmp is not None:
            tmp.cleanup()


def check_bit_exact(model: bytes, count: int = 4, seed: int = 0, records: list[list[np.ndarray]] | None = None,
                    sanitize: bool = True) -> None:
    """Assert generated C equals the TFLite reference byte for byte on `count` random inputs."""
    s = _schema()
    m = s.ModelT.InitFromPackedBuf(model, 0)
    sg = m.subgraphs[0]
    rng = np.random.default_rng(seed)
    if records is None:
        records = []
        for _ in range(count):
            rec = []
            for i in sg.inputs:
                t = sg.tensors[i]
                dtype = {v: k for k, v in _TYPES.items()}[t.type]
                rec.append(random_input(Spec(tuple(int(d) for d in t.shape), dtype), rng))
            records.append(rec)
    got = run_generated(model, records, sanitize=sanitize)
    for r, rec in enumerate(records):
        want = run_reference(model, rec)
        for k, (g, w) in enumerate(zip(got[r], want)):
            g = np.asarray(g)
            w = np.asarray(w).reshape(g.shape)
            if g.tobytes() != w.tobytes():
                bad = np.argwhere(g != w)
                first = tuple(int(i) for i in bad[0]) if len(bad) else None
                raise AssertionError(
                    f"record {r} output {k}: {len(bad)} of {g.size} values differ; first at {first}: "
                    f"got {g[first] if first else '?'} want {w[first] if first else '?'}")


class _InProcessOracle:
    """tflite_micro run in the test process (the CLI's oracles run in a child process:
    codegen.oracle); `.run(inputs)` -> outputs."""

    def __init__(self, model: bytes) -> None:
        from tinyml.codegen.oracle_child import _load_tflm
        self.run = _load_tflm(model)


def tflm_oracle(model: bytes) -> _InProcessOracle:
    return _InProcessOracle(model)
