"""GATHER_ND, EMBEDDING_LOOKUP, DYNAMIC_UPDATE_SLICE, FILL (run-time value), CAST and CUMSUM:
parameter sweeps, each op's bytes against TFLite's reference interpreter and tflite_micro (CUMSUM:
tflite_micro only, TFLite has no int8 CUMSUM), several cases per model so each sweep compiles once."""
from __future__ import annotations

import os

import numpy as np
import pytest

from opgraph import OpCase, case_records, i32, multi_op_model
from opmodels import Spec, run_generated, run_reference
from opmodels import tflm_oracle as _tflm


def q(shape, dtype="int8", scale=0.05, zp=3, data=None) -> Spec:
    if dtype not in ("int8", "uint8", "int16"):
        return Spec(shape, dtype, data=data)
    return Spec(shape, dtype, scale=scale, zero_point=zp, data=data)


def _compare(model, records, got, oracle, what):
    for r, rec in enumerate(records):
        for k, (g, w) in enumerate(zip(got[r], oracle(rec))):
            g, w = np.asarray(g), np.asarray(w)
            assert g.tobytes() == w.reshape(g.shape).tobytes(), f"{what}: record {r} output {k}: {g.ravel()[:8]} vs {w.ravel()[:8]}"


def check_both(cases, count=3, records=None, tflite=True, tflm=True, rounding="tflite"):
    model = multi_op_model(cases)
    records = records or case_records(cases, count)
    got = run_generated(model, records, sanitize=False, rounding=rounding)
    if tflite:
        _compare(model, records, got, lambda rec: run_reference(model, rec), "tflite")
    if tflm:
        _compare(model, records, got, _tflm(model).run, "tflm")


