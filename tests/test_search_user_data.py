"""`tinyml search` on the user's own data (issue 14, items 1 and 4): class folders
and .npz datasets, the search space following the data, bad datasets as one
line, the whole-run time budget (proved with a fake clock), and an end-to-end
search on an image folder it has never seen (slow), built and self-tested on
the emulated F746 (slow, emulator)."""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tinyml.cli import main
from tinyml.errors import TinymlError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synthetic_shapes import make_shapes  # noqa: E402


def _save(path, arr) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path)


def _rgb(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)


def _cli_fails(capfd, *args) -> str:
    """Run the CLI in-process; it must fail with exactly one stderr line, no traceback."""
    rc = main(list(args))
    out, err = capfd.readouterr()
    assert rc != 0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and out == ""
    return lines[0]


# ---------------------------------------------------------------- datasets
def test_image_folder_rgb_any_size_resized_and_gray_detected(tmp_path):
    from tinyml.tinyvit.data import load_dataset
    root = tmp_path / "rgb"
    for c in ("a", "b"):
        for i in range(10):
            _save(str(root / c / f"{i}.png"), _rgb(40 + i, 30 + 2 * i, i))   # every size differs
    ds = load_dataset(str(root), 24, None)
    assert ds.input_shape == (24, 24, 3) and ds.class_names == ["a", "b"]
    gray = tmp_path / "gray"
    for c in ("a", "b"):
        for i in range(10):
            _save(str(gray / c / f"{i}.bmp"), np.full((16, 16), 10 * i + (c == "b") * 100, np.uint8))
    ds = load_dataset(str(gray), None, None)              # one shared square size: kept
    assert ds.input_shape == (16, 16, 1)
    # pixel values are the file's bytes / 255 (BMP is lossless)
    i = int(np.flatnonzero(ds.train.y == 1)[0])
    assert set(np.unique(np.round(ds.train.x[i] * 255)).tolist()) <= {100.0 + 10 * k for k in range(10)}


def test_npz_uint8_and_float_shapes_and_resize(tmp_path):
    from tinyml.tinyvit.data import load_dataset
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 12, 12, 3)).astype(np.uint8)
    y = np.arange(30) % 3
    np.savez(tmp_path / "u8.npz", x=x, y=y)
    ds = load_dataset(str(tmp_path / "u8.npz"), None, None)
    assert ds.input_shape == (12, 12, 3) and ds.class_names == ["0", "1", "2"]
    allx = np.concatenate([ds.train.x, ds.val.x, ds.test.x])
    assert np.array_equal(np.sort((allx * 255).round().astype(np.uint8).reshape(30, -1), 0),
                          np.sort(x.reshape(30, -1), 0))
    np.savez(tmp_path / "f.npz", x=(x[..., 0] / 255.0).astype(np.float32), y=y)   # (N, H, W) float
    ds = load_dataset(str(tmp_path / "f.npz"), 8, None)
    assert ds.input_shape == (8, 8, 1)


def test_space_follows_the_data():
    from tinyml.memory_planner.search.space import space_for_data
    from tinyml.memory_planner.search.vit_ir import build_graph
    s = space_for_data(96, 3, 3)
    assert s.patch_sizes == (3, 4, 6, 8, 12, 16, 24, 32, 48)     # divisors of 96, 2x2..32x32 patches
    rng = random.Random(0)
    for _ in range(10):
        cfg = s.sample(rng)
        assert cfg.input_shape == (96, 96, 3) and cfg.num_classes == 3
        g = build_graph(cfg)
        assert list(g.tensors[g.inputs[0]].shape) == [1, 96, 96, 3]
    d = space_for_data(64, 1, 5, "detect")
    assert min(d.patch_sizes) >= 4 and d.sample(rng).head == "detect"
    with pytest.raises(TinymlError, match="no patch size"):
        space_for_data(97, 3, 2)


