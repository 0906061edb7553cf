"""Issue 13 item 4, the SSD row: a Keras SSD-style detector (conv backbone, box and class
heads) with the TFLite_Detection_PostProcess custom op attached the way the TF Object
Detection API's TFLite export does it (a tf.function with `experimental_implements`, converted
with `allow_custom_ops`; tests/zoo_models.py `ssd`), exported with the standard int8 recipe:
fast NMS with float32 outputs, and regular NMS with int8 outputs. Both verify byte for byte
against TFLite's reference interpreter (the fast one also against tflite_micro), plan below TFLM's arena, and the
fast-NMS model passes its self-test on the emulated F746."""
from __future__ import annotations

import shutil

import pytest

from zoo_models import SSD_MAX_DETECTIONS, export

pytestmark = pytest.mark.timeout(600)

# model -> output bytes per input: boxes, classes, scores (float32 or int8) and the count
OUTPUT_BYTES = {"ssd": 4 * (SSD_MAX_DETECTIONS * 6 + 1), "ssd_regular": SSD_MAX_DETECTIONS * 6 + 1}


@pytest.fixture(scope="module")
def ssd_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("ssd")
    return {name: export(name, d) for name in OUTPUT_BYTES}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OUTPUT_BYTES))
def test_ssd_export_verifies_bit_exact(ssd_models, name):
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.pipeline import plan_model
    from tinyml.codegen.verify import verify
    path = ssd_models[name]
    g = import_tflite(path)
    post = [op for op in g.ops if op.kind == "CUSTOM:TFLite_Detection_PostProcess"]
    assert len(post) == 1 and post[0].options.use_regular_nms == (name == "ssd_regular")
    # the converter keeps the op float and dequantizes its inputs (TFLM's only form)
    assert [g.t(i).dtype for i in post[0].inputs] == ["float32"] * 3
    for oracle in ("tflite", "tflm") if name == "ssd" else ("tflite",):
        res = verify(path, count=4, seed=5, oracle=oracle)
        assert res.bit_exact, (oracle, res.first_mismatch)
        assert res.output_bytes_compared == 4 * OUTPUT_BYTES[name]
    rep, _ = plan_model(path, "stm32f746g-disco", compare_tflm=True)
    print(f"\nzoo {name}: arena {rep.arena_bytes:,} B, TFLM arena {rep.tflm_arena_bytes:,} B "
          f"({rep.arena_bytes / rep.tflm_arena_bytes:.2f}x)")
    assert rep.tflm_arena_bytes and rep.arena_bytes <= rep.tflm_arena_bytes


@pytest.mark.slow
@pytest.mark.emulator
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_ssd_selftest_on_emulated_f746(ssd_models, tmp_path):
    """The post-process's double-precision decode and exp() run on the Cortex-M7 (newlib's libm)
    and give TFLite's bytes on the self-test vectors."""
    from tinyml.firmware.build import build_firmware
    from tinyml.firmware.emulate import emulate
    out = str(tmp_path / "fw")
    res = build_firmware(ssd_models["ssd"], "stm32f746g-disco", out, num_vectors=2, progress=lambda m: None)
    assert res.vectors == 2
    run = emulate(out, timeout=120)
    assert run.passed and len(run.vectors) == 2 and all(v.passed for v in run.vectors), run.output[-2000:]
    print(f"\nssd on the F746 (QEMU): {run.instructions_per_inference:,} instructions, arena {run.arena_bytes:,} B")
