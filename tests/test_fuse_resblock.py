"""FUSED_RESBLOCK (codegen/ops/fused_resblock.py): ResNet basic blocks run as one
row pipeline. Keras models converted by TFLiteConverter; the judge is TFLite's
reference interpreter (bit-exact outputs and every traced external tensor)."""
import numpy as np
import pytest

from test_fuse_helpers import check_fused_model, convert, perturb


def _model(keras):
    L = keras.layers
    inp = keras.Input((10, 9, 4), batch_size=1)
    s = L.Conv2D(8, 3, padding="same", activation="relu")(inp)
    # identity block, ADD(z, x), fused ReLU
    y = L.Conv2D(8, 3, padding="same", activation="relu")(s)
    a = L.ReLU()(L.Add()([L.Conv2D(8, 3, padding="same")(y), s]))
    # identity block with a 5x5 first conv: its output may NOT overwrite x; ADD(x, z)
    y = L.Conv2D(8, 5, padding="same", activation="relu")(a)
    b = L.Add()([a, L.Conv2D(8, 3, padding="same")(y)])
    # downsampling block: 3x3 stride 2 (odd input size) + 1x1 stride 2 shortcut, 8 -> 16 channels
    y = L.Conv2D(16, 3, strides=2, padding="same", activation="relu")(b)
    z = L.Conv2D(16, 3, padding="same")(y)
    c = L.Conv2D(16, 1, strides=2)(b)
    o = L.ReLU()(L.Add()([c, z]))
    # 1x1 then 5x5 (a five-row ring)
    y = L.Conv2D(16, 1, activation="relu")(o)
    d = L.Add()([L.Conv2D(16, 5, padding="same")(y), o])
    out = L.Dense(5)(L.GlobalAveragePooling2D()(d))
    m = keras.Model(inp, out)
    perturb(m, sigma=0.2)
    return m


@pytest.fixture(scope="module")
def resnet_path(tmp_path_factory):
    import keras
    keras.utils.set_random_seed(0)
    return convert(_model(keras), (10, 9, 4), str(tmp_path_factory.mktemp("rb") / "rb.tflite"))


def _steps(path):
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.lower import lower_graph
    from tinyml.memory_planner.plan import plan_steps
    g = import_tflite(path)
    steps, _ = lower_graph(g)
    return g, steps, plan_steps(g, steps)


@pytest.mark.timeout(300)
def test_resblocks_fused_bit_exact(resnet_path):
    check_fused_model(resnet_path, {"FUSED_RESBLOCK": 4, "FUSED_ADD": 0})


def test_fusion_dropped_when_it_plans_larger(resnet_path, monkeypatch):
    """compile keeps fusion only when it plans no larger: with the fused blocks' scratch
    inflated by 4 KB the unfused steps win, and the plan says why; fuse_check=False keeps
    the fused steps and their larger arena."""
    from tinyml.codegen import lower
    from tinyml.codegen.pipeline import CompileOptions, compile as compile_model
    from test_fuse_helpers import arena
    real = lower.lower_group

    def inflated(group, graph, ctx):
        step = real(group, graph, ctx)
        step.scratch_bytes += 4096
        return step
    monkeypatch.setattr(lower, "lower_group", inflated)
    plain = arena(resnet_path, fuse=False)
    c = compile_model(resnet_path)
    assert "FUSED_RESBLOCK" not in [s.kind for s in c.steps]
    assert c.plan.arena_bytes == plain
    assert any(n.startswith("fusion off: the unfused steps plan") for n in c.plan.notes), c.plan.notes
    kept = compile_model(resnet_path, CompileOptions(fuse_check=False))
    assert [s.kind for s in kept.steps].count("FUSED_RESBLOCK") == 4
    assert kept.plan.arena_bytes > plain


@pytest.mark.timeout(300)
def test_output_overwrites_input_only_when_the_schedule_allows(resnet_path):
    """Blocks 1, 3, 4 write over their input (same buffer in the plan); block 2's
    5x5 first conv still reads x row r when output row r is due, so it gets its own."""
    g, steps, plan = _steps(resnet_path)
    blocks = [s for s in steps if s.kind == "FUSED_RESBLOCK"]
    same = [plan.tensor_buffer[s.inputs[0]] == plan.tensor_buffer[s.outputs[0]] for s in blocks]
    assert same == [True, False, True, True]
    assert [bool(s.inplace_ok) for s in blocks] == same


