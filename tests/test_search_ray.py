"""The search's Ray executor (issue 6: candidate training on a distributed engine):
a local Ray cluster (2 CPUs) runs the proxy trainings in worker processes and
returns what the in-process executor returns for the same job."""
import os

import pytest

ray = pytest.importorskip("ray")

from tinyml.tinyvit.config import ViTConfig  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.timeout(300)
def test_tasks_run_in_worker_processes_in_order(cluster):
    from tinyml.memory_planner.search.executor import make_executor
    ex = make_executor("ray")
    out = list(ex.map(lambda x: (os.getpid(), x * x), [3, 1, 2]))
    assert [v for _, v in out] == [9, 1, 4]
    assert all(pid != os.getpid() for pid, _ in out)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_proxy_training_on_ray_equals_local(cluster):
    from tinyml.memory_planner.search.executor import make_executor
    from tinyml.memory_planner.search.proxy import ProxyJob, ProxySettings
    cfg = ViTConfig(name="tiny", image_size=28, channels=1, patch_size=7, embed_dim=16, depth=1, num_heads=2,
                    mlp_ratio=2.0, activation="relu", pool="mean").validate()
    job = ProxyJob("digits", ProxySettings(epochs=1, train_images=256, val_images=128, batch=64))
    [(acc_ray, secs)] = list(make_executor("ray").map(job, [cfg]))
    [(acc_local, _)] = list(make_executor("local").map(job, [cfg]))
    assert 0.0 <= acc_ray <= 1.0 and secs > 0
    assert acc_ray == pytest.approx(acc_local, abs=1 / 128 + 1e-9)   # at most one validation image apart