def gather_nd_cases():
    cases = []
    for pshape, ishape, dt in [((5, 4), (3, 1), "int8"), ((5, 4), (3, 2), "int8"), ((2, 3, 4, 5), (2, 2, 3), "int8"),
                               ((3, 4, 6), (4, 2), "int8"), ((6, 7), (2, 2, 2), "int8")]:
        depth = ishape[-1]
        out = tuple(ishape[:-1]) + tuple(pshape[depth:])
        rng = np.random.default_rng(len(cases))
        idx = np.stack([rng.integers(0, pshape[j], size=ishape[:-1]) for j in range(depth)], -1).astype(np.int32)
        const = len(cases) % 2 == 0
        ispec = i32(idx) if const else Spec(ishape, "int32")
        cases.append(OpCase("GATHER_ND", [q(pshape, dt), ispec], [q(out, dt)],
                            index_bounds=None if const else {1: min(pshape[:depth])}))
    return cases


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_gather_nd_embedding_lookup():
    """GATHER_ND: 5 cases (index depth 1-3, slices and single elements, constant and run-time
    indices, int8 params: TFLM has no int32 GATHER_ND); EMBEDDING_LOOKUP: 3 int8 tables (run-time and constant
    ids, 1-D and 2-D rows): both runtimes, byte for byte."""
    cases = gather_nd_cases()
    rng = np.random.default_rng(7)
    for vshape, n, const in [((10, 4), 6, False), ((7, 3, 2), 3, True), ((5, 2), 8, False)]:
        table = rng.integers(-128, 128, size=vshape).astype(np.int8)
        ids = Spec((n,), "int32") if not const else i32(rng.integers(0, vshape[0], size=n))
        cases.append(OpCase("EMBEDDING_LOOKUP", [ids, q(vshape, data=table)], [q((n,) + vshape[1:])],
                            index_bounds=None if const else {0: vshape[0]}))
    check_both(cases)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_dynamic_update_slice_fill_cast():
    """DYNAMIC_UPDATE_SLICE: 4 cases (1-D to 4-D, run-time and constant start indices, indices
    that clamp at both ends); FILL with a run-time int8/int32 value; CAST int8 <-> int32, int8 ->
    float32, int8 -> bool, bool -> int8, int32 -> int16: both runtimes, byte for byte."""
    cases = []
    for oshape, ushape, start in [((8,), (3,), None), ((4, 6), (2, 3), [3, -2]), ((2, 5, 5, 3), (1, 2, 3, 3), None),
                                  ((3, 4, 5), (3, 1, 5), [0, 9, 0])]:
        s = i32(start) if start is not None else Spec((len(oshape),), "int32")
        cases.append(OpCase("DYNAMIC_UPDATE_SLICE", [q(oshape), q(ushape), s], [q(oshape)],
                            index_bounds=None if start is not None else {2: max(oshape) + 2}))
    for shape, dt in [((2, 3, 4), "int8"), ((5,), "int32")]:
        cases.append(OpCase("FILL", [i32(shape), q((), dt)], [q(shape, dt)]))
    for a, b in [("int8", "int32"), ("int32", "int8"), ("int8", "float32"), ("int8", "bool"), ("bool", "int8"),
                 ("int32", "int16")]:
        cases.append(OpCase("CAST", [q((3, 7), a)], [q((3, 7), b)]))
    check_both(cases)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_cumsum_tflm():
    """CUMSUM (int8; TFLite has none): 6 cases (axes first/middle/last/negative, exclusive,
    reverse, zero points from -128 to 100, a 40-long axis whose int32 sum wraps as in TFLM),
    generated with --rounding tflm, against tflite_micro byte for byte."""
    cases = []
    for shape, axis, excl, rev, qi, qo in [((2, 5, 3), 1, False, False, (0.05, 3), (0.2, -5)),
                                           ((4, 6), -1, True, False, (0.1, -20), (0.3, 0)),
                                           ((3, 4), 0, False, True, (0.02, 100), (0.1, 10)),
                                           ((1, 2, 3, 4), 2, True, True, (0.5, -128), (1.0, 7)),
                                           ((40,), 0, False, False, (0.1, 0), (2.0, 0)),
                                           ((2, 8), 1, False, False, (0.05, 0), (0.05, 0))]:
        cases.append(OpCase("CUMSUM", [Spec(shape, "int8", scale=qi[0], zero_point=qi[1]), i32([axis])],
                            [Spec(shape, "int8", scale=qo[0], zero_point=qo[1])],
                            options=("CumsumOptions", {"exclusive": excl, "reverse": rev})))
    check_both(cases, tflite=False, rounding="tflm")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_log_softmax_both_runtimes():
    """LOG_SOFTMAX (int8, output 16/256 and 127): 5 shapes/input quantizations (rows of 1 to 300,
    input scales 0.002 to 0.5, a constant row), generated with --rounding tflite against TFLite's
    reference and with --rounding tflm against tflite_micro, byte for byte."""
    cases = [OpCase("LOG_SOFTMAX", [Spec(shape, "int8", scale=s, zero_point=zp)],
                    [Spec(shape, "int8", scale=16 / 256, zero_point=127)])
             for shape, s, zp in [((1, 10), 0.1, 3), ((4, 7), 0.5, -20), ((2, 3, 300), 0.05, 0), ((3, 1), 0.2, 10),
                                  ((2, 16), 0.002, -128)]]
    records = case_records(cases, 3)
    records.append([np.full(tuple(c.inputs[0].shape), 5, np.int8) for c in cases])     # equal values
    check_both(cases, records=records, tflm=False, rounding="tflite")
    check_both(cases, records=records, tflite=False, rounding="tflm")


