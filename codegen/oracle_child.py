"""The oracle's child process: TFLite / TFLM interpreters live here, never in tinyml's process.

`python -m tinyml.codegen.oracle_child LOG` reads length-prefixed pickled
requests on stdin and answers on the original stdout; everything the native
libraries print (fd 1 and fd 2) goes to LOG. A native crash therefore kills
only this process; `codegen.oracle` turns it into one line naming the signal.

Requests: ("load", which, model_bytes[, per-op TFLM kinds]) with which "tflite",
"tflite-builtin", "tflm" or "per-op" ->
("ok", oracle name) | ("no-tensorflow", message) | ("refused", message);
("run", [input arrays]) -> ("ok", [output arrays]) | ("error", message).
"""
from __future__ import annotations

import os
import pickle
import struct
import sys
import warnings
from typing import Any, BinaryIO, Callable

import numpy as np


def send(stream: BinaryIO, obj: Any) -> None:
    blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(blob)) + blob)
    stream.flush()


def recv(stream: BinaryIO) -> Any:
    """The next message, or None at end of stream."""
    head = stream.read(8)
    if len(head) < 8:
        return None
    (n,) = struct.unpack("<Q", head)
    blob = stream.read(n)
    if len(blob) < n:
        return None
    return pickle.loads(blob)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _load_tflite(model: bytes, builtin: bool = False) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """TFLite's reference kernels, or with `builtin` its builtin (optimized) kernels without
    the default XNNPACK delegate."""
    import tensorflow as tf
    kind = tf.lite.experimental.OpResolverType
    interp = tf.lite.Interpreter(model_content=model,
                                 experimental_op_resolver_type=kind.BUILTIN_WITHOUT_DEFAULT_DELEGATES if builtin
                                 else kind.BUILTIN_REF)
    interp.allocate_tensors()
    ins, outs = interp.get_input_details(), interp.get_output_details()

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        for d, x in zip(ins, inputs):
            interp.set_tensor(d["index"], np.asarray(x, dtype=d["dtype"]).reshape(d["shape"]))
        interp.invoke()
        return [interp.get_tensor(d["index"]).copy() for d in outs]

    return run


def _load_tflm(model: bytes) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    from tflite_micro.python.tflite_micro import runtime

    from .importer import import_bytes
    n_out = len(import_bytes(model).outputs)
    interp = runtime.Interpreter.from_bytes(model, arena_size=max(len(model) * 10, 1 << 22))

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        for i, x in enumerate(inputs):
            d = interp.get_input_details(i)
            interp.set_input(np.asarray(x, dtype=d["dtype"]).reshape(d["shape"]), i)
        interp.invoke()
        return [np.array(interp.get_output(i), copy=True) for i in range(n_out)]

    return run


def _single_op_models(model: bytes) -> list[tuple[str, bytes, list[int], list[int]]]:
    """Each operator of the model's one subgraph as a model of its own: (op kind, flatbuffer,
    the original indices of its graph inputs (non-constant operands), of its outputs). Tensors keep
    their static shapes, types, quantization and constant bytes; the dynamic shape signature is
    dropped (the batch is 1, as the whole-model interpreters resolve it)."""
    import copy

    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as s
    m = s.ModelT.InitFromPackedBuf(model, 0)
    if len(m.subgraphs) != 1:
        raise ValueError(f"{len(m.subgraphs)} subgraphs (the per-op oracle runs one)")
    sg = m.subgraphs[0]
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}

    def has_data(i: int) -> bool:
        t = sg.tensors[i]
        return 0 < t.buffer < len(m.buffers) and m.buffers[t.buffer].data is not None \
            and len(m.buffers[t.buffer].data) > 0

    out = []
    for op in sg.operators:
        code = m.operatorCodes[op.opcodeIndex]
        kind = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
        one = s.ModelT()
        one.version = m.version
        one.buffers = [s.BufferT()]
        one.operatorCodes = [copy.deepcopy(code)]
        tensors, remap = [], {}

        def add(i: int) -> int:
            if i not in remap:
                t = copy.deepcopy(sg.tensors[i])
                t.shapeSignature = None
                buf = s.BufferT()
                if has_data(i):
                    buf.data = m.buffers[t.buffer].data
                one.buffers.append(buf)
                t.buffer = len(one.buffers) - 1
                tensors.append(t)
                remap[i] = len(tensors) - 1
            return remap[i]
        o = copy.deepcopy(op)
        o.opcodeIndex = 0
        o.inputs = np.asarray([add(int(i)) if i >= 0 else -1 for i in op.inputs], dtype=np.int32)
        o.outputs = np.asarray([add(int(i)) for i in op.outputs], dtype=np.int32)
        ins = list(dict.fromkeys(int(i) for i in op.inputs if i >= 0 and not has_data(int(i))))
        sub = s.SubGraphT()
        sub.tensors = tensors
        sub.inputs = np.asarray([remap[i] for i in ins], dtype=np.int32)
        sub.outputs = np.asarray(list(o.outputs), dtype=np.int32)
        sub.operators = [o]
        one.subgraphs = [sub]
        b = flatbuffers.Builder(1024)
        b.Finish(one.Pack(b), file_identifier=b"TFL3")
        out.append((kind, bytes(b.Output()), ins, [int(i) for i in op.outputs]))
    return out


