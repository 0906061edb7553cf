"""One-shot supernet (tinyvit/supernet.py) and the supernet ranking of `tinyml search`
(memory_planner/search/oneshot.py): weight sharing, evolution under the exact
constraints, Kendall tau, and a tiny end-to-end search."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args, timeout=600):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


# ---------------------------------------------------------------- Kendall tau
def test_sandwich_extremes_bound_every_feasible_config_of_their_patch_size():
    """The "extremes" sandwich's bounds per patch size: a full-rank config at the maxima of width,
    depth and MLP width, the same at the largest ranks, and the minima (smallest ranks above 0).
    Every feasible config of that patch size reads a slice of the largest ones' tensors and
    contains the smallest's; the bounds need not be feasible, the supernet covers them."""
    from types import SimpleNamespace

    from tinyml.memory_planner.search.candidates import sample_configs
    from tinyml.memory_planner.search.oneshot import sandwich
    from tinyml.memory_planner.search.space import space_for_dataset
    from tinyml.tinyvit.supernet import SupernetSpace
    cfgs = sample_configs(space_for_dataset("digits"), 300, random.Random(0), set())
    pool = [SimpleNamespace(config=c, cost=SimpleNamespace(params=i, macs=0)) for i, c in enumerate(cfgs)]
    sp = SupernetSpace.covering(cfgs, shared_blocks=False)
    sample = sandwich(pool, "extremes")
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        full, lowrank, small, *rest = sample(rng)
        assert len(rest) == 2 and full.patch_size == lowrank.patch_size == small.patch_size
        for c in (full, lowrank, small):
            sp.check(c)
        mine = [c for c in cfgs if c.patch_size == full.patch_size]
        assert (full.qkv_rank, full.proj_rank, full.mlp_rank, full.patch_rank) == (0, 0, 0, 0)
        assert (full.embed_dim, full.depth, full.mlp_dim) == (max(c.embed_dim for c in mine),
                                                              max(c.depth for c in mine),
                                                              max(c.mlp_dim for c in mine))
        assert lowrank.embed_dim == full.embed_dim and lowrank.mlp_dim == full.mlp_dim
        for key in ("qkv_rank", "proj_rank", "mlp_rank", "patch_rank"):
            assert getattr(lowrank, key) == max(getattr(c, key) for c in mine)
            assert getattr(small, key) == min((getattr(c, key) for c in mine if getattr(c, key)), default=0)
        assert (small.embed_dim, small.depth, small.mlp_dim) == (min(c.embed_dim for c in mine),
                                                                 min(c.depth for c in mine),
                                                                 min(c.mlp_dim for c in mine))
        seen.add(full.patch_size)
    assert seen == {c.patch_size for c in cfgs}


def test_balanced_sandwich_draws_towers_by_running_loss():
    """With `balance`, a patch size whose bounds train at 3x the loss of the others is drawn
    in proportion 3:1, mixed with a floor of 1/(4 x towers) each: 0.4375 against 0.1875; without, uniformly."""
    from collections import Counter
    from types import SimpleNamespace

    from tinyml.memory_planner.search.oneshot import sandwich
    pool = [SimpleNamespace(config=SimpleNamespace(patch_size=p, name=f"c{p}_{k}"),
                            cost=SimpleNamespace(params=k, macs=0)) for p in (2, 4, 7, 14) for k in range(3)]
    for balance, expect in ((False, [0.25] * 4), (True, [0.4375, 0.1875, 0.1875, 0.1875])):
        s = sandwich(pool, "params", balance)
        rng = np.random.default_rng(1)
        drawn = Counter()
        for _ in range(3000):
            cfgs = s(rng)
            drawn[cfgs[0].patch_size] += 1
            s.observe(cfgs, [3.0 if cfgs[0].patch_size == 2 else 1.0] * len(cfgs))
        share = [drawn[p] / 3000 for p in (2, 4, 7, 14)]
        w = s.weights()
        assert w.min() >= 1 / 16 - 1e-9 and abs(w.sum() - 1) < 1e-9
        assert np.allclose(share, expect, atol=0.04), (balance, share)