def _chain_model() -> bytes:
    """x -> ABS -> CUMSUM -> DYNAMIC_UPDATE_SLICE (update u at [1, 2]) -> LOG_SOFTMAX -> y: each
    intermediate dies at the next op, so the planner can take every in-place fact."""
    import flatbuffers
    from opmodels import _schema, add_tensor_t
    s = _schema()
    m = s.ModelT()
    m.version, m.buffers, tensors = 3, [s.BufferT()], []
    shp = (4, 6)
    t = {name: add_tensor_t(s, m, tensors, spec, name) for name, spec in [
        ("x", Spec(shp, "int8", scale=0.05, zero_point=-3)), ("u", Spec((2, 3), "int8", scale=0.05, zero_point=-3)),
        ("abs", Spec(shp, "int8", scale=0.05, zero_point=-128)), ("axis", i32([1])),
        ("cum", Spec(shp, "int8", scale=0.2, zero_point=-5)), ("start", i32([1, 2])),
        ("dus", Spec(shp, "int8", scale=0.2, zero_point=-5)),
        ("y", Spec(shp, "int8", scale=16 / 256, zero_point=127))]}
    ops = [("ABS", ["x"], ["abs"], None), ("CUMSUM", ["abs", "axis"], ["cum"], ("CumsumOptions", {})),
           ("DYNAMIC_UPDATE_SLICE", ["cum", "u", "start"], ["dus"], None), ("LOG_SOFTMAX", ["dus"], ["y"], None)]
    m.operatorCodes, operators = [], []
    for k, (kind, ins, outs, opts) in enumerate(ops):
        code = s.OperatorCodeT()
        code.builtinCode = getattr(s.BuiltinOperator, kind)
        code.deprecatedBuiltinCode = min(code.builtinCode, 127)
        code.version = 1
        m.operatorCodes.append(code)
        o = s.OperatorT()
        o.opcodeIndex = k
        o.inputs = np.asarray([t[n] for n in ins], np.int32)
        o.outputs = np.asarray([t[n] for n in outs], np.int32)
        if opts:
            o.builtinOptionsType = getattr(s.BuiltinOptions, opts[0])
            o.builtinOptions = getattr(s, opts[0] + "T")()
        operators.append(o)
    sg = s.SubGraphT()
    sg.tensors, sg.operators, sg.name = tensors, operators, "main"
    sg.inputs = np.asarray([t["x"], t["u"]], np.int32)
    sg.outputs = np.asarray([t["y"]], np.int32)
    m.subgraphs = [sg]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_in_place_facts_are_taken_and_exact(tmp_path):
    """ABS -> CUMSUM -> DYNAMIC_UPDATE_SLICE -> LOG_SOFTMAX: the planner puts CUMSUM's and
    DYNAMIC_UPDATE_SLICE's outputs on their inputs' bytes (their in-place facts; LOG_SOFTMAX's
    output is the graph output), and the chain stays byte-exact against tflite_micro."""
    from tinyml.codegen.pipeline import compile
    model = _chain_model()
    path = tmp_path / "chain.tflite"
    path.write_bytes(model)
    c = compile(str(path))
    g, plan = c.graph, c.plan
    name = {t.name: t.index for t in g.tensors}
    for a, b in (("abs", "cum"), ("cum", "dus")):
        assert plan.offset_of(name[a]) == plan.offset_of(name[b]), (a, b)
    rng = np.random.default_rng(5)
    records = [[rng.integers(-128, 128, (4, 6)).astype(np.int8), rng.integers(-128, 128, (2, 3)).astype(np.int8)]
               for _ in range(3)]
    got = run_generated(model, records, sanitize=False, rounding="tflm")
    _compare(model, records, got, _tflm(model).run, "tflm")


@pytest.mark.parametrize("case, words", [
    (OpCase("LOG_SOFTMAX", [Spec((2, 5), "int8", scale=0.1)], [Spec((2, 5), "int8", scale=1 / 256, zero_point=-128)]),
     "LOG_SOFTMAX): output quantization"),
    (OpCase("EMBEDDING_LOOKUP", [i32([0, 9]), Spec((4, 3), "int8", scale=0.1, data=np.zeros((4, 3), np.int8))],
            [Spec((2, 3), "int8", scale=0.1)]), "ids outside [0, 4)"),
    (OpCase("GATHER_ND", [Spec((3, 4), "int8", scale=0.1), i32([[2, 4]])], [Spec((1,), "int8", scale=0.1)]),
     "indices outside the params tensor"),
    (OpCase("CUMSUM", [Spec((2, 5), "int8", scale=0.1), Spec((1,), "int32")], [Spec((2, 5), "int8", scale=0.1)]),
     "a non-constant or non-int32 axis"),
    (OpCase("CUMSUM", [Spec((2, 5), "int8", scale=1.0), i32([1])], [Spec((2, 5), "int8", scale=1e-7)]),
     "TFLM requires it below 1"),
])
def test_unsupported_variants_name_op_and_cause(tmp_path, case, words):
    """A variant the kernels do not cover is one UnsupportedOpError line naming the operator, its
    kind and the cause (with a fix), raised at lowering, before any file is written."""
    from tinyml.codegen.pipeline import compile
    from tinyml.errors import UnsupportedOpError
    path = tmp_path / "m.tflite"
    path.write_bytes(multi_op_model([case]))
    with pytest.raises(UnsupportedOpError) as e:
        compile(str(path))
    msg = str(e.value)
    assert words in msg and "operator 0" in msg and "\n" not in msg, msg
    assert os.listdir(tmp_path) == ["m.tflite"]
