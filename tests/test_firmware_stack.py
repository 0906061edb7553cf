"""Static stack estimate (firmware/stack_usage.py) on call graphs GCC writes for
small C files whose frames are known by construction (local arrays)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                reason="arm-none-eabi-gcc not installed")

SRC = r"""
#include <string.h>
void use(volatile char *p, int n);
__attribute__((noinline)) int deep(int n) { volatile char b[1000]; use(b, n); return b[n]; }
__attribute__((noinline)) int shallow(int n) { volatile char b[100]; use(b, n); return b[n]; }
__attribute__((noinline)) int pick(int n) { volatile char b[300]; use(b, n); return n ? deep(n) : shallow(n); }
void Reset_Handler(void) { pick(1); }
void SysTick_Handler(void) { shallow(2); }
"""
USE = r"""
void use(volatile char *p, int n) { p[n] = 1; }
"""
RECURSIVE = r"""
__attribute__((noinline)) int walk(int n) { volatile char b[64]; b[0] = (char)n; return n ? walk(n - 1) + b[0] : 0; }
int (*hook)(int);
void Reset_Handler(void) { walk(3); if (hook) hook(1); }
"""


def _compile(tmp_path, files: dict[str, str]) -> str:
    obj = tmp_path / "obj"
    obj.mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", "-O2", "-fstack-usage",
                        "-fcallgraph-info=su", "-c", str(tmp_path / name), "-o",
                        str(obj / name.replace(".c", ".o"))], check=True)
    return str(obj)


def test_deepest_path_and_interrupt(tmp_path):
    from tinyml.firmware.stack_usage import EXCEPTION_FRAME, estimate
    est = estimate(_compile(tmp_path, {"a.c": SRC, "use.c": USE}))
    assert est.main_path[:3] == ["Reset_Handler", "pick", "deep"] and est.main_path[-1] == "use"
    assert est.main_bytes >= 300 + 1000                   # both arrays are on the stack at once
    assert est.main_bytes < 300 + 1000 + 200             # plus a few saved registers per frame
    assert est.isr_path[:2] == ["SysTick_Handler", "shallow"] and 100 <= est.isr_bytes < 200
    assert est.bytes == est.main_bytes + est.isr_bytes + EXCEPTION_FRAME
    assert est.bounded and est.assumed == []


def test_recursion_and_indirect_calls_make_it_a_lower_bound(tmp_path):
    from tinyml.firmware.stack_usage import estimate
    est = estimate(_compile(tmp_path, {"r.c": RECURSIVE}))
    assert not est.bounded
    assert any("recursion through walk" in r for r in est.unbounded_reasons)
    assert any("indirect call" in r for r in est.unbounded_reasons)
    assert "lower bound" in est.line()


def test_no_call_graph_files_means_no_estimate(tmp_path):
    from tinyml.firmware.stack_usage import estimate
    assert estimate(str(tmp_path)) is None
