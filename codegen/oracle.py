"""The numeric oracle: TensorFlow Lite's reference kernels.

`tf.lite.Interpreter` with the BUILTIN_REF op resolver is the default. Where
TFLite refuses a model that TFLM accepts (e.g. person_detect's per-tensor
weights with quantized_dimension=3), TFLM's Python runtime (`tflite_micro`)
is used instead, and the oracle's name says so.

Both interpreters run in a child process (`codegen.oracle_child`), after the
importer's validator has accepted the file: a native crash (segfault, abort)
becomes one `OracleCrash` line naming the interpreter and the signal, and the
libraries' own logs go to a file, not to the user's terminal.
`choose_oracle` also decides per model: TFLM for ops TFLite's reference
kernels lack or get wrong in int8 (`TFLM_OPS`) or in 16x8 (`TFLM_OPS_16X8`); for an op *version* the
reference resolver lacks (TILE v3 from UpSampling2D) a copy with that version
lowered where the kernel is one for every version (`REF_MAX_VERSION`), else
TFLite's builtin (optimized) resolver, "tflite-builtin". The model file is
never rewritten.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import re
import tempfile
import warnings
import weakref
from dataclasses import dataclass

import numpy as np

from tinyml.errors import ModelError, TinymlError

from .oracle_child import recv, send

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def quiet_stderr():
    """Silence native-library chatter (absl/oneDNN banners) on fd 2."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)
        os.close(devnull)


def import_tf():
    with quiet_stderr():
        import tensorflow as tf
    return tf


class OracleCrash(TinymlError):
    """The oracle's child process died (a native crash in TFLite or TFLM)."""


class OracleProcess:
    """One child process (codegen.oracle_child) holding an interpreter for one model.

    Requests go over its stdin/stdout; the native libraries' own output goes
    to a log file, read back only to name what happened when the child dies."""

    def __init__(self, model_path: str, model_bytes: bytes) -> None:
        self.model_path = model_path
        self.model_bytes = model_bytes
        self.label = "the oracle"
        fd, self.log_path = tempfile.mkstemp(prefix="tinyml-oracle-", suffix=".log")
        os.close(fd)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
        self.proc = subprocess.Popen([sys.executable, "-m", "tinyml.codegen.oracle_child", self.log_path],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env)
        self._finalizer = weakref.finalize(self, _stop, self.proc, self.log_path)

    def request(self, msg: tuple, doing: str):
        try:
            send(self.proc.stdin, msg)
            reply = recv(self.proc.stdout)
        except (BrokenPipeError, OSError):
            reply = None
        if reply is None:
            self._died(doing)
        return reply

    def _died(self, doing: str) -> None:
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        how = f"was killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with status {rc}"
        last = _last_line(self.log_path)
        self.close()
        raise OracleCrash(f"{self.label} {how} while {doing}" + (f" (its last words: {last})" if last else ""),
                          where=self.model_path,
                          fix="a native crash of the reference interpreter on this file; "
                              "run `tinyml inspect` on it, and report the file if inspect accepts it")

    def load(self, which: str, model_bytes: bytes | None = None,
             tflm_kinds: tuple[str, ...] = ()) -> tuple[str, str]:
        """Load the model (or a copy of it, `model_bytes`) into "tflite", "tflite-builtin", "tflm" or
        "per-op" (each op alone: TFLite's reference kernels, `tflm_kinds` in tflite_micro)."""
        self.label = {"tflite": "TFLite (oracle tflite-reference)", "tflite-builtin": "TFLite (oracle tflite-builtin)",
                      "tflm": "TFLM (oracle tflite-micro)",
                      "per-op": "TFLite/TFLM one op at a time (oracle tflite-per-op)"}[which]
        data = self.model_bytes if model_bytes is None else model_bytes
        msg = ("load", which, data, tuple(tflm_kinds)) if which == "per-op" else ("load", which, data)
        return self.request(msg, "loading the model")

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        status, value = self.request(("run", [np.asarray(x) for x in inputs]), "running the model")
        if status != "ok":
            raise ModelError(f"{self.label} failed to run the model ({value})", where=self.model_path,
                             fix="check that the model is a valid int8 TFLite model")
        return value

    def close(self) -> None:
        self._finalizer()