def test_sandwich_params_rule_takes_each_patch_sizes_largest_and_smallest_by_parameters():
    """Per step: one patch size's most- and fewest-parameter feasible configs, two random ones;
    patch sizes drawn uniformly (the MACs order made a width-16 patch-2 net the 'largest')."""
    from collections import Counter
    from types import SimpleNamespace

    from tinyml.memory_planner.search.oneshot import sandwich
    pool = []
    for i, (p, params) in enumerate([(2, 50), (2, 80), (4, 300), (4, 10), (4, 90), (7, 5000), (7, 60)] + [(14, k) for k in range(100, 120)]):
        cfg = SimpleNamespace(patch_size=p, name=f"c{i}")
        macs = 10_000_000 if p == 2 else params        # patch 2: most MACs, few parameters
        pool.append(SimpleNamespace(config=cfg, cost=SimpleNamespace(params=params, macs=macs)))
    groups = {p: sorted((c for c in pool if c.config.patch_size == p), key=lambda c: c.cost.params)
              for p in (2, 4, 7, 14)}
    sample = sandwich(pool, "params")
    rng = np.random.default_rng(0)
    firsts = Counter()
    for _ in range(400):
        big, small, *rest = sample(rng)
        g = groups[big.patch_size]
        assert big is g[-1].config and small is g[0].config and len(rest) == 2
        firsts[big.patch_size] += 1
    assert all(70 <= firsts[p] <= 130 for p in (2, 4, 7, 14)), firsts      # uniform over patch sizes (~100 each)


def test_kendall_picks_are_spread_over_patch_sizes_and_parameter_strata():
    """The N stand-alone trainings cover every patch size (slots dealt in turn, as many as a
    patch size has) and, within one, one candidate from each equal stratum of the parameter
    order (by MACs strata most picks landed on the large patches)."""
    from types import SimpleNamespace

    from tinyml.memory_planner.search.oneshot import spread_picks
    pool = []
    for i, (p, n) in enumerate([(2, 3), (4, 40), (7, 40), (14, 40)]):
        for params in random.Random(i).sample(range(1000), n):
            pool.append(SimpleNamespace(cost=SimpleNamespace(params=params, macs=0),
                                        config=SimpleNamespace(name=f"p{p}_{params}", patch_size=p)))
    for seed in range(5):
        picks = spread_picks(pool, 12, random.Random(seed))
        assert len(picks) == 12 and len({id(c) for c in picks}) == 12
        per = {p: [c for c in picks if c.config.patch_size == p] for p in (2, 4, 7, 14)}
        assert [len(per[p]) for p in (2, 4, 7, 14)] == [3, 3, 3, 3]
        for p in (4, 7, 14):     # pick j of a patch size is from the j-th third of its parameter order
            order = sorted((c for c in pool if c.config.patch_size == p), key=lambda c: c.cost.params)
            assert [order.index(c) * 3 // 40 for c in per[p]] == [0, 1, 2]
    picks = spread_picks(pool, 20, random.Random(0))       # patch 2 has only 3: the others take the rest
    assert sorted(sum(c.config.patch_size == p for c in picks) for p in (2, 4, 7, 14)) == [3, 5, 6, 6]
    assert len(spread_picks(pool[:2], 10, random.Random(0))) == 2


def test_kendall_tau_against_hand_computed_values():
    from tinyml.memory_planner.search.oneshot import kendall_tau
    # b = 3 1 2 5 4 against 1..5: discordant pairs (3,1) (3,2) (5,4), 7 concordant -> (7-3)/10
    assert kendall_tau([1, 2, 3, 4, 5], [3, 1, 2, 5, 4]) == pytest.approx(0.4)
    assert kendall_tau([1, 2, 3], [1, 2, 3]) == 1.0
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    # ties: pairs 12 c, 13 c, 14 c, 23 tie in a, 24 d, 34 tie in b: tau-b = (3-1)/sqrt(5*5)
    assert kendall_tau([1, 2, 2, 3], [1, 3, 2, 2]) == pytest.approx(0.4)
    from scipy.stats import kendalltau
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 12).tolist(), rng.integers(0, 5, 12).tolist()
    assert kendall_tau(a, b) == pytest.approx(kendalltau(a, b).statistic)
    with pytest.raises(ValueError):
        kendall_tau([1.0], [2.0])