def _one_op_tflite(model: bytes) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """A single-op model in TFLite's reference interpreter, its inputs resized to the values given
    (a file with a dynamic batch stores placeholder shapes for computed-shape tensors)."""
    import tensorflow as tf
    interp = tf.lite.Interpreter(model_content=model,
                                 experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    ins, outs = interp.get_input_details(), interp.get_output_details()
    shapes: list[tuple[int, ...] | None] = [None]

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        now = tuple(tuple(np.shape(x)) for x in inputs)
        if shapes[0] != now:
            for d, shape in zip(ins, now):
                interp.resize_tensor_input(d["index"], list(shape), strict=False)
            interp.allocate_tensors()
            shapes[0] = now
        for d, x in zip(ins, inputs):
            interp.set_tensor(d["index"], np.asarray(x, dtype=d["dtype"]))
        interp.invoke()
        return [interp.get_tensor(d["index"]).copy() for d in outs]

    return run


def _load_per_op(model: bytes, tflm_kinds: set[str]) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """The model run one operator at a time: each op alone in TFLite's reference interpreter, the
    kinds in `tflm_kinds` in tflite_micro; tensor values are carried between them by index."""
    from tensorflow.lite.python import schema_py_generated as s
    sg = s.ModelT.InitFromPackedBuf(model, 0).subgraphs[0]
    graph_in, graph_out = [int(i) for i in sg.inputs], [int(i) for i in sg.outputs]
    steps = [(kind, ins, outs, _load_tflm(blob) if kind in tflm_kinds else _one_op_tflite(blob))
             for kind, blob, ins, outs in _single_op_models(model)]

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        values = {i: np.asarray(x) for i, x in zip(graph_in, inputs)}
        for kind, ins, outs, fn in steps:
            for i, y in zip(outs, fn([values[i] for i in ins])):
                values[i] = np.asarray(y)
        return [values[i].copy() for i in graph_out]

    return run


def serve(log_path: str) -> None:
    proto = os.fdopen(os.dup(1), "wb")
    requests = os.fdopen(os.dup(0), "rb")
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    warnings.simplefilter("ignore")
    run = None
    while True:
        msg = recv(requests)
        if msg is None:
            return
        if msg[0] == "load":
            which, model = msg[1], msg[2]
            if which in ("tflite", "tflite-builtin", "per-op"):
                try:
                    import tensorflow  # noqa: F401
                except ImportError as exc:
                    send(proto, ("no-tensorflow", f"{type(exc).__name__}: {exc}"))
                    continue
            try:
                if which == "per-op":
                    run = _load_per_op(model, set(msg[3]))
                else:
                    run = (_load_tflm(model) if which == "tflm" else _load_tflite(model, which == "tflite-builtin"))
            except Exception as exc:                    # the interpreter refuses the model
                send(proto, ("refused", _first_line(exc)))
                continue
            send(proto, ("ok", {"tflite": "tflite-reference", "tflite-builtin": "tflite-builtin",
                                "tflm": "tflite-micro", "per-op": "tflite-per-op"}[which]))
        elif msg[0] == "run":
            try:
                send(proto, ("ok", run(msg[1])))
            except Exception as exc:
                send(proto, ("error", _first_line(exc)))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    serve(sys.argv[1])
