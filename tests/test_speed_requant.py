"""The requantization helpers of tinyml/common.h against the reference
arithmetic: tinyml_requantize_double_fast (one SMLAL) against
tinyml_requantize_double (gemmlowp's two roundings, which the per-op tests
check against TFLite), tinyml_requantize_bounded (SMMULR of 2x, the
convolutions' fast_requant epilogue) against tinyml_requantize_double plus the
zero point inside its preconditions (also its one-SMMLAR form, conv.c's fast_requant),
and tinyml_requantize_single (SMLAL high word for
shift <= -1) against TFLite's single-rounding formula written out plainly:
edge values, every shift, and a few million pseudo-random cases, compiled for
the host with UBSan."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tinyml.firmware.build import HERE as FIRMWARE_DIR

SRC = r"""
#include <stdio.h>
#include "tinyml/common.h"

/* TFLite MultiplyByQuantizedMultiplier with TFLITE_SINGLE_ROUNDING, plainly. */
static int32_t single_reference(int32_t x, int32_t m, int32_t s)
{
    const int32_t total_shift = 31 - s;
    const int64_t round = (int64_t)1 << (total_shift - 1);
    return (int32_t)(((int64_t)x * (int64_t)m + round) >> total_shift);
}

static long bad;
static void check(int32_t x, int32_t m, int32_t s)
{
    if (tinyml_requantize_double(x, m, s) != tinyml_requantize_double_fast(x, m, s)) {
        if (bad++ < 5) printf("dr x=%d m=%d s=%d\n", x, m, s);
    }
    if (s <= 30 && single_reference(x, m, s) != tinyml_requantize_single(x, m, s)) {
        if (bad++ < 5) printf("sr x=%d m=%d s=%d\n", x, m, s);
    }
    if (tinyml_requantize(x, m, s) != (TINYML_SINGLE_ROUNDING ? tinyml_requantize_single(x, m, s)
                                                               : tinyml_requantize_double(x, m, s))) {
        if (bad++ < 5) printf("sel x=%d m=%d s=%d\n", x, m, s);
    }
}

/* tinyml_requantize_bounded(x, m, s, zp) == tinyml_requantize_double(x, m, s) + zp
 * inside its preconditions (|x| < 2^30, -22 <= s <= -1, |zp| <= 128). */
/* conv.c's fast_requant: (SMMLAR(x2, m, kh) + (x2 >> 31)) >> e with x2 = 2x, e = -s,
 * kh = (2 zp + 1) 2^(e - 1), SMMLAR (kh + the rounded high word of x2 * m) written out. */
static int32_t smmlar_form(int32_t x, int32_t m, int32_t s, int32_t zp)
{
    const int32_t e = -s;
    const int32_t x2 = (int32_t)((uint32_t)x << 1);
    const int32_t kh = (int32_t)((uint32_t)(2 * zp + 1) << (e - 1));
    const int32_t h = (int32_t)(((int64_t)kh * 4294967296ll + (int64_t)x2 * m + 0x80000000ll) >> 32);
    return (h + (x2 >> 31)) >> e;
}

static void check_bounded(int32_t x, int32_t m, int32_t s, int32_t zp)
{
    if (tinyml_requantize_double(x, m, s) + zp != tinyml_requantize_bounded(x, m, s, zp)) {
        if (bad++ < 5) printf("bounded x=%d m=%d s=%d zp=%d\n", x, m, s, zp);
    }
    if (tinyml_requantize_double(x, m, s) + zp != smmlar_form(x, m, s, zp)) {
        if (bad++ < 5) printf("smmlar x=%d m=%d s=%d zp=%d\n", x, m, s, zp);
    }
}

