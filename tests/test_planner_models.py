"""Every shared reference model plans to a valid arena (issue 5: planning < 2 s).

Wall-clock time is printed (run with -s), never asserted: CI machines are loaded.
"""
from __future__ import annotations

import glob
import os
import time

import pytest

from tinyml import paths

MODELS = sorted(glob.glob(os.path.join(paths.shared_models(), "*", "*.tflite")))


EXPECTED = {"ad01_int8", "kws_ref_model", "pretrainedResnet_quant", "vww_96_int8", "person_detect",
            "vit_relu_d64x4", "mobilenetv2_a030_80_int8"}


def test_all_seven_shared_models_are_found():
    assert {os.path.basename(m)[:-7] for m in MODELS} == EXPECTED, MODELS


@pytest.mark.parametrize("model", MODELS, ids=lambda m: os.path.basename(m)[:-7])
def test_shared_model_plan_is_valid(model):
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.lower import lower_graph
    from tinyml.memory_planner.plan import check_plan, plan_steps

    graph = import_tflite(model)
    steps, _ = lower_graph(graph)
    t0 = time.perf_counter()
    plan = plan_steps(graph, steps)
    seconds = time.perf_counter() - t0
    print(f"\n{os.path.basename(model)}: planned in {seconds:.3f} s, arena {plan.arena_bytes:,} B, "
          f"lower bound {plan.lower_bound:,} B")
    check_plan(plan)
    assert plan.lower_bound <= plan.arena_bytes
    # every activation tensor the steps touch has a place inside the arena
    for s in steps:
        for t in list(s.inputs) + list(s.outputs):
            if t >= 0 and not graph.t(t).is_const:
                assert 0 <= plan.offset_of(t) and plan.offset_of(t) + graph.t(t).nbytes <= plan.arena_bytes
    # the lower bound is at least the largest single buffer
    assert plan.lower_bound >= max(b.size for b in plan.buffers)
