"""The numeric oracle: TensorFlow Lite's reference kernels.

`tf.lite.Interpreter` with the BUILTIN_REF op resolver is the default. Where
TFLite refuses a model that TFLM accepts (e.g. person_detect's per-tensor
weights with quantized_dimension=3), TFLM's Python runtime (`tflite_micro`)
is used instead, and the oracle's name says so. `choose_oracle` also decides
per model: TFLM for ops TFLite's reference kernels lack or get wrong in int8
(`TFLM_OPS`), and TFLite's builtin (optimized) resolver, "tflite-builtin",
when the reference resolver lacks only an op *version* the converter wrote
(TILE v3 from UpSampling2D). The model file is never rewritten.
"""
from __future__ import annotations

import contextlib
import os
import re
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from tinyml.errors import ModelError

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


@dataclass
class Oracle:
    name: str
    run: Callable[[list[np.ndarray]], list[np.ndarray]]


def _tflite(model_bytes: bytes, builtin: bool = False) -> Oracle:
    """TFLite's reference kernels, or with `builtin` its builtin (optimized) kernels
    without the default XNNPACK delegate."""
    tf = import_tf()
    kind = tf.lite.experimental.OpResolverType
    with quiet_stderr():
        interp = tf.lite.Interpreter(
            model_content=model_bytes,
            experimental_op_resolver_type=kind.BUILTIN_WITHOUT_DEFAULT_DELEGATES if builtin else kind.BUILTIN_REF)
        interp.allocate_tensors()
    ins = interp.get_input_details()
    outs = interp.get_output_details()

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        for d, x in zip(ins, inputs):
            interp.set_tensor(d["index"], np.asarray(x, dtype=d["dtype"]).reshape(d["shape"]))
        interp.invoke()
        return [interp.get_tensor(d["index"]).copy() for d in outs]

    return Oracle("tflite-builtin" if builtin else "tflite-reference", run)


def _num_outputs(model_bytes: bytes) -> int:
    from .importer import import_bytes
    return len(import_bytes(model_bytes).outputs)


def _tflm(model_bytes: bytes) -> Oracle:
    from tflite_micro.python.tflite_micro import runtime
    interp = runtime.Interpreter.from_bytes(model_bytes, arena_size=max(len(model_bytes) * 10, 1 << 22))
    n_out = _num_outputs(model_bytes)

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        for i, x in enumerate(inputs):
            d = interp.get_input_details(i)
            interp.set_input(np.asarray(x, dtype=d["dtype"]).reshape(d["shape"]), i)
        interp.invoke()
        return [np.array(interp.get_output(i), copy=True) for i in range(n_out)]

    return Oracle("tflite-micro", run)


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
ROUNDING = {"tflite-reference": "tflite", "tflite-builtin": "tflite", "tflite-micro": "tflm"}

# int8 ops whose expected outputs come from tflite_micro (TensorFlow 2.21's
# BUILTIN_REF resolver): no int8 kernel there, or a wrong one.
TFLM_OPS = {
    "SUM": "TFLite's reference SUM reads int8 as uint8",
    "BROADCAST_TO": "TFLite's reference kernels have no int8 BROADCAST_TO",
    "ELU": "TFLite's reference kernels have no int8 ELU",
    "ADD_N": "TFLite's reference kernels have no int8 ADD_N",
    "ZEROS_LIKE": "TFLite's reference kernels have no int8 ZEROS_LIKE",
}

_MISSING_VERSION = re.compile(r"Didn't find op for builtin opcode '(\w+)' version '(\d+)'")


def missing_op_version(exc: BaseException) -> tuple[str, int] | None:
    """(op, version) when TFLite's resolver refused the model for lacking that op version."""
    m = _MISSING_VERSION.search(str(exc))
    return (m.group(1), int(m.group(2))) if m else None


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


def tflm_reason(kinds: set[str]) -> str | None:
    """Why a model with these op kinds (folded ones included) needs tflite_micro, or None."""
    hits = sorted(k for k in kinds if k in TFLM_OPS)
    return "; ".join(TFLM_OPS[k] for k in hits) or None


@dataclass
class OracleChoice:
    """The oracle a command compares with, the rounding to generate with, and why."""
    oracle: Oracle
    rounding: str
    notes: list[str]


