"""Per-op lowerings and fusion patterns.

Importing this package registers every lowering (`codegen.lowering.lowering`)
and every fusion pattern (`codegen.patterns.pattern`). Op modules import only
`tinyml.ir`, `tinyml.steps`, `codegen.lowering`, `codegen.patterns`, the
build-time math (`quant`, `luts`, `cdecl`) and each other, never the driver.
"""
from . import (activation, batch_matmul, compare, conv, cumsum, elementwise, fully_connected, fused_add,  # noqa: F401
               detection, fused_attention, fused_common, fused_invres, fused_layernorm, fused_mlp, fused_resblock, gather, int16,
               movement,
               lstm, pad, pool, quantize, reduce, reshape, resize, shape, softmax, spatial, split, svdf, tile,
               transpose_conv, unary, update)