def _stop(proc: subprocess.Popen, log_path: str) -> None:
    for stream in (proc.stdin, proc.stdout):
        with contextlib.suppress(OSError):
            stream.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    with contextlib.suppress(OSError):
        os.unlink(log_path)


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 4096))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    # only a line that says what went wrong (not an info banner)
    keys = ("error", "fail", "abort", "assert", "fatal")
    said = [ln for ln in lines if any(k in ln.lower() for k in keys)]
    return said[-1][:160] if said else ""


@dataclass
class Oracle:
    """A reference interpreter running in its own process (`proc`), and its name."""
    name: str
    proc: OracleProcess

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return self.proc.run(inputs)

    def close(self) -> None:
        self.proc.close()


def make_oracle(model_path: str, which: str = "auto") -> Oracle:
    """`which`: "tflite", "tflm", or "auto" (TFLite, falling back to TFLM when TFLite
    refuses the model; without TensorFlow a one-line error, never a silent TFLM)."""
    return choose_oracle(model_path, None, which).oracle


# Requantization rounding of each oracle's build, measured per op (the
# kernels choose per op, see firmware/kernels/include/tinyml/common.h):
# - TFLite in the TensorFlow 2.21 wheel: FULLY_CONNECTED rounds once
#   (TFLITE_SINGLE_ROUNDING style); CONV_2D, DEPTHWISE_CONV_2D, BATCH_MATMUL,
#   the LUT activations and int8 QUANTIZE use gemmlowp double rounding.
# - tflite_micro wheel: double rounding everywhere.
# The per-model switch (TINYML_SINGLE_ROUNDING in kernels/config.h, set from
# CompileOptions.rounding) governs only the ops whose rounding differs between
# the two, such as FC: on ad01 the two oracles disagree in 4,604 of 12,800
# output bytes over 20 inputs, and each matches exactly one setting.
# TFLite's builtin kernels share the wheel's rounding with its reference kernels.
# The per-op oracle runs TFLite's reference kernels except TFLM_OPS_16X8 (whose int16 arithmetic
# does not depend on the rounding setting).
ROUNDING = {"tflite-reference": "tflite", "tflite-builtin": "tflite", "tflite-micro": "tflm",
            "tflite-per-op": "tflite"}

# int8 ops whose expected outputs come from tflite_micro (TensorFlow 2.21's
# BUILTIN_REF resolver): no int8 kernel there, or a wrong one.
TFLM_OPS = {
    "SUM": "TFLite's reference SUM reads int8 as uint8",
    "BROADCAST_TO": "TFLite's reference kernels have no int8 BROADCAST_TO",
    "ELU": "TFLite's reference kernels have no int8 ELU",
    "ADD_N": "TFLite's reference kernels have no int8 ADD_N",
    "ZEROS_LIKE": "TFLite's reference kernels have no int8 ZEROS_LIKE",
    "CUMSUM": "TFLite has no int8 CUMSUM",
}

# 16x8 ops (int16 activations) that TensorFlow 2.21's TFLite registers but cannot run in int16
# (its kernel errors at invoke) while tflite_micro can.
TFLM_OPS_16X8 = {
    "SQUARED_DIFFERENCE": "TensorFlow 2.21's TFLite has no int16 SQUARED_DIFFERENCE",
}

_MISSING_VERSION = re.compile(r"Didn't find op for builtin opcode '(\w+)' version '(\d+)'")


# Ops whose TFLite kernel is one registration for every version (kernels/tile.cc:
# Register_TILE), which the reference resolver lists only up to an older version
# than the builtin resolver (TensorFlow 2.21: TILE 1-2 vs 1-3, int8 being v3).
# For these the reference interpreter runs a copy of the model whose operator
# code says that older version: the same kernel code runs, every other op keeps
# its reference kernel. The user's file is not changed, and the note says so.
REF_MAX_VERSION = {"TILE": 2}