# ---------------------------------------------------------------- evolution
class _FakeNet:
    """Fitness without TensorFlow: a fixed function of the config (more width and depth, better)."""

    def __init__(self) -> None:
        self.asked: list = []
        self.space = self

    def covers(self, cfg) -> bool:
        return True

    def accuracy(self, cfg, x, y) -> float:
        self.asked.append(cfg)
        return (cfg.embed_dim * cfg.depth % 97) / 97.0


def test_evolution_scores_only_candidates_the_real_planner_fits():
    """Every candidate given a fitness fits the SRAM budget: re-planned here from scratch
    (vit_ir graph -> codegen.pipeline.compile, the real lowering and planner); children over
    the budget are rejected, not scored."""
    from tinyml.codegen.pipeline import compile as compile_graph
    from tinyml.memory_planner.search.budget import Budget
    from tinyml.memory_planner.search.candidates import Candidate
    from tinyml.memory_planner.search.cost import CostModel
    from tinyml.memory_planner.search.oneshot import SupernetSettings, evolve
    from tinyml.memory_planner.search.space import space_for_dataset
    from tinyml.memory_planner.search.vit_ir import build_graph
    space = space_for_dataset("digits8")
    model = CostModel()
    rng = random.Random(5)
    pool = [Candidate(c, model.evaluate(c)) for c in (space.sample(rng) for _ in range(40))]
    arenas = sorted(c.cost.arena_bytes for c in pool)
    budget = Budget(sram_bytes=arenas[len(arenas) // 3], flash_bytes=None, latency_ms=None, clock_hz=None,
                    description="test")
    seeds = [c for c in pool if not budget.check(c)][:6]
    net = _FakeNet()
    by_key: dict = {}
    ticks = iter(range(10**6))
    evo = evolve(space, net, model, budget, by_key, seeds, None, None, random.Random(1), deadline=10**9,
                 clock=lambda: next(ticks), settings=SupernetSettings(population=6, children=10, generations=6))
    assert evo.generations == 6 and evo.rejected > 0 and len(evo.scored) > len(seeds)
    assert len(net.asked) == len(evo.scored)            # nothing infeasible got a fitness
    fresh = CostModel()
    for c in evo.scored.values():
        assert c.cost.arena_bytes <= budget.sram_bytes
        assert fresh.evaluate(c.config).arena_bytes == c.cost.arena_bytes
    for c in list(evo.scored.values())[::max(1, len(evo.scored) // 4)]:
        assert compile_graph(build_graph(c.config)).plan.arena_bytes == c.cost.arena_bytes
    # crossover children take each knob from a parent
    a, b = seeds[0].config, seeds[1].config
    kid = space.crossover(a, b, random.Random(3))
    assert space.valid(kid) and kid.patch_size in (a.patch_size, b.patch_size)
    assert kid.depth in (a.depth, b.depth) and kid.embed_dim in (a.embed_dim, b.embed_dim)


# ---------------------------------------------------------------- weight sharing
@pytest.mark.slow
@pytest.mark.parametrize("shared", [True, False])
def test_subnetwork_equals_standalone_model_with_sliced_weights(shared):
    """A sub-network's supernet forward pass equals tinyvit.model.build_model(cfg) carrying
    the sliced weights (full and low rank, several widths, heads, depths, both patch sizes),
    and two sub-networks share the leading slice of the same tensor."""
    import tensorflow as tf
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:        # TensorFlow already initialised in this worker: its setting stands
        pass
    from tinyml.memory_planner.search.space import space_for_dataset
    from tinyml.tinyvit.supernet import Supernet, SupernetSpace, keras_weights
    space = space_for_dataset("digits8")
    cfgs = [space.make(2, 32, 2, 2, 2.0), space.make(4, 16, 1, 4, 1.0, 4, 8, 4, 4),
            space.make(2, 24, 3, 1, 3.0, 0, 6, 0, 0), space.make(4, 64, 4, 4, 4.0, 32, 0, 16, 8)]
    net = Supernet(SupernetSpace.covering(cfgs, shared_blocks=shared), seed=3)
    # weights off their initial values (LayerNorm scales and biases too)
    rng = np.random.default_rng(0)
    for v in net.vars.values():
        v.assign(rng.normal(0.0, 0.3, v.shape).astype(np.float32))
    x = rng.random((16, 8, 8, 1)).astype(np.float32)
    for cfg in cfgs:
        ref = net.keras_model(cfg).predict(x, verbose=0)
        got = net.logits(cfg, x)
        assert got.shape == (16, 10)
        np.testing.assert_allclose(got, ref, atol=2e-5, rtol=1e-5, err_msg=cfg.name)
    w = net.numpy_weights()
    small, big = keras_weights(w, cfgs[0]), keras_weights(w, cfgs[3])
    assert small["block1_attn_q"][0].shape == (32, 32)
    t = "" if shared else "p4_"           # cfgs[0] is patch 2, cfgs[3] patch 4
    np.testing.assert_array_equal(small["block0_mlp2"][0], w[f"{t.replace('4', '2')}blk_mlp2_w"][0, :64, :32])
    np.testing.assert_array_equal(big["block0_attn_q_lr"][0][:32, :16], w[f"{t}blk_q_a"][0, :32, :16])
    # one set of block tensors, or one per patch size (a tower each)
    assert sum(k.endswith("blk_q_w") for k in w) == (1 if shared else 2)


# ---------------------------------------------------------------- re-rank by fine-tuning
def _digits8():
    from tinyml.memory_planner.search.proxy import DataSpec
    return DataSpec("digits8", seed=0).load()


@pytest.mark.slow
def test_finetune_reports_the_accuracy_a_shorter_run_reaches_and_stops_at_the_deadline():
    """tinyvit.train.finetune (the re-rank's fine-tuning): constant learning rate and seeded
    batches, so the accuracy reported after 8 of 16 steps is what a separate 8-step run from the
    same weights reaches; step 0 is the starting weights' accuracy (counted here with numpy);
    16 steps from random weights beat chance; a deadline already passed leaves 0 steps."""
    from tinyml.memory_planner.search.space import space_for_dataset
    from tinyml.tinyvit.model import build_model
    from tinyml.tinyvit.train import finetune
    ds = _digits8()
    cfg = space_for_dataset("digits8").make(2, 16, 1, 2, 2.0)
    x, y, xv, yv = ds.train.x, ds.train.y, ds.val.x[:300], ds.val.y[:300]
    m1 = build_model(cfg)
    w0 = m1.get_weights()
    start = float(np.mean(np.argmax(m1.predict(xv, verbose=0), -1) == yv))
    long = finetune(m1, cfg, x, y, xv, yv, 16, at=(0, 8), lr=3e-3, seed=1, max_shift=0)
    m2 = build_model(cfg)
    m2.set_weights(w0)
    short = finetune(m2, cfg, x, y, xv, yv, 8, lr=3e-3, seed=1, max_shift=0)
    assert sorted(long) == [0, 8, 16] and sorted(short) == [8]
    assert long[0] == start and short[8] == long[8]
    assert long[16] > 0.2, long                      # 10 classes: chance is 0.1
    m3 = build_model(cfg)
    ticks = iter(range(100))
    assert list(finetune(m3, cfg, x, y, xv, yv, 16, lr=3e-3, deadline=0, clock=lambda: next(ticks))) == [0]


class _KerasNet:
    """A supernet stand-in for `oneshot.rerank`: `keras_model(cfg)` is a freshly seeded model."""

    def keras_model(self, cfg):
        import keras

        from tinyml.tinyvit.model import build_model
        keras.utils.set_random_seed(0)
        return build_model(cfg)


def test_shortlist_tries_the_memory_a_budget_opens_first_then_each_patch_sizes_best():
    """oneshot.shortlist with `floor` (the next smaller budget): each round takes every patch
    size's best above the floor, then its best of the rest; a patch size whose large candidates
    inherit chance still gets one of them fine-tuned (on the canvases patch 8 over 128 KiB
    never did). Without a floor it is each patch size's best in turn, as before; the floor of a
    budget is the next smaller budget of the run, else half the budget."""
    from dataclasses import replace

    from tinyml.memory_planner.search.budget import Budget
    from tinyml.memory_planner.search.candidates import Candidate
    from tinyml.memory_planner.search.cost import CostModel
    from tinyml.memory_planner.search.oneshot import shortlist
    from tinyml.memory_planner.search.run import Shared, new_memory_floor
    from tinyml.memory_planner.search.space import space_for_dataset
    space, model = space_for_dataset("digits8"), CostModel()
    base = model.evaluate(space.make(2, 8, 1, 1, 1.0))
    rows = [  # (patch, width, inherited accuracy, arena)
        (2, 8, 0.50, 40_000), (2, 16, 0.10, 150_000), (2, 24, 0.12, 200_000),
        (4, 8, 0.60, 30_000), (4, 16, 0.45, 60_000), (4, 24, 0.20, 140_000)]
    cands = [Candidate(space.make(p, w, 1, 1, 1.0), replace(base, arena_bytes=a), proxy_accuracy=acc)
             for p, w, acc, a in rows]
    name = [c.config.name for c in cands]
    got = [c.config.name for c in shortlist(cands, 4, floor=131_072)]
    # round 1: above 128 KiB (patch 4's 0.20, patch 2's 0.12), then the best of the rest (0.60, 0.50)
    assert got == [name[5], name[2], name[3], name[0]]
    assert [c.config.name for c in shortlist(cands, 6, floor=131_072)][4:] == [name[1], name[4]]
    assert [c.config.name for c in shortlist(cands, 4)] == [name[3], name[0], name[4], name[2]]
    assert shortlist(cands, 0, floor=131_072) == [] and len(shortlist(cands, 99, floor=1)) == 6
    # a later budget of a --budgets run: only candidates over the smaller budget
    assert [c.config.name for c in shortlist(cands, 8, floor=131_072, band_only=True)] == [name[5], name[2], name[1]]
    b = Budget(131_072, None, None, None, "test")
    assert new_memory_floor(b, None) == 65_536
    assert new_memory_floor(b, Shared(sram_sizes=[65_536, 131_072, 327_680])) == 65_536
    assert new_memory_floor(replace(b, sram_bytes=65_536), Shared(sram_sizes=[65_536, 131_072])) == 0


@pytest.mark.slow
def test_rerank_fine_tunes_each_patch_sizes_best_in_turn_within_the_deadline():
    """oneshot.rerank: only M are fine-tuned, each patch size's best by inherited accuracy in turn, each
    the full K steps (its fitness becomes the fine-tuned accuracy, marked `reranked`, the
    inherited one kept in the rows); the rest keep their inherited accuracy; the search ranks
    re-ranked candidates first; at a passed deadline nothing is fine-tuned."""
    from dataclasses import replace

    from tinyml.memory_planner.search.candidates import Candidate
    from tinyml.memory_planner.search.cost import CostModel, config_key
    from tinyml.memory_planner.search.oneshot import SupernetSettings, rerank
    from tinyml.memory_planner.search.space import space_for_dataset
    from tinyml.tinyvit.model import build_model
    ds = _digits8()
    space, model = space_for_dataset("digits8"), CostModel()
    cfgs = [space.make(2, 16, 1, 2, 2.0), space.make(4, 16, 1, 1, 1.0), space.make(2, 8, 1, 1, 2.0),
            space.make(4, 8, 1, 2, 1.0)]
    inherited = [0.30, 0.50, 0.40, 0.45]      # patch 2, 4, 2, 4
    cands = [Candidate(c, model.evaluate(c), proxy_accuracy=a, origin="gen1") for c, a in zip(cfgs, inherited)]
    settings = replace(SupernetSettings(), rerank_top=2, rerank_steps=3, rerank_lr=3e-3)
    ticks = iter(range(10**6))
    keep: dict = {}
    rr = rerank(_KerasNet(), cands, ds, ds.val.x[:200], ds.val.y[:200], settings, deadline=10**9,
                clock=lambda: next(ticks), keep=keep)
    # each patch size's best in turn: 0.50 (patch 4), then 0.40 (patch 2), not patch 4's 0.45
    assert [r["name"] for r in rr["candidates"]] == [cfgs[1].name, cfgs[2].name]
    assert [r["inherited_accuracy"] for r in rr["candidates"]] == [0.50, 0.40]
    assert rr["reranked"] == rr["shortlisted"] == 2 and all(r["steps"] == 3 for r in rr["candidates"])
    assert [c.reranked for c in cands] == [False, True, True, False]
    assert cands[0].proxy_accuracy == 0.30 and cands[3].proxy_accuracy == 0.45
    assert cands[1].origin == "gen1+finetune"
    for c, r in zip((cands[1], cands[2]), rr["candidates"]):
        assert c.proxy_accuracy == r["finetuned_accuracy"] and 0.0 <= c.proxy_accuracy <= 1.0
    # the fine-tuned weights are kept for the final training, for exactly the re-ranked two
    assert set(keep) == {config_key(cfgs[1]), config_key(cfgs[2])}
    assert [w.shape for w in keep[config_key(cfgs[1])]] == [w.shape for w in build_model(cfgs[1]).get_weights()]
    fresh = [Candidate(c, model.evaluate(c), proxy_accuracy=a) for c, a in zip(cfgs, inherited)]
    late = rerank(_KerasNet(), fresh, ds, ds.val.x[:200], ds.val.y[:200], settings, deadline=0,
                  clock=lambda: next(ticks), keep=keep)
    assert late["reranked"] == 0 and late["shortlisted"] == 2 and late["candidates"] == []
    assert len(keep) == 2
    assert not any(c.reranked for c in fresh)


class _NoNet:
    """A supernet stand-in whose inherited weights must not be read."""

    def keras_model(self, cfg):
        raise AssertionError("the re-rank read inherited weights under rerank_init='keras'")


@pytest.mark.slow
def test_rerank_init_keras_fine_tunes_from_seeded_keras_weights_not_the_supernets():
    """--rerank-init keras: the fine-tuning starts from Keras' initial weights (seeded), exactly
    the run `tinyvit.train.finetune` gives on a freshly built model, and never asks the
    supernet for inherited weights; the default still does."""
    from dataclasses import replace

    import keras

    from tinyml.memory_planner.search.candidates import Candidate
    from tinyml.memory_planner.search.cost import CostModel
    from tinyml.memory_planner.search.oneshot import SupernetSettings, finetuned
    from tinyml.memory_planner.search.space import space_for_dataset
    from tinyml.tinyvit.model import build_model
    from tinyml.tinyvit.train import finetune
    ds = _digits8()
    cfg = space_for_dataset("digits8").make(4, 16, 1, 1, 1.0)
    c = Candidate(cfg, CostModel().evaluate(cfg))
    xv, yv = ds.val.x[:200], ds.val.y[:200]
    settings = replace(SupernetSettings(), rerank_steps=4, rerank_lr=3e-3, rerank_init="keras")
    got, weights = finetuned(_NoNet(), c, ds, xv, yv, settings, seed=3, deadline=10**9, clock=lambda: 0)
    keras.utils.set_random_seed(3)
    model = build_model(cfg)
    start = model.get_weights()
    want = finetune(model, cfg, ds.train.x, ds.train.y, xv, yv, 4, lr=3e-3, batch=settings.batch,
                    max_shift=0, seed=3, deadline=10**9, clock=lambda: 0)
    assert got == want and max(got) == 4
    # the weights handed on (the final training continues from them) are the fine-tuned ones
    assert len(weights) == len(start) and all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    assert not all(np.array_equal(a, b) for a, b in zip(weights, start))
    with pytest.raises(AssertionError, match="inherited weights"):
        finetuned(_NoNet(), c, ds, xv, yv, replace(settings, rerank_init="inherited"), seed=3,
                  deadline=10**9, clock=lambda: 0)


@pytest.mark.slow
def test_rerank_reuses_an_earlier_budgets_fine_tuning_and_shortlists_the_rest():
    """With `earlier` (multi-budget runs on one supernet): candidates fine-tuned by an earlier
    run take that row's accuracy without a second fine-tuning ("reused"), and the shortlist is
    drawn from the others only."""
    from dataclasses import replace

    from tinyml.memory_planner.search.candidates import Candidate
    from tinyml.memory_planner.search.cost import CostModel
    from tinyml.memory_planner.search.oneshot import SupernetSettings, rerank
    from tinyml.memory_planner.search.space import space_for_dataset
    ds = _digits8()
    space, model = space_for_dataset("digits8"), CostModel()
    cfgs = [space.make(2, 16, 1, 2, 2.0), space.make(4, 16, 1, 1, 1.0), space.make(2, 8, 1, 1, 2.0),
            space.make(4, 8, 1, 2, 1.0)]
    inherited = [0.30, 0.50, 0.40, 0.45]
    settings = replace(SupernetSettings(), rerank_top=2, rerank_steps=3, rerank_lr=3e-3)
    ticks = iter(range(10**6))
    earlier: dict = {}
    first = [Candidate(c, model.evaluate(c), proxy_accuracy=a) for c, a in zip(cfgs, inherited)]
    rr1 = rerank(_KerasNet(), first, ds, ds.val.x[:200], ds.val.y[:200], settings, deadline=10**9,
                 clock=lambda: next(ticks), earlier=earlier)
    assert [r["name"] for r in rr1["candidates"]] == [cfgs[1].name, cfgs[2].name] and len(earlier) == 2
    second = [Candidate(c, model.evaluate(c), proxy_accuracy=a) for c, a in zip(cfgs, inherited)]
    rr2 = rerank(_KerasNet(), second, ds, ds.val.x[:200], ds.val.y[:200], replace(settings, rerank_top=1),
                 deadline=10**9, clock=lambda: next(ticks), earlier=earlier)
    reused = [r for r in rr2["candidates"] if r.get("reused")]
    assert sorted(r["name"] for r in reused) == sorted([cfgs[1].name, cfgs[2].name])
    for c, r in ((second[1], rr1["candidates"][0]), (second[2], rr1["candidates"][1])):
        assert c.reranked and c.proxy_accuracy == r["finetuned_accuracy"]
    # the one new fine-tuning is the best of the rest (0.45, patch 4), not a second run of those two
    new = [r for r in rr2["candidates"] if not r.get("reused")]
    assert [r["name"] for r in new] == [cfgs[3].name] and second[3].reranked and not second[0].reranked
    assert rr2["reranked"] == 3 and len(earlier) == 3


# ---------------------------------------------------------------- end to end
def test_bad_kendall_and_ranking_arguments_are_one_line():
    for args, word in ((("--kendall", "5"), "--kendall must be 10..200"),
                       (("--kendall", "10", "--ranking", "proxy"), "--ranking is proxy"),
                       (("--ranking", "supernet", "--task", "detect"), "classifiers only"),
                       (("--rerank-top", "-1"), "--rerank-top must be >= 0"),
                       (("--rerank-steps", "-5"), "--rerank-steps must be >= 0"),
                       (("--budgets", "3K,8K", "--kendall", "10"), "--kendall measures one budget's ranking")):
        r = _cli("search", "--dataset", "digits8", *args, timeout=120)
        assert r.returncode != 0 and word in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_budgets_share_one_planned_sample_and_one_supernet_trained_for_the_largest(tmp_path):
    """The supernet ranking end to end on digits8, with two SRAM budgets (--budgets 3K,8K): the
    sample is planned once and the supernet trained once, on the candidates that fit the
    largest budget (more than fit 3 KiB); the second budget reuses both (no planning, no
    supernet training, the same steps). Each budget's winner fits it, is exported int8,
    re-plans to the same arena through the importer and is bit-exact against TFLite."""
    r = _cli("search", "--dataset", "digits8", "--budgets", "3K,8K", "--candidates", "60",
             "--budget-seconds", "60", "--ranking", "supernet", "--final-epochs", "1",
             "--out", str(tmp_path / "out"), "--json", timeout=880)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(r.stdout)
    first, second = d["results"]
    assert d["budgets"] == [3072, 8192] and first["ranking"] == second["ranking"] == "supernet"
    assert first["supernet"]["trained_for_sram_bytes"] == 8192 and "shared" not in first["supernet"]
    assert first["supernet"]["trained_on"] == second["feasible_count"] > first["feasible_count"]
    assert first["phase_seconds"]["memory_eval"] > 0 and first["phase_seconds"]["supernet_training"] > 0
    assert second["supernet"]["shared"] is True and second["supernet"]["steps"] == first["supernet"]["steps"]
    assert second["phase_seconds"]["memory_eval"] == 0 and second["phase_seconds"]["supernet_training"] == 0
    assert "supernet" in first["ranking_description"] and "kendall_tau" not in first
    assert first["supernet"]["steps"] >= 1 and first["supernet"]["subnets_trained"] == 4 * first["supernet"]["steps"]
    for budget, res in zip((3072, 8192), (first, second)):
        assert res["evolution"]["scored"] >= 1 and res["phase_seconds"]["evolution"] > 0
        # the re-rank (default top 8, 200 steps) is recorded in the recipe and booked in its own phase
        rr = res["supernet"]["recipe"]["rerank"]
        assert rr["top"] == 8 and rr["steps"] == 200 and rr["reranked"] <= 8
        assert res["phase_seconds"]["rerank"] >= sum(c["seconds"] for c in rr["candidates"]
                                                     if not c.get("reused")) - 0.5
        ch = res["chosen"]
        assert ch["peak_sram_bytes"] <= budget and os.path.isfile(ch["tflite"])
        assert ch["plan_check"]["match"] and ch["plan_check"]["arena_bytes_exported"] == ch["peak_sram_bytes"]
        assert ch["verify"]["bit_exact"] and ch["verify"]["mismatching_bytes"] == 0
        assert 0.0 <= ch["accuracy"] <= 1.0
        # a re-ranked winner's final training continues its re-rank fine-tuning (default
        # --rerank-init inherited: one not re-ranked starts from its inherited weights)
        won = next(t for t in res["trained"] if t["name"] == ch["config"]["name"])
        assert ch["start"] == ("rerank" if won["reranked"] else "supernet")
        assert all(t["peak_sram_bytes"] <= budget for t in res["trained"])
        # the second budget samples the memory it opens (over 3 KiB) and fine-tunes only there
        assert rr["floor_bytes"] == (0 if budget == 3072 else 3072) and rr["band_only"] == (budget == 8192)
        band = [t for t in res["trained"] if t["origin"].startswith("band")]
        assert res["evolution"]["band_sampled"] == len(band) >= 1
        arena = {t["name"]: t["peak_sram_bytes"] for t in res["trained"]}
        new = [c["name"] for c in rr["candidates"] if not c.get("reused")]
        assert budget == 3072 or all(t["peak_sram_bytes"] > 3072 for t in band)
        assert budget == 3072 or all(arena[n] > 3072 for n in new)
        # the JSON's front holds scores of one scale: fine-tuned ones once any exist
        assert all(p["reranked"] for p in res["pareto"]) or not any(t["reranked"] for t in res["trained"])


def test_pareto_front_compares_scores_of_one_scale():
    """Once the re-rank fine-tuned some candidates, the accuracy-vs-SRAM front is of those: an
    inherited 0.90 (not re-ranked) does not hide a fine-tuned 0.60, and without a re-rank the
    front is over every scored candidate."""
    from types import SimpleNamespace as NS

    from tinyml.memory_planner.search.candidates import Candidate
    from tinyml.memory_planner.search.report import pareto_accuracy

    def cand(name, arena, acc, reranked):
        return Candidate(NS(name=name), NS(arena_bytes=arena), proxy_accuracy=acc, reranked=reranked)
    inherited = cand("inh", 1000, 0.90, False)
    small, big, worse = cand("small", 2000, 0.60, True), cand("big", 3000, 0.70, True), cand("w", 4000, 0.65, True)
    assert [c.config.name for c in pareto_accuracy([inherited, small, big, worse])] == ["small", "big"]
    plain = [cand("a", 1000, 0.5, False), cand("b", 2000, 0.4, False), cand("c", 3000, 0.8, False)]
    assert [c.config.name for c in pareto_accuracy(plain)] == ["a", "c"]
