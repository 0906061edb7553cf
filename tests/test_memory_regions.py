"""Issue 16 item 4: the arena over several RAM regions, weights in external flash.

The done-when test: a Keras CNN (exported int8 by TensorFlow's converter) whose
arena needs 131,360 B, more than the F4's largest region (SRAM1+SRAM2,
128 KB) but within SRAM1+SRAM2 + CCM, builds for the Netduino Plus 2 and
passes its self-test on QEMU netduinoplus2, bit-exact against TFLite's
reference interpreter (the self-test compares every output byte).

Region sizes are the reference manuals' (RM0090, RM0385, RM0433, RM0432);
what QEMU maps is read from QEMU itself (`info mtree`).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tinyml import paths
from tinyml.boards import load_board
from tinyml.errors import TinymlError

KB = 1024
HAVE_GCC = shutil.which("arm-none-eabi-gcc") is not None
HAVE_QEMU = shutil.which("qemu-system-arm") is not None
KWS = os.path.join(paths.shared_models(), "mlperf-tiny", "kws_ref_model.tflite")
VWW = os.path.join(paths.shared_models(), "mlperf-tiny", "vww_96_int8.tflite")
MOBILENET = os.path.join(paths.shared_models(), "mobilenetv2", "mobilenetv2_a030_80_int8.tflite")


def _regions(board: str) -> dict[str, tuple[int, int, tuple[str, ...]]]:
    return {m.name: (m.origin, m.size, m.roles) for m in load_board(board).memory}


# ---- board descriptors -----------------------------------------------------------------

@pytest.mark.parametrize("board", ["stm32f4-discovery", "netduinoplus2"])
def test_f4_regions(board):
    r = _regions(board)
    assert r["SRAM1"][:2] == (0x2000_0000, 112 * KB) and r["SRAM2"][:2] == (0x2001_C000, 16 * KB)
    assert r["CCM"][:2] == (0x1000_0000, 64 * KB) and r["CCM"][2] == ("arena",)
    b = load_board(board)
    assert [(x.label, x.size) for x in b.arena_regions()] == [("SRAM1+SRAM2", 128 * KB), ("CCM", 64 * KB)]
    remap = {x.name: x.origin for x in b.linker_regions("remap")}
    assert remap["RAM_CCM"] == 0x2002_0000 and remap["RAM_SRAM1_SRAM2"] == 0x2000_0000


def test_f7_h7_l4_regions():
    f7 = _regions("stm32f746g-disco")
    assert [f7[n][:2] for n in ("DTCM", "SRAM1", "SRAM2")] == [
        (0x2000_0000, 64 * KB), (0x2001_0000, 240 * KB), (0x2004_C000, 16 * KB)]
    assert f7["QSPI"] == (0x9000_0000, 16 * 1024 * KB, ("weights",))
    assert load_board("stm32f746g-disco").flash_region().name == "FLASH"
    h7 = _regions("nucleo-h743zi")
    assert h7["DTCM"][:2] == (0x2000_0000, 128 * KB) and "arena" in h7["DTCM"][2]
    assert h7["AXI"][:2] == (0x2400_0000, 512 * KB)
    assert sum(h7[n][1] for n in ("SRAM1", "SRAM2", "SRAM3")) == 288 * KB
    assert h7["SRAM4"][:2] == (0x3800_0000, 64 * KB)
    assert [x.label for x in load_board("nucleo-h743zi").arena_regions()] == ["AXI", "DTCM"]
    l4 = _regions("nucleo-l4r5zi")
    assert [l4[n][:2] for n in ("SRAM1", "SRAM2", "SRAM3")] == [
        (0x2000_0000, 192 * KB), (0x2003_0000, 64 * KB), (0x2004_0000, 384 * KB)]


@pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-arm not installed")
def test_qemu_netduinoplus2_maps_ram_where_the_remap_variant_puts_ccm():
    """The remap variant exists because QEMU maps no CCM; its CCM origin must be RAM in QEMU."""
    p = subprocess.run(["qemu-system-arm", "-M", "netduinoplus2", "-monitor", "stdio", "-display", "none",
                        "-serial", "null", "-S"], input="info mtree\nquit\n", capture_output=True,
                       text=True, timeout=60)
    ram = [(int(a, 16), int(b, 16)) for a, b in
           re.findall(r"^\s*([0-9a-f]{8,16})-([0-9a-f]{8,16}) \(prio \d+, ram\)", p.stdout, re.M)]
    assert ram, p.stdout[-2000:]
    board = load_board("netduinoplus2")
    ccm = dict(board.qemu.remap)["CCM"]

    def mapped(lo: int, hi: int) -> bool:
        return any(a <= lo and hi <= b for a, b in ram)
    assert mapped(ccm, ccm + board.region("CCM").size - 1)
    assert not mapped(0x1000_0000, 0x1000_0000)          # the real CCM address is not RAM on QEMU


def test_remap_of_an_unknown_region_is_rejected(tmp_path):
    src = open(load_board("netduinoplus2").path).read().replace("remap = { CCM", "remap = { CCMX")
    path = tmp_path / "bad.toml"
    path.write_text(src)
    with pytest.raises(TinymlError, match="remap names 'CCMX'"):
        load_board(str(path))


# ---- the model whose arena exceeds the F4's largest region --------------------------------

@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> str:
    """64x64x3 -> conv 16 -> conv 16 -> add (both maps live: 2 x 65,536 B) -> pool -> dense."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from test_fuse_helpers import convert
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((64, 64, 3), batch_size=1)
    a = tf.keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    b = tf.keras.layers.Conv2D(16, 3, padding="same")(a)
    c = tf.keras.layers.Add()([a, b])
    x = tf.keras.layers.MaxPooling2D(4)(c)
    out = tf.keras.layers.Dense(10)(tf.keras.layers.Flatten()(x))
    path = str(tmp_path_factory.mktemp("regions") / "wide.tflite")
    return convert(tf.keras.Model(inp, out), (64, 64, 3), path, samples=16)


