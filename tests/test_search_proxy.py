"""The search's accuracy proxy is a function of the config: the initial weights are
seeded too (they were not, and the same config scored 0.117 and 0.094 in one run)."""
import pytest


@pytest.mark.timeout(300)
def test_same_config_same_proxy_score():
    from tinyml.memory_planner.search.proxy import ProxyJob, ProxySettings
    from tinyml.tinyvit.config import ViTConfig
    cfg = ViTConfig(name="tiny", image_size=28, channels=1, patch_size=7, embed_dim=16, depth=1, num_heads=2,
                    mlp_ratio=2.0, activation="relu", pool="mean").validate()
    job = ProxyJob("digits", ProxySettings(epochs=1, train_images=256, val_images=128, batch=64))
    first, second = job(cfg)[0], job(cfg)[0]
    other = ProxyJob("digits", ProxySettings(epochs=1, train_images=256, val_images=128, batch=64, seed=7))(cfg)[0]
    assert first == second
    assert 0.0 <= other <= 1.0


@pytest.mark.timeout(300)
def test_proxy_training_past_its_deadline_stops_after_one_batch():
    """`--budget-seconds` is honest at batch granularity: a proxy training still running at the
    ranking deadline ends after the current batch (here the deadline has passed: one batch of
    three epochs' 12), and the cut epoch is validated; a picklable job carries its deadline."""
    import pickle
    import time

    import keras

    from tinyml.memory_planner.search.proxy import ProxyJob, ProxySettings
    from tinyml.tinyvit.config import ViTConfig
    from tinyml.tinyvit.data import load_dataset
    from tinyml.tinyvit.model import build_model
    from tinyml.tinyvit.train import fit
    cfg = ViTConfig(name="tiny", image_size=28, channels=1, patch_size=7, embed_dim=16, depth=1, num_heads=2,
                    mlp_ratio=2.0, activation="relu", pool="mean").validate()
    ds = load_dataset("digits", seed=0)
    ds.train.x, ds.train.y = ds.train.x[:256], ds.train.y[:256]
    keras.utils.set_random_seed(0)
    m = build_model(cfg)
    hist = fit(m, cfg, ds, 3, batch=64, quiet=True, progress=False, deadline=time.time() - 1.0)
    assert len(hist) == 1 and int(m.optimizer.iterations.numpy()) == 1
    assert 0.0 <= hist[0]["val_accuracy"] <= 1.0
    keras.utils.set_random_seed(0)
    m2 = build_model(cfg)
    assert len(fit(m2, cfg, ds, 2, batch=64, quiet=True, progress=False, deadline=time.time() + 3600)) == 2
    assert int(m2.optimizer.iterations.numpy()) == 8
    job = ProxyJob("digits", ProxySettings(epochs=3, train_images=256, val_images=128, batch=64), deadline=123.0)
    assert pickle.loads(pickle.dumps(job)).deadline == 123.0


@pytest.mark.timeout(300)
def test_int8_evaluation_past_its_deadline_uses_the_first_50_test_images():
    """The winner's int8 test score (TFLite reference kernels: ~0.5 s per 128x128 image on a
    loaded core, 120 s for 250 canvases) stops at its deadline after 50 images; without a
    deadline, or with time left, it covers the split and equals evaluate_int8 on it."""
    import time

    import keras

    from tinyml.tinyvit.config import ViTConfig
    from tinyml.tinyvit.data import load_dataset
    from tinyml.tinyvit.export import to_int8_tflite
    from tinyml.tinyvit.model import build_model
    from tinyml.tinyvit.train import evaluate_int8, int8_score
    cfg = ViTConfig(name="tiny8", image_size=8, channels=1, patch_size=4, embed_dim=16, depth=1, num_heads=2,
                    mlp_ratio=2.0, activation="relu", pool="mean").validate()
    ds = load_dataset("digits8", seed=0)
    keras.utils.set_random_seed(0)
    tfl = to_int8_tflite(build_model(cfg), cfg, ds.train.x[:32], count=32)
    x, y = ds.test.x[:120], ds.test.y[:120]
    score, n = int8_score(tfl, cfg, x, y, time.time() - 1.0)
    assert n == 50 and score == evaluate_int8(tfl, cfg, x[:50], y[:50])
    assert int8_score(tfl, cfg, x, y, time.time() + 3600) == (evaluate_int8(tfl, cfg, x, y), 120)
    assert int8_score(tfl, cfg, x, y) == (evaluate_int8(tfl, cfg, x, y), 120)
