"""`tinyml search --benchmark`: exact memory evaluation throughput, and per-stage timings."""
from __future__ import annotations

import os
import random
import time

from .candidates import evaluate_many, sample_configs
from .space import SearchSpace


def benchmark(space: SearchSpace, n: int, workers: int, seed: int = 0) -> dict:
    """Exact memory evaluation throughput (no training)."""
    import platform
    rng = random.Random(seed)
    configs = sample_configs(space, n, rng)
    import resource
    t0 = time.time()
    c0 = time.process_time()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cands = evaluate_many(configs, workers=workers, progress=True)   # one CostModel, warmed as a search does
    wall = time.time() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (time.process_time() - c0) + (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"candidates_evaluated": len(cands), "memory_eval_seconds": round(wall, 3),
            "ms_per_candidate": round(wall / max(1, len(cands)) * 1e3, 3),
            "candidates_per_second": round(len(cands) / max(wall, 1e-9), 1),
            "workers": workers, "cpu_seconds": round(cpu, 2),
            "cpu_ms_per_candidate": round(cpu / max(1, len(cands)) * 1e3, 3),
            # what the same work takes on `workers` otherwise idle cores
            "idle_machine_seconds_estimate": round(cpu / max(1, workers), 2),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "processor": platform.processor() or platform.machine(),
                        "loadavg_after": load},
            "mean_ops": round(sum(c.cost.ops for c in cands) / max(1, len(cands)), 1),
            "sampling": "random configs, each with every depth of the space (depth families)",
            "space_size": space.size()}


def stage_seconds(cfg, repeat: int = 3) -> dict:
    """Seconds per stage for one config: build the graph, lower it with a warm LoweringCache
    and with lower_graph, plan it."""
    from tinyml.codegen.lower import lower_graph
    from tinyml.codegen.lower_cache import LoweringCache
    from tinyml.memory_planner.plan import plan_steps

    from .vit_ir import build_vit
    out = {}
    t = time.perf_counter()
    for _ in range(repeat):
        g, layout = build_vit(cfg)
    out["build_graph"] = (time.perf_counter() - t) / repeat
    cache = LoweringCache()
    steps, _ = cache.lower(g, blocks=layout)             # warm (and checked)
    t = time.perf_counter()
    for _ in range(repeat):
        steps, _ = cache.lower(g, blocks=layout)
    out["lower_cached"] = (time.perf_counter() - t) / repeat
    t = time.perf_counter()
    for _ in range(repeat):
        lower_graph(g)
    out["lower_graph"] = (time.perf_counter() - t) / repeat
    t = time.perf_counter()
    for _ in range(repeat):
        plan_steps(g, steps)
    out["plan_steps"] = (time.perf_counter() - t) / repeat
    return out
