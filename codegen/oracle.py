"""The numeric oracle: TensorFlow Lite's reference kernels.

`tf.lite.Interpreter` with the BUILTIN_REF op resolver is the default. Where
TFLite refuses a model that TFLM accepts (e.g. person_detect's per-tensor
weights with quantized_dimension=3), TFLM's Python runtime (`tflite_micro`)
is used instead, and the oracle's name says so.
"""
from __future__ import annotations

import contextlib
import os
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


def _tflite(model_bytes: bytes) -> Oracle:
    tf = import_tf()
    with quiet_stderr():
        interp = tf.lite.Interpreter(
            model_content=model_bytes,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
        interp.allocate_tensors()
    ins = interp.get_input_details()
    outs = interp.get_output_details()

    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        for d, x in zip(ins, inputs):
            interp.set_tensor(d["index"], np.asarray(x, dtype=d["dtype"]).reshape(d["shape"]))
        interp.invoke()
        return [interp.get_tensor(d["index"]).copy() for d in outs]

    return Oracle("tflite-reference", run)


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
ROUNDING = {"tflite-reference": "tflite", "tflite-micro": "tflm"}


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


def choose_oracle(model_path: str, rounding: str | None = None, which: str = "auto") -> OracleChoice:
    """Pick the oracle for `model_path` and the rounding the generated C should use.

    `which`: "auto" (TFLite's reference kernels; TFLM when TFLite refuses the
    model), "tflite" or "tflm". `rounding`: the user's explicit choice, or
    None to follow the oracle (TFLite -> "tflite", TFLM -> "tflm"). Every
    deviation from the default is said in `notes`. Without TensorFlow the
    TFLite oracle is impossible: TFLM is used only when the rounding is
    "tflm" (its own), else a one-line TinymlError names the cause and fix."""
    from tinyml.errors import TinymlError
    from .importer import import_bytes, load_bytes
    data = load_bytes(model_path)
    import_bytes(data, model_path)
    notes: list[str] = []
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
    elif which == "tflite":
        oracle = _tflite(data)
    else:
        try:
            oracle = _tflite(data)
        except Exception as first:  # TFLite refuses the file: try TFLM
            try:
                oracle = _tflm(data)
            except Exception as second:
                raise ModelError(f"neither TFLite ({first}) nor TFLM ({second}) can run {model_path}",
                                 fix="check that the model is a valid int8 TFLite model") from None
            why = (str(first).strip().splitlines() or [type(first).__name__])[0].split(". ")[0][:120]
            notes.append(f"TFLite refuses this model ({why}); the oracle is tflite_micro")
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
