"""Scratch facts once, in C, checked.

Every kernel that takes scratch has a `<kernel>_scratch_size()` in its public
header, and receives its scratch as a `tinyml_ctx` (pointer and size). The
Python lowerings still state the bytes the planner reserves
(Step.scratch_bytes). Here the generated model.c is compiled on the host with
-DTINYML_CHECK_SCRATCH, which adds `tinyml_scratch_check()`: for every step
that takes scratch it calls the kernel's own size function on that step's
params and reports it beside the planned bytes. We assert C need <= planned
for every step of single-op sweep models and of every shared reference model,
that every kernel with a size function is exercised, that tinyml_run() then
succeeds with the kernels' own checks enabled, and that planning one byte less
is caught (by the table and by the kernel at run time).
"""
from __future__ import annotations

import glob
import os
import re
import subprocess

import numpy as np
import pytest

from opmodels import Spec, single_op_model
from tinyml import paths

SHARED = paths.shared_models()

# Kernels with a *_scratch_size() function (tinyml/*.h); checked against the headers below.
SCRATCH_KERNELS = {
    "tinyml_conv2d_packed_s8",
    "tinyml_batch_matmul_s8",
    "tinyml_fused_attention_s8",
    "tinyml_fused_mlp_s8",
    "tinyml_fused_resblock_s8",
    "tinyml_fused_invres_s8",
    "tinyml_fused_stage_s8",
    "tinyml_svdf_s8",
    "tinyml_lstm_s8",
    "tinyml_detection_postprocess_f32",
}

MAIN = r"""
#include <stdio.h>
#include <string.h>
#include "model.h"

#if TINYML_STREAM_INPUT
int32_t tinyml_read_input_rows(int8_t *dst, int32_t row0, int32_t nrows)
{
    (void)row0;
    memset(dst, 0, (size_t)nrows * TINYML_STREAM_ROW_BYTES);
    return 0;
}
#endif

int main(void)
{
    static tinyml_scratch_fact_t facts[TINYML_NUM_SCRATCH_STEPS + 1];
    const int short_steps = tinyml_scratch_check(facts);
    for (int i = 0; facts[i].op >= 0; ++i) {
        printf("fact %d %s %d %d\n", (int)facts[i].op, facts[i].kernel, (int)facts[i].planned,
               (int)facts[i].needed);
    }
    printf("short %d\n", short_steps);
#if !TINYML_STREAM_INPUT   /* streamed: the input buffer is one stripe, filled by the model */
    for (int i = 0; i < TINYML_NUM_INPUTS; ++i) {
        memset(tinyml_input_ptr(i), 0, tinyml_input_info[i].bytes);
    }
#endif
    printf("run %d\n", tinyml_run());
    return 0;
}
"""


def scratch_kernels_in_headers() -> set[str]:
    names = set()
    for h in glob.glob(os.path.join(paths.KERNELS, "include", "tinyml", "*.h")):
        with open(h) as f:
            names |= set(re.findall(r"^int32_t (tinyml_\w+)_scratch_size\(", f.read(), re.M))
    return names