def _compile(model: str, regions=()):
    from tinyml.codegen.pipeline import CompileOptions, compile
    return compile(model, CompileOptions(regions=regions))


def test_split_plan_respects_every_region(wide):
    from tinyml.codegen.pipeline import arena_regions
    from tinyml.memory_planner.plan import check_plan
    regions = arena_regions(load_board("netduinoplus2"), stack_bytes=8192)
    single = _compile(wide).plan
    assert single.arena_bytes > 128 * KB           # more than SRAM1+SRAM2 even without a stack
    plan = _compile(wide, regions).plan
    assert [r.name for r in plan.regions] == ["SRAM1+SRAM2", "CCM"]
    assert [r.symbol for r in plan.regions] == ["tinyml_arena", "tinyml_arena_ccm"]
    assert plan.regions[1].section == ".ccmram"
    assert plan.arena_bytes == plan.regions[0].arena_bytes
    assert plan.total_arena_bytes == sum(r.arena_bytes for r in plan.regions) >= single.lower_bound
    # every buffer in exactly one region, wholly inside that region's arena
    owners = sorted(i for r in plan.regions for i in r.buffers)
    assert owners == list(range(len(plan.buffers)))
    for reg, cap in zip(plan.regions, regions):
        assert reg.capacity == cap.capacity and reg.lower_bound <= reg.arena_bytes <= reg.capacity
        for i in reg.buffers:
            b = plan.buffers[i]
            assert 0 <= b.offset and b.offset + b.size <= reg.arena_bytes
    # overlap allowances survive only between buffers of one region
    for o, i in list(plan.overlaps) + list(plan.overlaps_up):
        assert plan.region_of(o) == plan.region_of(i)
    check_plan(plan)
    d = plan.to_dict()
    assert [r["arena_bytes"] for r in d["regions"]] == [r.arena_bytes for r in plan.regions]
    assert all("region" in b for b in d["buffers"])


