"""FUSED_INVERTED_RESIDUAL (codegen/ops/fused_invres.py): MobileNetV2 blocks run as one
row pipeline. Keras models converted by TFLiteConverter the standard way (per-channel, and
per-tensor with the converter's per-channel switch off); the judge is TFLite's reference
interpreter (bit-exact outputs and every traced external tensor)."""
import os
import shutil

import numpy as np
import pytest

from keras_convert import batches, standard_int8, write
from test_fuse_helpers import check_fused_model, perturb

# blocks of _model: (expand, k, stride, residual, ZeroPadding2D before a VALID depthwise);
# expand: 0 none (the depthwise reads the block input), t a 1x1 to t x channels, "3x3/2" a
# 3x3 stride-2 convolution to 2 x channels (MobileNetV2's stem before its first block)
BLOCKS = [(0, 3, 1, False, False),       # on the model input (3 channels: the tail path)
          (6, 3, 1, True, False),
          (3, 5, 2, False, False),
          (6, 3, 1, True, False),
          (4, 3, 2, False, True),         # Keras' correct_pad before a stride-2 VALID depthwise
          ("3x3/2", 3, 1, False, False),
          (2, 5, 1, True, False)]
OUTS = [8, 8, 10, 10, 12, 12, 12]


def _model(keras):
    L = keras.layers
    inp = keras.Input((13, 11, 3), batch_size=1)
    x, ch = inp, 3
    for i, ((t, k, s, res, zpad), c_out) in enumerate(zip(BLOCKS, OUTS)):
        y = x
        if t == "3x3/2":
            y = L.Conv2D(2 * ch, 3, strides=2, padding="same", activation="relu6")(y)
        elif t:
            y = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(ch * t, 1, use_bias=False)(y)))
        if zpad:
            y = L.ZeroPadding2D(((0, 1), (1, 1)))(y)
            y = L.DepthwiseConv2D(k, strides=s, padding="valid", use_bias=False)(y)
        else:
            y = L.DepthwiseConv2D(k, strides=s, padding="same", use_bias=False)(y)
        y = L.ReLU(6.0)(L.BatchNormalization()(y))
        y = L.BatchNormalization()(L.Conv2D(c_out, 1, use_bias=False)(y))
        if res:
            assert c_out == ch and s == 1
            y = L.Add()([x, y] if i % 2 else [y, x])
        x, ch = y, c_out
    out = L.Dense(5)(L.GlobalAveragePooling2D()(x))
    m = keras.Model(inp, out)
    perturb(m, sigma=0.2)
    return m


def _convert(model, path: str, per_channel: bool) -> str:
    data = np.random.default_rng(0).normal(0.0, 1.0, size=(32, 13, 11, 3)).astype(np.float32)
    return write(standard_int8(model, batches(data), per_channel=per_channel), path)


@pytest.fixture(scope="module")
def keras_model():
    import keras
    keras.utils.set_random_seed(0)
    return _model(keras)


@pytest.fixture(scope="module")
def converted(keras_model, tmp_path_factory):
    """per_channel -> .tflite path, each conversion done once per module."""
    cache = {}

    def get(per_channel: bool) -> str:
        if per_channel not in cache:
            d = tmp_path_factory.mktemp("ir")
            cache[per_channel] = _convert(keras_model, str(d / f"ir_{per_channel}.tflite"), per_channel)
        return cache[per_channel]
    return get


@pytest.fixture(params=[True, False], ids=["per_channel", "per_tensor"])
def invres_path(request, converted):
    return converted(request.param)


