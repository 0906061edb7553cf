"""MLPerf Tiny (EEMBC runner) benchmark ids and the wire formats they imply.

The stock runner picks its test script by the model id the device reports
after `profile%` (`m-model-[<id>]`): kws01, vww01, ic01 or ad01. The id also
fixes what the runner sends and expects (the reference firmware's
th_load_tensor / th_results):

| id    | `db` bytes                          | device converts                      | m-results           |
|-------|-------------------------------------|--------------------------------------|---------------------|
| kws01 | int8 features, one per input byte   | nothing                              | dequantized outputs |
| vww01 | uint8 pixels, one per input byte    | x - 128 -> int8                      | dequantized outputs |
| ic01  | uint8 pixels, one per input byte    | x - 128 -> int8                      | dequantized outputs |
| ad01  | float32 (little endian), 4 per byte | quantize with the input scale / zp   | one score: MSE      |

The console baud follows the stock runner's device files: 115200 for kws01,
vww01 and ic01 (devices_kws_ic_vww.yaml), 921600 for ad01 (devices_ad.yaml),
9600 in energy mode.

`none` (not an MLPerf Tiny id) keeps the raw protocol: the input tensor's
int8 bytes in, every dequantized output value back, the model name as id.

The four reference models are recognised by their file name *and* their
input/output size; a model that only looks like one gets no id (a note
says which `--eembc-id` would apply), because the id changes the wire format.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from tinyml.errors import TinymlError

INPUT_INT8, INPUT_UINT8, INPUT_FLOAT32 = "int8", "uint8", "float32"
RESULT_VALUES, RESULT_MSE = "values", "mse"
# C values of TINYML_EEMBC_INPUT / TINYML_EEMBC_RESULT (app/serial_eembc.c)
INPUT_CODES = {INPUT_INT8: 0, INPUT_UINT8: 1, INPUT_FLOAT32: 2}
RESULT_CODES = {RESULT_VALUES: 0, RESULT_MSE: 1}
NONE = "none"
ENERGY_BAUD = 9600        # the stock runner's DUT baud in energy mode (every devices_*.yaml)


@dataclass(frozen=True)
class Benchmark:
    id: str
    reference_file: str       # stem of the MLPerf Tiny reference .tflite
    input_bytes: int          # int8 input tensor bytes of the reference model
    output_bytes: int
    input: str                # wire format of `db` bytes
    result: str
    baud: int                 # DUT baud of the stock runner's devices_*.yaml (performance/accuracy)


BENCHMARKS: dict[str, Benchmark] = {b.id: b for b in (
    Benchmark("kws01", "kws_ref_model", 49 * 10, 12, INPUT_INT8, RESULT_VALUES, 115200),
    Benchmark("vww01", "vww_96_int8", 96 * 96 * 3, 2, INPUT_UINT8, RESULT_VALUES, 115200),
    Benchmark("ic01", "pretrainedResnet_quant", 32 * 32 * 3, 10, INPUT_UINT8, RESULT_VALUES, 115200),
    Benchmark("ad01", "ad01_int8", 640, 640, INPUT_FLOAT32, RESULT_MSE, 921600),
)}


@dataclass(frozen=True)
class EembcProfile:
    """What `profile%` reports and how `db` bytes and results are formatted."""
    model_id: str             # m-model-[...]
    input: str
    result: str
    input_bytes: int          # model input tensor (int8)
    db_bytes: int             # bytes the runner loads with `db load N`
    source: str               # "reference model", "--eembc-id", or "model name"
    note: str = ""
    baud: int | None = None   # console baud the stock runner expects (None: the board's)

    def cflags(self) -> str:
        """-D flags for app/serial_eembc.c (shell-quoted for the Makefile)."""
        return (f"-DTINYML_EEMBC_ID='\"{self.model_id}\"' -DTINYML_EEMBC_INPUT={INPUT_CODES[self.input]} "
                f"-DTINYML_EEMBC_RESULT={RESULT_CODES[self.result]}")

    def as_dict(self) -> dict:
        return {"model_id": self.model_id, "input": self.input, "result": self.result,
                "db_bytes": self.db_bytes, "source": self.source, "note": self.note, "baud": self.baud}


def _wire_bytes(input_format: str, input_bytes: int) -> int:
    return input_bytes * (4 if input_format == INPUT_FLOAT32 else 1)


def check_id(eembc_id: str, where: str = "tinyml build") -> None:
    """One of the MLPerf Tiny ids, or `none`; anything else is a one-line error."""
    if eembc_id != NONE and eembc_id not in BENCHMARKS:
        raise TinymlError(f"unknown --eembc-id {eembc_id!r}", where,
                          f"use one of {', '.join(BENCHMARKS)} (the ids the MLPerf Tiny runner knows) "
                          f"or {NONE} (raw int8 input, model name as id)")


def _safe_id(name: str) -> str:
    """A model name as an id the runner's m-model-[...] pattern and a -D flag both carry."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64] or "model"


