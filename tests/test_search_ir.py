"""The search's fast path equals the real thing.

memory_planner.search.vit_ir builds a tinyvit config's graph without Keras or the
converter; these tests export real models with tinyvit (weights perturbed so
no zero bias or unit LayerNorm gain is folded away, as after training),
import them with the TFLite importer and check that

- the IR has the same ops, operands, options, tensor shapes, dtypes and
  quantization layout as the exported file, and
- the real lowering + planner give the same plan byte for byte (arena, lower
  bound, every buffer's size, lifetime and offset); flash agrees up to tables the real
  lowering shares because their calibrated values coincide.

A second group checks the per-op lowering cache against `lower_graph` on many
random configs (no export needed).
"""
from __future__ import annotations

import random

import numpy as np
import pytest

from tinyml.errors import TinymlError
from tinyml.tinyvit.config import ViTConfig


def _cfg(**kw) -> ViTConfig:
    base = dict(name="c", image_size=28, channels=1, patch_size=7, embed_dim=16, depth=1,
                num_heads=2, mlp_ratio=2.0, activation="relu", pool="mean")
    base.update(kw)
    return ViTConfig(**base).validate()


def random_config(rng: random.Random, name: str = "r") -> ViTConfig:
    """A random small config from the space the search uses (and the IR supports)."""
    while True:
        image = rng.choice([16, 28, 32])
        patch = rng.choice([p for p in (2, 4, 7, 8) if image % p == 0 and image // p >= 2])
        heads = rng.choice([1, 2, 4])
        dim = heads * rng.choice([2, 4, 6, 8])
        kw = dict(name=name, image_size=image, channels=rng.choice([1, 1, 3]), patch_size=patch,
                  embed_dim=dim, depth=rng.choice([1, 2]), num_heads=heads,
                  mlp_ratio=rng.choice([1.0, 1.5, 2.0, 3.0]),
                  activation=rng.choice(["relu", "relu", "gelu", "hard_swish"]),
                  pool=rng.choice(["mean", "mean", "cls"]),
                  num_classes=rng.choice([2, 10]))
        for k in ("qkv_rank", "proj_rank", "mlp_rank", "patch_rank"):
            kw[k] = rng.choice([0, 0, 2, 3, 5])
        if rng.random() < 0.15:
            kw.update(head="detect", pool="mean")
        cfg = ViTConfig(**kw)
        try:
            cfg.validate()
        except TinymlError:
            continue
        if cfg.head_dim >= 2 and cfg.grid >= 2:
            return cfg


def export_graph(cfg: ViTConfig, tmp_path):
    """Export `cfg` with tinyvit (perturbed untrained weights) and import it.

    Seeded, so the exported values are the same on every run: the flash comparison
    below depends on which derived tables come out equal, i.e. on the values."""
    import keras

    from tinyml.codegen.importer import import_tflite
    from tinyml.tinyvit.export import to_int8_tflite
    from tinyml.tinyvit.model import build_model
    keras.utils.set_random_seed(1)          # Keras initialisers (were unseeded)
    model = build_model(cfg)
    rng = np.random.default_rng(1)
    model.set_weights([(w + rng.normal(0, 0.05, w.shape)).astype(w.dtype) for w in model.get_weights()])
    x = np.random.default_rng(0).random((32, *cfg.input_shape)).astype(np.float32)
    path = tmp_path / f"{cfg.name}.tflite"
    path.write_bytes(to_int8_tflite(model, cfg, x, count=8))
    return import_tflite(str(path))


def plan_summary(graph, cached: bool):
    """(plan signature, flash constants) through the pipeline, with or without the cache."""
    from tinyml.codegen.lower_cache import LoweringCache, plan_signature
    from tinyml.codegen.pipeline import compile
    # constant_bytes = what `tinyml plan` / weights.c hold: constants the calls reference +
    # derived arrays (the cache: Step.const_refs + each step's recorded table bytes)
    c = compile(graph, lowerer=LoweringCache() if cached else None)
    return plan_signature(c.plan), c.constant_bytes


def assert_same_as_export(cfg: ViTConfig, tmp_path):
    from tinyml.memory_planner.search.vit_ir import build_graph, structural_diff
    real = export_graph(cfg, tmp_path)
    mine = build_graph(cfg)
    diff = structural_diff(mine, real)
    assert not diff, f"{cfg.to_dict()}:\n" + "\n".join(diff)
    (sig_real, flash_real) = plan_summary(real, cached=False)
    (sig_mine, flash_mine) = plan_summary(mine, cached=True)
    assert sig_mine[0] == sig_real[0], "arena bytes"
    assert sig_mine[1] == sig_real[1], "lower bound"
    assert sig_mine[2] == sig_real[2], "buffers (name, size, lifetime, offset, tensors)"
    assert sig_mine == sig_real
    # The search's depth-family path (graph and steps copied from a depth-3 reference)
    # plans the same bytes too.
    from tinyml.codegen.lower_cache import LoweringCache, plan_signature
    from tinyml.memory_planner.search.cost import CostModel
    model = CostModel()
    fam = model.family_inputs(cfg)
    if cfg.head != "detect" or fam is not None:
        assert fam is not None, "classifier configs go through the family path"
        assert plan_signature(model.plan_config(cfg).plan) == sig_real
    # Flash: the fast path counts every generated table once per fused step; the real
    # lowering shares tables that come out equal after calibration (fused_common.shared_array),
    # so it may be a little smaller, never larger.
    assert flash_real <= flash_mine, (flash_mine, flash_real)
    # Counted the fast path's way (each step's tables in its own context), the export's
    # flash agrees within 1%: table sharing (fused_common.shared_array) also merges
    # arrays inside one step when their values coincide (e.g. equal multiplier and
    # shift rows), which depends on trained values the fast path does not have.
    from tinyml.codegen.pipeline import compile
    # A fresh cache without its self-check: on trained weights, tables merged inside one
    # step depend on values, so a template reused for an op with other values may count
    # fewer bytes than lower_graph (the check would rightly refuse the cache there; the
    # search only lowers vit_ir's placeholder graphs with it).
    per_step = compile(real, lowerer=LoweringCache(check=False)).constant_bytes
    assert per_step <= flash_mine and flash_mine - per_step <= 0.01 * flash_mine, (flash_mine, per_step)
    # and evaluate() (family path or not) reports those weights
    assert model.evaluate(cfg).weights_bytes == flash_mine


# Named variants: every converter rewrite vit_ir models at least once.
VARIANTS = {
    "lowrank_all_cls_hswish": dict(qkv_rank=4, proj_rank=4, mlp_rank=4, patch_rank=6, pool="cls",
                                   activation="hard_swish", depth=2),
    "one_head_gelu_lowrank": dict(num_heads=1, activation="gelu", mlp_rank=3, qkv_rank=3, proj_rank=5),
    "detect_rgb": dict(head="detect", image_size=32, patch_size=8, channels=3, num_classes=3,
                       mlp_ratio=1.0),
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_ir_matches_export_variants(name, tmp_path):
    assert_same_as_export(_cfg(name=name, **VARIANTS[name]), tmp_path)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("seed", [0, 1])
def test_ir_matches_export_random(seed, tmp_path):
    assert_same_as_export(random_config(random.Random(seed), f"r{seed}"), tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("seed", list(range(2, 14)))
def test_ir_matches_export_random_sweep(seed, tmp_path):
    assert_same_as_export(random_config(random.Random(seed), f"r{seed}"), tmp_path)


def test_cached_lowering_plans_like_lower_graph():
    """Per-op lowering cache == lower_graph, step for step and plan for plan, on 25 random
    configs, one cache warming up across them (check raises LoweringDivergence otherwise)."""
    from tinyml.codegen.lower_cache import LoweringCache
    from tinyml.memory_planner.search.vit_ir import build_vit
    rng = random.Random(123)
    cache = LoweringCache()
    for k in range(25):
        cfg = random_config(rng, f"c{k}")
        g, layout = build_vit(cfg)
        cache.check(g, blocks=layout if k % 2 else None)
    assert cache.hits > cache.misses > 0


def _warm_cache_and_graph():
    from tinyml.codegen.lower_cache import LoweringCache
    from tinyml.memory_planner.search.vit_ir import build_vit
    g, layout = build_vit(_cfg(depth=2, activation="gelu"))
    cache = LoweringCache()
    cache.check(g, blocks=layout)
    return cache, g, layout


def test_divergent_lowering_is_named(monkeypatch):
    """A lowering that changes after the cache is warm: the check names the op (index, kind)."""
    from tinyml.codegen import lowering
    from tinyml.codegen.lower_cache import LoweringDivergence
    cache, g, layout = _warm_cache_and_graph()
    real = lowering.LOWERINGS["MEAN"]

    def more_scratch(op, graph, ctx):
        step = real(op, graph, ctx)
        step.scratch_bytes += 16
        return step

    # the token pooling MEAN (the LayerNorms' MEANs are fused into FUSED_LAYERNORM)
    monkeypatch.setitem(lowering.LOWERINGS, "MEAN", more_scratch)
    pool = next(op for op in g.ops if op.kind == "MEAN" and not op.options.keep_dims)
    with pytest.raises(LoweringDivergence) as e:
        cache.check(g, blocks=layout)
    assert (e.value.op_index, e.value.kind) == (pool.index, "MEAN")
    assert f"op {pool.index} (MEAN)" in str(e.value) and "scratch_bytes" in str(e.value)


def test_corrupt_template_is_named():
    """A cached template that is wrong (here: its scratch size) is caught by the check."""
    from tinyml.codegen.lower_cache import LoweringCache, LoweringDivergence
    cache, g, layout = _warm_cache_and_graph()
    [tpl] = [t for t in cache.templates.values() if t.ok and t.kind == "CONV_2D"]
    tpl.scratch_bytes += 4
    with pytest.raises(LoweringDivergence) as e:
        cache.check(g)
    assert (e.value.op_index, e.value.kind) == (0, "CONV_2D")
    assert "op 0 (CONV_2D)" in str(e.value)
    LoweringCache().check(g, blocks=layout)      # a fresh cache agrees with lower_graph again


def test_depth_family_path_equals_direct_build_and_lowering():
    """Depth families: the graph copied from the depth-3 reference is build_graph's (ops,
    operands, tensors, names) and its steps are lower_graph's; costs equal the direct path."""
    import dataclasses
    from tinyml.memory_planner.search.cost import CostModel
    from tinyml.memory_planner.search.space import space_for_dataset
    space = space_for_dataset("digits")
    rng = random.Random(11)
    families, direct = CostModel(), CostModel(families=False)
    checked = 0
    for k in range(6):
        base = space.sample(rng) if k % 2 else random_config(rng, f"f{k}")
        for depth in (1, 2, 3, 4, 6):
            cfg = dataclasses.replace(base, depth=depth, name=f"f{k}_{depth}")
            families.family_check(cfg)          # raises FamilyDivergence naming what differs
            if families.family_inputs(cfg) is None:
                continue
            checked += 1
            a, b = families.evaluate(cfg), direct.evaluate(cfg)
            assert a == b, (cfg.name, a, b)
    assert checked >= 20


def test_family_divergence_is_raised():
    """A reference whose copied steps are wrong fails the family check, naming the op."""
    import dataclasses
    from tinyml.memory_planner.search.cost import CostModel, FamilyDivergence
    model = CostModel(check=False)
    cfg = _cfg(depth=4)
    ref = model.reference(cfg)
    coded = ref.steps_by_segment[2][0]        # the first step of reference block 1
    st = coded.step
    coded.step = dataclasses.replace(st, scratch_bytes=st.scratch_bytes + 8)
    op = model.reference(cfg).recipe.graph.ops[st.index]
    with pytest.raises(FamilyDivergence) as e:
        model.family_check(cfg)
    # the copy of reference block 1 is block 1 of the depth-4 graph: same op indices
    assert f"op {st.index} ({op.kind}): " in str(e.value) and "scratch_bytes" in str(e.value)


def test_cost_agrees_with_tinyvit_macs_and_params():
    """MACs and weight count of the IR against tinyvit's own counters (Keras side)."""
    from tinyml.memory_planner.search.cost import evaluate
    from tinyml.tinyvit.model import build_model, count_macs
    cfg = _cfg(embed_dim=24, num_heads=2, depth=2, qkv_rank=4, mlp_rank=6, patch_rank=5)
    cost = evaluate(cfg)
    assert cost.macs == count_macs(cfg)
    model = build_model(cfg)
    # int8 weights = Keras kernels + LayerNorm gamma/beta + position table (biases are int32)
    kernels = sum(int(np.prod(w.shape)) for w in model.weights if "bias" not in w.path)
    eps_and_scale = 2
    assert cost.params == kernels + eps_and_scale


@pytest.mark.parametrize("bad", [dict(patch_size=28), dict(embed_dim=8, num_heads=8),
                                 dict(qkv_rank=1)])
def test_unmodelled_corners_are_refused(bad):
    from tinyml.memory_planner.search.vit_ir import build_graph
    with pytest.raises(TinymlError):
        build_graph(_cfg(**bad))