def capped_versions(model_bytes: bytes, caps: dict[str, int]) -> tuple[bytes, list[str]]:
    """A copy of the flatbuffer whose operator codes for `caps`' ops carry at most that version
    (patched in place: the version field is a fixed-size scalar); and what was changed."""
    import tflite
    from tflite.utils import BUILTIN_OPCODE2NAME
    out = bytearray(model_bytes)
    model = tflite.Model.GetRootAs(model_bytes, 0)
    changed = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        name = BUILTIN_OPCODE2NAME.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "")
        cap = caps.get(name)
        slot = oc._tab.Offset(8)                       # OperatorCode.version
        if cap is None or not slot or oc.Version() <= cap:
            continue
        pos = oc._tab.Pos + slot
        out[pos:pos + 4] = int(cap).to_bytes(4, "little", signed=True)
        changed.append(f"{name} v{oc.Version()} -> v{cap}")
    return bytes(out), changed


def tflm_reason(kinds: set[str], kinds_16x8: set[str] = frozenset()) -> str | None:
    """Why a model with these op kinds (folded ones included; `kinds_16x8`: those of its ops on
    int16 activations) needs tflite_micro, or None."""
    why = [TFLM_OPS[k] for k in sorted(kinds) if k in TFLM_OPS]
    why += [TFLM_OPS_16X8[k] for k in sorted(kinds_16x8) if k in TFLM_OPS_16X8]
    return "; ".join(why) or None


@dataclass
class OracleChoice:
    """The oracle a command compares with, the rounding to generate with, and why."""
    oracle: Oracle
    rounding: str
    notes: list[str]


def _version_fallback(proc: OracleProcess, refusal: str, notes: list[str]) -> Oracle | None:
    """When TFLite's reference resolver refused the model for lacking an op *version*: the
    reference kernels on a copy with that version lowered (REF_MAX_VERSION), else TFLite's
    builtin kernels. None when the refusal is something else or neither loads."""
    m = _MISSING_VERSION.search(refusal)
    if m is None:
        return None
    op, version = m.group(1), int(m.group(2))
    if op in REF_MAX_VERSION:
        copy, changed = capped_versions(proc.model_bytes, REF_MAX_VERSION)
        status, value = proc.load("tflite", copy)
        if status == "ok":
            notes.append(f"TFLite's reference resolver registers {op} only up to version "
                         f"{REF_MAX_VERSION[op]}; its kernel is the same for every version, so "
                         f"the reference oracle runs a copy with {', '.join(changed)} (model file unchanged)")
            return Oracle(value, proc)
    status, value = proc.load("tflite-builtin")
    if status == "ok":
        notes.append(f"TFLite's reference kernels lack {op} version {version}; the oracle is TFLite's "
                     "builtin (optimized) kernels, tflite-builtin, for this model")
        return Oracle(value, proc)
    return None


def _load(proc: OracleProcess, which: str, rounding: str | None, notes: list[str],
          per_op_tflm: tuple[str, ...] = ()) -> Oracle:
    """Load the model into `proc`'s interpreter per `which` (see choose_oracle). `per_op_tflm`:
    16x8 kinds only tflite_micro runs; when tflite_micro refuses the whole model, the per-op
    oracle runs those in tflite_micro and every other op in TFLite's reference kernels."""
    model_path = proc.model_path
    if which in ("auto", "tflite"):
        status, value = proc.load("tflite")
        if status == "ok":
            return Oracle(value, proc)
        if status == "no-tensorflow":
            if not (which == "auto" and rounding == "tflm"):
                raise TinymlError(
                    f"TensorFlow is not importable ({value}), and the expected "
                    f"outputs for --rounding {rounding or 'tflite'} come from TFLite's reference kernels",
                    where=model_path,
                    fix="install tensorflow-cpu>=2.21,<2.22, or pass --rounding tflm to compare with "
                        "tflite_micro (no TensorFlow needed)")
            notes.append("TensorFlow is not importable; expected outputs come from tflite_micro, "
                         "whose rounding is the requested --rounding tflm")
        else:
            oracle = _version_fallback(proc, value, notes)
            if oracle is not None:
                return oracle
            if which == "tflite":
                raise ModelError(f"TFLite refuses {model_path} ({value})",
                                 fix="pass --oracle tflm (or auto) to compare with tflite_micro")
            first = value
            status, value = proc.load("tflm")
            if status != "ok":
                raise ModelError(f"neither TFLite ({first}) nor TFLM ({value}) can run {model_path}",
                                 fix="check that the model is a valid int8 TFLite model")
            why = first.split(". ")[0][:120]
            notes.append(f"TFLite refuses this model ({why}); the oracle is tflite_micro")
            return Oracle(value, proc)
    status, value = proc.load("tflm")
    if status != "ok" and per_op_tflm:
        first = value
        status, value = proc.load("per-op", tflm_kinds=per_op_tflm)
        if status == "ok":
            notes.append(f"tflite_micro refuses this model ({first.split('. ')[0][:120]}); the oracle runs "
                         f"each op alone, {', '.join(per_op_tflm)} (int16) in tflite_micro and the rest in "
                         "TFLite's reference kernels")
            return Oracle(value, proc)
    if status != "ok":
        raise ModelError(f"TFLM refuses {model_path} ({value})",
                         fix="check that the model is a valid int8 TFLite model")
    return Oracle(value, proc)



