"""UNIDIRECTIONAL_SEQUENCE_LSTM (integer 8x8->16) from the standard Keras 2 export
(`tf_keras.Input(batch_size=1)`, `tf_keras.layers.LSTM`, TFLiteConverter.from_keras_model,
optimizations DEFAULT, a representative dataset, TFLITE_BUILTINS_INT8, int8 in/out), byte for
byte against TFLite's reference interpreter over sequences of invokes (the output and cell
state persist between invokes, in TFLite and in the generated C), with `reset`; against
tflite_micro, whose LSTM differs (its own int16 sigmoid/tanh); the state's place in the plan.

One converted model holds the whole sweep (one conversion): four independent branches, five
LSTMs (units 4..32, input depth 3..16, 1..8 time steps, return_sequences true and false, an
input whose zero point is -128, two stacked LSTMs followed by Dense)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from keras_convert import standard_int8, write
from opgraph import OpCase, case_records, multi_op_model
from opmodels import Spec, run_generated, tflm_oracle
from test_ops_svdf import compare, tflite_sequence

# branch: (steps, depth, [LSTM units...], return_sequences of the last LSTM, Dense units or 0, data range)
BRANCHES = [
    (1, 3, [4], True, 0, (-1.0, 1.0)),
    (8, 5, [32], False, 0, (-1.0, 1.0)),
    (6, 4, [16, 8], False, 3, (0.0, 3.0)),     # two stacked LSTMs, then Dense; input zero point -128
    (4, 16, [12], True, 0, (-2.0, 2.0)),
]


def _convert(model, ranges, path: str) -> str:
    rng = np.random.default_rng(0)
    named = [(i.name.split(":")[0], tuple(int(d) for d in i.shape)) for i in model.inputs]

    def rep():                    # by input name: the converter's input order is its own
        for _ in range(24):
            yield {n: rng.uniform(lo, hi, size=s).astype(np.float32) for (n, s), (lo, hi) in zip(named, ranges)}
    return write(standard_int8(model, rep), path)


def sweep_model(path: str) -> str:
    import tf_keras
    tf_keras.utils.set_random_seed(0)
    inputs, outputs = [], []
    for b, (steps, depth, units, ret, dense, _) in enumerate(BRANCHES):
        # names that sort in branch order: the converter orders the inputs by name
        inp = tf_keras.Input((steps, depth), batch_size=1, name=f"b{b}")
        x = inp
        for k, u in enumerate(units):
            x = tf_keras.layers.LSTM(u, return_sequences=ret if k == len(units) - 1 else True)(x)
        if dense:
            x = tf_keras.layers.Dense(dense)(x)
        inputs.append(inp)
        outputs.append(x)
    return _convert(tf_keras.Model(inputs, outputs), [b[5] for b in BRANCHES], path)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> str:
    return sweep_model(str(tmp_path_factory.mktemp("lstm") / "lstm_sweep.tflite"))


def _records(path: str, count: int, seed: int) -> list[list[np.ndarray]]:
    """Random int8 inputs over the whole range, in the graph's input order."""
    from tinyml.codegen.importer import import_tflite
    g = import_tflite(path)
    rng = np.random.default_rng(seed)
    return [[rng.integers(-128, 128, g.t(i).shape).astype(np.int8) for i in g.inputs] for _ in range(count)]


def _run_c(path: str, records, work: str, rounding: str = "tflite", reset_every: int = 0):
    from tinyml.codegen.emit import generate
    from tinyml.codegen.hostbuild import compile_host, run_host
    gen = generate(path, os.path.join(work, "gen"), rounding=rounding)
    g = gen.graph
    exe = compile_host(gen.out_dir, sanitize=False)
    blob = b"".join(np.ascontiguousarray(x).tobytes() for rec in records for x in rec)
    sizes = [g.t(o).nbytes for o in g.outputs]
    env = {"TINYML_RESET_EVERY": str(reset_every)} if reset_every else None
    raw = run_host(exe, blob, len(records), sum(sizes), work, env=env)
    out, off = [], 0
    for _ in records:
        rec = []
        for o, size in zip(g.outputs, sizes):
            rec.append(np.frombuffer(raw[off:off + size], dtype=np.int8).reshape(g.t(o).shape))
            off += size
        out.append(rec)
    return gen, out


