"""`--prefix NAME`: several generated libraries in one program.

Two different shared models are generated with their own prefixes and linked
into one program: through the generated CMakeLists (host compiler; both run on
the same inputs as TFLite's reference interpreter, byte for byte) and into one
STM32F746 firmware on QEMU (both self-tests pass). The CMake library's -O2
default and its arena section/alignment options are checked on the compile
lines and in the linked symbols.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tinyml import paths

MODELS = os.path.join(paths.shared_models(), "mlperf-tiny")
AD01 = os.path.join(MODELS, "ad01_int8.tflite")
KWS = os.path.join(MODELS, "kws_ref_model.tflite")
KERNEL_HEADERS = os.path.join(paths.KERNELS, "include", "tinyml")

needs_cmake = pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("gcc") is None,
                                 reason="cmake and gcc needed (scripts/install.sh)")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], capture_output=True, text=True)


def _oracle(model: str, n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded random int8 inputs and TFLite's reference outputs, computed here."""
    import tensorflow as tf
    interp = tf.lite.Interpreter(model_path=model,
                                 experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.integers(-128, 128, size=i["shape"]).astype(np.int8)
        interp.set_tensor(i["index"], x)
        interp.invoke()
        out.append((x.reshape(-1), interp.get_tensor(o["index"]).reshape(-1).copy()))
    return out


def _c_array(name: str, values) -> str:
    return f"static const int8_t {name}[{len(values)}] = {{" + ", ".join(str(int(v)) for v in values) + "};\n"


@pytest.fixture(scope="module")
def two_libs(tmp_path_factory):
    from tinyml.codegen.emit import generate
    root = tmp_path_factory.mktemp("prefix")
    generate(AD01, str(root / "ad"), prefix="ad")
    generate(KWS, str(root / "kws"), prefix="kws")
    return root


# ---------------------------------------------------------------- names

@pytest.mark.parametrize("bad", ["9x", "my-model", "int", "a b", "x_", "", "_x", "a" * 33])
def test_bad_prefix_is_one_line_and_writes_nothing(tmp_path, bad):
    out = tmp_path / "lib"
    r = _cli("generate", AD01, "-o", str(out), "--prefix", bad)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--prefix" in lines[0] and "C name" in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_bad_prefix_on_build(tmp_path):
    out = tmp_path / "fw"
    r = _cli("build", AD01, "--board", "stm32f746g-disco", "-o", str(out), "--prefix", "no-dash")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "--prefix" in r.stderr
    assert not (out / "model").exists()


def test_prefixed_library_defines_only_prefixed_names(two_libs):
    """Every tinyml_* / TINYML_* name left in a prefixed library is the shared kernel API
    (declared in kernels.h) or a build switch; everything it defines starts with kws_/KWS_."""
    headers = "".join(open(os.path.join(KERNEL_HEADERS, h)).read() for h in os.listdir(KERNEL_HEADERS)
                      if h.endswith(".h") and h != "config.h")
    api = set(re.findall(r"\btinyml_\w+", headers))
    api_macros = set(re.findall(r"\bTINYML_\w+", headers)) | {"TINYML_TRACE", "TINYML_CHECK_SCRATCH"}
    lib = two_libs / "kws"
    for name in ("model.c", "model.h", "weights.c", "weights.h"):
        text = (lib / name).read_text()
        assert set(re.findall(r"\btinyml_\w+", text)) <= api, name
        assert set(re.findall(r"\bTINYML_\w+", text)) <= api_macros, name
    defined = re.findall(r"^(?:const |uint8_t |void \*|int |int32_t )[\w ]*?\b(\w+)\s*[\[(]",
                         (lib / "model.c").read_text() + (lib / "weights.c").read_text(), re.M)
    assert defined and all(d.startswith("kws_") for d in defined), defined
    assert "kws_arena" in defined and "kws_run" in defined
    hdr = (lib / "model.h").read_text()
    assert "#define KWS_ARENA_BYTES" in hdr and "#ifndef KWS_MODEL_H" in hdr
    assert json.loads((lib / "plan.json").read_text())["prefix"] == "kws"


def test_default_prefix_keeps_the_historical_names(tmp_path):
    from tinyml.codegen.emit import generate
    generate(AD01, str(tmp_path / "lib"))
    c = (tmp_path / "lib" / "model.c").read_text()
    assert "uint8_t tinyml_arena[TINYML_ARENA_BYTES]" in c and "int tinyml_run(void)" in c
    assert '#define TINYML_ARENA_SECTION ".bss.tinyml_arena"' in c
    assert "add_library(tinyml_model STATIC" in (tmp_path / "lib" / "CMakeLists.txt").read_text()


def test_platformio_manifest(two_libs):
    """library.json with the fields PlatformIO's manifest requires (name slug, version,
    description) and a build section that compiles exactly the library's C files."""
    m = json.loads((two_libs / "kws" / "library.json").read_text())
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", m["name"]) and m["name"] == "kws-model"
    assert m["version"] and m["description"]
    b = m["build"]
    assert b["srcDir"] == "." and b["includeDir"] == "."
    assert "+<model.c>" in b["srcFilter"] and "+<weights.c>" in b["srcFilter"]
    assert "+<kernels/src/*.c>" in b["srcFilter"] and b["srcFilter"][0] == "-<*>"
    assert "-O2" in b["flags"] and "-I kernels/include" in b["flags"]
    for pat in ("model.c", "weights.c"):
        assert (two_libs / "kws" / pat).exists()
    assert list((two_libs / "kws" / "kernels" / "src").glob("*.c"))


# ---------------------------------------------------------------- CMake, host

MAIN_C = """#include <stdio.h>
#include "model.h"      /* first found: ad's (include order); kws's below by path */
#include "{kws_h}"

{arrays}
static int dump(const char *tag, const int8_t *p, int n)
{{
    printf("%s", tag);
    for (int i = 0; i < n; ++i) printf(" %d", p[i]);
    printf("\\n");
    return 0;
}}

int main(void)
{{
    for (int v = 0; v < {n}; ++v) {{
        if (ad_invoke(ad_in[v], (int8_t *)ad_output_ptr(0)) != 0) return 1;
        dump("ad", (const int8_t *)ad_output_ptr(0), AD_OUTPUT_BYTES);
        if (kws_invoke(kws_in[v], (int8_t *)kws_output_ptr(0)) != 0) return 2;
        dump("kws", (const int8_t *)kws_output_ptr(0), KWS_OUTPUT_BYTES);
    }}
    printf("arena %p %p\\n", (void *)ad_arena, (void *)kws_arena);
    return 0;
}}
"""


def _cmake(src, build, *defs) -> subprocess.CompletedProcess:
    return subprocess.run(["cmake", "-S", str(src), "-B", str(build), "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON",
                           *defs], capture_output=True, text=True)


def _project(root, libs: list[str], main: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "main.c").write_text(main)
    subdirs = "\n".join(f"add_subdirectory({lib} {os.path.basename(lib)})" for lib in libs)
    targets = " ".join(f"{os.path.basename(lib)}_model" for lib in libs)
    (root / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.13)\nproject(two_models C)\n" + subdirs +
        f"\nadd_executable(app main.c)\ntarget_link_libraries(app {targets})\n")