def check_generated(gen_dir: str) -> tuple[list[tuple[int, str, int, int]], int, int]:
    """Compile gen_dir with -DTINYML_CHECK_SCRATCH; (facts, steps planned short, tinyml_run status)."""
    main = os.path.join(gen_dir, "scratch_main.c")
    with open(main, "w") as f:
        f.write(MAIN)
    exe = os.path.join(gen_dir, "scratch_check")
    srcs = [os.path.join(gen_dir, "model.c"), os.path.join(gen_dir, "weights.c"), main]
    srcs += sorted(glob.glob(os.path.join(gen_dir, "kernels", "src", "*.c")))
    cc = subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Werror", "-DTINYML_CHECK_SCRATCH",
                         "-I", gen_dir, "-I", os.path.join(gen_dir, "kernels", "include"), *srcs,
                         "-o", exe, "-lm"], capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr[:2000]
    run = subprocess.run([exe], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    facts, short, status = [], None, None
    for line in run.stdout.splitlines():
        w = line.split()
        if w[0] == "fact":
            facts.append((int(w[1]), w[2], int(w[3]), int(w[4])))
        elif w[0] == "short":
            short = int(w[1])
        elif w[0] == "run":
            status = int(w[1])
    return facts, short, status


def generate_steps(model_path: str, out_dir: str, edit=None, stream_input: bool = False):
    """generate() with a hook that may change the lowered steps before planning."""
    from tinyml.codegen.emit import emit
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.pipeline import Compiled, CompileOptions, choose_stage
    from tinyml.codegen.lower import lower_graph
    from tinyml.memory_planner.plan import plan_steps
    graph = import_tflite(model_path)
    steps, ctx = lower_graph(graph)
    steps, _ = choose_stage(graph, steps, ctx, CompileOptions(stream_input=stream_input))   # FUSED_STAGE
    stream = None
    if stream_input:
        from tinyml.codegen.stream import check_stream_input, stream_steps
        stream = check_stream_input(graph, steps)
        steps = stream_steps(graph, steps, stream)
    if edit is not None:
        edit(steps)
    plan = plan_steps(graph, steps, stream_input_bytes=stream.stripe_bytes if stream else None)
    options = CompileOptions(stream_input=stream is not None)   # rounding: the default (tflite)
    emit(Compiled(graph, steps, ctx, plan, options, stream=stream), out_dir)
    return steps


# ---- the op sweeps' scratch-taking ops (shapes as tests/test_ops_conv.py, test_ops_matmul.py) ----

def _conv(h=9, w=8, cin=5, cout=7, kh=3, kw=3, stride=1, dil=1, padding=0, n=1):
    rng = np.random.default_rng(0)
    eff_h, eff_w = (kh - 1) * dil + 1, (kw - 1) * dil + 1
    oh = (h + stride - 1) // stride if padding == 0 else (h + stride - eff_h) // stride
    ow = (w + stride - 1) // stride if padding == 0 else (w + stride - eff_w) // stride
    wts = rng.integers(-127, 128, size=(cout, kh, kw, cin)).astype(np.int8)
    return single_op_model(
        "CONV_2D",
        [Spec((n, h, w, cin), scale=0.05, zero_point=-3),
         Spec((cout, kh, kw, cin), scale=[0.01] * cout, zero_point=0, axis=0, data=wts),
         Spec((cout,), "int32", scale=[0.0005] * cout, zero_point=0,
              data=rng.integers(-5000, 5000, size=(cout,)).astype(np.int32))],
        [Spec((n, oh, ow, cout), scale=0.08, zero_point=2)],
        options=("Conv2DOptions", {"padding": padding, "strideH": stride, "strideW": stride,
                                   "dilationHFactor": dil, "dilationWFactor": dil,
                                   "fusedActivationFunction": 0}), version=3)


def _bmm(a, b, adj_x=False, adj_y=False):
    n = max(len(a), len(b))
    la, lb = [1] * (n - len(a)) + list(a), [1] * (n - len(b)) + list(b)
    out = [max(x, y) for x, y in zip(la[:-2], lb[:-2])] + [la[-1] if adj_x else la[-2], lb[-2] if adj_y else lb[-1]]
    return single_op_model(
        "BATCH_MATMUL", [Spec(a, scale=0.02, zero_point=-3), Spec(b, scale=0.05, zero_point=9)],
        [Spec(tuple(out), scale=0.3, zero_point=4)], options=("BatchMatMulOptions", {"adjX": adj_x, "adjY": adj_y}))


OP_SWEEP = {
    "conv3x3_same": lambda: _conv(),
    "conv3x3_valid_stride2": lambda: _conv(h=11, w=10, stride=2, padding=1),
    "conv3x3_dilated_batch2": lambda: _conv(dil=2, n=2),
    "conv5x1_odd_depth": lambda: _conv(kh=5, kw=1, cin=3, cout=5),
    "conv1x1_direct": lambda: _conv(kh=1, kw=1, cin=8, cout=6),
    "conv1x1_stride2": lambda: _conv(kh=1, kw=1, stride=2, cin=8, cout=6, padding=1),
    "bmm": lambda: _bmm((1, 2, 7, 5), (1, 2, 5, 6)),
    "bmm_adj_y": lambda: _bmm((1, 2, 7, 5), (1, 2, 6, 5), adj_y=True),
    "bmm_adj_x": lambda: _bmm((3, 1, 7, 5), (1, 2, 7, 6), adj_x=True),
    "bmm_adj_xy_odd": lambda: _bmm((2, 3, 5), (2, 7, 3), adj_x=True, adj_y=True),
    "svdf": lambda: _svdf(),
    "lstm": lambda: _lstm(),
    "detection_regular": lambda: _detection(True),
    "detection_fast": lambda: _detection(False),
}


def _svdf() -> bytes:
    import numpy as np
    from opgraph import multi_op_model
    from test_ops_svdf import svdf_case
    return multi_op_model([svdf_case(np.random.default_rng(0), batches=2, units=3, rank=2, memory=4)])


def _lstm() -> bytes:
    import numpy as np
    from opgraph import multi_op_model
    from test_ops_lstm import lstm_case
    return multi_op_model([lstm_case(np.random.default_rng(0), batches=2, steps=3, n_input=3, n_cell=5)])


def _detection(regular: bool) -> bytes:
    import numpy as np
    from opgraph import multi_op_model
    from test_ops_detection import det_case
    return multi_op_model([det_case(regular, np.random.default_rng(0), classes=3, per_det=2)])


def shared_models() -> list[str]:
    """The shared reference models plus the default tinyvit (tinyvit/pretrained/vit_digits.tflite)."""
    found = sorted(glob.glob(os.path.join(SHARED, "**", "*.tflite"), recursive=True))
    default_vit = os.path.join(paths.package_dir("tinyvit"), "pretrained", "vit_digits.tflite")
    return found + ([default_vit] if os.path.exists(default_vit) else [])


def _check_all_fit(facts, short, status, what) -> set[str]:
    """Assert every step's C need <= planned and the run passes its kernels' checks; the kernels seen."""
    for op, kernel, planned, needed in facts:
        assert needed <= planned, f"{what}: op {op} {kernel} needs {needed} B, plan has {planned} B"
    assert short == 0
    assert status == 0, f"{what}: tinyml_run() returned {status} with TINYML_CHECK_SCRATCH"
    return {k for _, k, _, _ in facts}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(OP_SWEEP))
