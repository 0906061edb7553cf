"""The oracle's child process: TFLite / TFLM interpreters live here, never in tinyml's process.

`python -m tinyml.codegen.oracle_child LOG` reads length-prefixed pickled
requests on stdin and answers on the original stdout; everything the native
libraries print (fd 1 and fd 2) goes to LOG. A native crash therefore kills
only this process; `codegen.oracle` turns it into one line naming the signal.

Requests: ("load", which, model_bytes) with which "tflite" or "tflm" ->
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
            if which in ("tflite", "tflite-builtin"):
                try:
                    import tensorflow  # noqa: F401
                except ImportError as exc:
                    send(proto, ("no-tensorflow", f"{type(exc).__name__}: {exc}"))
                    continue
            try:
                run = (_load_tflm(model) if which == "tflm" else _load_tflite(model, which == "tflite-builtin"))
            except Exception as exc:                    # the interpreter refuses the model
                send(proto, ("refused", _first_line(exc)))
                continue
            send(proto, ("ok", {"tflite": "tflite-reference", "tflite-builtin": "tflite-builtin",
                                "tflm": "tflite-micro"}[which]))
        elif msg[0] == "run":
            try:
                send(proto, ("ok", run(msg[1])))
            except Exception as exc:
                send(proto, ("error", _first_line(exc)))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    serve(sys.argv[1])