@pytest.mark.timeout(300)
def test_overwrite_rule_matches_a_byte_replay():
    """overwrite_safe against a brute-force replay of the kernel's reads and writes
    (every x byte read after an output byte over it was written => unsafe)."""
    from tinyml.codegen.ops.fused_resblock import overwrite_safe

    def conv(h, w, c_in, c_out, k, s):
        pad = max((-(-h // s) - 1) * s + k - h, 0) // 2
        return {"in_h": h, "in_w": w, "in_c": c_in, "out_h": -(-h // s), "out_w": -(-w // s), "k_h": k,
                "k_w": k, "stride_h": s, "stride_w": s, "dilation_h": 1, "dilation_w": 1, "pad_h": pad,
                "pad_w": pad, "layer": {"output_depth": c_out}}

    def replay(c1, c2, cs, in_row, out_row):
        written = 0                                       # output bytes [0, written) exist
        nxt, y_h = 0, c1["out_h"]
        for oy in range(c2["out_h"]):
            need = min(oy - c2["pad_h"] + c2["k_h"] - 1, y_h - 1)
            for j in range(nxt, need + 1):               # conv1 row j reads x rows j*s-p .. +k-1
                lo = max(0, j * c1["stride_h"] - c1["pad_h"])
                if lo * in_row < written:
                    return False
            nxt = max(nxt, need + 1)
            r = oy * cs["stride_h"] - cs["pad_h"] if cs else oy
            if max(r, 0) * in_row < written and cs:
                return False
            if not cs and oy * in_row < written:
                return False
            written = (oy + 1) * out_row
        return True

    rng = np.random.default_rng(0)
    cases = 0
    for _ in range(400):
        h, w = int(rng.integers(2, 12)), int(rng.integers(1, 6))
        c_in, s = int(rng.integers(1, 9)), int(rng.integers(1, 3))
        c_out = int(rng.integers(1, 17)) if s > 1 else c_in
        k1, k2 = int(rng.choice([1, 3, 5])), int(rng.choice([1, 3, 5]))
        c1 = conv(h, w, c_in, c_out, k1, s)
        c2 = conv(c1["out_h"], c1["out_w"], c_out, c_out, k2, 1)
        cs = conv(h, w, c_in, c_out, 1, s) if s > 1 or rng.random() < 0.5 else None
        in_row, out_row = w * c_in, c2["out_w"] * c_out
        assert overwrite_safe(c1, c2, cs, in_row, out_row) == replay(c1, c2, cs, in_row, out_row), (c1, c2, cs)
        cases += 1
    assert cases == 400


def test_mlperf_resnet_blocks_fused_and_half_of_tflm():
    """The MLPerf Tiny ResNet-8: three blocks fused, arena = lower bound, <= 0.5x
    TFLM's 55,984 B (the TFLM figure is measured by tests/test_planner*.py and
    the shared models README)."""
    import os

    from tinyml import paths
    path = os.path.join(paths.shared_models(), "mlperf-tiny", "pretrainedResnet_quant.tflite")
    if not os.path.exists(path):
        pytest.skip(f"reference model not found: {path}")
    g, steps, plan = _steps(path)
    assert [s.kind for s in steps].count("FUSED_RESBLOCK") == 3
    assert plan.arena_bytes == plan.lower_bound
    assert plan.arena_bytes <= 55984 // 2


@pytest.mark.slow
@pytest.mark.emulator
@pytest.mark.timeout(600)
def test_resblocks_dsp_build_matches_tflite(resnet_path, tmp_path):
    """The Cortex-M4 (DSP) build of the blocks on QEMU against TFLite: the second convolution
    reads its windows from a ring of y rows, and with K > 128 (3x3x16, 5x5x16) the chunked
    pixel pairs widen interior windows straight from the ring, also where the window's rows
    wrap around it (conv.c: window_at / window_widen)."""
    import shutil

    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm not installed")
    from opmodels import build_m4
    fw = build_m4(resnet_path, str(tmp_path / "fw"), count=2, seed=4)
    assert fw.model_c().count("tinyml_fused_resblock_s8(&") >= 3, "the blocks are not fused in the build"
    fw.run(timeout=300)
