"""Low-rank squeezing by truncated SVD: exactness at full rank, parameter counts
and accuracy before/after for two ranks."""
from __future__ import annotations

import numpy as np
import pytest

from tinyml.tinyvit.config import ViTConfig


@pytest.fixture(scope="module")
def trained():
    import keras
    from tinyml.tinyvit.data import Split, mnist_digits
    from tinyml.tinyvit.model import build_model
    ds = mnist_digits()
    ds.train = Split(ds.train.x[:600], ds.train.y[:600])
    ds.val = Split(ds.val.x[:100], ds.val.y[:100])
    ds.test = Split(ds.test.x[:200], ds.test.y[:200])
    cfg = ViTConfig(name="lr_base", patch_size=7, embed_dim=32, depth=1, num_heads=2,
                    mlp_ratio=2.0, activation="relu")
    keras.utils.set_random_seed(0)
    m = build_model(cfg)
    m.compile(keras.optimizers.Adam(2e-3),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(ds.train.x, ds.train.y, epochs=6, batch_size=32, verbose=0)
    return m, cfg, ds


def test_svd_factor_is_the_best_rank_r_approximation():
    from tinyml.tinyvit.lowrank import svd_factor
    rng = np.random.default_rng(0)
    w = rng.normal(size=(12, 9)).astype(np.float32)
    a, b = svd_factor(w, 9)
    np.testing.assert_allclose(a @ b, w, atol=1e-5)
    a, b = svd_factor(w, 3)
    s = np.linalg.svd(w, compute_uv=False)
    # Eckart-Young: Frobenius error of the best rank-3 approximation
    assert np.linalg.norm(w - a @ b) == pytest.approx(np.sqrt(np.sum(s[3:] ** 2)), rel=1e-4)


@pytest.mark.timeout(300)
def test_full_rank_factorization_reproduces_the_model(trained):
    from tinyml.tinyvit.lowrank import factor_model
    m, cfg, ds = trained
    new, _ = factor_model(m, cfg, qkv_rank=32, proj_rank=32, mlp_rank=32, patch_rank=32)
    x = ds.test.x[:16]
    np.testing.assert_allclose(np.asarray(new(x)), np.asarray(m(x)), rtol=1e-3, atol=1e-3)


@pytest.mark.timeout(600)
def test_two_ranks_change_params_and_accuracy(trained):
    from tinyml.tinyvit.lowrank import squeeze
    m, cfg, ds = trained
    d, hid, k = 32, 64, 49
    reports = {}
    for r in (4, 12):
        _, new_cfg, rep = squeeze(m, cfg, ds, qkv_rank=r, proj_rank=r, mlp_rank=r,
                                  patch_rank=r, finetune_epochs=2)
        reports[r] = rep
        # hand count of the removed/added weights per factored layer
        full = 3 * d * d + d * d + d * hid + hid * d + k * d
        low = 3 * (d * r + r * d) + (d * r + r * d) + (d * r + r * hid) + (hid * r + r * d) \
            + (k * r + r * d)
        assert rep.params_before - rep.params_after == full - low
        assert new_cfg.qkv_rank == r
        for v in (rep.accuracy_before, rep.accuracy_factored, rep.accuracy_finetuned):
            assert 0.0 <= v <= 1.0
    # the trained base is clearly better than chance; rank 4 loses more right
    # after SVD than rank 12 does, and fine-tuning recovers part of the loss
    assert reports[4].accuracy_before > 0.5
    assert reports[4].params_after < reports[12].params_after < reports[4].params_before
    assert reports[4].accuracy_factored < reports[12].accuracy_factored + 0.02
    assert reports[4].accuracy_finetuned >= reports[4].accuracy_factored - 0.02
    print({r: rep.to_dict() for r, rep in reports.items()})