int main(void)
{
    {
        const int32_t bm[] = {0, 1, 1073741824, 1073741825, 1610612736, 1518500250, 2147483647};
        const int32_t bx[] = {0, 1, -1, (1 << 30) - 1, -(1 << 30) + 1, (1 << 29), -(1 << 29)};
        const int32_t bz[] = {-128, -1, 0, 1, 127, 128};
        for (unsigned mi = 0; mi < sizeof bm / sizeof bm[0]; ++mi) {
            for (int32_t s = -22; s <= -1; ++s) {
                for (unsigned zi = 0; zi < sizeof bz / sizeof bz[0]; ++zi) {
                    for (unsigned xi = 0; xi < sizeof bx / sizeof bx[0]; ++xi) {
                        check_bounded(bx[xi], bm[mi], s, bz[zi]);
                    }
                    for (int32_t x = -5000; x <= 5000; ++x) {   /* every rounding tie of small shifts */
                        check_bounded(x, bm[mi], s, bz[zi]);
                    }
                }
            }
        }
        uint32_t q = 7;
        for (long i = 0; i < 2000000; ++i) {
            q = q * 1103515245u + 12345u;
            int32_t x = (int32_t)(q ^ (q << 9)) >> 2;                      /* |x| < 2^30 */
            if (i % 3 == 0) x >>= (q % 29);
            if (x == -(1 << 30)) x = 0;
            q = q * 1103515245u + 12345u;
            const int32_t m = (int32_t)((q >> 1) | 0x40000000u);
            const int32_t s = -1 - (int32_t)(q % 22);
            const int32_t zp = (int32_t)((q >> 8) % 257) - 128;
            check_bounded(x, m, s, zp);
        }
    }
    const int32_t ms[] = {0, 1, 1073741824, 1073741825, 1518500250, 1999999999, 2147483647};
    const int32_t xs[] = {0, 1, -1, 2, -2, 3, -3, 12345, -12345, 1 << 30, -(1 << 30), (1 << 30) + 1,
                          -(1 << 30) - 1, INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1};
    for (unsigned mi = 0; mi < sizeof ms / sizeof ms[0]; ++mi) {
        for (int32_t s = -31; s <= 0; ++s) {
            for (unsigned xi = 0; xi < sizeof xs / sizeof xs[0]; ++xi) {
                check(xs[xi], ms[mi], s);
            }
            for (int32_t x = -3000; x <= 3000; ++x) {
                check(x, ms[mi], s);
            }
        }
    }
    uint32_t r = 1;
    for (long i = 0; i < 3000000; ++i) {
        r = r * 1103515245u + 12345u;
        int32_t x = (int32_t)(r ^ (r << 7));
        if (i % 3 == 0) x >>= (r % 31);
        r = r * 1103515245u + 12345u;
        const int32_t m = (int32_t)((r >> 1) | 0x40000000u);
        int32_t s = -(int32_t)(r % 32);
        if (s < -31) s = -31;
        if (i % 7 == 0) { s = (int32_t)(r % 5); x >>= 6; }   /* multipliers above 1 */
        check(x, m, s);
    }
    printf("bad=%ld\n", bad);
    return bad != 0;
}
"""


@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
@pytest.mark.parametrize("single_rounding", [1, 0])
def test_fast_requantize_equals_reference_helpers(tmp_path, single_rounding):
    inc = tmp_path / "inc" / "tinyml"
    inc.mkdir(parents=True)
    (inc / "config.h").write_text(f"#define TINYML_SINGLE_ROUNDING {single_rounding}\n")
    src = tmp_path / "rq.c"
    src.write_text(SRC)
    exe = tmp_path / "rq"
    kernels_inc = os.path.join(FIRMWARE_DIR, "kernels", "include")
    cc = subprocess.run(["gcc", "-O2", "-std=c99", "-fsanitize=undefined", "-fno-sanitize-recover",
                         f"-I{tmp_path / 'inc'}", f"-I{kernels_inc}", str(src), "-o", str(exe)],
                        capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=100)
    assert run.returncode == 0 and "bad=0" in run.stdout, run.stdout + run.stderr