def lstm_case(rng, batches=1, steps=3, n_input=4, n_cell=6, time_major=False, input_zp=3, state_zp=-5,
              cell_pow=-11, clip=0.0, scales=(0.02, 0.006, 0.008, 0.01), cifg=False, peephole=False,
              n_proj=0, proj_bias=True, proj_clip=0.0, hidden=(0.004, 2), own_hidden=False) -> OpCase:
    """An integer LSTM written with TFLite's schema: what the converter writes for Keras, in
    shapes and variants it does not produce (batch > 1, time major, chosen zero points and
    cell scales, CIFG, peephole weights (int16), a projection to `n_proj` outputs; then the
    hidden intermediate has its own scale and zero point `hidden`, as with `own_hidden`)."""
    s_in, s_wx, s_wh, s_h = scales
    n_out = n_proj or n_cell
    x_shape = (steps, batches, n_input) if time_major else (batches, steps, n_input)
    y_shape = (steps, batches, n_out) if time_major else (batches, steps, n_out)
    wx = [Spec((n_cell, n_input), scale=s_wx * (1 + g / 8), data=rng.integers(-127, 128, (n_cell, n_input)))
          for g in range(4)]
    wh = [Spec((n_cell, n_out), scale=s_wh * (1 + g / 8), data=rng.integers(-127, 128, (n_cell, n_out)))
          for g in range(4)]
    bias = [Spec((n_cell,), "int32", scale=s_in * s_wx, data=rng.integers(-3000, 3000, n_cell)) for _ in range(4)]
    peep = [Spec((n_cell,), "int16", scale=2.0 ** -14 * (1 + g / 4), data=rng.integers(-20000, 20000, n_cell))
            if peephole else None for g in range(3)]
    if cifg:
        wx[0] = wh[0] = bias[0] = peep[0] = None
    proj = [None, None]
    if n_proj:
        proj = [Spec((n_proj, n_cell), scale=0.006, data=rng.integers(-127, 128, (n_proj, n_cell))),
                Spec((n_proj,), "int32", scale=0.006 * hidden[0], data=rng.integers(-3000, 3000, n_proj))
                if proj_bias else None]
    ins = [Spec(x_shape, scale=s_in, zero_point=input_zp), *wx, *wh, *peep, *bias, *proj,
           Spec((batches, n_out), scale=s_h, zero_point=state_zp, variable=True),
           Spec((batches, n_cell), "int16", scale=2.0 ** cell_pow, variable=True), None, None, None, None]
    h_scale, h_zp = hidden if n_proj or own_hidden else (s_h, state_zp)
    inter = [Spec((0,), "float32") for _ in range(4)] + [Spec((0,), scale=h_scale, zero_point=h_zp)]
    return OpCase("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [Spec(y_shape, scale=s_h, zero_point=state_zp)],
                  options=("UnidirectionalSequenceLSTMOptions",
                           {"fusedActivationFunction": 4, "cellClip": clip, "projClip": proj_clip,
                            "timeMajor": time_major}),
                  intermediates=inter)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_lstm_schema_sweep_batch_time_major_clip_cifg_peephole_projection(tmp_path):
    """11 hand-written LSTMs x 5 consecutive invokes, byte for byte as TFLite's reference: batch
    2 batch-major and time-major, a clipping cell (clip 0.3 at scale 2^-11), cells at 2^-15 and
    2^-9, one time step, one input feature, zero points 3 / -5 / -128 / 0; CIFG, peephole
    (with a cell clip, and with CIFG), projection to fewer and to more outputs than cells
    (with bias; without bias, with a projection clip and peephole); a hidden intermediate
    quantized unlike the output state without projection."""
    rng = np.random.default_rng(0)
    cases = [lstm_case(rng, batches=2, steps=3),
             lstm_case(rng, batches=2, steps=4, n_input=2, n_cell=5, time_major=True, input_zp=-128, state_zp=7),
             lstm_case(rng, steps=5, n_cell=8, clip=0.3),
             lstm_case(rng, steps=1, n_input=1, n_cell=3, cell_pow=-15, input_zp=0, state_zp=0),
             lstm_case(rng, steps=4, n_input=6, n_cell=4, cell_pow=-9, scales=(0.05, 0.01, 0.02, 0.02)),
             lstm_case(rng, steps=3, cifg=True),
             lstm_case(rng, batches=2, steps=3, peephole=True, clip=0.5),
             lstm_case(rng, steps=3, cifg=True, peephole=True, cell_pow=-13),
             lstm_case(rng, batches=2, steps=3, n_cell=7, n_proj=4),
             lstm_case(rng, steps=4, n_cell=5, n_proj=6, proj_bias=False, proj_clip=0.3, peephole=True),
             lstm_case(rng, steps=3, own_hidden=True, hidden=(0.01, 3))]
    model = multi_op_model(cases)
    records = case_records(cases, 5, seed=1)
    got = run_generated(model, records, sanitize=True)
    compare(got, tflite_sequence(model, records), "tflite")
    for k in range(len(cases)):
        assert len({rec[k].tobytes() for rec in got}) > 1


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_lstm_sweep_over_a_sequence_matches_tflite(sweep, tmp_path):
    """5 fused LSTMs (4 branches, one stacked) x 6 consecutive invokes: every output byte as
    TFLite's reference interpreter, whose state carries between invokes as ours does."""
    from tinyml.codegen.importer import import_tflite
    g = import_tflite(sweep)
    lstms = [op for op in g.ops if op.kind == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    assert len(lstms) == 5
    zps = {g.t(op.inputs[0]).quant.zp for op in lstms}
    assert -128 in zps and len(zps) >= 2                          # an input zero point other than ~0
    assert all(len(op.intermediates) == 5 for op in lstms)
    records = _records(sweep, 6, seed=1)
    _, got = _run_c(sweep, records, str(tmp_path))
    want = tflite_sequence(open(sweep, "rb").read(), records)
    compare(got, want, "tflite")
    for k in range(len(g.outputs)):                               # the outputs move with the state
        assert len({rec[k].tobytes() for rec in got}) > 1
    # the same file with cell clip 0.5 (the converter writes 10, beyond every int16 cell range)
    clipped = tmp_path / "clipped.tflite"
    clipped.write_bytes(_with_cell_clip(open(sweep, "rb").read(), 0.5))
    _, got_c = _run_c(str(clipped), records, str(tmp_path / "clip"))
    compare(got_c, tflite_sequence(clipped.read_bytes(), records), "tflite, cell clip 0.5")
    assert any(a.tobytes() != b.tobytes() for r, rc in zip(got, got_c) for a, b in zip(r, rc))


def _with_cell_clip(model: bytes, clip: float) -> bytes:
    import flatbuffers

    from opmodels import _schema
    s = _schema()
    m = s.ModelT.InitFromPackedBuf(model, 0)
    for op in m.subgraphs[0].operators:
        if len(op.inputs) == 24:
            op.builtinOptions.cellClip = clip
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_lstm_reset_starts_a_new_sequence(sweep, tmp_path):
    """Three sequences of three invokes with <prefix>_reset() between them (the host harness's
    TINYML_RESET_EVERY): TFLite's bytes with reset_all_variables() at the same places (int8
    output state back to its zero point, cell state to 0); the same sequence twice gives the
    same bytes after a reset and different ones without."""
    from tinyml.codegen.oracle import import_tf, quiet_stderr
    tf = import_tf()
    seq = _records(sweep, 3, seed=2)
    records = seq + _records(sweep, 3, seed=3) + seq
    _, got = _run_c(sweep, records, str(tmp_path), reset_every=3)
    with quiet_stderr():
        it = tf.lite.Interpreter(model_path=sweep,
                                 experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
    want = []
    for n, rec in enumerate(records):
        if n and n % 3 == 0:
            it.reset_all_variables()
        for d, x in zip(it.get_input_details(), rec):
            it.set_tensor(d["index"], x)
        it.invoke()
        want.append([it.get_tensor(d["index"]).copy() for d in it.get_output_details()])
    compare(got, want, "tflite with resets")
    assert all(a.tobytes() == b.tobytes() for a, b in zip(got[0], got[6]))
    _, carried = _run_c(sweep, seq + seq, str(tmp_path / "carried"))
    assert any(a.tobytes() != b.tobytes() for a, b in zip(carried[0], carried[3]))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_lstm_against_tflite_micro(sweep, tmp_path):
    """tflite_micro runs the model with its own integer LSTM (int16 LUT sigmoid/tanh, element-
    wise Mul); the generated C follows TFLite's reference (also with --rounding tflm), so
    against TFLM bytes differ (measured, printed): by one LSB in 22 of 330 bytes of the
    outputs whose cells have 2^-15..2^-9 scales; everywhere (up to 191) on the output of the
    LSTM the converter gave a 2^-16 cell scale, where TFLite's ApplyTanh (0..6 integer bits)
    does nothing and TFLM's Tanh shifts the cell right and applies tanh."""
    records = _records(sweep, 6, seed=4)
    _, got = _run_c(sweep, records, str(tmp_path), rounding="tflm")
    oracle = tflm_oracle(open(sweep, "rb").read())
    want = [oracle.run(rec) for rec in records]
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.ops.lstm import checked_log2
    g = import_tflite(sweep)
    rows = []
    for k, o in enumerate(g.outputs):
        d = np.concatenate([(rec_g[k].astype(np.int32) - np.asarray(rec_w[k]).reshape(rec_g[k].shape)).ravel()
                            for rec_g, rec_w in zip(got, want)])
        rows.append((k, g.t(o).shape, int(np.count_nonzero(d)), d.size, int(np.abs(d).max())))
    print("\nlstm sweep vs tflite_micro (output, shape, differing bytes, bytes, max |diff|):", rows)
    producer = {o: op for op in g.ops for o in op.outputs}

    def cell_scales(t: int) -> list[int]:
        """Cell scales of the LSTMs upstream of tensor t (the converter orders outputs its own way)."""
        op = producer.get(t)
        if op is None:
            return []
        own = [checked_log2(g.t(op.inputs[19]).quant.s)] if op.kind == "UNIDIRECTIONAL_SEQUENCE_LSTM" else []
        return own + cell_scales(op.inputs[0])
    odd = [k for k, o in enumerate(g.outputs) if any(not -15 <= c <= -9 for c in cell_scales(o))]
    assert len(odd) == 1 and cell_scales(g.outputs[odd[0]]) == [-16], [cell_scales(o) for o in g.outputs]
    # the output of the 2^-16 cell: TFLite's tanh is a no-op there, TFLM's is not
    assert rows[odd[0]][2] > rows[odd[0]][3] // 2 and rows[odd[0]][4] > 16
    # the others: TFLM's int16 LUT activations move a few bytes by one LSB
    rest = [r for r in rows if r[0] != odd[0]]
    assert all(r[4] <= 1 for r in rest) and 0 < sum(r[2] for r in rest) < sum(r[3] for r in rest) // 5


@pytest.mark.slow
def test_lstm_state_is_planned_outside_the_arena(sweep, tmp_path):
    """Each LSTM's output state (int8) and cell state (int16) are state-block tensors, not arena
    buffers; the block starts with every int8 state at its zero point (a GNU range initializer)
    and <prefix>_reset() writes them again."""
    from tinyml.codegen.emit import generate
    gen = generate(sweep, str(tmp_path / "gen"))
    g = gen.graph
    states = [t.index for t in g.tensors if t.variable]
    assert len(states) == 10 and not set(states) & set(gen.plan.tensor_buffer)
    assert set(gen.plan.state_offsets) == set(states)
    raw = sum(g.t(t).nbytes for t in states)
    assert raw <= gen.plan.state_bytes < raw + 16 * len(states)
    model_c = (tmp_path / "gen" / "model.c").read_text()
    int8_nonzero = [t for t in states if g.t(t).dtype == "int8" and g.t(t).quant.zp != 0]
    assert int8_nonzero
    for t in int8_nonzero:
        off, n, zp = gen.plan.state_offsets[t], g.t(t).nbytes, g.t(t).quant.zp & 0xFF
        assert f"[{off} ... {off + n - 1}] = {zp}u,   /* t{t} */" in model_c
        assert f"memset(tinyml_state + {off}, {zp}, {n});   /* t{t} */" in model_c


@pytest.mark.slow
def test_lstm_without_variable_state_is_refused(sweep, tmp_path):
    """A file whose output state is not a variable tensor: one error line naming the op and the
    cause, non-zero exit, no traceback."""
    import flatbuffers

    from opmodels import _schema
    s = _schema()
    m = s.ModelT.InitFromPackedBuf(open(sweep, "rb").read(), 0)
    sg = m.subgraphs[0]
    op = next(o for o in sg.operators if len(o.inputs) == 24)
    sg.tensors[op.inputs[18]].isVariable = False
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path = tmp_path / "bad.tflite"
    path.write_bytes(bytes(b.Output()))
    p = subprocess.run([sys.executable, "-m", "tinyml.cli", "plan", str(path)], capture_output=True, text=True,
                       timeout=120)
    errs = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert p.returncode != 0 and "Traceback" not in p.stderr and len(errs) == 1, p.stderr
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in errs[0] and "variable" in errs[0], errs[0]
