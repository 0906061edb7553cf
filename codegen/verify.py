"""`tinyml verify`: generated C on the host vs. the TFLite reference, byte for byte."""
from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field

import numpy as np

from tinyml.errors import ModelError

from .emit import generate
from .hostbuild import compile_host, run_host
from .oracle import choose_oracle
from .pipeline import CompileOptions
from .pipeline import compile as compile_model

_NP = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32, "float32": np.float32}


@dataclass
class VerifyResult:
    model: str
    oracle: str
    inputs_compared: int
    output_bytes_compared: int
    mismatching_bytes: int
    max_abs_diff: int
    arena_bytes: int
    sanitized: bool
    first_mismatch: dict | None = None
    extra_inputs: list[str] = field(default_factory=list)
    rounding: str = ""                                  # what the generated C was built with
    notes: list[str] = field(default_factory=list)      # oracle fallback / rounding choice, said aloud

    @property
    def bit_exact(self) -> bool:
        return self.mismatching_bytes == 0 and self.inputs_compared > 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bit_exact"] = self.bit_exact
        return d


def load_input_file(path: str, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """An extra input: raw bytes (.bin/.raw) or an image whose pixel bytes go in unchanged."""
    n = int(np.prod(shape))
    if not os.path.exists(path):
        raise ModelError(f"input file not found: {path}", fix="check the path")
    ext = os.path.splitext(path)[1].lower()
    if ext in (".bmp", ".png", ".jpg", ".jpeg", ".pgm"):
        from PIL import Image
        img = Image.open(path)
        arr = np.asarray(img)
        if arr.size != n:
            raise ModelError(f"image {path} has {arr.size} values but the model input needs {n} "
                             f"(shape {list(shape)})", fix="resize the image to the model input")
        return arr.astype(np.uint8).view(np.int8).astype(_NP[dtype]).reshape(shape) if dtype == "int8" \
            else arr.astype(_NP[dtype]).reshape(shape)
    raw = np.fromfile(path, dtype=_NP[dtype])
    if raw.size != n:
        raise ModelError(f"input file {path} holds {raw.size} {dtype} values; the model input needs {n}",
                         fix="pass a raw file of exactly the input tensor's size")
    return raw.reshape(shape)


def random_inputs(graph, count: int, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    recs = []
    for _ in range(count):
        rec = []
        for t in graph.inputs:
            ten = graph.t(t)
            info = np.iinfo(_NP[ten.dtype]) if ten.dtype != "float32" else None
            if info is None:
                rec.append(rng.standard_normal(ten.shape).astype(np.float32))
            else:
                rec.append(rng.integers(info.min, info.max + 1, size=ten.shape, dtype=np.int64).astype(_NP[ten.dtype]))
        recs.append(rec)
    return recs


def verify(model_path: str, count: int = 10, seed: int = 0, extra_inputs: list[str] | None = None,
           sanitize: bool = False, work_dir: str | None = None, policy: str = "best",
           progress=None, oracle: str = "auto", fuse: bool = True,
           stream_input: bool = False, rounding: str | None = None, fuse_check: bool = True) -> VerifyResult:
    """`stream_input`: generate with --stream-input (the host harness serves the
    image's row stripes from each record; codegen.stream). `oracle`: "auto",
    "tflite" or "tflm"; `rounding`: None follows the oracle, else the user's
    choice (a mismatch with the oracle's rounding is then reported, not fixed)."""
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="tinyml-verify-")
        work_dir = tmp.name
    choice = None
    try:
        # compile first: what tinyml cannot compile is named (as `plan` names it) before any oracle runs
        compile_model(model_path, CompileOptions(policy=policy, fuse=fuse, stream_input=stream_input,
                                                  fuse_check=fuse_check))
        choice = choose_oracle(model_path, rounding, oracle)
        oracle = choice.oracle
        gen = generate(model_path, os.path.join(work_dir, "gen"), policy=policy, rounding=choice.rounding,
                       fuse=fuse, stream_input=stream_input, fuse_check=fuse_check)
        graph = gen.graph
        records = random_inputs(graph, count, seed)
        for p in extra_inputs or []:
            if len(graph.inputs) != 1:
                raise ModelError("extra input files need a single-input model", fix="drop the input files")
            t = graph.t(graph.inputs[0])
            records.append([load_input_file(p, t.shape, t.dtype)])
        exe = compile_host(gen.out_dir, sanitize=sanitize)
        blob = b"".join(x.tobytes() for rec in records for x in rec)
        out_sizes = [graph.t(o).nbytes for o in graph.outputs]
        got = run_host(exe, blob, len(records), sum(out_sizes), work_dir)
        mismatches, max_diff, first = 0, 0, None
        rec_bytes = sum(out_sizes)
        for r, rec in enumerate(records):
            want = oracle.run(rec)
            off = r * rec_bytes
            for k, (o, size) in enumerate(zip(graph.outputs, out_sizes)):
                ten = graph.t(o)
                g = np.frombuffer(got[off:off + size], dtype=_NP[ten.dtype])
                w = np.asarray(want[k]).reshape(-1).astype(_NP[ten.dtype])
                off += size
                gb, wb = g.tobytes(), w.tobytes()
                bad = sum(1 for a, b in zip(gb, wb) if a != b)
                if bad:
                    diff = int(np.max(np.abs(g.astype(np.int64) - w.astype(np.int64))))
                    max_diff = max(max_diff, diff)
                    if first is None:
                        i = int(np.argmax(g != w))
                        first = {"record": r, "output": k, "index": i, "got": int(g[i]), "want": int(w[i])}
                mismatches += bad
            if progress:
                progress(r + 1, len(records))
        return VerifyResult(model=model_path, oracle=oracle.name, inputs_compared=len(records),
                            output_bytes_compared=len(records) * rec_bytes, mismatching_bytes=mismatches,
                            max_abs_diff=max_diff, arena_bytes=gen.plan.arena_bytes, sanitized=sanitize,
                            first_mismatch=first, extra_inputs=list(extra_inputs or []),
                            rounding=choice.rounding, notes=choice.notes)
    finally:
        if choice is not None:
            choice.oracle.close()       # the interpreter's child process
        if tmp is not None:
            tmp.cleanup()