def resolve(model_name: str, input_bytes: int, output_bytes: int, eembc_id: str | None = None,
            where: str = "") -> EembcProfile:
    """The serial firmware's MLPerf Tiny profile for a model.

    `model_name`: the .tflite file's stem; `eembc_id`: an explicit choice (one
    of BENCHMARKS or "none"), else the reference models are recognised.
    """
    model_name = _safe_id(model_name)
    if eembc_id is not None:
        if eembc_id == NONE:
            return EembcProfile(model_name, INPUT_INT8, RESULT_VALUES, input_bytes, input_bytes, "--eembc-id")
        check_id(eembc_id, where or "tinyml build")
        b = BENCHMARKS[eembc_id]
        if b.result == RESULT_MSE and output_bytes != input_bytes:
            raise TinymlError(f"--eembc-id {eembc_id} returns the MSE between input and reconstruction, but "
                              f"the model maps {input_bytes} input bytes to {output_bytes} output bytes",
                              where or "tinyml build",
                              "use it only for an autoencoder whose output has the input's size, or "
                              f"pass --eembc-id {NONE}")
        return EembcProfile(b.id, b.input, b.result, input_bytes, _wire_bytes(b.input, input_bytes), "--eembc-id",
                            baud=b.baud)
    for b in BENCHMARKS.values():
        if (input_bytes, output_bytes) != (b.input_bytes, b.output_bytes):
            continue
        if model_name == b.reference_file:
            return EembcProfile(b.id, b.input, b.result, input_bytes, _wire_bytes(b.input, input_bytes),
                                "reference model", baud=b.baud)
        note = (f"{model_name} has the input/output size of the MLPerf Tiny {b.id} model; pass "
                f"--eembc-id {b.id} to report that id (and use its input format) for the stock runner")
        return EembcProfile(model_name, INPUT_INT8, RESULT_VALUES, input_bytes, input_bytes, "model name", note)
    return EembcProfile(model_name, INPUT_INT8, RESULT_VALUES, input_bytes, input_bytes, "model name")


def wire_input(model_id: str, tensor: bytes, scale: float, zero_point: int) -> bytes:
    """The `db` bytes that make a device reporting `model_id` see `tensor` (int8 bytes)
    as its input: uint8 pixels shifted by +128 for vww01/ic01, float32 values
    dequantized with the input scale / zero point for ad01 (the device's
    round(x / scale) + zp gives back every int8 value exactly), as is otherwise."""
    import numpy as np
    b = BENCHMARKS.get(model_id)
    q = np.frombuffer(tensor, dtype=np.int8)
    if b is None or b.input == INPUT_INT8:
        return tensor
    if b.input == INPUT_UINT8:
        return (q.astype(np.int16) + 128).astype(np.uint8).tobytes()
    real = (q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)
    return real.astype("<f4").tobytes()


def wire_payload(model_id: str | None, data: bytes, tensor_bytes: int | None, scale: float | None,
                 zero_point: int | None, *, tensor: bool, where: str = "") -> bytes:
    """What to `db load` for one input on a device whose `profile%` reported `model_id`.

    `tensor`: `data` is the model's int8 input tensor (an image converted with the
    model's quantization), mapped to the benchmark's wire format (wire_input). A
    raw file is the wire format already (the MLPerf Tiny datasets' uint8 pixels and
    float32 windows) and is sent as it is, except an int8 tensor-sized file for an
    ad01 device, which is dequantized with the model's input scale / zero point.
    """
    b = BENCHMARKS.get(model_id or "")
    if b is None or b.input == INPUT_INT8:
        return data
    needs_quant = tensor and b.input == INPUT_FLOAT32 or (
        not tensor and b.input == INPUT_FLOAT32 and tensor_bytes is not None and len(data) == tensor_bytes)
    if needs_quant:
        if scale is None or zero_point is None:
            raise TinymlError(f"the device runs MLPerf Tiny {b.id}, which takes float32 values; converting "
                              f"int8 input bytes needs the model's input quantization", where,
                              "pass --model MODEL.tflite, or a float32 window file")
        return wire_input(b.id, data, scale, zero_point)
    if tensor:
        return wire_input(b.id, data, scale or 1.0, zero_point or 0)
    if b.input == INPUT_FLOAT32 and len(data) % 4:
        raise TinymlError(f"the device runs MLPerf Tiny {b.id}, which takes float32 values, but the input "
                          f"has {len(data)} bytes (not a multiple of 4)", where,
                          "pass a little-endian float32 window file")
    return data


HEADER = "eembc.h"      # written beside model.h by `tinyml generate --eembc-id`


def header_text(p: EembcProfile, choice: str) -> str:
    """DIR/eembc.h of a generated library: the id and formats for an MLPerf Tiny firmware
    (`tinyml build` from the library reads the id back; app/serial_eembc.c's macros)."""
    return (f"/* Generated by tinyml generate --eembc-id: the MLPerf Tiny benchmark this model runs as.\n"
            f" * profile% reports m-model-[{p.model_id}]; `db` bytes: {p.db_bytes} {p.input}; results: "
            f"{p.result}. */\n"
            f"#ifndef TINYML_EEMBC_H\n#define TINYML_EEMBC_H\n"
            f"#define TINYML_EEMBC_CHOICE \"{choice}\"   /* as given to --eembc-id */\n"
            f"#define TINYML_EEMBC_ID \"{p.model_id}\"\n"
            f"#define TINYML_EEMBC_INPUT {INPUT_CODES[p.input]}\n"
            f"#define TINYML_EEMBC_RESULT {RESULT_CODES[p.result]}\n"
            f"#endif\n")


def header_id(lib_dir: str) -> str | None:
    """The --eembc-id a generated library's eembc.h records, or None when it has none."""
    import os
    try:
        with open(os.path.join(lib_dir, HEADER)) as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r'#define\s+TINYML_EEMBC_CHOICE\s+"([^"]*)"', text)
    return m.group(1) if m else None
