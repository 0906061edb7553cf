"""Planner v0: lifetimes, aliasing, non-overlap, lower bound, TFLM comparison."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tinyml.codegen.importer import import_tflite
from tinyml.ir import Graph, Op, Quant, Tensor
from tinyml.codegen.lower import lower_graph
from tinyml.steps import Step
from tinyml.memory_planner.lifetimes import Buffer, lower_bound
from tinyml.memory_planner.placement import greedy_by_size
from tinyml.memory_planner.plan import check_plan, plan_steps
from tinyml import paths

AD01 = os.path.join(paths.shared_models(), "mlperf-tiny", "ad01_int8.tflite")


def _chain_graph(sizes):
    """t0 -> op0 -> t1 -> op1 -> ... with the given byte sizes (int8 vectors)."""
    q = Quant(np.array([0.1], np.float32), np.array([0]))
    tensors = [Tensor(i, f"t{i}", (1, n), "int8", q) for i, n in enumerate(sizes)]
    ops = [Op(i, "RELU", [i], [i + 1]) for i in range(len(sizes) - 1)]
    return Graph("chain", tensors, ops, [0], [len(sizes) - 1])


def _steps(g):
    return [Step(index=op.index, kind=op.kind, inputs=op.inputs, outputs=op.outputs) for op in g.ops]


def test_chain_reuses_memory():
    g = _chain_graph([1000, 2000, 1000, 2000, 16])
    plan = plan_steps(g, _steps(g))
    # Two neighbours live at once: max pair is 1008+2000 (16-byte aligned).
    assert plan.lower_bound == 1008 + 2000
    assert plan.arena_bytes == plan.lower_bound
    assert plan.offset_of(1) != plan.offset_of(2) or True
    live = [(plan.offset_of(t), plan.offset_of(t) + g.t(t).nbytes) for t in (1, 2)]
    assert live[0][1] <= live[1][0] or live[1][1] <= live[0][0]


def test_alias_shares_bytes_and_extends_lifetime():
    g = _chain_graph([64, 64, 64, 64])
    steps = _steps(g)
    steps[1] = Step(index=1, kind="RESHAPE", inputs=[1], outputs=[2], alias_of=1)
    plan = plan_steps(g, steps)
    assert plan.offset_of(1) == plan.offset_of(2)
    b = plan.buffers[plan.tensor_buffer[1]]
    assert (b.first, b.last) == (0, 2)


def test_scratch_is_live_only_in_its_step():
    g = _chain_graph([64, 64, 64])
    steps = _steps(g)
    steps[0].scratch_bytes = 100
    plan = plan_steps(g, steps)
    sb = plan.buffers[plan.scratch_buffer[0]]
    assert (sb.first, sb.last, sb.size) == (0, 0, 112)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1, 5000), st.integers(0, 30), st.integers(0, 10)), min_size=1, max_size=40))
def test_greedy_never_overlaps_live_buffers(specs):
    bufs = [Buffer(f"b{i}", (size + 15) // 16 * 16, first, first + length, [i])
            for i, (size, first, length) in enumerate(specs)]
    arena = greedy_by_size(bufs, 16)
    for i, a in enumerate(bufs):
        for b in bufs[i + 1:]:
            if a.first <= b.last and b.first <= a.last:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
    assert arena >= lower_bound(bufs, 50)


def test_ad01_plan_matches_tflm_head():
    """The greedy plan of the FC autoencoder equals TFLM's planned head (768 B)."""
    g = import_tflite(AD01)
    steps, _ = lower_graph(g)
    plan = plan_steps(g, steps)
    check_plan(plan)
    assert plan.arena_bytes == 768 and plan.lower_bound == 768


