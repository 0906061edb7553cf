"""The reference ViT (vit_relu_d64x4.tflite) end to end: generated C vs. the TFLite reference, byte for byte."""
import os

import pytest

from tinyml import paths

VIT = os.path.join(paths.shared_models(), "vit", "vit_relu_d64x4.tflite")


def _require_supported():
    if not os.path.exists(VIT):
        pytest.skip(f"reference model not found: {VIT}")
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.lower import unsupported_ops
    missing = unsupported_ops(import_tflite(VIT))
    if missing:
        kinds = sorted({k for _, k in missing})
        pytest.skip(f"ViT ops without a lowering yet: {', '.join(kinds)} ({len(missing)} operators)")


def _check(count: int, seed: int, sanitize: bool = False, fuse: bool = True):
    from tinyml.codegen.verify import verify
    r = verify(VIT, count=count, seed=seed, sanitize=sanitize, fuse=fuse)
    assert r.oracle == "tflite-reference"
    assert r.inputs_compared == count
    assert r.bit_exact, f"{r.mismatching_bytes} of {r.output_bytes_compared} output bytes differ; first {r.first_mismatch}"


# fuse=False runs every TFLite op through its own kernel (ADD, MEAN, SQUARED_DIFFERENCE,
# RSQRT, MUL, SOFTMAX, ...); fuse=True runs the fused LayerNorm/attention kernels.
FUSE = pytest.mark.parametrize("fuse", [False, True], ids=["unfused", "fused"])


@FUSE
@pytest.mark.timeout(600)
def test_vit_bit_exact_10_inputs(fuse):
    _require_supported()
    _check(count=10, seed=0, fuse=fuse)


@FUSE
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_vit_bit_exact_100_inputs(fuse):
    _require_supported()
    _check(count=100, seed=1, fuse=fuse)


@FUSE
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_vit_bit_exact_sanitized(fuse):
    # The whole model under ASan/UBSan: no kernel reads or writes outside its tensors.
    _require_supported()
    _check(count=2, seed=2, sanitize=True, fuse=fuse)