def _steps(path):
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.lower import lower_graph
    from tinyml.memory_planner.plan import plan_steps
    g = import_tflite(path)
    steps, _ = lower_graph(g)
    return g, steps, plan_steps(g, steps)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_blocks_fused_bit_exact(invres_path):
    """Every block is one FUSED_INVERTED_RESIDUAL step, the bytes equal TFLite's, and the
    fused kind is in the plan (steps) in place of the member ops."""
    check_fused_model(invres_path, {"FUSED_INVERTED_RESIDUAL": len(BLOCKS), "FUSED_ADD": 0}, count=6)
    g, steps, plan = _steps(invres_path)
    kinds = [s.kind for s in steps]
    assert kinds.count("FUSED_INVERTED_RESIDUAL") == len(BLOCKS)
    assert "DEPTHWISE_CONV_2D" not in kinds and "ADD" not in kinds
    blocks = [s for s in steps if s.kind == "FUSED_INVERTED_RESIDUAL"]
    # the expanded tensor never exists: fused steps read the block input, write its output
    assert [("ADD" if "-> ADD" in s.comment else "") for s in blocks] == [
        "ADD" if b[3] else "" for b in BLOCKS]
    # the ZeroPadding2D stays a PAD in the file and is folded into the depthwise's padding
    assert ["padding folded" in s.comment for s in blocks] == [b[4] for b in BLOCKS]
    # residual blocks write over their input (Overlap of 0 bytes, output placed at the input)
    for s, b in zip(blocks, BLOCKS):
        if b[3]:
            assert s.overlap.down_bytes == 0
            assert plan.offset_of(s.outputs[0]) <= plan.offset_of(s.inputs[0])


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_scratch_planned_is_what_the_kernel_needs(tmp_path, converted):
    """The lowering's scratch bytes equal tinyml_fused_invres_s8_scratch_size() for every
    block (host build with -DTINYML_CHECK_SCRATCH), and the run passes the kernel's checks."""
    from test_scratch_size import check_generated, generate_steps
    path = converted(True)
    steps = generate_steps(path, str(tmp_path / "gen"))
    facts, short, status = check_generated(str(tmp_path / "gen"))
    planned = {s.index: s.scratch_bytes for s in steps}
    fused = [f for f in facts if f[1] == "tinyml_fused_invres_s8"]
    assert len(fused) == len(BLOCKS)
    assert all(needed == planned[op] for op, _, _, needed in fused), fused
    assert short == 0 and status == 0


def _brute_down(dw, expand, has_add, in_row, out_row):
    """Smallest distance the output must start before x, from the kernel's reads and
    writes replayed one x row at a time (written: output bytes so far)."""
    reads = []                                          # (output bytes written, x row read)
    reach = (dw["k_h"] - 1) * dw["dilation_h"]
    computed = 0
    for oy in range(dw["out_h"]):
        written = oy * out_row
        top = oy * dw["stride_h"] - dw["pad_h"]
        window = [top + k * dw["dilation_h"] for k in range(dw["k_h"])]
        window = [r for r in window if 0 <= r < dw["in_h"]]
        if expand is not None:
            last = min(top + reach, dw["in_h"] - 1)
            while computed <= last:                     # e row `computed`: its expand window's x rows
                es, ep, ek = expand
                reads += [(written, r) for r in range(computed * es - ep, computed * es - ep + ek) if r >= 0]
                computed += 1
        else:
            reads += [(written, r) for r in window]
        if has_add:
            reads.append((written, oy))                 # element-wise, read before written
    d = 0
    while any(w - d > r * in_row for w, r in reads):
        d += 1
    return d