def _tf_missing() -> Exception | None:
    """The ImportError of `import tensorflow`, or None when it imports."""
    try:
        import_tf()
    except ImportError as exc:
        return exc
    return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0][:120]


def choose_oracle(model_path: str, rounding: str | None = None, which: str = "auto") -> OracleChoice:
    """Pick the oracle for `model_path` and the rounding the generated C should use.

    `which`: "auto" (TFLite's reference kernels; its builtin kernels when the
    reference resolver lacks an op version; TFLM for `TFLM_OPS` or when TFLite
    refuses the model), "tflite" (reference, else builtin) or "tflm". `rounding`: the user's explicit choice, or
    None to follow the oracle (TFLite -> "tflite", TFLM -> "tflm"). Every
    deviation from the default is said in `notes`. Without TensorFlow the
    TFLite oracle is impossible: TFLM is used only when the rounding is
    "tflm" (its own), else a one-line TinymlError names the cause and fix."""
    from tinyml.errors import TinymlError
    from .importer import import_bytes, load_bytes
    data = load_bytes(model_path)
    graph = import_bytes(data, model_path)
    notes: list[str] = []
    kinds = {op.kind for op in graph.ops} | {k for _, k in graph.folded}
    needs_tflm = tflm_reason(kinds)
    if which == "auto" and needs_tflm:
        which = "tflm"
        notes.append(f"{needs_tflm}; the oracle is tflite_micro")
    elif which == "tflite" and needs_tflm:
        notes.append(f"{needs_tflm}: expected outputs from TFLite may be wrong (pass --oracle tflm)")
    if which in ("auto", "tflite"):
        missing = _tf_missing()
        if missing is not None:
            if which == "auto" and rounding == "tflm":
                which = "tflm"
                notes.append("TensorFlow is not importable; expected outputs come from tflite_micro, "
                             "whose rounding is the requested --rounding tflm")
            else:
                raise TinymlError(
                    f"TensorFlow is not importable ({type(missing).__name__}: {missing}), and the expected "
                    f"outputs for --rounding {rounding or 'tflite'} come from TFLite's reference kernels",
                    where=model_path,
                    fix="install tensorflow-cpu>=2.21,<2.22, or pass --rounding tflm to compare with "
                        "tflite_micro (no TensorFlow needed)")
    if which == "tflm":
        oracle = _tflm(data)
    else:
        try:
            oracle = _tflite(data)
        except Exception as first:
            version = missing_op_version(first)
            oracle: Oracle | None = None
            if version is not None and version[0] in REF_MAX_VERSION:
                copy, changed = capped_versions(data, REF_MAX_VERSION)
                try:
                    oracle = _tflite(copy)
                    notes.append(f"TFLite's reference resolver registers {version[0]} only up to version "
                                 f"{REF_MAX_VERSION[version[0]]}; its kernel is the same for every version, so "
                                 f"the reference oracle runs a copy with {', '.join(changed)} (model file unchanged)")
                except Exception:
                    oracle = None
            if oracle is None and version is not None:     # TFLite's builtin kernels know that version
                try:
                    oracle = _tflite(data, builtin=True)
                    notes.append(f"TFLite's reference kernels lack {version[0]} version {version[1]}; the "
                                 "oracle is TFLite's builtin (optimized) kernels, tflite-builtin, for this model")
                except Exception:
                    oracle = None
            if oracle is None and which == "tflite":
                raise ModelError(f"TFLite cannot run {model_path} ({_first_line(first)})",
                                 fix="pass --oracle tflm (or auto) to compare with tflite_micro") from None
            if oracle is None:      # TFLite refuses the file: try TFLM
                try:
                    oracle = _tflm(data)
                except Exception as second:
                    raise ModelError(f"neither TFLite ({_first_line(first)}) nor TFLM ({_first_line(second)}) "
                                     f"can run {model_path}",
                                     fix="check that the model is a valid int8 TFLite model") from None
                notes.append(f"TFLite refuses this model ({_first_line(first)}); the oracle is tflite_micro")
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
    oracle = oracle or make_oracle(model_path)
    return [oracle.run(rec) for rec in inputs], oracle.name
