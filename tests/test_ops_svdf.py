"""SVDF (integer, with its variable activation state): a parameter sweep over a sequence of
invokes, byte for byte against TFLite's reference interpreter and tflite_micro, each keeping
its state between invokes as the generated C keeps its state block; the state's place in the
plan (outside the arena, counted in SRAM, shown by `plan`).

TF's Keras export does not produce SVDF (it comes from TF's own SVDF layers in the TFLM
keyword-spotting models), so the models are written with TFLite's flatbuffer schema."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from opgraph import OpCase, case_records, multi_op_model
from opmodels import Spec, run_generated
from opmodels import tflm_oracle as _tflm


def svdf_case(rng, batches=1, n_in=8, units=4, rank=2, memory=5, bias=True, input_zp=3, output_zp=-2,
              scales=(0.05, 0.01, 0.02, 0.0005, 0.05)) -> OpCase:
    """int8 input, int8 feature weights, int16 time weights (|w| < 2000: the int32 time sums
    stay in range, where tflite_micro's build and TFLite's agree), int32 bias, int16 state."""
    s_in, s_wf, s_state, s_wt, s_out = scales
    f = units * rank
    wf = rng.integers(-128, 128, (f, n_in)).astype(np.int8)
    wt = rng.integers(-2000, 2000, (f, memory)).astype(np.int16)
    b = Spec((units,), "int32", scale=s_state * s_wt, data=rng.integers(-5000, 5000, units).astype(np.int32))
    ins = [Spec((batches, n_in), "int8", scale=s_in, zero_point=input_zp), Spec((f, n_in), "int8", scale=s_wf, data=wf),
           Spec((f, memory), "int16", scale=s_wt, data=wt), b if bias else None,
           Spec((batches, memory * f), "int16", scale=s_state, variable=True)]
    # TFLite's integer SVDF requires the RELU option and applies none (outputs go below zero point)
    return OpCase("SVDF", ins, [Spec((batches, units), "int8", scale=s_out, zero_point=output_zp)],
                  options=("SVDFOptions", {"rank": rank, "fusedActivationFunction": 1}))


def tflite_sequence(model: bytes, records):
    """TFLite's reference interpreter, one interpreter for the whole sequence (state carried)."""
    from tinyml.codegen.oracle import import_tf, quiet_stderr
    tf = import_tf()
    with quiet_stderr():
        it = tf.lite.Interpreter(model_content=model,
                                 experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
    out = []
    for rec in records:
        for d, x in zip(it.get_input_details(), rec):
            it.set_tensor(d["index"], x)
        it.invoke()
        out.append([it.get_tensor(d["index"]).copy() for d in it.get_output_details()])
    return out


def compare(got, want, what):
    for r, (g_rec, w_rec) in enumerate(zip(got, want)):
        for k, (g, w) in enumerate(zip(g_rec, w_rec)):
            w = np.asarray(w).reshape(g.shape)
            assert g.tobytes() == w.tobytes(), f"{what}: invoke {r} case {k}: {g.ravel()[:8]} vs {w.ravel()[:8]}"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_svdf_sweep_over_a_sequence():
    """6 cases (batch 1/2, rank 1/2/3, memory 1/5/10, 3-20 inputs, with and without bias,
    zero points, a state scale that saturates int16) x 8 consecutive invokes: TFLite's bytes;
    the cases with bias (TFLM requires one) also tflite_micro's, with --rounding tflm."""
    rng = np.random.default_rng(0)
    cases = [svdf_case(rng), svdf_case(rng, batches=2, rank=1, memory=3),
             svdf_case(rng, n_in=20, units=3, rank=3, memory=10, input_zp=-7, output_zp=5),
             svdf_case(rng, units=2, rank=1, memory=1),
             svdf_case(rng, units=5, rank=2, memory=4, scales=(0.05, 0.02, 0.002, 0.004, 0.1)),   # int16 clamp
             svdf_case(rng, n_in=3, units=3, rank=2, memory=6, bias=False)]
    model = multi_op_model(cases)
    records = case_records(cases, 8, seed=1)
    got = run_generated(model, records, sanitize=True)
    want = tflite_sequence(model, records)
    compare(got, want, "tflite")
    assert len({g[0].tobytes() for g in got}) == 8            # the outputs move with the state
    with_bias = cases[:5]
    model_b = multi_op_model(with_bias)
    records_b = case_records(with_bias, 8, seed=2)
    got_b = run_generated(model_b, records_b, sanitize=False, rounding="tflm")
    oracle = _tflm(model_b)
    compare(got_b, [oracle.run(rec) for rec in records_b], "tflm")


def test_svdf_state_is_planned_outside_the_arena(tmp_path):
    """The state tensor is no arena buffer; plan.json and `plan` state its bytes; SRAM counts it;
    the generated model has a state block and <prefix>_reset()."""
    from tinyml.codegen.emit import generate
    rng = np.random.default_rng(0)
    case = svdf_case(rng, batches=1, units=4, rank=2, memory=5)      # state 1 x 40 int16 = 80 B
    path = tmp_path / "svdf.tflite"
    path.write_bytes(multi_op_model([case]))
    gen = generate(str(path), str(tmp_path / "gen"))
    state = next(t.index for t in gen.graph.tensors if t.variable)
    assert state not in gen.plan.tensor_buffer
    assert gen.plan.state_offsets == {state: 0} and gen.plan.state_bytes == 80
    plan = json.loads((tmp_path / "gen" / "plan.json").read_text())
    assert plan["state_bytes"] == 80 and plan["accounting"]["state_bytes"] == 80
    model_c = (tmp_path / "gen" / "model.c").read_text()
    assert "static uint8_t tinyml_state[TINYML_STATE_BYTES]" in model_c and "void tinyml_reset(void)" in model_c
    assert "#define TINYML_STATE_BYTES 80" in (tmp_path / "gen" / "model.h").read_text()
    p = subprocess.run([sys.executable, "-m", "tinyml.cli", "plan", str(path)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    sram = next(ln for ln in p.stdout.splitlines() if ln.startswith("SRAM"))
    assert "+ state 80 B" in sram, p.stdout


def test_svdf_without_variable_state_is_refused(tmp_path):
    case = svdf_case(np.random.default_rng(0))
    case.inputs[4].variable = False          # a plain activation: no value, no state
    case.inputs[4].data = np.zeros(tuple(case.inputs[4].shape), dtype=np.int16)
    path = tmp_path / "svdf.tflite"
    path.write_bytes(multi_op_model([case]))
    p = subprocess.run([sys.executable, "-m", "tinyml.cli", "plan", str(path)], capture_output=True, text=True,
                       timeout=120)
    errs = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert p.returncode != 0 and "Traceback" not in p.stderr and len(errs) == 1, p.stderr
    assert "SVDF" in errs[0] and "variable tensor" in errs[0], errs[0]
