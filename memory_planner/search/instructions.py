"""The instruction estimate: QEMU-fitted cost per MAC, per element written, per softmax element.

Used for --latency-budget-ms and the Pareto table:
  instructions ~ INSTR_PER_MAC * MACs + INSTR_PER_ELEMENT * elements the steps write
                 + INSTR_PER_SOFTMAX * attention scores normalised (H x N x N per block)
`calibrate_instructions` re-fits the coefficients; `instruction_features` gives an
exported model's features through the compile pipeline.
"""
from __future__ import annotations

from tinyml.codegen.pipeline import compile

from .cost import Cost, softmax_elements_of, step_elements
from .vit_ir import graph_macs

# fitted (non-negative least squares on relative error, `calibrate_instructions`) to
# `tinyml emulate --json` instruction counts (QEMU mps2-an500, -icount shift=0, Cortex-M7
# -O2) of 8 int8 ViTs built with `tinyml build --board stm32f746g-disco`: the shipped
# vit_digits and vit_relu_d64x4 and six exported tinyvit configs from the digits space
# (patch 2/4/7/14, widths 16-128, depth 1-4, full and low rank; 0.7M-7.7M MACs,
# 1.6M-16.3M instructions), kernels as of issue 15 round 5 (LayerNorm fast rows,
# unit-rescaled ADD). Fit error: max |err| 7.7%; leave-one-out max |err| 32% (patch 2:
# 196 keys take the one-row attention path, heads of <= 64 keys the two-row path, which
# a per-softmax-element cost cannot tell apart). Round 4's kernels: 1.224/MAC +
# 55.9/element + 90.9/softmax element within 12.8%; round 3's: 1.496 + 77.0 + 104.3
# within 2.8%. Kernels change: re-fit: for each model
# `tinyml build M --board stm32f746g-disco -o D && tinyml emulate D --json`
# (instructions_per_inference), features from `instruction_features(M)`,
# then `calibrate_instructions`.
# (model, MACs, step-output elements, softmax elements, QEMU instructions per inference);
# the six vit_p* models are exported from untrained (perturbed) weights: kernels' work
# does not depend on the values.
CALIBRATION_SAMPLES = (
    ("vit_digits", 7702656, 134922, 38416, 16340027),
    ("vit_p14_d96_l4_h2_m3_q24_o48_f24_e16", 695488, 16682, 128, 1575213),
    ("vit_p2_d16_l1_h2_m2", 1643424, 40794, 76832, 11165093),
    ("vit_p4_d32_l2_h2_m2", 1135552, 36106, 9604, 3504173),
    ("vit_p4_d48_l4_h4_m1_f12", 3218016, 101194, 38416, 10354560),
    ("vit_p7_d128_l2_h4_m4_q32_o64_f32", 2854144, 47242, 2048, 5605973),
    ("vit_p7_d64_l3_h4_m2_q16_o16_f16_e8", 801536, 33994, 3072, 2592987),
    ("vit_relu_d64x4", 7702656, 134922, 19208, 14980120),
)
INSTR_PER_MAC = 1.0953
INSTR_PER_ELEMENT = 40.81
INSTR_PER_SOFTMAX = 89.92
INSTRUCTION_MODEL = ("1.095 x MACs + 40.8 x step-output elements + 89.9 x softmax elements, "
                     "fitted to 8 QEMU mps2-an500 measurements (max error 7.7%, leave-one-out 32%)")
# The largest relative error of the fit over CALIBRATION_SAMPLES (tests check it).
FIT_MAX_ERROR = 0.08


def calibrate_instructions(samples: list[tuple[int, int, int, int]]) -> tuple[float, float, float]:
    """(per MAC, per step element, per softmax element) from (macs, step elements, softmax
    elements, measured instructions) samples; least squares on relative error, coefficients >= 0.
    Features of an exported model: `instruction_features`."""
    import numpy as np
    from scipy.optimize import nnls
    a = np.array([s[:3] for s in samples], float)
    y = np.array([s[3] for s in samples], float)
    coef, _ = nnls(a / y[:, None], np.ones_like(y))
    return float(coef[0]), float(coef[1]), float(coef[2])



def estimate_instructions(cost: Cost) -> int:
    """Instructions per inference the generated C is estimated to execute (see above)."""
    return int(INSTR_PER_MAC * cost.macs + INSTR_PER_ELEMENT * cost.step_elements
               + INSTR_PER_SOFTMAX * cost.softmax_elements)


def instruction_features(tflite_path: str) -> tuple[int, int, int]:
    """(MACs, step elements, softmax elements) of an exported model, as the generated C runs it
    (import + lower + plan through codegen.pipeline.compile)."""
    c = compile(tflite_path)
    g = c.graph
    return (graph_macs(g), step_elements(g, c.steps), sum(softmax_elements_of(g, op) for op in g.ops))
