"""A model that does not fit the board's real SRAM or flash fails the build
with the region, the overflow in bytes and the largest contributors."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tinyml.errors import FitError

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed"),
]


def _dense_model(path: str, n_in: int, n_out: int, one_hot: bool = False) -> str:
    """A real int8 TFLite model (one FULLY_CONNECTED) from the TFLite converter. `one_hot`:
    one non-zero weight, so a very wide layer stays inside the validator's accumulator bound
    (|bias| + 256 * sum|w| < 2^31)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    inp = tf.keras.Input((n_in,), batch_size=1)
    dense = tf.keras.layers.Dense(n_out)
    model = tf.keras.Model(inp, dense(inp))
    if one_hot:
        w = np.zeros((n_in, n_out), np.float32)
        w[0, :] = 1.0
        dense.set_weights([w, np.zeros(n_out, np.float32)])
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: ([rng.standard_normal((1, n_in)).astype(np.float32)]
                                           for _ in range(4))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    with open(path, "wb") as f:
        f.write(conv.convert())
    return path


@pytest.mark.timeout(300)
def test_activation_arena_larger_than_sram_fails(tmp_path):
    from tinyml.firmware.build import build_firmware
    # 136,000 int8 inputs: the arena alone exceeds the F4's 128 KB of SRAM1+SRAM2.
    model = _dense_model(str(tmp_path / "wide.tflite"), 136_000, 1, one_hot=True)
    with pytest.raises(FitError) as ei:
        build_firmware(model, "stm32f4-discovery", str(tmp_path / "fw"), num_vectors=0)
    msg = ei.value.line()
    assert "SRAM region SRAM1+SRAM2" in msg and "131,072 B" in msg
    over = int(msg.split("overflowed by ")[1].split(" bytes")[0].replace(",", ""))
    # arena >= 136,000 B + the 8 KB stack reserve, against 131,072 B of SRAM.
    assert over >= 136_000 + 8192 - 131_072
    assert "largest: tinyml_arena 136," in msg and "(stack reserve) 8,192 B" in msg


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_weights_larger_than_flash_fail_via_cli(tmp_path):
    # 1,100 x 1,000 int8 weights = 1.1 MB > the F4's 1 MB of flash.
    model = _dense_model(str(tmp_path / "heavy.tflite"), 1100, 1000)
    p = subprocess.run([sys.executable, "-m", "tinyml.cli", "build", model, "--board", "stm32f4-discovery",
                        "-o", str(tmp_path / "fw"), "--vectors", "0"],
                       capture_output=True, text=True, cwd=str(tmp_path))
    assert p.returncode == FitError.exit_code
    line = p.stderr.strip().splitlines()[-1]
    assert line.startswith("error: model does not fit stm32f4-discovery: flash region FLASH")
    assert "1,048,576 B" in line and "tinyml_w" in line and "1,100,000 B" in line
    assert "Traceback" not in p.stderr


def test_stack_reserve_larger_than_region_is_a_fit_error(tmp_path):
    from tinyml.boards import load_board
    from tinyml.firmware.build import board_context
    with pytest.raises(FitError, match="stack reserve"):
        board_context(load_board("stm32f4-discovery"), "native", "selftest", 200_000)
