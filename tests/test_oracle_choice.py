"""codegen.oracle.choose_oracle decides the oracle per model (issue 13): tflite_micro for the
int8 ops TFLite's reference kernels lack or get wrong, TFLite's reference kernels on a copy with
TILE's opcode version lowered (one kernel for every version), TFLite's builtin kernels for any
other op version the reference resolver lacks. Each decision is said in a note; the user's file
is never changed."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from opgraph import i32
from opmodels import Spec, single_op_model

pytestmark = pytest.mark.timeout(300)


def q(shape, scale=0.05, zp=3):
    return Spec(shape, "int8", scale=scale, zero_point=zp)


TFLM_MODELS = {
    "SUM": lambda: single_op_model("SUM", [q((2, 3, 4)), i32([1])], [q((2, 4), 0.3, -5)],
                                   options=("ReducerOptions", {"keepDims": False})),
    "BROADCAST_TO": lambda: single_op_model("BROADCAST_TO", [q((1, 3)), i32([4, 3])], [q((4, 3))]),
    "ELU": lambda: single_op_model("ELU", [q((3, 5))], [q((3, 5), 0.04, -20)]),
    "ADD_N": lambda: single_op_model("ADD_N", [q((2, 3)), q((2, 3))], [q((2, 3), 0.1, -5)]),
    "ZEROS_LIKE": lambda: single_op_model("ZEROS_LIKE", [q((2, 5))], [q((2, 5))]),
}


def _write(tmp_path, name, blob) -> str:
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(blob)
    return str(path)


def _tile_v3(tmp_path) -> tuple[str, bytes]:
    """int8 TILE as the converter writes it (opcode version 3), which TensorFlow 2.21's
    BUILTIN_REF resolver registers only up to version 2."""
    blob = single_op_model("TILE", [q((2, 3)), i32([2, 3])], [q((4, 9))], version=3)
    return _write(tmp_path, "tile_v3", blob), blob


@pytest.mark.parametrize("op", sorted(TFLM_MODELS))
def test_tflm_ops_choose_tflite_micro(tmp_path, op):
    from tinyml.codegen.oracle import TFLM_OPS, choose_oracle
    path = _write(tmp_path, op, TFLM_MODELS[op]())
    ch = choose_oracle(path)
    assert ch.oracle.name == "tflite-micro" and ch.rounding == "tflm"
    assert any(TFLM_OPS[op] in n and "the oracle is tflite_micro" in n for n in ch.notes), ch.notes
    # an explicit --oracle tflite is kept, with the warning
    kept = choose_oracle(path, None, "tflite") if op == "SUM" else None
    if kept is not None:
        assert kept.oracle.name == "tflite-reference"
        assert any("may be wrong" in n and "--oracle tflm" in n for n in kept.notes), kept.notes


def _tflite(blob: bytes, builtin: bool = False):
    """TFLite in this process (reference kernels, or the builtin ones): a run function."""
    from tinyml.codegen.oracle_child import _load_tflite
    return _load_tflite(blob, builtin)


def _load_tflm(blob: bytes):
    from tinyml.codegen.oracle_child import _load_tflm as load
    return load(blob)


def test_sum_reference_is_wrong_where_tflm_is_right(tmp_path):
    """The reason SUM goes to tflite_micro: on negative int8 inputs TFLite's reference SUM
    differs from the exact integer sum, tflite_micro's agrees with it within 1 LSB."""
    blob = TFLM_MODELS["SUM"]()
    x = np.full((2, 3, 4), -60, np.int8)                   # real value (-60 - 3) * 0.05 = -3.15
    exact = np.round(3 * (-60 - 3) * 0.05 / 0.3) - 5       # 3 elements summed, out scale 0.3, zp -5
    ref = _tflite(blob)([x])[0].astype(int)
    micro = _load_tflm(blob)([x])[0].astype(int)
    assert np.abs(micro - exact).max() <= 1
    assert np.abs(ref - exact).max() > 1


def test_plain_op_keeps_the_reference_oracle(tmp_path):
    from tinyml.codegen.oracle import choose_oracle
    path = _write(tmp_path, "max", single_op_model("MAXIMUM", [q((2, 3)), q((2, 3))], [q((2, 3))]))
    ch = choose_oracle(path)
    assert ch.oracle.name == "tflite-reference" and ch.rounding == "tflite" and ch.notes == []


def test_tile_v3_runs_the_reference_kernels_on_a_version_capped_copy(tmp_path):
    from tinyml.codegen.oracle import capped_versions, choose_oracle
    path, blob = _tile_v3(tmp_path)
    with pytest.raises(ValueError, match="'TILE' version '3'"):
        _tflite(blob)                                       # the reason for the fallback
    copy, changed = capped_versions(blob, {"TILE": 2})
    assert changed == ["TILE v3 -> v2"] and len(copy) == len(blob)
    assert sum(a != b for a, b in zip(copy, blob)) == 1    # one byte: the version field
    ch = choose_oracle(path)
    assert ch.oracle.name == "tflite-reference" and ch.rounding == "tflite"
    assert len(ch.notes) == 1 and "TILE v3 -> v2" in ch.notes[0] and "model file unchanged" in ch.notes[0]
    assert open(path, "rb").read() == blob
    x = np.arange(-3, 3, dtype=np.int8).reshape(2, 3)
    assert np.array_equal(ch.oracle.run([x])[0], np.tile(x, (2, 3)))
    assert np.array_equal(ch.oracle.run([x])[0], _tflite(blob, builtin=True)([x])[0])