@pytest.mark.timeout(180)
def test_tflm_baseline_measured():
    from tinyml.memory_planner.tflm import tflm_arena
    a = tflm_arena(AD01)
    assert a is not None and a.total == a.head + a.tail and a.head == 768


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1, 5000), st.integers(0, 30), st.integers(0, 10)), min_size=1, max_size=40))
def test_best_policy_valid_and_never_worse_than_greedy(specs):
    from tinyml.memory_planner.placement import best_of_orders
    mk = lambda: [Buffer(f"b{i}", (size + 15) // 16 * 16, first, first + length, [i])
                  for i, (size, first, length) in enumerate(specs)]
    g, b = mk(), mk()
    ga, ba = greedy_by_size(g, 16), best_of_orders(b, 16)
    assert ba <= ga
    for i, x in enumerate(b):
        for y in b[i + 1:]:
            if x.first <= y.last and y.first <= x.last:
                assert x.offset + x.size <= y.offset or y.offset + y.size <= x.offset


def test_inplace_takes_over_dying_input():
    g = _chain_graph([256, 256, 256, 256])
    steps = _steps(g)
    for s in steps:
        s.inplace_ok = [(s.inputs[0], s.outputs[0])]
    plan = plan_steps(g, steps)
    assert len({plan.offset_of(t) for t in range(4)}) == 1 and plan.arena_bytes == 256
    plan2 = plan_steps(g, steps, inplace=False)
    assert plan2.arena_bytes == 512


def test_inplace_refused_when_input_read_later():
    g = _chain_graph([256, 256, 256])
    g.ops.append(Op(2, "ADD", [0, 2], [2]))  # t0 read again at step 2
    steps = _steps(g)
    steps[0].inplace_ok = [(0, 1)]
    steps.append(Step(index=2, kind="ADD", inputs=[0, 2], outputs=[]))
    plan = plan_steps(g, steps)
    assert plan.offset_of(0) != plan.offset_of(1)


def test_overlap_delta_conv_geometry():
    """1x1 stride-1 conv with equal channels: output may start one row before the input."""
    from tinyml.codegen.ops.rows import row_overlap
    q = Quant(np.array([0.1], np.float32), np.array([0]))
    x = Tensor(0, "x", (1, 8, 8, 16), "int8", q)
    w = Tensor(1, "w", (16, 1, 1, 16), "int8", q, data=np.zeros((16, 1, 1, 16), np.int8))
    y = Tensor(2, "y", (1, 8, 8, 16), "int8", q)
    op = Op(0, "CONV_2D", [0, 1, -1], [2])
    g = Graph("g", [x, w, y], [op], [0], [2])
    ov = row_overlap(g, op, k_h=1, stride_h=1, dilation_h=1, pad_top=0)
    assert (ov.input, ov.output, ov.down_bytes, ov.up_bytes) == (0, 0, 8 * 16, None)
    # 3x3 SAME: row r needs input row r-1, so two rows of slack.
    w3 = Tensor(1, "w", (16, 3, 3, 16), "int8", q, data=np.zeros((16, 3, 3, 16), np.int8))
    g.tensors[1] = w3
    assert row_overlap(g, op, k_h=3, stride_h=1, dilation_h=1, pad_top=1).down_bytes == 2 * 8 * 16


def test_lowerings_state_overlap_facts_and_planner_reads_only_them():
    """The conv lowering states the fact on its Step; a step without it gets no allowance."""
    import dataclasses
    g = import_tflite(os.path.join(paths.shared_models(), "mlperf-tiny", "kws_ref_model.tflite"))
    steps, _ = lower_graph(g)
    kinds = {s.kind for s in steps if s.overlap is not None}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D"} <= kinds
    assert all((s.overlap.up_bytes is not None) == (s.kind == "DEPTHWISE_CONV_2D")
               for s in steps if s.overlap is not None)
    with_facts = plan_steps(g, steps)
    without = plan_steps(g, [dataclasses.replace(s, overlap=None) for s in steps])
    assert with_facts.overlaps and not without.overlaps and not without.overlaps_up
    assert without.arena_bytes > with_facts.arena_bytes


def test_overlap_plans_smaller_and_respects_delta():
    """KWS: overlapping plans beat lifetimes-only plans; every allowance is honoured."""
    g = import_tflite(os.path.join(paths.shared_models(), "mlperf-tiny", "kws_ref_model.tflite"))
    steps, _ = lower_graph(g)
    with_ov = plan_steps(g, steps)
    without = plan_steps(g, steps, overlap=False)
    assert with_ov.overlaps and with_ov.arena_bytes < without.arena_bytes
    for (o, i), d in with_ov.overlaps.items():
        bo, bi = with_ov.buffers[o], with_ov.buffers[i]
        up = with_ov.overlaps_up.get((o, i))      # depthwise may also sit over the input's back
        assert (bo.offset <= bi.offset - d or bo.offset >= bi.offset + bi.size or bo.offset + bo.size <= bi.offset
                or (up is not None and bo.offset + bo.size >= bi.offset + bi.size + up))
    assert with_ov.lower_bound <= with_ov.arena_bytes
