"""Graph fusion (codegen/fuse.py) on Keras models converted by TFLiteConverter:
each fused pattern is found, bit-exact against the TFLite reference (outputs and
every traced external tensor), and never grows the arena; graphs without a full
pattern are left alone."""
import copy

import numpy as np
import pytest

from test_fuse_helpers import check_fused_model, convert, perturb


@pytest.fixture(scope="module")
def keras():
    import keras
    return keras


@pytest.fixture(scope="module")
def layernorm_model(keras, tmp_path_factory):
    inp = keras.Input((12, 24), batch_size=1)
    x = keras.layers.Dense(24)(inp)
    y = keras.layers.LayerNormalization(epsilon=1e-5)(x)
    y = keras.layers.Dense(16)(y)
    m = keras.Model(inp, y)
    perturb(m)
    return convert(m, (12, 24), str(tmp_path_factory.mktemp("ln") / "ln.tflite"))


@pytest.mark.timeout(300)
def test_layernorm_fused_bit_exact(layernorm_model):
    check_fused_model(layernorm_model, {"FUSED_LAYERNORM": 1})


@pytest.mark.timeout(300)
def test_layernorm_inplace_declared(layernorm_model):
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.lower import lower_graph
    g = import_tflite(layernorm_model)
    steps, _ = lower_graph(g)
    ln = [s for s in steps if s.kind == "FUSED_LAYERNORM"]
    assert len(ln) == 1 and len(ln[0].ops) == 13
    assert ln[0].inplace_ok == [(ln[0].inputs[0], ln[0].outputs[0])]
    covered = {o for s in steps for o in s.ops}
    assert covered == {op.index for op in g.ops}


@pytest.mark.timeout(300)
def test_partial_layernorm_is_left_unfused(layernorm_model):
    """An intermediate that is also read outside the chain (here: made a graph
    output) breaks the pattern: no group, and lowering equals the unfused one."""
    from tinyml.codegen.fuse import fuse
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.lower import lower_graph
    g = import_tflite(layernorm_model)
    [grp] = fuse(g)
    inner = g.ops[grp.ops[6]].outputs[0]                  # a per-row intermediate
    g2 = copy.deepcopy(g)
    g2.outputs = list(g2.outputs) + [inner]
    assert fuse(g2) == []
    a, _ = lower_graph(g2, fuse=True)
    b, _ = lower_graph(g2, fuse=False)
    assert [(s.kind, s.ops, s.inputs, s.outputs) for s in a] == [(s.kind, s.ops, s.inputs, s.outputs) for s in b]


def test_models_without_patterns_are_unchanged():
    import os

    from tinyml.codegen.fuse import fuse
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.lower import lower_graph
    from tinyml import paths
    # ad01 is a chain of FCs on one row: nothing to save, so no FUSED_MLP either
    for name in ("mlperf-tiny/kws_ref_model.tflite", "mlperf-tiny/pretrainedResnet_quant.tflite",
                 "mlperf-tiny/ad01_int8.tflite"):
        path = os.path.join(paths.shared_models(), name)
        if not os.path.exists(path):
            pytest.skip(f"reference model not found: {path}")
        g = import_tflite(path)
        before = copy.deepcopy(g)
        # The only patterns a CNN may match are residual ones (ResNet's skip connections).
        groups = fuse(g)
        assert all(x.kind in ("FUSED_ADD", "FUSED_RESBLOCK") for x in groups), groups
        if not groups:
            a, _ = lower_graph(g, fuse=True)
            b, _ = lower_graph(g, fuse=False)
            assert [(s.kind, s.ops, s.inputs, s.outputs, s.calls) for s in a] == \
                   [(s.kind, s.ops, s.inputs, s.outputs, s.calls) for s in b]
        assert [(o.kind, o.inputs, o.outputs) for o in g.ops] == [(o.kind, o.inputs, o.outputs) for o in before.ops]


