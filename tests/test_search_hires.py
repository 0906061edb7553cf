"""Issue 14 item 3, a task where SRAM binds: the built-in 128x128 digits-canvas tasks
(generator: deterministic, shapes, boxes inside the canvas), `--budgets` (64 / 128 /
320 KiB pick three different patch/width/rank configurations on a reduced
deterministic run: the accuracy there is a stand-in, so only planner-side facts
are asserted), the plot with one series per budget, bad --budgets strings as one
line, and the 64 KiB winner built and run on the emulated F746 (slow, emulator)."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tinyml.cli import main
from tinyml.errors import TinymlError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUDGETS = [64 * 1024, 128 * 1024, 320 * 1024]


# ---------------------------------------------------------------- the task generator
@pytest.mark.slow
def test_canvas_generator_is_deterministic_and_boxes_lie_inside():
    from tinyml.tinyvit.data import CANVAS_CELL, canvas_images, mnist_digits
    base = mnist_digits(0).test
    x1, b1 = canvas_images(base.x, base.y, 40, seed=5, max_objects=4)
    x2, b2 = canvas_images(base.x, base.y, 40, seed=5, max_objects=4)
    x3, _ = canvas_images(base.x, base.y, 40, seed=6, max_objects=4)
    assert x1.shape == (40, 128, 128, 1) and x1.dtype == np.float32
    assert np.array_equal(x1, x2) and all(np.array_equal(a, b) for a, b in zip(b1, b2))
    assert not np.array_equal(x1, x3)
    assert 0.0 <= x1.min() and x1.max() <= 1.0
    counts = [len(b) for b in b1]
    assert min(counts) >= 1 and max(counts) <= 4 and len(set(counts)) > 1
    for img, boxes in zip(x1, b1):
        cells = set()
        for cls, xa, ya, xb, yb in boxes:
            assert 0 <= cls <= 9 and cls == int(cls)
            assert 0 <= xa < xb <= 128 and 0 <= ya < yb <= 128
            assert 6 <= max(xb - xa, yb - ya) <= 40          # digits of 16..40 px, tight ink box
            # the digit's ink is in its box (resized strokes stay bright; clutter and noise are sparse)
            patch = img[int(ya):int(yb), int(xa):int(xb), 0]
            assert patch.max() > 0.5 and (patch > 0.45).sum() >= 10
            cell = (int((ya + yb) / 2 // CANVAS_CELL), int((xa + xb) / 2 // CANVAS_CELL))
            assert cell not in cells                         # one object centre per detector cell
            cells.add(cell)
    # clutter: the background is not empty outside the boxes
    mask = np.ones((128, 128), bool)
    for xa, ya, xb, yb in b1[0][:, 1:].astype(int):
        mask[ya:yb, xa:xb] = False
    assert (x1[0, ..., 0][mask] > 0.25).sum() > 20


@pytest.mark.slow
def test_classify_canvases_hold_one_large_digit_near_the_centre_on_light_clutter():
    """digits-canvas (classify): one digit scaled to 80..112 px, its square within +-8 px of the
    centre, light clutter (no digit fragments: background pixels stay dim)."""
    from tinyml.tinyvit.data import CLASSIFY_SIZES, CLASSIFY_SPREAD, canvas_images, mnist_digits
    assert CLASSIFY_SIZES == (80, 112) and CLASSIFY_SPREAD == 8
    base = mnist_digits(0).test
    x, b = canvas_images(base.x, base.y, 30, seed=3, min_size=80, max_size=112, spread=8, clutter="light")
    full, _ = canvas_images(base.x, base.y, 30, seed=3, min_size=80, max_size=112, spread=8)
    assert all(len(bb) == 1 for bb in b)
    for img, f, ((cls, xa, ya, xb, yb),) in zip(x, full, b):
        # the ink box of a digit scaled to s px lies inside its square: square at (128 - s) / 2 +- 8
        assert 8 <= xa and xb <= 120 and 8 <= ya and yb <= 120
        assert max(xb - xa, yb - ya) >= 0.45 * 80
        mask = np.ones((128, 128), bool)
        mask[int(ya):int(yb), int(xa):int(xb)] = False
        assert (img[..., 0][mask] > 0.55).sum() == 0          # light strokes are <= 0.5 (+ noise)
    # full clutter on the same seed has brighter strokes and fragments outside the digit
    assert max((f[..., 0] > 0.6).sum() - (img[..., 0] > 0.6).sum() for f, img in zip(full, x)) > 0


@pytest.mark.slow
def test_digits_canvas_datasets_classify_and_detect():
    from tinyml.tinyvit.data import load_dataset
    ds = load_dataset("digits-canvas", seed=0)
    assert ds.task == "classify" and ds.input_shape == (128, 128, 1)
    assert (len(ds.train.x), len(ds.val.x), len(ds.test.x)) == (8000, 1000, 250)
    assert set(np.unique(ds.train.y)) == set(range(10)) and ds.train.y.dtype == np.int64
    det = load_dataset("digits-canvas-det", seed=0)
    assert det.task == "detect" and det.input_shape == (128, 128, 1)
    assert all(b.shape[1] == 5 and 1 <= len(b) <= 4 for b in det.train.y[:50])
    assert (len(det.train.x), len(det.val.x), len(det.test.x)) == (2000, 250, 250)
    # classification canvases hold one digit: its label is the detection-style box's class
    again = load_dataset("digits-canvas", seed=0)
    assert np.array_equal(ds.test.x, again.test.x) and np.array_equal(ds.test.y, again.test.y)


# ---------------------------------------------------------------- budgets
def test_parse_budgets_and_bad_strings():
    from tinyml.memory_planner.search.multi import parse_budgets
    assert parse_budgets("64K,128K,320K") == BUDGETS
    assert parse_budgets("320kib, 64KB,131072") == BUDGETS
    assert parse_budgets("1M") == [1024 * 1024]
    for bad in ("", "64K,,128K", "64Q", "abc", "0K", "64K,64K", "-64K", "1.5.2K", "100"):
        with pytest.raises(TinymlError) as e:
            parse_budgets(bad)
        assert "--budgets" in str(e.value)


@pytest.mark.parametrize("text,cause", [("64K,lots", "'lots' is not a size"), ("64K,64K", "repeats"),
                                        ("64K,", "empty entry")])
def test_cli_bad_budgets_one_line(capfd, text, cause):
    rc = main(["search", "--dataset", "digits-canvas", "--budgets", text, "--no-train"])
    out, err = capfd.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc != 0 and out == "" and "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: ") and cause in lines[0], err


def test_cli_budgets_with_budget_kb_or_wrong_task_one_line(capfd):
    for args, cause in ((["--budgets", "64K", "--budget-kb", "64"], "both give the SRAM budget"),
                        (["--task", "detect"], "use --dataset digits-canvas-det")):
        rc = main(["search", "--dataset", "digits-canvas", "--no-train", *args])
        out, err = capfd.readouterr()
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc != 0 and len(lines) == 1 and cause in lines[0] and "Traceback" not in err, err


class _Clock:
    """Deterministic time: every reading advances by `step` seconds."""

    def __init__(self, step: float = 0.25) -> None:
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


class _CapacityExecutor:
    """A stand-in accuracy (no training): grows with tokens x width, computed from the config
    alone, never from the planner. Only planner-side facts are asserted on its winners."""

    name = "local"

    def map(self, fn, items):
        for c in items:
            tokens = (c.image_size // c.patch_size) ** 2
            yield 1.0 - 1.0 / math.log(10 + tokens * c.embed_dim), 0.0


@pytest.fixture(scope="module")
def three_budgets(tmp_path_factory):
    from tinyml.memory_planner.search import multi
    from tinyml.memory_planner.search.budget import make_budget
    from tinyml.memory_planner.search.clock import RunClock
    from tinyml.memory_planner.search.run import Hooks, run_search
    from tinyml.memory_planner.search.space import space_for_dataset
    space = space_for_dataset("digits-canvas")
    base = make_budget("stm32f746g-disco", None, None, 60_000_000)
    clock = _Clock(1.0)
    calls = {"final": 0}

    def final(c, ds, epochs, out_dir, seed, tag, **kw):
        calls["final"] += 1
        return {"metric": "accuracy", "int8_accuracy": None, "train_seconds": 0.0}, f"{c.config.name}.tflite"

    hooks = Hooks(final=final, replan=lambda c, t: {"match": True, "arena_bytes_exported": c.cost.arena_bytes,
                                                         "flash_bytes_exported": c.cost.flash_bytes}, verify=lambda t, **kw: {"bit_exact": True})

    def run(**kw):
        secs = kw.pop("budget_seconds")
        return run_search(space, "digits-canvas", clock=RunClock(secs, clock=clock), **kw)

    res = multi.run_budgets(run, multi.budgets_from(base, BUDGETS), 1500.0, executor=_CapacityExecutor(),
                            hooks=hooks, clock=clock, n_candidates=200, workers=1, top_k=6, seed=0,
                            out_dir=str(tmp_path_factory.mktemp("budgets")), ds=object())
    return res, calls


@pytest.mark.slow
def test_three_budgets_pick_three_configurations_where_sram_binds(three_budgets):
    from tinyml.memory_planner.search.cost import evaluate
    res, calls = three_budgets
    winners = [r.chosen for r in res.results]
    keys = [(w.config.patch_size, w.config.embed_dim, w.config.qkv_rank, w.config.proj_rank,
             w.config.mlp_rank, w.config.patch_rank) for w in winners]
    print([(w.config.name, w.cost.arena_bytes) for w in winners])
    assert len(set(keys)) == 3
    prev = 0
    for b, w, r in zip(BUDGETS, winners, res.results):
        # the arena is the real planner's: the slow path (build the graph, lower, plan) agrees
        exact = evaluate(w.config, cache=False)
        assert exact.arena_bytes == w.cost.arena_bytes <= b
        # SRAM binds: each winner needs more than the next smaller budget
        assert w.cost.arena_bytes > prev
        prev = b
        assert r.baseline is not None and r.baseline.cost.arena_bytes <= b
        c = r.baseline.config
        assert c.patch_size == 16 and c.qkv_rank == c.proj_rank == c.mlp_rank == c.patch_rank == 0
    # one final training per distinct model across the budgets
    distinct = {r.chosen.config.name for r in res.results} | {r.baseline.config.name for r in res.results}
    assert calls["final"] == len(distinct)
    assert res.proxy_reused > 0


@pytest.mark.slow
def test_budgets_plot_has_one_line_winner_and_baseline_per_budget(three_budgets, tmp_path):
    from tinyml.memory_planner.search import multi
    res, _ = three_budgets
    fig, ax = multi.budget_figure(res)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    vlines = [ln for ln in ax.get_lines() if len(set(ln.get_xdata())) == 1]
    assert sorted(round(ln.get_xdata()[0]) for ln in vlines) == [64, 128, 320]
    assert sum(t.startswith("winner ") for t in labels) == 3
    assert sum(t.startswith("fixed-patch baseline ") for t in labels) == 3
    assert sum(t.startswith("evaluated candidates") for t in labels) == 1
    for b, r in zip((64, 128, 320), res.results):
        assert f"winner {b} KiB: {r.chosen.config.name}" in labels
    path = tmp_path / "p.png"
    multi.plot_budgets(res, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    d = multi.budgets_json(res)
    assert d["budgets"] == BUDGETS and len(d["results"]) == 3
    assert [w["winner"]["peak_sram_bytes"] for w in d["winners"]] == [r.chosen.cost.arena_bytes
                                                                      for r in res.results]


def _run_cli(*args, timeout=600):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


@pytest.mark.slow
@pytest.mark.emulator
@pytest.mark.timeout(600)
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_64k_winner_runs_on_emulated_f746_within_its_budget(three_budgets, tmp_path):
    """The smallest budget's winner, exported int8 (seeded initial weights, calibrated on canvases:
    memory does not depend on training), built for the F746 and self-tested on QEMU: it passes,
    the arena it used is the planned one and within 64 KiB."""
    import keras
    import tensorflow as tf
    from tinyml.tinyvit.data import canvas_images, mnist_digits
    from tinyml.tinyvit.export import to_int8_tflite
    from tinyml.tinyvit.model import build_model
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:        # TensorFlow already initialised in this worker: its setting stands
        pass
    res, _ = three_budgets
    win = res.results[0].chosen
    base = mnist_digits(0).train
    calib, _ = canvas_images(base.x, base.y, 32, seed=1)
    keras.utils.set_random_seed(0)
    path = tmp_path / "win64k.tflite"
    path.write_bytes(to_int8_tflite(build_model(win.config), win.config, calib, count=32))
    out = str(tmp_path / "fw")
    b = _run_cli("build", str(path), "--board", "stm32f746g-disco", "-o", out, "--emulator-variant",
                 "--vectors", "1", "--json")
    assert b.returncode == 0, b.stderr[-3000:]
    e = _run_cli("emulate", out, "--json", "--timeout", "300")
    assert e.returncode == 0, e.stdout[-2000:] + e.stderr[-3000:]
    r = json.loads(e.stdout)
    print(json.dumps({k: r.get(k) for k in ("passed", "instructions_per_inference", "peak_sram_bytes_measured",
                                             "arena_bytes", "arena_used_bytes", "static_ram_bytes",
                                             "stack_used_bytes", "flash_bytes")}))
    assert r["passed"] is True
    assert r["arena_used_bytes"] <= r["arena_bytes"] == win.cost.arena_bytes <= BUDGETS[0]
    assert r["peak_sram_bytes_measured"] == r["static_ram_bytes"] + r["stack_used_bytes"] + r["arena_used_bytes"]


def test_budgets_plot_and_table_show_final_accuracy_of_winner_and_baseline():
    """Each budget's final int8 accuracies (winner, fixed-patch baseline) are in the winners
    table with the epochs each ran, and one legend entry per budget in the plot."""
    from types import SimpleNamespace as NS

    from tinyml.memory_planner.search import multi
    from tinyml.memory_planner.search.space import space_for_dataset
    space = space_for_dataset("digits-canvas")

    def cand(dim, arena, proxy):
        return NS(config=space.make(16, dim, 1, 1, 1.0), cost=NS(arena_bytes=arena), proxy_accuracy=proxy)
    runs = []
    for kib, (w, b) in zip((64, 128), ((0.41, 0.33), (0.52, None))):
        win, base = cand(kib // 2, kib * 900, 0.3), cand(kib // 4, kib * 800, 0.2)
        runs.append(NS(budget=NS(sram_bytes=kib * 1024), trained=[win, base], chosen=win, baseline=base,
                       chosen_metrics={"metric": "accuracy", "int8_accuracy": w, "epochs_run": 4},
                       baseline_metrics={"metric": "accuracy", "int8_accuracy": b, "epochs_run": 4},
                       dataset="digits-canvas"))
    res = multi.BudgetsResult(runs)
    rows = multi.winners_table(res)
    assert [(r["winner"]["accuracy"], r["baseline"]["accuracy"]) for r in rows] == [(0.41, 0.33), (0.52, None)]
    assert all(r["winner"]["epochs_run"] == r["baseline"]["epochs_run"] == 4 for r in rows)
    fig, ax = multi.budget_figure(res)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "final int8 64 KiB: winner 0.410 vs baseline 0.330" in labels
    assert "final int8 128 KiB: winner 0.520" in labels