@needs_cmake
def test_cmake_two_models_link_run_bit_exact_with_options(two_libs, tmp_path):
    n = 2
    ad_vecs, kws_vecs = _oracle(AD01, n, seed=3), _oracle(KWS, n, seed=4)
    arrays = "".join(_c_array(f"ad_in{i}", x) for i, (x, _) in enumerate(ad_vecs))
    arrays += "".join(_c_array(f"kws_in{i}", x) for i, (x, _) in enumerate(kws_vecs))
    arrays += ("static const int8_t *const ad_in[] = {" + ", ".join(f"ad_in{i}" for i in range(n)) + "};\n")
    arrays += ("static const int8_t *const kws_in[] = {" + ", ".join(f"kws_in{i}" for i in range(n)) + "};\n")
    proj = tmp_path / "proj"
    _project(proj, [str(two_libs / "ad"), str(two_libs / "kws")],
             MAIN_C.format(kws_h=str(two_libs / "kws" / "model.h"), arrays=arrays, n=n))
    build = tmp_path / "build"
    r = _cmake(proj, build, "-DAD_ARENA_SECTION=.ad_custom", "-DKWS_ARENA_ALIGN=64")
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    # numerics: both models, byte for byte against TFLite
    run = subprocess.run([str(build / "app")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    ad_lines = [l.split()[1:] for l in run.stdout.splitlines() if l.startswith("ad ")]
    kws_lines = [l.split()[1:] for l in run.stdout.splitlines() if l.startswith("kws ")]
    assert [list(map(int, l)) for l in ad_lines] == [y.tolist() for _, y in ad_vecs]
    assert [list(map(int, l)) for l in kws_lines] == [y.tolist() for _, y in kws_vecs]

    # -O2 on every library compile line (no CMAKE_BUILD_TYPE given)
    cmds = json.loads((build / "compile_commands.json").read_text())
    lib_cmds = [c for c in cmds if "/main.c" not in c["file"]]
    assert len(lib_cmds) >= 4 and all(" -O2" in c["command"] for c in lib_cmds)
    kernel_files = [c["file"] for c in cmds if "/kernels/src/" in c["file"]]
    assert kernel_files and len(kernel_files) == len(set(os.path.basename(f) for f in kernel_files)), \
        "kernels compiled more than once"

    # section and alignment options honoured in the linked program
    objdump = subprocess.run(["objdump", "-t", str(build / "app")], capture_output=True, text=True).stdout
    ad_line = next(l for l in objdump.splitlines() if l.split() and l.split()[-1] == "ad_arena")
    assert " .ad_custom\t" in ad_line, ad_line
    kws_line = next(l for l in objdump.splitlines() if l.split() and l.split()[-1] == "kws_arena")
    assert int(kws_line.split()[0], 16) % 64 == 0

    # no global symbol is defined by both model libraries; kernels only in tinyml_kernels
    def defined(archive):
        out = subprocess.run(["nm", "-g", "--defined-only", str(archive)], capture_output=True, text=True).stdout
        return {l.split()[-1] for l in out.splitlines() if len(l.split()) == 3}
    ad_syms, kws_syms = defined(build / "ad" / "libad_model.a"), defined(build / "kws" / "libkws_model.a")
    kern = defined(next(build.rglob("libtinyml_kernels.a")))
    assert ad_syms and kws_syms and kern
    assert not ad_syms & kws_syms and not (ad_syms | kws_syms) & kern
    assert all(s.startswith("ad_") for s in ad_syms) and all(s.startswith("kws_") for s in kws_syms)


@needs_cmake
def test_cmake_rejects_bad_alignment_and_mixed_rounding(two_libs, tmp_path):
    from tinyml.codegen.emit import generate
    proj = tmp_path / "p1"
    _project(proj, [str(two_libs / "ad")], "int main(void) { return 0; }\n")
    r = _cmake(proj, tmp_path / "b1", "-DAD_ARENA_ALIGN=8")
    assert r.returncode != 0 and "AD_ARENA_ALIGN=8 must be a power of two >= 16" in " ".join(r.stderr.split())
    generate(AD01, str(tmp_path / "other"), prefix="other", rounding="tflm")
    proj = tmp_path / "p2"
    _project(proj, [str(two_libs / "ad"), str(tmp_path / "other")], "int main(void) { return 0; }\n")
    r = _cmake(proj, tmp_path / "b2")
    assert r.returncode != 0 and "regenerate both with the same --rounding" in " ".join(r.stderr.split())


# ---------------------------------------------------------------- one firmware, QEMU

SECOND_C = """/* Test: the self-test of a second model linked beside the firmware's main one. */
#include <string.h>
#include "runtime.h"
#include "../model_kws/model.h"

{arrays}
int selftest_more_models(void)
{{
    int failed = 0;
    for (int v = 0; v < {n}; ++v) {{
        memcpy(kws_input_ptr(0), kws_in[v], KWS_INPUT_BYTES);
        const int rc = kws_run();
        const int8_t *out = (const int8_t *)kws_output_ptr(0);
        uint32_t bad = 0;
        for (uint32_t k = 0; k < KWS_OUTPUT_BYTES; ++k) bad += out[k] != kws_want[v][k];
        con_puts("second model=" KWS_MODEL_NAME " vector "); con_putu((uint32_t)v);
        con_puts(rc == 0 && bad == 0 ? " PASS" : " FAIL"); con_nl();
        failed |= rc != 0 || bad != 0;
    }}
    return failed;
}}
"""


@pytest.mark.slow
@pytest.mark.emulator
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc and qemu-system-arm needed")
def test_two_models_in_one_f746_firmware_on_qemu(tmp_path):
    """ad01 (build --prefix ad) and kws (generate --prefix kws into model_kws/) link into one
    STM32F746 firmware; on QEMU both run, one after the other, bit-exact against TFLite."""
    from tinyml.codegen.emit import generate
    from tinyml.firmware.build import build_firmware
    from tinyml.firmware.emulate import emulate
    out = tmp_path / "fw"
    generate(KWS, str(out / "model_kws"), prefix="kws")
    n = 2
    vecs = _oracle(KWS, n, seed=5)
    arrays = "".join(_c_array(f"kws_in{i}", x) + _c_array(f"kws_want{i}", y) for i, (x, y) in enumerate(vecs))
    arrays += "static const int8_t *const kws_in[] = {" + ", ".join(f"kws_in{i}" for i in range(n)) + "};\n"
    arrays += "static const int8_t *const kws_want[] = {" + ", ".join(f"kws_want{i}" for i in range(n)) + "};\n"
    (out / "app").mkdir(parents=True)
    (out / "app" / "second_model.c").write_text(SECOND_C.format(arrays=arrays, n=n))
    ad_vecs = [(x.tobytes(), y.tobytes()) for x, y in _oracle(AD01, 2, seed=6)]
    res = build_firmware(AD01, "stm32f746g-disco", str(out), emulator_variant=True, prefix="ad",
                         vectors=ad_vecs, oracle="tflite-ref (test)", progress=lambda m: None)
    assert (out / "model" / "app_names.h").exists()
    meta = json.loads((out / "build.json").read_text())
    assert meta["prefix"] == "ad"
    em = emulate(str(out), timeout=120)
    assert em.passed, em.output[-2000:]
    assert [v.passed for v in em.vectors] == [True, True]
    assert em.output.count("second model=kws_ref_model vector") == n
    assert "second model=kws_ref_model vector 1 PASS" in em.output and " FAIL" not in em.output
    # the main model's arena stays where the linker script places it; the second in .bss
    assert em.arena_used_bytes == meta["arena_bytes"] == res.sizes["native"].arena


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc needed")
@pytest.mark.parametrize("rel", ["vit/vit_relu_d64x4.tflite", "mlperf-tiny/pretrainedResnet_quant.tflite"])
def test_prefixed_fused_models_define_only_prefixed_globals(tmp_path, rel):
    """Models with fused kernels, shared tables and packed filters (ViT, ResNet) compile with a
    prefix, and every global their objects define carries it."""
    from tinyml.codegen.emit import generate
    lib = tmp_path / "lib"
    generate(os.path.join(paths.shared_models(), rel), str(lib), prefix="m2")
    syms = set()
    for src in ("model.c", "weights.c"):
        obj = tmp_path / (src + ".o")
        r = subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Werror", "-I", str(lib),
                            "-I", str(lib / "kernels" / "include"), "-c", str(lib / src), "-o", str(obj)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        out = subprocess.run(["nm", "-g", "--defined-only", str(obj)], capture_output=True, text=True).stdout
        syms |= {l.split()[-1] for l in out.splitlines() if len(l.split()) == 3}
    assert "m2_arena" in syms and "m2_run" in syms
    assert all(s.startswith("m2_") for s in syms), sorted(s for s in syms if not s.startswith("m2_"))
