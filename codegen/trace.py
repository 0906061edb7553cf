"""Compare every intermediate tensor of the generated C with TFLite's.

The host build is compiled with TINYML_TRACE so that after each op the
harness appends that op's outputs (read from the arena right after the op,
before in-place or overlapping successors reuse the bytes) to a trace file.
TFLite runs the same input with `experimental_preserve_all_tensors=True`.
Tensor indices are the .tflite file's, so they line up one to one.
"""
from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass

import numpy as np

from tinyml.errors import ModelError

from .emit import generate
from .hostbuild import compile_host, run_host
from .oracle import import_tf, quiet_stderr

_NP = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32, "float32": np.float32}


@dataclass
class TensorCheck:
    op: int
    kind: str
    tensor: int
    name: str
    bytes: int
    mismatching: int


def trace_compare(model_path: str, record: list[np.ndarray], policy: str = "best",
                  work_dir: str | None = None, fuse: bool = True, fuse_check: bool = True) -> list[TensorCheck]:
    tf = import_tf()
    tmp = tempfile.TemporaryDirectory(prefix="tinyml-trace-") if work_dir is None else None
    work = work_dir or tmp.name
    try:
        with quiet_stderr():
            try:
                interp = tf.lite.Interpreter(
                    model_path=model_path, experimental_preserve_all_tensors=True,
                    experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
                interp.allocate_tensors()
            except Exception as exc:
                raise ModelError(f"TFLite cannot load {model_path} for tracing ({exc})",
                                 fix="tracing needs the TFLite reference; use plain verify") from None
        gen = generate(model_path, os.path.join(work, "gen"), policy=policy, rounding="tflite", fuse=fuse,
                       fuse_check=fuse_check)
        g = gen.graph
        exe = compile_host(gen.out_dir, extra_flags=["-DTINYML_TRACE", "-DTINYML_OP_END(i)=tinyml_trace_op(i)"])
        trace_path = os.path.join(work, "trace.bin")
        blob = b"".join(np.ascontiguousarray(x).tobytes() for x in record)
        run_host(exe, blob, 1, sum(g.t(o).nbytes for o in g.outputs), work, env={"TINYML_TRACE_FILE": trace_path})
        for d, x in zip(interp.get_input_details(), record):
            interp.set_tensor(d["index"], x)
        interp.invoke()
        producer = g.producers()
        raw = open(trace_path, "rb").read()
        pos, out = 0, []
        while pos < len(raw):
            tensor, nbytes = struct.unpack_from("<ii", raw, pos)
            pos += 8
            got = raw[pos:pos + nbytes]
            pos += nbytes
            t = g.t(tensor)
            want = np.asarray(interp.get_tensor(tensor)).astype(_NP[t.dtype]).tobytes()
            bad = sum(1 for a, b in zip(got, want) if a != b) + abs(len(got) - len(want))
            op = producer.get(tensor, -1)
            out.append(TensorCheck(op=op, kind=g.ops[op].kind if op >= 0 else "?", tensor=tensor,
                                   name=t.name, bytes=nbytes, mismatching=bad))
        return out
    finally:
        if tmp is not None:
            tmp.cleanup()
