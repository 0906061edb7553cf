"""Fusion on the shared reference ViT (vit_relu_d64x4.tflite): every LayerNorm,
attention block and MLP is fused, the model stays bit-exact against TFLite
(outputs and every external tensor the fused steps write), and the arena shrinks."""
import os

import pytest

from tinyml import paths

VIT = os.path.join(paths.shared_models(), "vit", "vit_relu_d64x4.tflite")


@pytest.fixture(scope="module")
def vit():
    if not os.path.exists(VIT):
        pytest.skip(f"reference model not found: {VIT}")
    return VIT


def test_vit_groups(vit):
    from tinyml.codegen.fuse import fuse
    from tinyml.codegen.importer import import_tflite
    g = import_tflite(vit)
    groups = fuse(g)
    kinds = [x.kind for x in groups]
    assert kinds.count("FUSED_LAYERNORM") == 9
    assert kinds.count("FUSED_ATTENTION") == 4
    assert kinds.count("FUSED_MLP") == 4
    covered = [o for x in groups for o in x.ops]
    assert len(covered) == len(set(covered))
    # every LayerNorm/attention op kind is inside a group; only the projections,
    # residual ADDs, patch embedding and the head stay unfused
    left = {g.ops[i].kind for i in range(len(g.ops)) if i not in set(covered)}
    assert left <= {"CONV_2D", "RESHAPE", "ADD", "FULLY_CONNECTED", "MEAN"}
    for x in groups:
        if x.kind == "FUSED_ATTENTION":
            assert not any(g.ops[i].kind == "TRANSPOSE" for i in set(range(len(g.ops))) - set(covered)
                           if x.ops[0] <= i <= x.ops[-1])


def test_vit_plan_smaller_with_fusion(vit):
    from test_fuse_helpers import arena
    fused, unfused = arena(vit, fuse=True), arena(vit, fuse=False)
    assert fused < unfused


@pytest.mark.timeout(600)
def test_vit_fused_bit_exact_and_traced(vit):
    from test_fuse_helpers import check_fused_model
    check_fused_model(vit, {"FUSED_LAYERNORM": 9, "FUSED_ATTENTION": 4, "FUSED_MLP": 4}, count=10)


@pytest.mark.timeout(600)
def test_vit_unfused_still_bit_exact(vit):
    from tinyml.codegen.verify import verify
    r = verify(vit, count=3, seed=2, fuse=False)
    assert r.bit_exact, r.first_mismatch
