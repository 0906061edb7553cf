"""The Cortex-M DSP builds of the transformer kernels' fast paths, run on QEMU
(netduinoplus2, Cortex-M4) against TFLite reference outputs: the LayerNorm fast
rows (fused_layernorm.c layernorm_fast: unit rescalings, per-row channel tables
in blocks of 64 with a tail, SMMULR requantizations) and the fused ADD with one
unit input rescaling (fused_add.c fused_add_unit, either input). The host tests
(tests/test_fuse.py, tests/test_flash.py) compile the portable C of the same
paths; these check the SMMULR/SSAT code gives the same bytes."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed"),
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed"),
]

UNIT = (2147483647, -1)


def ln_model(path: str, rows: int, depth: int, seed: int, residual_sigma: float | None = None) -> str:
    """Dense -> LayerNormalization -> Dense (random gamma/beta) -> z, then Dense(8)(z),
    or z + Dense(z) with the last Dense's weights ~ N(0, residual_sigma) (a FUSED_ADD
    whose unit rescaling is input 1 for small sigma, input 2 for large)."""
    import keras

    from test_fuse_helpers import convert, perturb
    inp = keras.Input((rows, depth), batch_size=1)
    z = keras.layers.Dense(depth)(keras.layers.LayerNormalization(epsilon=1e-5)(keras.layers.Dense(depth)(inp)))
    res = None
    if residual_sigma is None:
        out = keras.layers.Dense(8)(z)
    else:
        res = keras.layers.Dense(depth)
        out = keras.layers.Add()([z, res(z)])
    m = keras.Model(inp, out)
    perturb(m, seed=seed)
    if res is not None:
        rng = np.random.default_rng(seed)
        res.set_weights([rng.normal(0.0, residual_sigma, w.shape).astype(w.dtype) for w in res.get_weights()])
    return convert(m, (rows, depth), path)


def first_rescales(model_c: str, field: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(input1, input2) (multiplier, shift) of every `.field = {` tinyml_fused_add struct in model.c."""
    pat = (r"\.%s = \{\s*\.input1 = \{\s*\.offset = -?\d+,\s*\.quant = \{\s*\.multiplier = (\d+),\s*"
           r"\.shift = (-?\d+),\s*\},\s*\},\s*\.input2 = \{\s*\.offset = -?\d+,\s*\.quant = \{\s*"
           r"\.multiplier = (\d+),\s*\.shift = (-?\d+)") % field
    return [((int(a), int(b)), (int(c), int(d))) for a, b, c, d in re.findall(pat, model_c)]


CASES = {
    # depth 150: per-row tables in blocks 64, 64, 22 (beta rescaled per block); 3 rows
    "layernorm_blocks": dict(rows=3, depth=150, seed=1),
    # depth 5 (one short block, beta rescaled once), 4 rows, and a residual ADD whose
    # unit rescaling is input 1 (Dense(x) far below x) and one where it is input 2
    "layernorm_small_add_unit1": dict(rows=4, depth=5, seed=2, residual_sigma=0.02),
    "layernorm_small_add_unit2": dict(rows=4, depth=5, seed=3, residual_sigma=4.0),
}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", list(CASES))
def test_transformer_fast_paths_on_cortex_m4_match_tflite(case, tmp_path):
    from opmodels import build_m4
    path = ln_model(str(tmp_path / f"{case}.tflite"), **CASES[case])
    fw = build_m4(path, str(tmp_path / "fw"), seed=5)
    model_c = fw.model_c()
    # the fast rows' preconditions hold (unit first rescalings), so they are what runs
    assert "tinyml_fused_layernorm_s8" in model_c
    for field in ("sqdiff", "add_beta", "add_out"):
        [(in1, _)] = first_rescales(model_c, field)
        assert in1 == UNIT, (field, in1)
    if "residual_sigma" in CASES[case]:
        assert "tinyml_fused_add_s8" in model_c
        adds = re.findall(r"static const tinyml_fused_add \w+ = \{.*?\n\};", model_c, re.S)
        assert len(adds) == 1
        q = re.findall(r"\.multiplier = (\d+),\s*\.shift = (-?\d+)", adds[0])
        in1, in2 = (int(q[0][0]), int(q[0][1])), (int(q[1][0]), int(q[1][1]))
        assert (in1 == UNIT) == case.endswith("unit1") and (in2 == UNIT) == case.endswith("unit2"), (in1, in2)
    dis = fw.disassembly()
    assert "<layernorm_fast>:" in dis and "smmulr" in dis and "ssat" in dis
    fw.run()