def test_overlap_matches_a_brute_force_replay():
    from tinyml.codegen.ops.fused_invres import overlap_down_bytes
    rng = np.random.default_rng(0)
    for _ in range(300):
        h, w = int(rng.integers(1, 12)), int(rng.integers(1, 6))
        k, s, dil = int(rng.choice([1, 3, 5])), int(rng.integers(1, 3)), int(rng.integers(1, 3))
        eff = (k - 1) * dil + 1
        same = bool(rng.integers(0, 2))
        out_h = -(-h // s) if same else max(1, (h - eff) // s + 1)
        if not same and h < eff:
            continue
        pad = max((out_h - 1) * s + eff - h, 0) // 2 if same else 0
        dw = {"k_h": k, "dilation_h": dil, "stride_h": s, "pad_h": pad, "in_h": h, "out_h": out_h}
        expand = None                                   # (stride, top pad, window rows)
        if rng.integers(0, 3):
            ek = int(rng.choice([1, 3]))
            expand = (int(rng.integers(1, 3)), int(rng.integers(0, ek)), ek)
        has_add = s == 1 and same and bool(rng.integers(0, 2))
        in_row = w * int(rng.integers(1, 9))
        out_row = in_row if has_add else -(-w // s) * int(rng.integers(1, 17))
        assert overlap_down_bytes(dw, expand and expand[:2], has_add, in_row, out_row) == \
            _brute_down(dw, expand, has_add, in_row, out_row), (dw, expand, has_add, in_row, out_row)


def test_mobilenet_v1_chains_stay_unfused():
    """MobileNetV1 (VWW): its pointwise convolutions have activations, so no linear
    bottleneck; the plan is unchanged (tests/test_planner_identity.py pins the bytes)."""
    from tinyml import paths
    path = os.path.join(paths.shared_models(), "mlperf-tiny", "vww_96_int8.tflite")
    if not os.path.exists(path):
        pytest.skip(f"reference model not found: {path}")
    from test_fuse_helpers import kinds
    assert "FUSED_INVERTED_RESIDUAL" not in kinds(path)


def test_shared_mobilenet_v2_blocks_fused_at_the_bound():
    """MobileNetV2 0.30 80x80: all 17 blocks fused (the stem convolution inside the first);
    arena = lower bound = 21,824 B (77,760 B unfused), under half of Plumerai's published 80 KiB."""
    from tinyml import paths
    path = os.path.join(paths.shared_models(), "mobilenetv2", "mobilenetv2_a030_80_int8.tflite")
    if not os.path.exists(path):
        pytest.skip(f"reference model not found: {path}")
    g, steps, plan = _steps(path)
    assert [s.kind for s in steps].count("FUSED_INVERTED_RESIDUAL") == 17
    assert plan.arena_bytes == plan.lower_bound == 21824
    assert plan.arena_bytes <= 40960


def _emulate(path: str, out: str, fused: bool):
    """Self-test build for stm32f4-discovery (Cortex-M4: the DSP path of the kernel) on QEMU,
    with or without FUSED_INVERTED_RESIDUAL; (plan arena, emulation result)."""
    from tinyml.codegen import patterns
    from tinyml.codegen.pipeline import CompileOptions, compile
    from tinyml.firmware.build import build_firmware
    from tinyml.firmware.emulate import emulate
    saved = patterns.PATTERNS.pop("FUSED_INVERTED_RESIDUAL") if not fused else None
    try:
        plan = compile(path, CompileOptions()).plan
        build_firmware(path, "stm32f4-discovery", out, num_vectors=2, progress=lambda m: None)
    finally:
        if saved is not None:
            patterns.PATTERNS["FUSED_INVERTED_RESIDUAL"] = saved
    return plan, emulate(out, timeout=300)


@pytest.mark.slow
@pytest.mark.emulator
@pytest.mark.timeout(600)
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_emulator_bit_exact_planned_equals_measured(tmp_path, converted):
    """On the emulator: the fused build passes its self-test (bit-exact with TFLite), the
    firmware's arena is the plan's and is used up to its highest tensor, and the fused build's instruction
    count stays within 13% of the unfused one (nothing is recomputed; both builds' depthwise and 1x1
    convolutions use the fast requantization epilogue of issue 15: measured 1,864,161 -> 1,931,077,
    +3.6%; since issue 15 round 6 the unfused build's standalone DEPTHWISE_CONV_2D runs depthwise.c's
    row form, which the fused rows (fused_invres.c, dw3_run) do not use yet, and both builds' 1x1
    convolutions got faster, the unfused ones by more (the fused kernel's per-row calls keep their
    fixed costs): measured with the row form alone 1,247,551 -> 1,374,985 (+10.2%), with round 6's
    conv.c alone 1,278,834 -> 1,345,298 (+5.2%), with both 1,208,750 -> 1,340,774 (+10.9%))."""
    path = converted(True)
    plan, res = _emulate(path, str(tmp_path / "fused"), True)
    assert res.passed, res.output[-2000:]
    assert res.arena_bytes == plan.arena_bytes and res.arena_used_bytes <= plan.arena_bytes
    # every tensor buffer is written whole, so the measured high-water reaches the highest tensor end
    from tinyml.codegen.importer import import_tflite
    g = import_tflite(path)
    assert res.arena_used_bytes >= max(plan.offset_of(t) + g.t(t).nbytes for t in plan.tensor_buffer)
    plan0, res0 = _emulate(path, str(tmp_path / "unfused"), False)
    assert res0.passed and plan.arena_bytes < plan0.arena_bytes
    print(f"arena {plan0.arena_bytes} -> {plan.arena_bytes} B, instructions "
          f"{res0.instructions_per_inference} -> {res.instructions_per_inference}")
    assert res.instructions_per_inference <= 1.13 * res0.instructions_per_inference