def _attention_model(keras, n=10, d=16, heads=2, scale=True, merge_heads=True):
    from keras import ops

    class QKt(keras.layers.Layer):
        def call(self, x):
            q, k = x
            s = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
            return s * (1.0 / np.sqrt(d // heads)) if scale else s

    class PV(keras.layers.Layer):
        def call(self, x):
            return ops.matmul(x[0], x[1])

    inp = keras.Input((n, d), batch_size=1)
    x = keras.layers.LayerNormalization()(inp)

    def split(t):
        t = keras.layers.Reshape((n, heads, d // heads))(t)
        return keras.layers.Permute((2, 1, 3))(t)
    q, k, v = (split(keras.layers.Dense(d)(x)) for _ in range(3))
    p = keras.layers.Softmax(axis=-1)(QKt()([q, k]))
    o = PV()([p, v])
    if merge_heads:
        o = keras.layers.Permute((2, 1, 3))(o)
    o = keras.layers.Reshape((n, d))(o)
    y = keras.layers.Add()([inp, keras.layers.Dense(d)(o)])
    m = keras.Model(inp, y)
    perturb(m, sigma=0.2)
    return m


@pytest.mark.timeout(300)
def test_attention_fused_bit_exact(keras, tmp_path):
    m = _attention_model(keras)
    path = convert(m, (10, 16), str(tmp_path / "attn.tflite"))
    check_fused_model(path, {"FUSED_ATTENTION": 1, "FUSED_LAYERNORM": 1})


@pytest.mark.timeout(300)
def test_attention_unscaled_heads_not_merged(keras, tmp_path):
    """No MUL before the softmax and the output left as [1, H, N, dh] (no transpose back)."""
    m = _attention_model(keras, n=7, d=24, heads=3, scale=False, merge_heads=False)
    path = convert(m, (7, 24), str(tmp_path / "attn2.tflite"))
    check_fused_model(path, {"FUSED_ATTENTION": 1})


def _mlp_model(keras, layers, n=9, d=20, final_act=None):
    """Dense layers applied per token; `layers` = [(units, activation, use_bias), ...]."""
    inp = keras.Input((n, d), batch_size=1)
    x = inp
    for units, act, bias in layers:
        x = keras.layers.Dense(units, activation=act, use_bias=bias)(x)
    m = keras.Model(inp, keras.layers.Add()([inp, x]) if layers[-1][0] == d else x)
    perturb(m, sigma=0.2)
    return m


@pytest.mark.timeout(300)
@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_mlp_fused_bit_exact(keras, tmp_path, act):
    m = _mlp_model(keras, [(40, act, True), (20, None, True)])
    path = convert(m, (9, 20), str(tmp_path / f"mlp_{act}.tflite"))
    check_fused_model(path, {"FUSED_MLP": 1})


@pytest.mark.timeout(300)
def test_low_rank_pair_and_low_rank_mlp(keras, tmp_path):
    """in -> r (no bias) -> out, and in -> r1 -> hidden -> gelu -> r2 -> out (four FCs, one step).
    (ViT-sized rows: with a handful of tokens the unfused [tokens, r] matrix can hide in the
    planner's output-over-input overlap and cost less than the fused kernel's scratch row.)"""
    pair = _mlp_model(keras, [(8, None, False), (32, None, True)], n=49, d=32)
    path = convert(pair, (49, 32), str(tmp_path / "lowrank.tflite"))
    check_fused_model(path, {"FUSED_MLP": 1})
    chain = _mlp_model(keras, [(6, None, False), (48, "gelu", True), (4, None, False), (20, None, True)])
    path = convert(chain, (9, 20), str(tmp_path / "lowrank_mlp.tflite"))
    check_fused_model(path, {"FUSED_MLP": 1})
    from tinyml.codegen.fuse import fuse
    from tinyml.codegen.importer import import_tflite
    # (the residual ADD after the chain is a separate FUSED_ADD group)
    [g] = [x for x in fuse(import_tflite(path)) if x.kind == "FUSED_MLP"]
    assert len(g.roles["layers"]) == 4


@pytest.mark.timeout(300)
@pytest.mark.parametrize("rows,depth,seed", [(3, 150, 1), (4, 5, 2)])
def test_layernorm_fast_rows_blocks_bit_exact(tmp_path, rows, depth, seed):
    """The LayerNorm fast rows (unit rescalings) over depth 150 (per-row channel
    tables in blocks of 64, 64, 22, beta rescaled per block) and depth 5 (one
    short block): host build bit-exact vs TFLite, every traced tensor equal."""
    from test_speed_dsp_vit import ln_model
    path = ln_model(str(tmp_path / f"ln_{depth}.tflite"), rows, depth, seed)
    check_fused_model(path, {"FUSED_LAYERNORM": 1})
