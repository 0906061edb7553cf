"""A tinyvit ViT with GELU and low-rank layers: bit-exact on the host and in QEMU.

Issue 2 asks for Keras ViTs with LayerNormalization, attention via
BATCH_MATMUL + SOFTMAX, GELU and ReLU MLPs and low-rank (stacked Dense)
layers; issue 3 asks for a GELU + low-rank ViT to run its self-test on the
emulated STM32F746 and STM32F4. The model is built and exported here
(untrained weights, representative data from the digits set), so the test
does not depend on a shipped file.
"""
import os
import shutil

import numpy as np
import pytest

from tinyml.codegen.verify import verify


@pytest.fixture(scope="module")
def gelu_lowrank_tflite(tmp_path_factory):
    from tinyml.tinyvit.config import ViTConfig
    from tinyml.tinyvit.export import to_int8_tflite
    from tinyml.tinyvit.model import build_model

    cfg = ViTConfig(name="gelu_lr", image_size=28, channels=1, patch_size=7, embed_dim=32, depth=2,
                    num_heads=2, mlp_ratio=2.0, activation="gelu", qkv_rank=8, proj_rank=8,
                    mlp_rank=8, patch_rank=6).validate()
    model = build_model(cfg)
    calib = np.random.default_rng(0).random((64, 28, 28, 1)).astype(np.float32)
    data = to_int8_tflite(model, cfg, calib, count=64)
    path = tmp_path_factory.mktemp("gelu") / "vit_gelu_lowrank.tflite"
    path.write_bytes(data)
    return str(path)


@pytest.mark.timeout(900)
def test_gelu_lowrank_vit_ops(gelu_lowrank_tflite):
    from tinyml.codegen.importer import import_tflite
    kinds = import_tflite(gelu_lowrank_tflite).op_counts()
    assert "GELU" in kinds and kinds["BATCH_MATMUL"] == 4 and kinds["SOFTMAX"] == 2
    # low rank: each Dense is two FULLY_CONNECTED, so far more than the 6 per block of full rank
    assert kinds["FULLY_CONNECTED"] >= 2 * 6 * 2


@pytest.mark.timeout(900)
@pytest.mark.parametrize("fuse", [True, False])
def test_gelu_lowrank_vit_bit_exact_host(gelu_lowrank_tflite, fuse):
    res = verify(gelu_lowrank_tflite, count=20, seed=5, sanitize=not fuse, fuse=fuse)
    assert res.inputs_compared == 20 and res.mismatching_bytes == 0, res.first_mismatch


@pytest.mark.emulator
@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc or qemu-system-arm not installed")
@pytest.mark.parametrize("board", ["stm32f746g-disco", "stm32f4-discovery"])
def test_gelu_lowrank_vit_selftest_in_qemu(gelu_lowrank_tflite, board, tmp_path):
    from tinyml.firmware.build import build_firmware
    from tinyml.firmware.emulate import emulate
    out = str(tmp_path / board)
    build_firmware(gelu_lowrank_tflite, board, out, num_vectors=3, emulator_variant=True,
                   progress=lambda m: None)
    res = emulate(out, timeout=300, progress=lambda m: None)
    assert res.passed, res.note
    assert len(res.vectors) == 3 and all(v.passed for v in res.vectors)
    assert res.instructions_per_inference and res.instructions_per_inference > 0
    assert res.arena_used_bytes is not None and res.arena_used_bytes <= res.arena_bytes
