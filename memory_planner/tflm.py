"""TFLM's arena for the same model: the baseline every plan is compared with.

Runs the model once in the `tflite_micro` package's interpreter with its
RecordingMicroAllocator and reads the allocation report it prints
(total = head (planned activations and scratch) + tail (persistent data)).
TFLM prints the report from native code, so the measurement runs in a child
Python process whose output we capture.
"""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass

_CHILD = r"""
import sys, numpy as np
from tflite_micro.python.tflite_micro import runtime
interp = runtime.Interpreter.from_file(sys.argv[1])
for i in range(int(sys.argv[2])):
    d = interp.get_input_details(i)
    interp.set_input(np.zeros(d["shape"], dtype=d["dtype"]), i)
interp.invoke()
interp.print_allocations()
"""


@dataclass
class TflmArena:
    total: int
    head: int
    tail: int


def tflm_arena(model_path: str, num_inputs: int = 1, timeout: float = 120) -> TflmArena | None:
    """TFLM's arena report for the model, or None if TFLM cannot run it."""
    try:
        res = subprocess.run([sys.executable, "-c", _CHILD, model_path, str(num_inputs)],
                             capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    vals = {k: int(v) for k, v in re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", res.stdout + res.stderr)}
    if res.returncode != 0 or "total" not in vals:
        return None
    return TflmArena(total=vals["total"], head=vals.get("head", 0), tail=vals.get("tail", 0))