@pytest.fixture
def bad_sets(tmp_path):
    """name -> (argv tail, expected fragment of the one error line)."""
    ok = lambda d, n=10, size=(16, 16): [_save(str(d / c / f"{i}.png"), _rgb(*size, i))  # noqa: E731
                                         for c in ("a", "b") for i in range(n)]
    sets = {}
    empty = tmp_path / "empty"
    ok(empty)
    os.makedirs(empty / "c")
    sets["empty class"] = ([str(empty)], "class folder 'c' has no images")
    mixed = tmp_path / "mixed"
    ok(mixed)
    _save(str(mixed / "a" / "big.png"), _rgb(20, 20, 0))
    sets["mixed sizes"] = ([str(mixed)], "different sizes")
    rect = tmp_path / "rect"
    ok(rect, size=(16, 24))
    sets["non-square"] = ([str(rect)], "square inputs")
    broken = tmp_path / "broken"
    ok(broken)
    (broken / "b" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    sets["unreadable image"] = ([str(broken), "--input-size", "16x16"], "cannot decode image")
    yolo = tmp_path / "yolo"
    for i in range(4):
        _save(str(yolo / "images" / f"{i}.png"), _rgb(32, 32, i))
        (yolo / "labels").mkdir(exist_ok=True)
        (yolo / "labels" / f"{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n" if i else "1 0.9 0.5 0.4 0.2\n")
    sets["box outside"] = ([str(yolo), "--task", "detect"], "extends outside the image")
    x = np.zeros((12, 8, 8), np.uint8)
    y = np.arange(12) % 2
    for name, arrays, frag in (
            ("npz keys", dict(images=x, y=y), "it needs 'x' and 'y'"),
            ("npz x shape", dict(x=np.zeros((12, 8), np.uint8), y=y), "x has shape (12, 8)"),
            ("npz channels", dict(x=np.zeros((12, 8, 8, 2), np.uint8), y=y), "C 1 or 3"),
            ("npz y shape", dict(x=x, y=y[:5]), "y has shape (5,)"),
            ("npz x dtype", dict(x=x.astype(np.int32), y=y), "x has dtype int32"),
            ("npz y dtype", dict(x=x, y=y.astype(np.float32)), "class ids must be integers"),
            ("npz float range", dict(x=x.astype(np.float32) + 2.0, y=y), "pixels must be in 0..1"),
            ("npz nan", dict(x=np.full((12, 8, 8), np.nan, np.float32), y=y), "NaN"),
            ("npz negative label", dict(x=x, y=y - 1), "label -1 is out of range"),
            ("npz label gap", dict(x=x, y=y * 2), "class 1 has no image")):
        np.savez(tmp_path / f"{name.replace(' ', '_')}.npz", **arrays)
        sets[name] = ([str(tmp_path / f"{name.replace(' ', '_')}.npz")], frag)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 truncated")
    sets["npz junk"] = ([str(tmp_path / "junk.npz")], "not a readable .npz")
    sets["task mismatch"] = ([str(empty.parent / "rect"), "--input-size", "16", "--task", "detect"],
                             "classify dataset but --task is detect")
    sets["bad input size"] = ([str(mixed), "--input-size", "16x20"], "not square")
    return sets


def test_bad_datasets_are_one_line_and_write_nothing(bad_sets, tmp_path, capfd):
    out = tmp_path / "never"
    for name, (tail, frag) in bad_sets.items():
        line = _cli_fails(capfd, "search", "--dataset", *tail, "--out", str(out), "--candidates", "5")
        assert frag in line, (name, line)
        assert not out.exists(), name


def test_train_reads_npz_and_rejects_bad_npz(tmp_path, capfd):
    from tinyml.tinyvit.data import load_dataset
    x = np.zeros((12, 8, 8), np.uint8)
    np.savez(tmp_path / "neg.npz", x=x, y=np.arange(12) % 2 - 1)
    line = _cli_fails(capfd, "train", "--model", "vit_tiny", "--dataset", str(tmp_path / "neg.npz"),
                      "--out", str(tmp_path / "o"))
    assert "label -1 is out of range" in line and not (tmp_path / "o").exists()
    # the same loader `tinyml train` calls resizes to the config's 28x28x1
    np.savez(tmp_path / "ok.npz", x=np.zeros((20, 10, 10, 3), np.uint8), y=np.arange(20) % 2)
    assert load_dataset(str(tmp_path / "ok.npz"), 28, 1).input_shape == (28, 28, 1)


# ---------------------------------------------------------------- time budget
class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeExecutor:
    """Each proxy training 'takes' `secs` on the fake clock."""

    def __init__(self, clock: FakeClock, secs: float, at_chance: bool = False) -> None:
        self.clock, self.secs, self.calls, self.at_chance = clock, secs, 0, at_chance

    def map(self, fn, items):
        for cfg in items:
            self.calls += 1
            self.clock.t += self.secs
            # low-rank configs score higher: the winner is never the full-rank baseline
            low = (cfg.qkv_rank or cfg.proj_rank or cfg.mlp_rank or cfg.patch_rank) > 0
            if self.at_chance:          # 10 classes: every score below 0.15
                yield 0.1 + 0.0001 * cfg.embed_dim + 0.01 * low, self.secs
            else:
                yield 0.5 + 0.001 * cfg.embed_dim + 0.1 * low, self.secs


def _fake_hooks(clock: FakeClock, epoch_secs: float, export_secs: float, verify_secs: float, log: list):
    from tinyml.memory_planner.search.run import Hooks

    def final(c, ds, epochs, out_dir, seed, tag, may_continue=None, progress=False, **kw):
        secs = []
        e = epoch_secs[tag] if isinstance(epoch_secs, dict) else epoch_secs
        for ep in range(epochs):
            if ep and not may_continue(secs):
                break
            clock.t += e
            secs.append(e)
        clock.t += export_secs
        log.append((tag, len(secs), epochs))
        return ({"metric": "accuracy", "int8_accuracy": 0.9, "float_accuracy": 0.9,
                 "epochs_run": len(secs), "train_seconds": e * len(secs)}, f"/x/{tag}.tflite")

    def replan(c, path):
        clock.t += 1.0
        return {"arena_bytes_exported": c.cost.arena_bytes, "flash_bytes_exported": c.cost.flash_bytes,
                "match": True}

    def verify(path, seed=0):
        clock.t += verify_secs
        return {"bit_exact": True, "oracle": "fake", "inputs_compared": 1, "output_bytes_compared": 10,
                "mismatching_bytes": 0, "max_abs_diff": 0}
    return Hooks(final=final, replan=replan, verify=verify)


def _fake_search(tmp_path, budget_s: float, proxy_s: float, epoch_s: float, export_s: float = 4.0,
                 verify_s: float = 5.0, epochs: int = 50, at_chance: bool = False):
    from tinyml.memory_planner.search.budget import make_budget
    from tinyml.memory_planner.search.clock import RunClock
    from tinyml.memory_planner.search.run import run_search
    from tinyml.memory_planner.search.space import space_for_dataset
    clock = FakeClock()
    rc = RunClock(budget_s, clock=clock)
    ex = FakeExecutor(clock, proxy_s, at_chance)
    log: list = []
    res = run_search(space_for_dataset("digits8"), "digits8", make_budget("stm32f746g-disco", None, None),
                     n_candidates=30, workers=1, budget_seconds=budget_s, top_k=4, final_epochs=epochs,
                     out_dir=str(tmp_path / "o"), executor=ex, clock=rc, ds=object(),
                     hooks=_fake_hooks(clock, epoch_s, export_s, verify_s, log))
    return res, rc, ex, log


def test_clock_deadlines_and_epoch_rule():
    from tinyml.memory_planner.search.clock import RunClock, epoch_fits, export_reserve
    c = FakeClock()
    rc = RunClock(200.0, clock=c)
    assert export_reserve(200.0) == 30.0 and export_reserve(40.0) == 12.0 and export_reserve(2000.0) == 120.0
    assert [rc.deadline(p) - 1000.0 for p in ("memory_eval", "ranking", "final_training", "export_verify")] \
        == [50.0, 120.0, 170.0, 200.0]
    assert epoch_fits(100.0, 110.0, [30.0, 10.0]) and not epoch_fits(100.0, 109.0, [30.0, 10.0])
    assert epoch_fits(100.0, 50.0, [])              # the first epoch always runs
    with rc.phase("ranking"):
        c.t += 7.5
    rc.move("ranking", "export_verify", 2.5)
    assert rc.report()["ranking"] == 5.0 and rc.report()["export_verify"] == 2.5


def test_budget_bounds_the_whole_run_with_a_fake_clock(tmp_path):
    """200 s budget; proxy trainings 'take' 20 s, epochs 6 s, export 4 s, verify 5 s.
    Memory planning runs for real but costs 0 s on the fake clock.
    Ranking ends at 120 s: 6 proxy trainings (0..120). Final window 120..170 (30 s
    export reserve): the chosen model gets half of it, to 145 (epochs end 126, 132,
    138, 144: 4 epochs), then the baseline the rest."""
    res, rc, ex, log = _fake_search(tmp_path, 200.0, 20.0, 6.0)
    assert ex.calls == 6
    assert len(res.trained) == 6
    ph = res.phase_seconds
    assert ph["memory_eval"] == 0.0 and ph["ranking"] == 120.0
    assert log[0] == ("chosen", 4, 50)
    # baseline: starts at 148 (after the chosen's 4 s export); epochs end 154, 160, 166; 172 > 170 stops
    assert log[1] == ("baseline", 3, 50)
    assert any("baseline ran 3 epoch(s), the winner 4" in n for n in res.notes)
    assert ph["final_training"] == 6.0 * 7
    assert ph["export_verify"] == 4.0 + 4.0 + 1.0 + 5.0
    assert rc.elapsed() == sum(ph.values()) == 176.0 <= 200.0
    assert res.elapsed_seconds == 176.0 and not any("more than --budget-seconds" in n for n in res.notes)
    assert not any("chance level" in n for n in res.notes)
    from tinyml.memory_planner.search.report import to_json
    d = to_json(res)
    assert d["ranking"] == "proxy" and d["phase_seconds"] == ph
    for k in ("config", "tflite", "peak_sram_bytes", "flash_bytes", "accuracy"):
        assert k in d["chosen"]
    assert d["candidates_evaluated"] >= 30 and "memory_eval_seconds" in d
    assert d["chosen"]["verify"]["bit_exact"] is True and d["chosen"]["accuracy"] == 0.9


def test_baseline_trains_with_the_winners_recipe(tmp_path):
    """The fixed-patch baseline gets the winner's epoch schedule (same `epochs` argument) and
    stops after as many epochs as the winner ran, even when its epochs are faster: winner
    6 s / epoch in 120..145 -> 4 epochs; baseline 1 s / epoch could run 22 by 170, runs 4."""
    res, rc, ex, log = _fake_search(tmp_path, 200.0, 20.0, {"chosen": 6.0, "baseline": 1.0})
    assert res.baseline is not None and res.baseline is not res.chosen
    assert log == [("chosen", 4, 50), ("baseline", 4, 50)]
    assert not any("baseline ran" in n for n in res.notes)
    from tinyml.memory_planner.search.report import to_json
    d = to_json(res)
    assert d["chosen"]["epochs_run"] == d["baseline"]["epochs_run"] == 4


def test_budget_too_small_for_one_unit_is_reported_not_hidden(tmp_path):
    """A 30 s budget with 40 s proxy trainings: one proxy training still runs (an
    accuracy is needed), the final training gets one epoch, and the overrun is a note."""
    res, rc, ex, log = _fake_search(tmp_path, 30.0, 40.0, 6.0)
    assert ex.calls == 1 and log[0][:2] == ("chosen", 1)
    assert len(log) == 1 or log[1][1] >= 1
    assert rc.elapsed() > 30.0
    assert any("more than --budget-seconds" in n for n in res.notes)


def test_ranking_at_chance_level_is_said(tmp_path):
    """Proxy scores all below 1.5x chance (10 classes): the winner came from the
    smaller-arena tie-break, and the report says so instead of presenting a ranking."""
    res, rc, ex, log = _fake_search(tmp_path, 200.0, 20.0, 6.0, at_chance=True)
    notes = [n for n in res.notes if "chance level" in n]
    assert len(notes) == 1 and "chance 0.100" in notes[0]
    from tinyml.memory_planner.search.report import human_report
    assert notes[0] in human_report(res)


# ---------------------------------------------------------------- end to end (slow)
def _run_cli(*args, timeout=600):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)          # the command itself must keep TensorFlow quiet
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def shapes_search(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shapes")
    data = make_shapes(str(tmp / "shapes"), per_class=80, size=96, seed=3)
    r = _run_cli("search", "--dataset", data, "--budget-seconds", "90", "--candidates", "120",
                 "--proxy-epochs", "2", "--proxy-images", "192", "--top-k", "2", "--final-epochs", "30",
                 "--out", str(tmp / "out"), "--json")
    return data, r


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_unseen_image_folder_search_end_to_end(shapes_search):
    """96x96 RGB, 3 classes the search has never seen: the winner fits the F746's
    budget, is int8, re-plans to the same arena, and its C is bit-exact vs TFLite."""
    data, r = shapes_search
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(r.stdout)
    ch = d["chosen"]
    print(json.dumps({"chosen": ch["config"]["name"], "accuracy": ch["accuracy"], "epochs": ch["epochs_run"],
                      "arena": ch["peak_sram_bytes"], "flash": ch["flash_bytes"], "phases": d["phase_seconds"],
                      "elapsed": d["elapsed_seconds"], "stderr_lines": len(r.stderr.splitlines())}))
    assert d["input_shape"] == [96, 96, 3] and d["ranking"] == "proxy"
    assert ch["config"]["image_size"] == 96 and ch["config"]["channels"] == 3
    assert ch["config"]["num_classes"] == 3
    assert ch["peak_sram_bytes"] <= d["budget"]["sram_bytes"] and ch["flash_bytes"] <= d["budget"]["flash_bytes"]
    assert ch["plan_check"]["match"] and ch["plan_check"]["arena_bytes_exported"] == ch["peak_sram_bytes"]
    assert ch["verify"]["bit_exact"] and ch["verify"]["inputs_compared"] >= 10
    assert set(d["phase_seconds"]) >= {"memory_eval", "ranking", "final_training", "export_verify"}
    # the int8 file: int8 in and out, and its reported accuracy is what TFLite computes on the test split
    import tensorflow as tf
    from tinyml.tinyvit.data import load_dataset
    interp = tf.lite.Interpreter(model_path=ch["tflite"],
                                 experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8 and list(inp["shape"]) == [1, 96, 96, 3]
    ds = load_dataset(data, 96, 3, seed=0)
    hits = 0
    for x, y in zip(ds.test.x, ds.test.y):
        s, z = inp["quantization"]
        interp.set_tensor(inp["index"], np.clip(np.round(x / s + z), -128, 127).astype(np.int8)[None])
        interp.invoke()
        hits += int(np.argmax(interp.get_tensor(out["index"])[0]) == y)
    assert round(hits / len(ds.test.y), 4) == ch["accuracy"]
    # TensorFlow's own chatter stays out of stderr without --verbose
    assert "absl::InitializeLog" not in r.stderr and "oneDNN" not in r.stderr


@pytest.mark.slow
@pytest.mark.emulator
@pytest.mark.timeout(600)
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_unseen_image_folder_winner_passes_selftest_on_emulated_f746(shapes_search, tmp_path):
    data, r = shapes_search
    assert r.returncode == 0, r.stderr[-3000:]
    ch = json.loads(r.stdout)["chosen"]
    out = str(tmp_path / "fw")
    b = _run_cli("build", ch["tflite"], "--board", "stm32f746g-disco", "-o", out, "--emulator-variant",
                 "--vectors", "2", "--json")
    assert b.returncode == 0, b.stderr[-3000:]
    e = _run_cli("emulate", out, "--json", "--timeout", "120")
    assert e.returncode == 0, e.stdout + e.stderr[-3000:]
    res = json.loads(e.stdout)
    print(json.dumps({k: res.get(k) for k in ("passed", "instructions_per_inference", "peak_sram_bytes_measured",
                                               "flash_bytes")}))
    assert res["passed"] is True
    assert res["peak_sram_bytes_measured"] <= json.loads(r.stdout)["budget"]["sram_bytes"]


def test_phase_bar_writes_to_stderr_only_when_enabled(capfd):
    from tinyml.memory_planner.search.report import phase_bar
    with phase_bar("ranking", 3, False, "model") as bar:
        bar.update(1)
        bar.update_to(3)
    assert capfd.readouterr() == ("", "")
    with phase_bar("ranking", 3, True, "model") as bar:
        bar.update(1)
        bar.update_to(3)
    out, err = capfd.readouterr()
    assert out == "" and "ranking" in err and "3/3" in err


def test_detect_task_plans_grid_detectors_for_a_yolo_folder(tmp_path, capfd):
    """--task detect on a YOLO folder: the space is the ViT grid detector at the data's
    size and channels (memory search only: no training here)."""
    from synthetic_shapes import make_yolo
    data = make_yolo(str(tmp_path / "yolo"), count=20, size=64)
    rc = main(["search", "--dataset", data, "--task", "detect", "--no-train", "--candidates", "12",
               "--workers", "1", "--json"])
    out, err = capfd.readouterr()
    assert rc == 0, err
    d = json.loads(out)
    assert d["task"] == "detect" and d["input_shape"] == [64, 64, 3] and d["feasible_count"] > 0
    assert all(c["patch_size"] >= 4 for c in d["pareto"])
    assert "2 classes (detect)" in err
    rc = main(["search", "--dataset", data, "--no-train", "--candidates", "12"])      # task not given
    assert rc != 0 and "is a detect dataset but --task is classify" in capfd.readouterr().err


def test_proxy_takes_at_least_min_steps():
    from tinyml.memory_planner.search.proxy import ProxySettings
    p = ProxySettings(epochs=2, train_images=2000, batch=64, min_steps=30)
    assert p.epochs_for(4000) == 2                   # 32 steps per epoch: 2 epochs already 64 steps
    assert p.epochs_for(192) == 10                   # 3 steps per epoch
    assert ProxySettings(epochs=2, min_steps=0).epochs_for(10) == 2
