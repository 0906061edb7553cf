"""The runtime's clock tree (firmware/runtime/clock.c) against a scripted register model.

clock.c is compiled with the host gcc, its register accesses routed to
tests/clock_model.c: plain structs holding the RCC / PWR / FLASH registers
at their reset values, with ready flags scripted to come after a few polls
or never. The board constants come from each board's descriptor through the
real board_config.h template. Final register fields are compared with values
taken from the reference manuals (section cited beside each), not from
running the code; the fallback paths check that the core stays on the reset
clock, that what was started is stopped, and that every wait is bounded.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

import pytest

from tinyml.boards import list_boards, load_board
from tinyml.firmware.build import render_board_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNTIME = os.path.join(ROOT, "firmware", "runtime")
MODEL_C = os.path.join(ROOT, "tests", "clock_model.c")

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs the host gcc")


def bits(value: int, hi: int, lo: int) -> int:
    return (value >> lo) & ((1 << (hi - lo + 1)) - 1)


@dataclass
class Rule:
    """Status bits `mask` of `status` read `ready` once (cond & cond_mask) == cond_value
    and `after` more reads passed (None: never). mirror: ready = (cond & cond_mask) << shift."""
    name: str
    status: int
    mask: int
    ready: int
    cond: int
    cond_mask: int
    cond_value: int
    not_ready: int = 0
    mirror_shift: int = 0


@dataclass
class Family:
    regs: dict[str, tuple[int, int]]           # name -> (address, reset value from the manual)
    rules: list[Rule]
    expected: dict[str, list[tuple[int, int, int, str]]] = field(default_factory=dict)


# ---- STM32F4 (RM0090) / STM32F7 (RM0385): RCC at 0x40023800, PWR 0x40007000, FLASH 0x40023C00.
def _f4f7_rules(rcc: int, pwr: int, f7: bool) -> list[Rule]:
    rules = [
        Rule("HSERDY", rcc + 0x00, 1 << 17, 1 << 17, rcc + 0x00, 1 << 16, 1 << 16),   # RCC_CR HSEON -> HSERDY
        Rule("PLLRDY", rcc + 0x00, 1 << 25, 1 << 25, rcc + 0x00, 1 << 24, 1 << 24),   # PLLON -> PLLRDY
        Rule("SWS", rcc + 0x08, 0x3 << 2, 0, rcc + 0x08, 0x3, 0, mirror_shift=2),     # SW -> SWS
    ]
    if f7:
        rules += [Rule("ODRDY", pwr + 0x04, 1 << 16, 1 << 16, pwr + 0x00, 1 << 16, 1 << 16),
                  Rule("ODSWRDY", pwr + 0x04, 1 << 17, 1 << 17, pwr + 0x00, 1 << 17, 1 << 17)]
    return rules


F4_REGS = {"RCC_CR": (0x40023800, 0x0000_0083), "RCC_PLLCFGR": (0x40023804, 0x2400_3010),
           "RCC_CFGR": (0x40023808, 0), "RCC_APB1ENR": (0x40023840, 0),
           "PWR_CR": (0x40007000, 0x0000_4000), "PWR_CSR": (0x40007004, 0),
           "FLASH_ACR": (0x40023C00, 0)}
F7_REGS = {"RCC_CR": (0x40023800, 0x0000_0083), "RCC_PLLCFGR": (0x40023804, 0x2400_3010),
           "RCC_CFGR": (0x40023808, 0), "RCC_APB1ENR": (0x40023840, 0),
           "PWR_CR1": (0x40007000, 0x0000_C000), "PWR_CSR1": (0x40007004, 0),
           "FLASH_ACR": (0x40023C00, 0)}
H7_REGS = {"RCC_CR": (0x58024400, 0x0000_0025), "RCC_CFGR": (0x58024410, 0),
           "RCC_D1CFGR": (0x58024418, 0), "RCC_D2CFGR": (0x5802441C, 0), "RCC_D3CFGR": (0x58024420, 0),
           "RCC_PLLCKSELR": (0x58024428, 0x0202_0200), "RCC_PLLCFGR": (0x5802442C, 0x01FF_0000),
           "RCC_PLL1DIVR": (0x58024430, 0x0101_0280),
           "PWR_CSR1": (0x58024804, 0), "PWR_CR3": (0x5802480C, 0x0000_0006),
           "PWR_D3CR": (0x58024818, 0x0000_4000), "FLASH_ACR": (0x52002000, 0x0000_0037)}
L4_REGS = {"RCC_CR": (0x40021000, 0x0000_0063), "RCC_CFGR": (0x40021008, 0),
           "RCC_PLLCFGR": (0x4002100C, 0x0000_1000), "RCC_APB1ENR1": (0x40021058, 0),
           "PWR_CR1": (0x40007000, 0x0000_0200), "PWR_SR2": (0x40007014, 0),
           "PWR_CR5": (0x40007080, 0x0000_0100), "FLASH_ACR": (0x40022000, 0x0000_0600)}

H7_RULES = [
    Rule("ACTVOSRDY", 0x58024804, 1 << 13, 1 << 13, 0x5802480C, 0x7, 0x2),      # CR3 = LDOEN only
    Rule("VOSRDY", 0x58024818, 1 << 13, 1 << 13, 0x58024818, 0x3 << 14, 0x3 << 14),
    Rule("HSERDY", 0x58024400, 1 << 17, 1 << 17, 0x58024400, 1 << 16, 1 << 16),
    Rule("PLLRDY", 0x58024400, 1 << 25, 1 << 25, 0x58024400, 1 << 24, 1 << 24),
    Rule("SWS", 0x58024410, 0x7 << 3, 0, 0x58024410, 0x7, 0, mirror_shift=3),
]
L4_RULES = [
    # PWR_SR2 VOSF reads 1 (regulator not ready) until R1MODE = 0 (boost) has settled.
    Rule("VOSF", 0x40007014, 1 << 10, 0, 0x40007080, 1 << 8, 0, not_ready=1 << 10),
    Rule("HSIRDY", 0x40021000, 1 << 10, 1 << 10, 0x40021000, 1 << 8, 1 << 8),
    Rule("PLLRDY", 0x40021000, 1 << 25, 1 << 25, 0x40021000, 1 << 24, 1 << 24),
    Rule("SWS", 0x40021008, 0x3 << 2, 0, 0x40021008, 0x3, 0, mirror_shift=2),
]

# (register, hi bit, lo bit, expected, where in the manual)
F7_EXPECTED = [
    ("RCC_PLLCFGR", 5, 0, 25, "RM0385 5.3.2 PLLM = 25: 25 MHz HSE -> 1 MHz VCO input"),
    ("RCC_PLLCFGR", 14, 6, 432, "RM0385 5.3.2 PLLN = 432: 432 MHz VCO"),
    ("RCC_PLLCFGR", 17, 16, 0b00, "RM0385 5.3.2 PLLP 00 = /2: 216 MHz"),
    ("RCC_PLLCFGR", 22, 22, 1, "RM0385 5.3.2 PLLSRC 1 = HSE"),
    ("RCC_PLLCFGR", 27, 24, 9, "RM0385 5.3.2 PLLQ = 9: 48 MHz"),
    ("RCC_CR", 16, 16, 1, "RM0385 5.3.1 HSEON"),
    ("RCC_CR", 18, 18, 0, "RM0385 5.3.1 HSEBYP 0: crystal"),
    ("RCC_CR", 24, 24, 1, "RM0385 5.3.1 PLLON"),
    ("RCC_CFGR", 1, 0, 0b10, "RM0385 5.3.3 SW 10 = PLL"),
    ("RCC_CFGR", 3, 2, 0b10, "RM0385 5.3.3 SWS 10 = PLL"),
    ("RCC_CFGR", 7, 4, 0b0000, "RM0385 5.3.3 HPRE /1: HCLK 216 MHz"),
    ("RCC_CFGR", 12, 10, 0b101, "RM0385 5.3.3 PPRE1 /4: APB1 54 MHz (max 54)"),
    ("RCC_CFGR", 15, 13, 0b100, "RM0385 5.3.3 PPRE2 /2: APB2 108 MHz (max 108)"),
    ("RCC_APB1ENR", 28, 28, 1, "RM0385 5.3.13 PWREN"),
    ("PWR_CR1", 15, 14, 0b11, "RM0385 5.4.1 VOS 11 = scale 1"),
    ("PWR_CR1", 16, 16, 1, "RM0385 5.4.1 ODEN"),
    ("PWR_CR1", 17, 17, 1, "RM0385 5.4.1 ODSWEN"),
    ("FLASH_ACR", 3, 0, 7, "RM0385 3.3.2 Table 5: 7 WS for 210 < HCLK <= 216 MHz, 2.7-3.6 V"),
    ("FLASH_ACR", 8, 8, 1, "RM0385 3.7.1 PRFTEN"),
    ("FLASH_ACR", 9, 9, 1, "RM0385 3.7.1 ARTEN"),
]
F407_EXPECTED = [
    ("RCC_PLLCFGR", 5, 0, 4, "RM0090 6.3.2 PLLM = 4: 8 MHz HSE -> 2 MHz VCO input"),
    ("RCC_PLLCFGR", 14, 6, 168, "RM0090 6.3.2 PLLN = 168: 336 MHz VCO"),
    ("RCC_PLLCFGR", 17, 16, 0b00, "RM0090 6.3.2 PLLP 00 = /2: 168 MHz"),
    ("RCC_PLLCFGR", 22, 22, 1, "RM0090 6.3.2 PLLSRC 1 = HSE"),
    ("RCC_PLLCFGR", 27, 24, 7, "RM0090 6.3.2 PLLQ = 7: 48 MHz"),
    ("RCC_CR", 16, 16, 1, "RM0090 6.3.1 HSEON"),
    ("RCC_CR", 24, 24, 1, "RM0090 6.3.1 PLLON"),
    ("RCC_CFGR", 1, 0, 0b10, "RM0090 6.3.3 SW 10 = PLL"),
    ("RCC_CFGR", 3, 2, 0b10, "RM0090 6.3.3 SWS 10 = PLL"),
    ("RCC_CFGR", 7, 4, 0b0000, "RM0090 6.3.3 HPRE /1"),
    ("RCC_CFGR", 12, 10, 0b101, "RM0090 6.3.3 PPRE1 /4: APB1 42 MHz (max 42)"),
    ("RCC_CFGR", 15, 13, 0b100, "RM0090 6.3.3 PPRE2 /2: APB2 84 MHz (max 84)"),
    ("PWR_CR", 14, 14, 1, "RM0090 5.4.1 VOS 1 = scale 1 (F405/F407)"),
    ("FLASH_ACR", 2, 0, 5, "RM0090 3.5.1 Table 10: 5 WS for 150 < HCLK <= 168 MHz, 2.7-3.6 V"),
    ("FLASH_ACR", 8, 8, 1, "RM0090 3.9.1 PRFTEN"),
    ("FLASH_ACR", 9, 9, 1, "RM0090 3.9.1 ICEN"),
    ("FLASH_ACR", 10, 10, 1, "RM0090 3.9.1 DCEN"),
]
NETDUINO_EXPECTED = [e for e in F407_EXPECTED if e[0] != "RCC_PLLCFGR" and e[1:3] != (16, 16)] + [
    ("RCC_PLLCFGR", 5, 0, 8, "RM0090 6.3.2 PLLM = 8: 16 MHz HSI -> 2 MHz VCO input"),
    ("RCC_PLLCFGR", 14, 6, 168, "RM0090 6.3.2 PLLN = 168: 336 MHz VCO"),
    ("RCC_PLLCFGR", 17, 16, 0b00, "RM0090 6.3.2 PLLP 00 = /2: 168 MHz"),
    ("RCC_PLLCFGR", 22, 22, 0, "RM0090 6.3.2 PLLSRC 0 = HSI"),
    ("RCC_PLLCFGR", 27, 24, 7, "RM0090 6.3.2 PLLQ = 7: 48 MHz"),
    ("RCC_CR", 16, 16, 0, "RM0090 6.3.1 HSEON stays 0 (HSI board)"),
]
H7_EXPECTED = [
    ("PWR_CR3", 2, 0, 0b010, "RM0433 6.8.4 LDOEN = 1, SCUEN = 0, BYPASS = 0: LDO supply"),
    ("PWR_D3CR", 15, 14, 0b11, "RM0433 6.8.6 VOS 11 = VOS1 (400 MHz on rev Y and V)"),
    ("RCC_CR", 16, 16, 1, "RM0433 8.7.2 HSEON"),
    ("RCC_CR", 18, 18, 1, "RM0433 8.7.2 HSEBYP: 8 MHz ST-LINK MCO"),
    ("RCC_CR", 24, 24, 1, "RM0433 8.7.2 PLL1ON"),
    ("RCC_PLLCKSELR", 1, 0, 0b10, "RM0433 8.7.11 PLLSRC 10 = HSE"),
    ("RCC_PLLCKSELR", 9, 4, 4, "RM0433 8.7.11 DIVM1 = 4: 2 MHz reference"),
    ("RCC_PLLCFGR", 3, 2, 0b01, "RM0433 8.7.12 PLL1RGE 01 = 2..4 MHz"),
    ("RCC_PLLCFGR", 1, 1, 0, "RM0433 8.7.12 PLL1VCOSEL 0 = wide VCO 192..836 MHz"),
    ("RCC_PLLCFGR", 0, 0, 0, "RM0433 8.7.12 PLL1FRACEN 0"),
    ("RCC_PLLCFGR", 18, 16, 0b111, "RM0433 8.7.12 DIVP1EN, DIVQ1EN, DIVR1EN"),
    ("RCC_PLL1DIVR", 8, 0, 399, "RM0433 8.7.13 DIVN1 = N - 1: N 400, VCO 800 MHz"),
    ("RCC_PLL1DIVR", 15, 9, 1, "RM0433 8.7.13 DIVP1 = P - 1: /2 = 400 MHz"),
    ("RCC_PLL1DIVR", 22, 16, 3, "RM0433 8.7.13 DIVQ1 = Q - 1: /4"),
    ("RCC_PLL1DIVR", 30, 24, 1, "RM0433 8.7.13 DIVR1 = R - 1: /2"),
    ("RCC_D1CFGR", 11, 8, 0b0000, "RM0433 8.7.8 D1CPRE /1: CPU 400 MHz"),
    ("RCC_D1CFGR", 3, 0, 0b1000, "RM0433 8.7.8 HPRE /2: AXI/AHB 200 MHz (max 200)"),
    ("RCC_D1CFGR", 6, 4, 0b100, "RM0433 8.7.8 D1PPRE /2: APB3 100 MHz"),
    ("RCC_D2CFGR", 6, 4, 0b100, "RM0433 8.7.9 D2PPRE1 /2: APB1 100 MHz"),
    ("RCC_D2CFGR", 10, 8, 0b100, "RM0433 8.7.9 D2PPRE2 /2: APB2 100 MHz"),
    ("RCC_D3CFGR", 6, 4, 0b100, "RM0433 8.7.10 D3PPRE /2: APB4 100 MHz"),
    ("RCC_CFGR", 2, 0, 0b011, "RM0433 8.7.6 SW 011 = PLL1"),
    ("RCC_CFGR", 5, 3, 0b011, "RM0433 8.7.6 SWS 011 = PLL1"),
    ("FLASH_ACR", 3, 0, 2, "RM0433 4.3.8 Table 17: 2 WS for 185 < ACLK <= 210 MHz at VOS1"),
    ("FLASH_ACR", 5, 4, 0b10, "RM0433 4.3.8 Table 17: WRHIGHFREQ 10 for that range"),
]
L4_EXPECTED = [
    ("RCC_APB1ENR1", 28, 28, 1, "RM0432 6.4.19 PWREN"),
    ("PWR_CR1", 10, 9, 0b01, "RM0432 5.4.1 VOS 01 = range 1"),
    ("PWR_CR5", 8, 8, 0, "RM0432 5.4.5 R1MODE 0 = range 1 boost (> 80 MHz)"),
    ("RCC_CR", 8, 8, 1, "RM0432 6.4.1 HSION"),
    ("RCC_CR", 24, 24, 1, "RM0432 6.4.1 PLLON"),
    ("RCC_PLLCFGR", 1, 0, 0b10, "RM0432 6.4.4 PLLSRC 10 = HSI16"),
    ("RCC_PLLCFGR", 7, 4, 0b0011, "RM0432 6.4.4 PLLM 0011 = /4: 4 MHz VCO input"),
    ("RCC_PLLCFGR", 14, 8, 60, "RM0432 6.4.4 PLLN = 60: 240 MHz VCO"),
    ("RCC_PLLCFGR", 24, 24, 1, "RM0432 6.4.4 PLLREN"),
    ("RCC_PLLCFGR", 26, 25, 0b00, "RM0432 6.4.4 PLLR 00 = /2: 120 MHz"),
    ("RCC_CFGR", 1, 0, 0b11, "RM0432 6.4.3 SW 11 = PLL"),
    ("RCC_CFGR", 3, 2, 0b11, "RM0432 6.4.3 SWS 11 = PLL"),
    ("RCC_CFGR", 7, 4, 0b0000, "RM0432 6.4.3 HPRE /1 (after the /2 step)"),
    ("RCC_CFGR", 10, 8, 0b000, "RM0432 6.4.3 PPRE1 /1"),
    ("RCC_CFGR", 13, 11, 0b000, "RM0432 6.4.3 PPRE2 /1"),
    ("FLASH_ACR", 3, 0, 5, "RM0432 3.3.3 Table 12: 5 WS for 100 < HCLK <= 120 MHz, range 1"),
    ("FLASH_ACR", 8, 8, 1, "RM0432 3.7.1 PRFTEN"),
    ("FLASH_ACR", 9, 9, 1, "RM0432 3.7.1 ICEN"),
    ("FLASH_ACR", 10, 10, 1, "RM0432 3.7.1 DCEN"),
]

# board -> (registers, rules, expected fields, target Hz, console UART kernel Hz, reset Hz, reset name)
BOARDS = {
    "stm32f746g-disco": (F7_REGS, _f4f7_rules(0x40023800, 0x40007000, True), F7_EXPECTED,
                         216_000_000, 108_000_000, 16_000_000, "HSI"),          # USART1 on APB2
    "stm32f4-discovery": (F4_REGS, _f4f7_rules(0x40023800, 0x40007000, False), F407_EXPECTED,
                          168_000_000, 42_000_000, 16_000_000, "HSI"),          # USART2 on APB1
    "netduinoplus2": (F4_REGS, _f4f7_rules(0x40023800, 0x40007000, False), NETDUINO_EXPECTED,
                      168_000_000, 84_000_000, 16_000_000, "HSI"),              # USART1 on APB2
    "nucleo-h743zi": (H7_REGS, H7_RULES, H7_EXPECTED, 400_000_000, 100_000_000, 64_000_000, "HSI"),
    "nucleo-l4r5zi": (L4_REGS, L4_RULES, L4_EXPECTED, 120_000_000, 120_000_000, 4_000_000, "MSI"),
}
MAX_POLLS = 100_000


@dataclass
class Run:
    writes: list[tuple[int, int]]
    regs: dict[str, int]
    reads: dict[str, int]
    cpu_hz: int
    uart_hz: int
    polls: int
    banner: str
    report: str = ""


def _model_cfg(regs: dict, rules: list[Rule], after: dict[str, int | None]) -> str:
    lines = ["static reg_t MODEL_REGS[] = {"]
    lines += [f"    {{0x{a:08x}u, 0x{v:08x}u}}, /* {n} */" for n, (a, v) in regs.items()]
    lines += ["};", "static rule_t MODEL_RULES[] = {"]
    for r in rules:
        n = after.get(r.name, 2)
        lines.append(f"    {{0x{r.status:08x}u, 0x{r.mask:08x}u, 0x{r.ready:08x}u, 0x{r.not_ready:08x}u, "
                     f"0x{r.cond:08x}u, 0x{r.cond_mask:08x}u, 0x{r.cond_value:08x}u, "
                     f"{-1 if n is None else n}, {r.mirror_shift}, 0u, 0u}}, /* {r.name} */")
    return "\n".join(lines + ["};", ""])


@pytest.fixture(scope="module")
def model_bin(tmp_path_factory):
    """Build one model program per (board, scenario) on demand."""
    cache: dict = {}

    def build(board: str, after: dict[str, int | None]) -> Run:
        regs, rules, *_ = BOARDS[board]
        key = (board, tuple(sorted(after.items())))
        if key not in cache:
            d = tmp_path_factory.mktemp(board)
            render_board_files(load_board(board), "native", "selftest", str(d))
            (d / "model_cfg.h").write_text(_model_cfg(regs, rules, after))
            (d / "proto.h").write_text("#include <stdint.h>\nuint32_t model_rd(uint32_t addr);\n"
                                       "void model_wr(uint32_t addr, uint32_t v);\n")
            exe = d / "clock_model"
            cmd = ["gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
                   "-DCLOCK_RD=model_rd", "-DCLOCK_WR=model_wr", "-include", str(d / "proto.h"),
                   f"-I{d}", f"-I{RUNTIME}", os.path.join(RUNTIME, "clock.c"), MODEL_C, "-o", str(exe)]
            cc = subprocess.run(cmd, capture_output=True, text=True)
            assert cc.returncode == 0, cc.stderr
            out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stdout[-2000:]
            names = {a: n for n, (a, _) in regs.items()}
            writes, final, reads = [], {}, {}
            cpu = uart = polls = 0
            banner = report = ""
            for ln in out.stdout.splitlines():
                if ln.startswith("m-clock-"):
                    report = ln
                    continue
                tag, *rest = ln.split(" ", 1)
                if tag == "W":
                    a, v = (int(x, 16) for x in rest[0].split())
                    writes.append((a, v))
                elif tag == "R":
                    a, v = (int(x, 16) for x in rest[0].split())
                    final[names[a]] = v
                elif tag == "P":
                    i, n = (int(x) for x in rest[0].split())
                    reads[rules[i].name] = n
                elif tag == "S":
                    cpu, uart, polls = (int(x) for x in rest[0].split())
                elif tag == "B":
                    banner = rest[0] if rest else ""
            cache[key] = Run(writes, final, reads, cpu, uart, polls, banner, report)
        return cache[key]

    return build


def test_every_board_has_a_clock_tree_and_a_model():
    assert sorted(BOARDS) == list_boards()
    for name in list_boards():
        b = load_board(name)
        assert b.clock is not None and b.clock.max_polls == MAX_POLLS
        assert b.clock.sysclk_hz == b.clock_hz == BOARDS[name][3]


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_pll_path_sets_the_manual_values(model_bin, board):
    regs, rules, expected, target, uart, reset_hz, reset_name = BOARDS[board]
    run = model_bin(board, {})
    wrong = [f"{reg}[{hi}:{lo}] = {bits(run.regs[reg], hi, lo):#x}, want {want:#x} ({why})"
             for reg, hi, lo, want, why in expected if bits(run.regs[reg], hi, lo) != want]
    assert not wrong, "\n".join(wrong)
    assert (run.cpu_hz, run.uart_hz) == (target, uart)
    assert run.banner == f"{target // 1_000_000} MHz (PLL)"
    assert run.report == (f"m-clock-[{target // 1_000_000} MHz (PLL); hz={target}; timer=dwt; "
                          f"board={board}; variant=native]")
    # Every wait came after a couple of polls: none ran to the bound.
    assert run.polls < 100
    # The flash wait states are raised before SYSCLK switches to the PLL (RM0090 3.5.1,
    # RM0385 3.3.2, RM0433 4.3.8, RM0432 3.3.3: "increase the latency first").
    acr, cfgr = regs["FLASH_ACR"][0], regs["RCC_CFGR"][0]
    sw_hi = 2 if board == "nucleo-h743zi" else 1
    pll_sw = {"nucleo-h743zi": 0b011, "nucleo-l4r5zi": 0b11}.get(board, 0b10)
    first_sw = next(i for i, (a, v) in enumerate(run.writes) if a == cfgr and bits(v, sw_hi, 0) == pll_sw)
    ws = next(e[3] for e in expected if e[0] == "FLASH_ACR" and e[2] == 0)
    first_ws = next(i for i, (a, v) in enumerate(run.writes) if a == acr and bits(v, 3, 0) == ws)
    assert first_ws < first_sw


def test_f746_over_drive_sequence(model_bin):
    """RM0385 5.1.4: PLL on, then ODEN, then ODSWEN, all before the switch to the PLL."""
    run = model_bin("stm32f746g-disco", {})
    pwr, rcc_cr, cfgr = 0x40007000, 0x40023800, 0x40023808
    pllon = next(i for i, (a, v) in enumerate(run.writes) if a == rcc_cr and v & (1 << 24))
    oden = next(i for i, (a, v) in enumerate(run.writes) if a == pwr and v & (1 << 16))
    odsw = next(i for i, (a, v) in enumerate(run.writes) if a == pwr and v & (1 << 17))
    sw = next(i for i, (a, v) in enumerate(run.writes) if a == cfgr and v & 0x3 == 0b10)
    assert pllon < oden < odsw < sw


def test_l4r5_boost_switch_goes_through_hclk_div2(model_bin):
    """RM0432 6.2.9: above 80 MHz in boost mode, switch with the AHB prescaler at /2, then /1;
    R1MODE = 0 before the PLL runs (5.1.8)."""
    run = model_bin("nucleo-l4r5zi", {})
    cfgr, cr, cr5 = 0x40021008, 0x40021000, 0x40007080
    cfgr_writes = [v for a, v in run.writes if a == cfgr]
    sw = next(v for v in cfgr_writes if v & 0x3 == 0b11)
    assert bits(sw, 7, 4) == 0b1000
    assert bits(cfgr_writes[-1], 7, 4) == 0b0000 and cfgr_writes[-1] & 0x3 == 0b11
    boost = next(i for i, (a, v) in enumerate(run.writes) if a == cr5 and not v & (1 << 8))
    pllon = next(i for i, (a, v) in enumerate(run.writes) if a == cr and v & (1 << 24))
    assert boost < pllon


# (board, rule that never comes, banner reason)
FALLBACKS = [
    ("stm32f746g-disco", "HSERDY", "HSE not ready"),
    ("stm32f746g-disco", "PLLRDY", "PLL not ready"),
    ("stm32f746g-disco", "ODRDY", "over-drive not ready"),
    ("stm32f746g-disco", "ODSWRDY", "over-drive switch not ready"),
    ("stm32f746g-disco", "SWS", "PLL not selected"),
    ("stm32f4-discovery", "HSERDY", "HSE not ready"),
    ("stm32f4-discovery", "PLLRDY", "PLL not ready"),
    ("netduinoplus2", "PLLRDY", "PLL not ready"),
    ("nucleo-h743zi", "ACTVOSRDY", "voltage scaling not ready"),
    ("nucleo-h743zi", "VOSRDY", "voltage scaling not ready"),
    ("nucleo-h743zi", "HSERDY", "HSE not ready"),
    ("nucleo-h743zi", "PLLRDY", "PLL not ready"),
    ("nucleo-l4r5zi", "VOSF", "voltage scaling not ready"),
    ("nucleo-l4r5zi", "HSIRDY", "HSI not ready"),
    ("nucleo-l4r5zi", "PLLRDY", "PLL not ready"),
    ("nucleo-l4r5zi", "SWS", "PLL not selected"),
]


@pytest.mark.parametrize("board,never,reason", FALLBACKS)
def test_fallback_stays_on_the_reset_clock(model_bin, board, never, reason):
    regs, rules, expected, target, uart, reset_hz, reset_name = BOARDS[board]
    run = model_bin(board, {never: None})
    assert (run.cpu_hz, run.uart_hz) == (reset_hz, reset_hz)
    assert run.banner == f"{reset_hz // 1_000_000} MHz ({reset_name}, {reason})"
    # The wait ran to its bound and no further (the undo's read-modify-writes of the
    # same register add a few reads).
    assert MAX_POLLS <= run.reads[never] <= MAX_POLLS + 8
    assert run.polls <= MAX_POLLS + 100
    # SYSCLK is (back) on the reset clock, the PLL and the oscillator started for it are off,
    # and the flash wait states and bus prescalers are the reset values again.
    r = run.regs
    if board == "nucleo-h743zi":
        assert bits(r["RCC_CFGR"], 2, 0) == 0 and r["RCC_D1CFGR"] == r["RCC_D2CFGR"] == r["RCC_D3CFGR"] == 0
        assert bits(r["RCC_CR"], 24, 24) == 0 and bits(r["RCC_CR"], 16, 16) == 0
    else:
        assert bits(r["RCC_CFGR"], 1, 0) == 0 and bits(r["RCC_CFGR"], 15, 4) == 0
        assert bits(r["RCC_CR"], 24, 24) == 0 and bits(r["RCC_CR"], 16, 16) == 0
    assert r["FLASH_ACR"] == regs["FLASH_ACR"][1]
    if board == "stm32f746g-disco":
        assert bits(r["PWR_CR1"], 17, 16) == 0          # over-drive off again


def test_bad_clock_tree_is_one_line_error(tmp_path):
    """A [clock] table that breaks a manual limit is refused when the board is loaded."""
    from tinyml.errors import TinymlError
    src = open(os.path.join(ROOT, "boards", "stm32f746g-disco.toml")).read()
    cases = {"pll_n = 432": ("pll_n = 440", "VCO 440 MHz"),         # above 432 MHz
             "pll_m = 25": ("pll_m = 5", "PLL input 5 MHz"),        # above 2.1 MHz
             "apb1_div = 4": ("apb1_div = 3", "apb1_div 3"),
             'source = "hse"': ('source = "lse"', "clock.source 'lse'")}
    for old, (new, msg) in cases.items():
        p = tmp_path / "bad.toml"
        p.write_text(src.replace(old, new))
        with pytest.raises(TinymlError) as exc:
            load_board(str(p))
        text = str(exc.value)
        assert msg in text and "\n" not in text and "[clock]" in text
    p.write_text(src.replace("clock_hz = 216_000_000", "clock_hz = 200_000_000"))
    with pytest.raises(TinymlError, match="not clock_hz 200 MHz"):
        load_board(str(p))