def test_other_missing_versions_use_the_builtin_kernels(tmp_path, monkeypatch):
    """An op version the reference resolver lacks and whose kernels are not known to be one:
    TFLite's builtin kernels (no XNNPACK), named tflite-builtin."""
    from tinyml.codegen import oracle as mod
    monkeypatch.setattr(mod, "REF_MAX_VERSION", {})
    path, _ = _tile_v3(tmp_path)
    ch = mod.choose_oracle(path)
    assert ch.oracle.name == "tflite-builtin" and ch.rounding == "tflite"
    assert any("lack TILE version 3" in n and "tflite-builtin" in n for n in ch.notes), ch.notes


def test_explicit_tflite_oracle_that_cannot_run_is_one_line(tmp_path, monkeypatch):
    from tinyml.codegen import oracle as mod
    from tinyml.errors import ModelError
    monkeypatch.setattr(mod, "_version_fallback", lambda proc, refusal, notes: None)   # no copy, no builtin
    path, _ = _tile_v3(tmp_path)
    with pytest.raises(ModelError) as e:
        mod.choose_oracle(path, None, "tflite")
    assert "TFLite refuses" in str(e.value) and "TILE" in str(e.value) and "--oracle tflm" in e.value.fix


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_build_json_names_the_oracle_and_the_note(tmp_path):
    from tinyml.firmware.build import build_firmware
    path, _ = _tile_v3(tmp_path)
    out = str(tmp_path / "fw")
    res = build_firmware(path, "stm32f746g-disco", out, num_vectors=2, progress=lambda m: None)
    meta = json.load(open(os.path.join(out, "build.json")))
    assert res.oracle == meta["oracle"] == "tflite-reference"
    assert any("TILE v3 -> v2" in n for n in meta["notes"]), meta["notes"]


def test_per_op_oracle_equals_the_whole_model_run():
    """The per-op oracle (each operator alone in TFLite's reference interpreter, tensors carried by
    index) gives the whole-model run's bytes on a model both run: the shared int8 ViT (RESHAPE,
    TRANSPOSE, BATCH_MATMUL, MEAN, the LayerNorm float island ...)."""
    from tinyml import paths
    from tinyml.codegen.oracle_child import _load_per_op, _load_tflite
    path = os.path.join(paths.shared_models(), "vit", "vit_relu_d64x4.tflite")
    blob = open(path, "rb").read()
    whole, per_op = _load_tflite(blob), _load_per_op(blob, set())
    rng = np.random.default_rng(21)
    for _ in range(2):
        x = rng.integers(-128, 128, size=(1, 28, 28, 1)).astype(np.int8)
        want, got = whole([x]), per_op([x])
        assert [np.asarray(w).tobytes() for w in want] == [np.asarray(g).tobytes() for g in got]


def test_16x8_model_neither_runtime_runs_gets_the_per_op_oracle(tmp_path):
    """int16 SQUARED_DIFFERENCE (only tflite_micro) feeding int16 GELU (only TFLite): the oracle runs
    each op alone, SQUARED_DIFFERENCE in tflite_micro, and says so (test_zoo's 16x8 ViT verifies
    bit-exact with it)."""
    import flatbuffers

    from opmodels import _schema, add_tensor_t
    from tinyml.codegen.oracle import choose_oracle
    s = _schema()
    m = s.ModelT()
    m.version, m.buffers, tensors = 3, [s.BufferT()], []
    a16 = [Spec((2, 8), "int16", scale=sc, zero_point=0) for sc in (0.001, 0.0007, 0.0004, 0.0003)]
    idx = [add_tensor_t(s, m, tensors, spec, f"t{k}") for k, spec in enumerate(a16)]
    codes = []
    for name in ("SQUARED_DIFFERENCE", "GELU"):
        c = s.OperatorCodeT()
        c.builtinCode = getattr(s.BuiltinOperator, name)
        c.deprecatedBuiltinCode = min(c.builtinCode, 127)
        c.version = 2
        codes.append(c)
    sq, ge = s.OperatorT(), s.OperatorT()
    sq.opcodeIndex, sq.inputs, sq.outputs = 0, np.asarray(idx[:2], np.int32), np.asarray([idx[2]], np.int32)
    ge.opcodeIndex, ge.inputs, ge.outputs = 1, np.asarray([idx[2]], np.int32), np.asarray([idx[3]], np.int32)
    ge.builtinOptionsType, ge.builtinOptions = s.BuiltinOptions.GeluOptions, s.GeluOptionsT()
    sg = s.SubGraphT()
    sg.tensors, sg.operators, sg.name = tensors, [sq, ge], "main"
    sg.inputs, sg.outputs = np.asarray(idx[:2], np.int32), np.asarray([idx[3]], np.int32)
    m.operatorCodes, m.subgraphs = codes, [sg]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path = _write(tmp_path, "sqdiff_gelu16", bytes(b.Output()))
    ch = choose_oracle(path)
    try:
        assert ch.oracle.name == "tflite-per-op" and ch.rounding == "tflite", (ch.oracle.name, ch.notes)
        assert len(ch.notes) == 1 and "SQUARED_DIFFERENCE (int16) in tflite_micro" in ch.notes[0], ch.notes
        x = [np.arange(-8, 8, dtype=np.int16).reshape(2, 8) * 900, np.full((2, 8), 1000, np.int16)]
        assert np.asarray(ch.oracle.run(x)[0]).shape == (2, 8)
    finally:
        ch.oracle.close()
