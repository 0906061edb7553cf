"""Where proxy trainings run: in this process (`Executor`) or as Ray tasks (`RayExecutor`)."""
from __future__ import annotations

from typing import Callable, Iterable

from tinyml.errors import TinymlError


class Executor:
    """Runs proxy trainings; the default runs them one after another in this process."""

    name = "local"

    def map(self, fn: Callable, items: Iterable) -> Iterable:
        for it in items:
            yield fn(it)


class RayExecutor(Executor):
    """Proxy trainings as Ray tasks (one CPU each) on `ray.init(address)`.

    Each task rebuilds the dataset from the bundled packages on its worker (the
    datasets are offline and deterministic), so only the config travels.
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_task: int = 1) -> None:
        try:
            import ray
        except ImportError:
            raise TinymlError("--executor ray needs the 'ray' package", "tinyml search",
                              "pip install ray (and start a cluster), or use --executor local") from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address)
        self.cpus = cpus_per_task

    def map(self, fn: Callable, items: Iterable) -> Iterable:
        # ray.remote wraps functions, not callable objects (the proxy job is one):
        # ship the job as an argument of a plain function.
        remote = self.ray.remote(num_cpus=self.cpus)(_apply)
        job = self.ray.put(fn)
        refs = [remote.remote(job, it) for it in items]
        for ref in refs:
            yield self.ray.get(ref)


def _apply(fn: Callable, item):
    return fn(item)


def make_executor(name: str, address: str | None = None) -> Executor:
    if name == "local":
        return Executor()
    if name == "ray":
        return RayExecutor(address)
    raise TinymlError(f"unknown executor {name!r}", "--executor", "use local or ray")
