"""Test support for tests/test_fuse*.py: small Keras models converted to int8 .tflite
by TensorFlow's own converter, and the checks every fusion test runs."""
from __future__ import annotations

import os

import numpy as np

from keras_convert import batches, perturb, standard_int8, write  # noqa: F401 (perturb: re-exported)


def convert(model, input_shape: tuple[int, ...], path: str, samples: int = 64, seed: int = 0) -> str:
    """Full-int8 conversion (int8 input/output) with a random representative dataset."""
    data = np.random.default_rng(seed).normal(0.0, 1.0, size=(samples, *input_shape)).astype(np.float32)
    return write(standard_int8(model, batches(data)), path)


def kinds(path: str) -> list[str]:
    from tinyml.codegen.fuse import fuse
    from tinyml.codegen.importer import import_tflite
    return [g.kind for g in fuse(import_tflite(path))]


def arena(path: str, fuse: bool) -> int:
    from tinyml.codegen.importer import import_tflite
    from tinyml.codegen.lower import lower_graph
    from tinyml.memory_planner.plan import plan_steps
    g = import_tflite(path)
    steps, _ = lower_graph(g, fuse=fuse)
    return plan_steps(g, steps).arena_bytes


def check_fused_model(path: str, expect: dict[str, int], count: int = 10) -> None:
    """Expected fusion groups found; bit-exact vs TFLite on `count` inputs with the fused
    kernels kept (fuse_check off); every traced (external) tensor equal; the compiled
    arena (fusion kept only where it plans no larger) <= the unfused one."""
    from tinyml.codegen.trace import trace_compare
    from tinyml.codegen.verify import random_inputs, verify
    from tinyml.codegen.importer import import_tflite
    found = kinds(path)
    for k, n in expect.items():
        assert found.count(k) == n, f"{os.path.basename(path)}: {found}"
    r = verify(path, count=count, seed=3, fuse_check=False)
    assert r.bit_exact, f"{r.mismatching_bytes} of {r.output_bytes_compared} bytes differ; {r.first_mismatch}"
    rec = random_inputs(import_tflite(path), 1, 5)[0]
    checks = trace_compare(path, rec, fuse_check=False)
    bad = [c for c in checks if c.mismatching]
    assert not bad, bad[:3]
    from tinyml.codegen.pipeline import compile as compile_model
    fused, plain = arena(path, fuse=True), arena(path, fuse=False)
    compiled = compile_model(path).plan
    assert compiled.arena_bytes <= min(fused, plain), (fused, plain, compiled.notes)