def test_split_that_cannot_fit_keeps_one_arena(wide):
    from tinyml.memory_planner.regions import ArenaRegion
    small = (ArenaRegion("A", 40 * KB, ".bss.tinyml_arena", "tinyml_arena"),
             ArenaRegion("B", 40 * KB, ".bss.b", "tinyml_arena_b"))
    plan = _compile(wide, small).plan
    single = _compile(wide).plan
    got, want = plan.to_dict(), single.to_dict()
    assert any("cannot be split" in n for n in got.pop("notes")) and not want.pop("notes")
    assert plan.regions == [] and got == want


@pytest.mark.parametrize("model", [VWW, MOBILENET])
def test_plan_that_fits_the_main_region_is_unchanged(model):
    from tinyml.codegen.pipeline import arena_regions
    if not os.path.exists(model):
        pytest.skip(f"shared model missing: {model}")
    plan = _compile(model, arena_regions(load_board("stm32f4-discovery"))).plan
    assert plan.regions == [] and plan.to_json() == _compile(model).plan.to_json()


def test_plan_cli_reports_each_region(wide):
    p = subprocess.run([sys.executable, "-m", "tinyml.cli", "plan", wide, "--board", "stm32f4-discovery",
                        "--json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert [(r["name"], r["symbol"]) for r in d["regions"]] == [("SRAM1+SRAM2", "tinyml_arena"),
                                                                ("CCM", "tinyml_arena_ccm")]
    assert d["arena_bytes"] == sum(r["arena_bytes"] for r in d["regions"]) > 128 * KB
    assert d["fits"] is True and any(line.startswith("CCM: arena") for line in d["fit_detail"])


def _nm(elf: str) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", elf], capture_output=True, text=True, check=True).stdout
    return {f[2]: int(f[0], 16) for f in (line.split() for line in out.splitlines()) if len(f) == 3}


@pytest.mark.slow
@pytest.mark.emulator
@pytest.mark.timeout(600)
@pytest.mark.skipif(not (HAVE_GCC and HAVE_QEMU), reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_arena_over_sram_and_ccm_passes_on_qemu_netduinoplus2(wide, tmp_path):
    from tinyml.firmware.build import build_firmware
    from tinyml.firmware.emulate import emulate
    out = str(tmp_path / "fw")
    res = build_firmware(wide, "netduinoplus2", out, num_vectors=2, progress=lambda m: None)
    meta = json.load(open(os.path.join(out, "build.json")))
    assert meta["qemu_variant"] == "remap"
    assert [r["name"] for r in meta["arena_regions"]] == ["SRAM1+SRAM2", "CCM"]
    plan = json.load(open(os.path.join(out, "model", "plan.json")))
    # the board binary: the CCM part of the arena at the CCM's address, sized as planned
    native = _nm(res.elf("native"))
    assert "tinyml_qspi_map" not in native
    assert native["tinyml_arena_ccm"] == 0x1000_0000 and 0x2000_0000 <= native["tinyml_arena"] < 0x2002_0000
    arenas = {a["symbol"]: a for a in res.sizes["native"].arenas}
    assert arenas["tinyml_arena_ccm"]["bytes"] == plan["regions"][1]["arena_bytes"]
    assert arenas["tinyml_arena"]["bytes"] == plan["regions"][0]["arena_bytes"]
    assert res.sizes["native"].arena == plan["total_arena_bytes"] > 128 * KB
    emu = emulate(out, timeout=300)
    assert emu.passed, emu.output[-2000:]
    assert emu.variant == "remap" and len(emu.vectors) == 2 and all(v.passed for v in emu.vectors)
    assert _nm(os.path.join(out, "remap", "firmware.elf"))["tinyml_arena_ccm"] == 0x2002_0000


# ---- weights in the F746-DISCO's QSPI flash ---------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(not HAVE_GCC, reason="arm-none-eabi-gcc not installed")
def test_weights_in_qspi_are_linked_at_0x90000000(tmp_path):
    if not os.path.exists(KWS):
        pytest.skip("shared model missing")
    out = str(tmp_path / "fw")
    p = subprocess.run([sys.executable, "-m", "tinyml.cli", "build", KWS, "--board", "stm32f746g-disco",
                        "-o", out, "--vectors", "0", "--weights-region", "qspi", "--json"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    syms = _nm(os.path.join(out, "firmware.elf"))
    weights = {n: a for n, a in syms.items() if re.fullmatch(r"tinyml_w\d+", n)}
    assert weights and all(0x9000_0000 <= a < 0x9100_0000 for a in weights.values())
    assert 0x0800_0000 <= syms["Reset_Handler"] < 0x0810_0000
    assert "tinyml_qspi_map" in syms                  # runtime/qspi.c maps the QSPI before main
    ext = json.loads(p.stdout)["variants"]["native"]["external_weights"]
    assert ext["region"] == "QSPI" and ext["address"] == 0x9000_0000
    assert os.path.getsize(os.path.join(out, "weights_qspi.bin")) == ext["bytes"]
    assert os.path.getsize(os.path.join(out, "firmware.bin")) < 1024 * KB    # internal flash image only
    # QEMU maps no QSPI: emulating says so in one line
    e = subprocess.run([sys.executable, "-m", "tinyml.cli", "emulate", out], capture_output=True, text=True)
    assert e.returncode != 0 and "Traceback" not in e.stderr
    assert e.stderr.strip().splitlines()[-1].startswith("error: ") and "QEMU does not model" in e.stderr


def test_unknown_weights_region_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "fw"
    p = subprocess.run([sys.executable, "-m", "tinyml.cli", "build", KWS, "--board", "stm32f4-discovery",
                        "-o", str(out), "--vectors", "0", "--weights-region", "qspi"],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "no weights region 'qspi'" in lines[0] and "omit --weights-region" in lines[0]
    assert not out.exists()


def test_plan_judges_weights_against_qspi():
    """MobileNetV2 0.30's 1.78 MB of weights exceed the F746's 1 MB internal flash, not its 16 MB QSPI."""
    if not os.path.exists(MOBILENET):
        pytest.skip("shared model missing")
    from tinyml.codegen.pipeline import plan_model
    internal, _ = plan_model(MOBILENET, "stm32f746g-disco")
    qspi, _ = plan_model(MOBILENET, "stm32f746g-disco", weights_region="qspi")
    assert internal.weights_bytes == qspi.weights_bytes > 1024 * KB
    assert internal.fits is False and qspi.fits is True
    assert f"QSPI: weights {qspi.weights_bytes:,} of 16,777,216 B -> fits" in qspi.fit_detail


# ---- QUADSPI memory-mapped init (runtime/qspi.c) against a register model ----------------

@pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")
@pytest.mark.parametrize("stuck", [False, True])
def test_qspi_memory_mapped_init_register_values(tmp_path, stuck):
    """runtime/qspi.c compiled on the host against a register model (SR reports BUSY for the first
    reads, or forever); final values against RM0385's field layout and the board's pins."""
    from tinyml.firmware.build import board_context, _env
    board = load_board("stm32f746g-disco")
    ctx = board_context(board, "native", "selftest", 8192, weights_region="QSPI")
    (tmp_path / "board_config.h").write_text(_env().get_template("board_config.h.j2").render(**ctx))
    from tinyml.firmware.build import RUNTIME_DIR as runtime
    harness = tmp_path / "harness.c"
    harness.write_text(r"""
#include <stdint.h>
#include <stdio.h>
static struct { uint32_t addr; uint32_t value; } regs[64];
static int nregs;
static unsigned busy_reads = %d;
static uint32_t sr_value;
static uint32_t reset_value(uint32_t a)
{
    switch (a) {                                   /* RM0385: GPIOB reset values (debug pins) */
    case 0x40020400u: return 0x00000280u;          /* MODER */
    case 0x40020408u: return 0x000000C0u;          /* OSPEEDR */
    case 0x4002040Cu: return 0x00000100u;          /* PUPDR */
    default: return 0u;
    }
}
static volatile uint32_t *reg(uint32_t a)
{
    if (a == 0xA0001008u) {                        /* QUADSPI_SR: BUSY for the first reads */
        sr_value = busy_reads ? (--busy_reads, 1u << 5) : 0u;
        return &sr_value;
    }
    for (int i = 0; i < nregs; ++i) {
        if (regs[i].addr == a) return &regs[i].value;
    }
    regs[nregs].addr = a;
    regs[nregs].value = reset_value(a);
    return &regs[nregs++].value;
}
#define QSPI_MMIO32(addr) (*reg((uint32_t)(addr)))
#define QSPI_NO_CONSTRUCTOR
#include "qspi.c"
int main(void)
{
    tinyml_qspi_map();
    printf("status %%d\n", tinyml_qspi_status);
    for (int i = 0; i < nregs; ++i) printf("%%08x %%08x\n", regs[i].addr, regs[i].value);
    return 0;
}
""" % (1000000 if stuck else 3))
    exe = str(tmp_path / "harness")
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{tmp_path}", f"-I{runtime}",
                    str(harness), "-o", exe], check=True, capture_output=True, text=True)
    out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout.splitlines()
    status = int(out[0].split()[1])
    got = {int(a, 16): int(v, 16) for a, v in (line.split() for line in out[1:])}
    # Expected values from RM0385 field positions and the board's pins (UM1907):
    rcc_ahb1enr, rcc_ahb3enr = 0x4002_3830, 0x4002_3838
    gpiob, gpiod, gpioe, qspi = 0x4002_0400, 0x4002_0C00, 0x4002_1000, 0xA000_1000
    want = {
        rcc_ahb1enr: (1 << 1) | (1 << 3) | (1 << 4),          # GPIOB, GPIOD, GPIOE
        rcc_ahb3enr: 1 << 1,                                  # QSPIEN
        gpiob + 0x00: 0x280 | (2 << 4) | (2 << 12),           # PB2, PB6 alternate function
        gpiob + 0x08: 0xC0 | (3 << 4) | (3 << 12),            # very high speed
        gpiob + 0x0C: 0x100,                                  # PB4's reset pull-up kept
        gpiob + 0x20: (9 << 8) | (10 << 24),                  # AF9 CLK, AF10 NCS
        gpiod + 0x00: (2 << 22) | (2 << 24) | (2 << 26),      # PD11, PD12, PD13
        gpiod + 0x08: (3 << 22) | (3 << 24) | (3 << 26),
        gpiod + 0x24: (9 << 12) | (9 << 16) | (9 << 20),      # AFRH: IO0, IO1, IO3 AF9
        gpioe + 0x00: 2 << 4, gpioe + 0x08: 3 << 4, gpioe + 0x20: 9 << 8,   # PE2 IO2 AF9
        qspi + 0x00: (3 << 24) | (1 << 4) | 1,                # PRESCALER 3, SSHIFT, EN
        qspi + 0x04: (23 << 16) | (2 << 8),                   # FSIZE 23 (16 MB), CSHT 2
    }
    for addr, value in want.items():
        assert got.get(addr) == value, f"0x{addr:08x}: got 0x{got.get(addr, 0):08x}, want 0x{value:08x}"
    ccr = (3 << 26) | (3 << 24) | (8 << 18) | (2 << 12) | (1 << 10) | (1 << 8) | 0x6B
    if stuck:   # the peripheral never leaves BUSY: no memory-mapped mode, status says so
        assert status == 1 and got.get(qspi + 0x14, 0) == 0
    else:
        assert status == 0 and got[qspi + 0x14] == ccr == 0x0F20256B
