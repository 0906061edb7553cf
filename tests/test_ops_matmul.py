"""BATCH_MATMUL (int8) against the TFLite reference: the ViT's attention
products first, then adjoints, broadcasting and ranks 2-4."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from opmodels import Spec, check_bit_exact, single_op_model


def bmm_model(a_shape, b_shape, out_shape, qa, qb, qo, adj_x=False, adj_y=False):
    return single_op_model(
        "BATCH_MATMUL",
        [Spec(a_shape, scale=qa[0], zero_point=qa[1]), Spec(b_shape, scale=qb[0], zero_point=qb[1])],
        [Spec(out_shape, scale=qo[0], zero_point=qo[1])],
        options=("BatchMatMulOptions", {"adjX": adj_x, "adjY": adj_y}))


def out_shape(a, b, adj_x, adj_y):
    n = max(len(a), len(b))
    a = [1] * (n - len(a)) + list(a)
    b = [1] * (n - len(b)) + list(b)
    batch = [max(x, y) for x, y in zip(a[:-2], b[:-2])]
    rows = a[-1] if adj_x else a[-2]
    cols = b[-2] if adj_y else b[-1]
    return tuple(batch + [rows, cols])


@pytest.mark.timeout(300)
def test_vit_scores_qkT():
    """[1,2,49,32] x [1,2,49,32]^T -> [1,2,49,49], quantization from vit_relu_d64x4 op 22."""
    m = bmm_model((1, 2, 49, 32), (1, 2, 49, 32), (1, 2, 49, 49), (0.0383588969707489, 10),
                  (0.04261861369013786, 7), (0.6274970769882202, -20), adj_y=True)
    check_bit_exact(m, count=3)


@pytest.mark.timeout(300)
def test_vit_attention_times_v():
    """[1,2,49,49] x [1,2,49,32] -> [1,2,49,32], quantization from vit_relu_d64x4 op 28."""
    m = bmm_model((1, 2, 49, 49), (1, 2, 49, 32), (1, 2, 49, 32), (0.00390625, -128),
                  (0.04159114882349968, 2), (0.038431841880083084, 6))
    check_bit_exact(m, count=3)


@pytest.mark.timeout(300)
def test_adj_x_and_broadcast():
    a, b = (3, 1, 7, 5), (1, 2, 7, 6)      # adj_x: a is [.., depth=7, rows=5]
    m = bmm_model(a, b, out_shape(a, b, True, False), (0.02, -3), (0.05, 9), (0.3, 4), adj_x=True)
    check_bit_exact(m, count=2)


@pytest.mark.timeout(600)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rank_a=st.integers(2, 4), rank_b=st.integers(2, 4), b0=st.integers(1, 3), b1=st.integers(1, 3),
       bcast=st.integers(0, 3), rows=st.integers(1, 9), depth=st.integers(1, 40), cols=st.integers(1, 9),
       adj_x=st.booleans(), adj_y=st.booleans(), qa=st.tuples(st.floats(1e-3, 0.2), st.integers(-128, 127)),
       qb=st.tuples(st.floats(1e-3, 0.2), st.integers(-128, 127)), out_scale=st.floats(0.01, 2.0),
       out_zp=st.integers(-128, 127), seed=st.integers(0, 99))
def test_batch_matmul_sweep(rank_a, rank_b, b0, b1, bcast, rows, depth, cols, adj_x, adj_y, qa, qb,
                            out_scale, out_zp, seed):
    batch = [b0, b1]
    ba = [1 if bcast & 1 else d for d in batch][4 - rank_a:] if rank_a > 2 else []
    bb = [1 if bcast & 2 else d for d in batch][4 - rank_b:] if rank_b > 2 else []
    a = tuple(ba + ([depth, rows] if adj_x else [rows, depth]))
    b = tuple(bb + ([cols, depth] if adj_y else [depth, cols]))
    m = bmm_model(a, b, out_shape(a, b, adj_x, adj_y), qa, qb, (out_scale, out_zp), adj_x, adj_y)
    check_bit_exact(m, count=2, seed=seed, sanitize=False)
