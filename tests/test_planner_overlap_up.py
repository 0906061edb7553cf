"""Upward overlap (depthwise output over the back of its dying input).

The depthwise kernel runs bottom to top whenever its output starts above its
input; the Overlap fact its lowering states (up_bytes, codegen/ops/rows.py) says how far the output must
end past the input's end. Checked here by forcing that placement (and one
row tighter) into a single-op plan, host-compiling the generated C and
comparing with TensorFlow Lite's reference kernel.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from tinyml.codegen.importer import import_tflite
from tinyml.codegen.lower import lower_graph
from tinyml.memory_planner.plan import check_plan, plan_steps
from opmodels import random_input, run_reference, Spec
from test_ops_conv import dw_model


def _prepare(tmp_path, **kw):
    path = str(tmp_path / "dw.tflite")
    model = dw_model(**kw)
    with open(path, "wb") as f:
        f.write(model)
    g = import_tflite(path)
    steps, ctx = lower_graph(g)
    plan = plan_steps(g, steps)
    return model, g, steps, ctx, plan


def _run_with_offsets(tmp_path, model, g, steps, ctx, plan, off_in, off_out, tag, records, sanitize=True):
    """Generate with the input/output buffers forced to the given offsets; run on the host."""
    from tinyml.codegen.emit import emit
    from tinyml.codegen.pipeline import Compiled, CompileOptions
    from tinyml.codegen.hostbuild import compile_host, run_host
    bi, bo = plan.tensor_buffer[g.inputs[0]], plan.tensor_buffer[g.outputs[0]]
    plan.buffers[bi].offset, plan.buffers[bo].offset = off_in, off_out
    top = max(off_in + plan.buffers[bi].size, off_out + plan.buffers[bo].size)
    for k, b in enumerate(plan.buffers):           # scratch (if any) above both
        if k not in (bi, bo):
            b.offset = (top + 15) // 16 * 16
            top = b.offset + b.size
    plan.arena_bytes = top
    out_dir = str(tmp_path / tag)
    emit(Compiled(g, steps, ctx, plan, CompileOptions(rounding="tflite")), out_dir)
    exe = compile_host(out_dir, sanitize=sanitize)
    blob = b"".join(np.ascontiguousarray(x).tobytes() for x in records)
    n = g.t(g.outputs[0]).nbytes
    raw = run_host(exe, blob, len(records), n, out_dir)
    return [raw[i * n:(i + 1) * n] for i in range(len(records))]


CASES = [
    dict(h=9, w=8, cin=16),                                    # 3x3 stride 1 SAME: two rows
    dict(h=10, w=8, cin=16, stride=(2, 2)),                    # VWW-like stride 2 SAME
    dict(h=9, w=4, cin=16, padding="VALID", kh=3, kw=3),       # VALID
    dict(h=11, w=4, cin=16, dil=(2, 2)),                       # dilated
    dict(h=9, w=6, cin=8, kh=5, kw=5, act="RELU6"),            # 5x5
]


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_depthwise_upward_overlap_is_bit_exact_and_tight(case, tmp_path):
    model, g, steps, ctx, plan = _prepare(tmp_path, **case)
    bi, bo = plan.tensor_buffer[g.inputs[0]], plan.tensor_buffer[g.outputs[0]]
    assert (bo, bi) in plan.overlaps and (bo, bi) in plan.overlaps_up
    d_up = plan.overlaps_up[(bo, bi)]
    x, y = g.t(g.inputs[0]), g.t(g.outputs[0])
    in_row, out_row = x.shape[2] * x.shape[3], y.shape[2] * y.shape[3]
    assert d_up % 16 == 0 and d_up > 0
    rng = np.random.default_rng(5)
    records = [random_input(Spec(tuple(x.shape)), rng) for _ in range(3)]
    want = [np.asarray(run_reference(model, [r])[0]).astype(np.int8).tobytes() for r in records]

    # Tight: the output buffer ends exactly d_up bytes past the input buffer's end.
    sin, sout = plan.buffers[bi].size, plan.buffers[bo].size
    base = 16 * ((sout + 15) // 16 + 2)
    off_out = base + sin + d_up - sout
    assert off_out < base + sin                      # the buffers really overlap in bytes
    plan.buffers[bi].offset, plan.buffers[bo].offset = base, off_out
    plan.arena_bytes = max(base + sin, off_out + sout) + 64
    check_plan(plan)
    got = _run_with_offsets(tmp_path, model, g, steps, ctx, plan, base, off_out, "tight", records)
    assert got == want, "upward overlap at the planner's allowance changed the result"

    # One input row lower than allowed: check_plan must refuse it, and the
    # kernel really does clobber input it still needs (the rule is not vacuous).
    low = off_out - (in_row + 15) // 16 * 16
    plan.buffers[bo].offset = low
    plan.arena_bytes = max(base + sin, low + sout) + 64
    with pytest.raises(AssertionError):
        check_plan(plan)
    got_bad = _run_with_offsets(tmp_path, model, g, steps, ctx, plan, base, low, "low", records, sanitize=False)
    assert got_bad != want


def test_kws_and_vww_chains_reach_the_lower_bound():
    """Down (1x1 conv) / up (depthwise) alternation: the planned arena equals the bound."""
    from tinyml import paths
    for rel in ("mlperf-tiny/kws_ref_model.tflite", "mlperf-tiny/vww_96_int8.tflite"):
        g = import_tflite(os.path.join(paths.shared_models(), rel))
        steps, _ = lower_graph(g)
        plan = plan_steps(g, steps)
        check_plan(plan)
        assert plan.overlaps_up
        assert plan.arena_bytes <= 1.10 * plan.lower_bound, (rel, plan.arena_bytes, plan.lower_bound)
        # at least one depthwise output was placed over the back of its input
        assert any(plan.buffers[o].offset > plan.buffers[i].offset
                   and plan.buffers[o].offset < plan.buffers[i].offset + plan.buffers[i].size
                   for o, i in plan.overlaps_up)


def test_lower_bound_credits_the_smaller_allowance():
    from tinyml.memory_planner.lifetimes import Buffer, lower_bound
    a = Buffer("in", 1000, 0, 1, [0])
    b = Buffer("out", 1000, 1, 2, [1])
    assert lower_bound([a, b], 3) == 2000
    assert lower_bound([a, b], 3, {(1, 0): 320}) == 1320
    assert lower_bound([a, b], 3, {(1, 0): 320}, {(1, 0): 160}) == 1160


# ---- placement / bound properties with both allowances ---------------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


def _valid(bufs, ov, up) -> bool:
    """Independent check, step by step: live pairs are disjoint or within an allowance."""
    for i, a in enumerate(bufs):
        for j, b in enumerate(bufs):
            if j <= i or not (a.first <= b.last and b.first <= a.last):
                continue
            if a.offset + a.size <= b.offset or b.offset + b.size <= a.offset:
                continue
            ok = False
            for (o, n) in ((i, j), (j, i)):
                bo, bn = bufs[o], bufs[n]
                if (o, n) in ov and bo.offset <= bn.offset - ov[(o, n)]:
                    ok = True
                if (o, n) in up and bo.offset + bo.size >= bn.offset + bn.size + up[(o, n)]:
                    ok = True
            if not ok:
                return False
    return True


def _chain(sizes, deltas, ups):
    from tinyml.memory_planner.lifetimes import Buffer
    bufs = [Buffer(f"b{k}", 16 * s, k, k + 1, [k]) for k, s in enumerate(sizes)]
    ov = {(k + 1, k): 16 * d for k, d in enumerate(deltas[:len(sizes) - 1])}
    up = {(k + 1, k): 16 * u for k, u in enumerate(ups[:len(sizes) - 1]) if u is not None}
    return bufs, ov, up


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 40), min_size=2, max_size=12),
       st.lists(st.integers(0, 20), min_size=12, max_size=12),
       st.lists(st.one_of(st.none(), st.integers(0, 20)), min_size=12, max_size=12))
def test_placements_with_upward_allowances_are_valid(sizes, deltas, ups):
    from tinyml.memory_planner.lifetimes import lower_bound
    from tinyml.memory_planner.placement import best_of_orders, greedy_by_size
    for place in (best_of_orders, greedy_by_size):
        bufs, ov, up = _chain(sizes, deltas, ups)
        arena = place(bufs, 16, ov, up)
        assert _valid(bufs, ov, up)
        assert all(b.offset >= 0 and b.offset + b.size <= arena for b in bufs)
        assert arena >= lower_bound(bufs, len(bufs) + 1, ov, up)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 6), min_size=2, max_size=3),
       st.lists(st.integers(0, 6), min_size=3, max_size=3),
       st.lists(st.one_of(st.none(), st.integers(0, 6)), min_size=3, max_size=3))
def test_lower_bound_is_a_true_bound_exhaustively(sizes, deltas, ups):
    """Tiny chains: the smallest valid arena over every placement on the 16-byte grid >= the bound."""
    import itertools
    from tinyml.memory_planner.lifetimes import lower_bound
    bufs, ov, up = _chain(sizes, deltas, ups)
    lb = lower_bound(bufs, len(bufs) + 1, ov, up)
    span = sum(b.size for b in bufs)
    best = None
    for offs in itertools.product(range(0, span + 1, 16), repeat=len(bufs)):
        for b, o in zip(bufs, offs):
            b.offset = o
        top = max(o + b.size for b, o in zip(bufs, offs))
        if (best is None or top < best) and _valid(bufs, ov, up):
            best = top
    assert best is not None and best >= lb