def choose_oracle(model_path: str, rounding: str | None = None, which: str = "auto") -> OracleChoice:
    """Pick the oracle for `model_path` and the rounding the generated C should use.

    `which`: "auto" (TFLite's reference kernels; its builtin kernels when the
    reference resolver lacks an op version; TFLM for `TFLM_OPS` or when TFLite
    refuses the model), "tflite" (reference, else builtin) or "tflm". `rounding`: the user's explicit choice, or
    None to follow the oracle (TFLite -> "tflite", TFLM -> "tflm"). Every
    deviation from the default is said in `notes`. Without TensorFlow the
    TFLite oracle is impossible: TFLM is used only when the rounding is
    "tflm" (its own), else a one-line TinymlError names the cause and fix."""
    from .importer import import_bytes, load_bytes
    from .lowering import is_16x8
    data = load_bytes(model_path)
    graph = import_bytes(data, model_path)   # the validator speaks before any interpreter sees the file
    notes: list[str] = []
    kinds = {op.kind for op in graph.ops} | {k for _, k in graph.folded}
    kinds16 = {op.kind for op in graph.ops if is_16x8(op, graph)}
    needs_tflm = tflm_reason(kinds, kinds16)
    per_op = tuple(sorted(k for k in kinds16 if k in TFLM_OPS_16X8)) \
        if which == "auto" and not tflm_reason(kinds) else ()
    if which == "auto" and needs_tflm:
        which = "tflm"
        notes.append(f"{needs_tflm}; the oracle is tflite_micro")
    elif which == "tflite" and needs_tflm:
        notes.append(f"{needs_tflm}: expected outputs from TFLite may be wrong (pass --oracle tflm)")
    proc = OracleProcess(model_path, data)
    try:
        oracle = _load(proc, which, rounding, notes, per_op)
    except BaseException:
        proc.close()
        raise
    if oracle.name == "tflite-per-op":       # the per-op note replaces "the oracle is tflite_micro"
        notes = [n for n in notes if not n.endswith("; the oracle is tflite_micro")]
    own = ROUNDING[oracle.name]
    if rounding is None:
        rounding = own
        if own != "tflite":
            notes.append(f"generating with --rounding {own} to match the {oracle.name} oracle "
                         "(pass --rounding to override)")
    elif rounding != own:
        notes.append(f"--rounding {rounding} differs from the {oracle.name} oracle's rounding ({own}); "
                     "byte differences against it are expected")
    return OracleChoice(oracle=oracle, rounding=rounding, notes=notes)


def reference_outputs(model_path: str, inputs: list[list[np.ndarray]],
                      oracle: Oracle | None = None) -> tuple[list[list[np.ndarray]], str]:
    """Run the oracle (default: make_oracle's auto choice) on each input record;
    returns (outputs per record, oracle name)."""
    own = oracle is None
    oracle = oracle or make_oracle(model_path)
    try:
        return [oracle.run(rec) for rec in inputs], oracle.name
    finally:
        if own:
            oracle.close()