def test_op_sweep_scratch_fits_plan(tmp_path, name):
    path = tmp_path / "op.tflite"
    path.write_bytes(OP_SWEEP[name]())
    steps = generate_steps(str(path), str(tmp_path / "gen"))
    facts, short, status = check_generated(str(tmp_path / "gen"))
    assert facts, f"{name}: no step takes scratch"
    _check_all_fit(facts, short, status, name)
    # The plan states exactly what the kernel computes (no slack, no shortfall).
    planned = {s.index: s.scratch_bytes for s in steps}
    assert all(needed == planned[op] for op, _, _, needed in facts)


@pytest.mark.timeout(900)
@pytest.mark.skipif(not glob.glob(os.path.join(SHARED, "**", "*.tflite"), recursive=True),
                    reason="shared reference models not present")
@pytest.mark.parametrize("stream", [False, True])
def test_shared_models_scratch_fits_plan_and_every_kernel_is_exercised(tmp_path, stream):
    from tinyml.codegen.stream import StreamInputError
    models = shared_models()
    assert len(models) >= 8
    checked, seen = 0, set()
    for m in models:
        name = os.path.splitext(os.path.basename(m))[0]
        try:
            generate_steps(m, str(tmp_path / name), stream_input=stream)
        except StreamInputError:
            assert stream
            continue
        facts, short, status = check_generated(str(tmp_path / name))
        seen |= _check_all_fit(facts, short, status, name + (" --stream-input" if stream else ""))
        checked += len(facts)
        print(f"{name}{' --stream-input' if stream else ''}: {len(facts)} steps checked")
    assert checked > 0
    if not stream:
        # Together with the op sweep above: every kernel with a size function ran its check.
        for name in OP_SWEEP:
            p = tmp_path / f"{name}.tflite"
            p.write_bytes(OP_SWEEP[name]())
            generate_steps(str(p), str(tmp_path / f"op_{name}"))
            seen |= _check_all_fit(*check_generated(str(tmp_path / f"op_{name}")), name)
        assert seen == SCRATCH_KERNELS, sorted(seen)


def test_kernel_list_matches_headers():
    assert scratch_kernels_in_headers() == SCRATCH_KERNELS


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["conv3x3_same", "bmm_adj_x"])
def test_one_byte_less_is_caught(tmp_path, name):
    """Planning one byte less scratch than the kernel needs fails the check table and,
    at run time, the kernel's own TINYML_CHECK_SCRATCH guard (tinyml_run() returns
    -(op + 1))."""
    path = tmp_path / "op.tflite"
    path.write_bytes(OP_SWEEP[name]())
    shorted = []

    def one_less(steps):
        for s in steps:
            if s.scratch_bytes > 0:
                s.scratch_bytes -= 1
                shorted.append(s.index)
                return

    generate_steps(str(path), str(tmp_path / "gen"), edit=one_less)
    assert shorted
    facts, short, status = check_generated(str(tmp_path / "gen"))
    assert short == 1
    [(op, _, planned, needed)] = [f for f in facts if f[0] == shorted[0]]
    assert needed == planned + 1
    assert status == -(shorted[0] + 1)


@pytest.mark.timeout(600)
@pytest.mark.skipif(not os.path.exists(os.path.join(SHARED, "mlperf-tiny", "pretrainedResnet_quant.tflite")),
                    reason="shared reference models not present")
def test_one_byte_less_is_caught_in_a_fused_kernel(tmp_path):
    """The residual block passes the rest of its scratch to the member convolutions;
    one byte less for the block is caught by its own size check."""
    m = os.path.join(SHARED, "mlperf-tiny", "pretrainedResnet_quant.tflite")
    shorted = []

    def one_less(steps):
        for s in steps:
            if s.kind == "FUSED_RESBLOCK":
                s.scratch_bytes -= 1
                shorted.append(s.index)
                return

    generate_steps(m, str(tmp_path / "gen"), edit=one_less)
    facts, short, status = check_generated(str(tmp_path / "gen"))
    assert shorted and short == 1
    assert status == -(shorted[0] + 1)
