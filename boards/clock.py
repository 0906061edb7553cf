"""Clock tree of a board: the `[clock]` table of its descriptor.

The firmware runtime (firmware/runtime/clock.c) starts the PLL from these
constants (rendered into board_config.h); this module parses them, checks
them against the reference-manual limits of the family and derives the bus
clocks. `sysclk = input / pll_m * pll_n / pll_p` must equal the board's
`clock_hz`.

Limits (VCO input / output, bus maxima) per family:
  stm32f4  RM0090 6.3.2 (RCC_PLLCFGR): VCO in 1..2 MHz, out 100..432 MHz;
           APB1 <= 42 MHz, APB2 <= 84 MHz (datasheet DS8626 at 168 MHz).
  stm32f7  RM0385 5.3.2: VCO in 0.95..2.1 MHz, out 100..432 MHz; APB1 <= 54, APB2 <= 108 MHz.
  stm32h7  RM0433 8.7.11/8.7.12: PLL1 input 1..16 MHz (PLL1RGE), wide VCO 192..836 MHz;
           HCLK <= 200 MHz and APBx <= 100 MHz at VOS1/400 MHz.
  stm32l4  RM0432 6.4.4: VCO in 2.66..8 MHz, out 64..344 MHz (L4+).
"""
from __future__ import annotations

from dataclasses import dataclass

SOURCES = ("hse", "hse-bypass", "hsi")
DIVS_AHB = (1, 2, 4, 8, 16, 64, 128, 256, 512)
DIVS_APB = (1, 2, 4, 8, 16)

# family -> (vco_in_min, vco_in_max, vco_out_min, vco_out_max, HSI Hz as PLL input, reset source name)
FAMILY_PLL = {
    "stm32f4": (1_000_000, 2_000_000, 100_000_000, 432_000_000, 16_000_000, "HSI"),
    "stm32f7": (950_000, 2_100_000, 100_000_000, 432_000_000, 16_000_000, "HSI"),
    "stm32h7": (1_000_000, 16_000_000, 192_000_000, 836_000_000, 64_000_000, "HSI"),
    "stm32l4": (2_660_000, 8_000_000, 64_000_000, 344_000_000, 16_000_000, "MSI"),
}
# Console UARTs on the second APB (the others are on APB1); RM0090/RM0385/RM0433/RM0432 memory maps.
APB2_UARTS = {"USART1", "USART6"}


class ClockError(ValueError):
    """A [clock] table that breaks a manual limit (the caller names the descriptor)."""


@dataclass(frozen=True)
class ClockTree:
    family: str
    source: str               # "hse" (crystal), "hse-bypass" (external clock), "hsi" (internal RC)
    input_hz: int             # PLL input before /M
    pll_m: int
    pll_n: int
    pll_p: int
    pll_q: int
    pll_r: int                # H7 / L4 only (0 elsewhere)
    ahb_div: int
    apb1_div: int
    apb2_div: int
    apb3_div: int             # H7 D1PPRE (1 elsewhere)
    apb4_div: int             # H7 D3PPRE (1 elsewhere)
    flash_wait_states: int
    voltage_scale: int        # F7/H7/L4: 1 = scale/range 1 (highest)
    over_drive: bool          # F7 over-drive
    boost: bool               # L4+ range 1 boost (R1MODE = 0)
    max_polls: int            # bound of every ready-wait
    reset_hz: int             # clock the core runs at after reset (and after a fallback)
    reset_name: str           # "HSI" / "MSI"

    @property
    def vco_in_hz(self) -> int:
        return self.input_hz // self.pll_m

    @property
    def vco_hz(self) -> int:
        return self.vco_in_hz * self.pll_n

    @property
    def sys_div(self) -> int:
        """Divider of the PLL output that feeds SYSCLK: P (F4/F7/H7), R (L4)."""
        return self.pll_r if self.family == "stm32l4" else self.pll_p

    @property
    def sysclk_hz(self) -> int:
        return self.vco_hz // self.sys_div

    @property
    def hclk_hz(self) -> int:
        return self.sysclk_hz // self.ahb_div

    def pclk_hz(self, bus: int) -> int:
        div = {1: self.apb1_div, 2: self.apb2_div, 3: self.apb3_div, 4: self.apb4_div}[bus]
        return self.hclk_hz // div

    def uart_hz(self, peripheral: str) -> int:
        """Kernel clock of the console UART with the PLL running (PCLK of its APB)."""
        return self.pclk_hz(2 if peripheral in APB2_UARTS else 1)

    @property
    def pll_range(self) -> int:
        """H7 PLL1RGE: 0 = 1..2 MHz, 1 = 2..4, 2 = 4..8, 3 = 8..16 MHz input."""
        f = self.vco_in_hz
        return 0 if f < 2_000_000 else 1 if f < 4_000_000 else 2 if f < 8_000_000 else 3

    def describe(self) -> str:
        src = {"hse": f"HSE {self.input_hz / 1e6:g} MHz crystal",
               "hse-bypass": f"HSE {self.input_hz / 1e6:g} MHz external clock",
               "hsi": f"HSI {self.input_hz / 1e6:g} MHz"}[self.source]
        return (f"{self.sysclk_hz // 1_000_000} MHz = {src} / {self.pll_m} * {self.pll_n} / {self.sys_div} "
                f"(PLL), {self.flash_wait_states} flash wait states")

    def ready_waits(self) -> list[str]:
        """What the runtime waits for, in order (each wait bounded by max_polls)."""
        waits = {"stm32h7": ["voltage scaling"], "stm32l4": ["voltage scaling"]}.get(self.family, [])
        if self.source != "hsi":
            waits.append("HSE")
        elif self.family == "stm32l4":
            waits.append("HSI")        # the L4's reset clock is the MSI: the HSI16 is started
        waits.append("PLL")
        if self.over_drive:
            waits.append("over-drive")
        return waits + ["flash latency", "clock switch"]

    def fallback_rule(self) -> str:
        return (f"if {', '.join(self.ready_waits())} do not report ready within {self.max_polls:,} polls "
                f"each, the firmware stays on the {self.reset_hz // 1_000_000} MHz {self.reset_name} reset "
                f"clock and its boot banner says so")


def parse_clock(d: dict, family: str, clock_hz: int, reset_clock_hz: int) -> ClockTree:
    """The `[clock]` table `d` of a board of `family` whose rated clock is `clock_hz`."""
    if family not in FAMILY_PLL:
        raise ClockError(f"no clock tree support for family {family!r}")
    in_min, in_max, vco_min, vco_max, hsi_hz, reset_name = FAMILY_PLL[family]
    try:
        source = str(d["source"])
        if source not in SOURCES:
            raise ClockError(f"clock.source {source!r} is not one of {', '.join(SOURCES)}")
        input_hz = int(d["hse_hz"]) if source != "hsi" else hsi_hz
        c = ClockTree(
            family=family, source=source, input_hz=input_hz,
            pll_m=int(d["pll_m"]), pll_n=int(d["pll_n"]), pll_p=int(d.get("pll_p", 0)),
            pll_q=int(d.get("pll_q", 0)), pll_r=int(d.get("pll_r", 0)),
            ahb_div=int(d.get("ahb_div", 1)), apb1_div=int(d.get("apb1_div", 1)),
            apb2_div=int(d.get("apb2_div", 1)), apb3_div=int(d.get("apb3_div", 1)),
            apb4_div=int(d.get("apb4_div", 1)),
            flash_wait_states=int(d["flash_wait_states"]),
            voltage_scale=int(d.get("voltage_scale", 0)), over_drive=bool(d.get("over_drive", False)),
            boost=bool(d.get("boost", False)), max_polls=int(d.get("max_polls", 100_000)),
            reset_hz=reset_clock_hz, reset_name=reset_name)
    except KeyError as exc:
        raise ClockError(f"[clock] lacks {exc}") from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ClockError):
            raise
        raise ClockError(f"[clock] has a bad value: {exc}") from None
    if c.pll_m < 1 or c.pll_n < 1 or c.sys_div < 1:
        raise ClockError("clock.pll_m, pll_n and pll_p (pll_r on STM32L4) must be >= 1")
    if c.input_hz % c.pll_m:
        raise ClockError(f"clock input {c.input_hz} Hz is not a multiple of pll_m {c.pll_m}")
    if not in_min <= c.vco_in_hz <= in_max:
        raise ClockError(f"PLL input {c.vco_in_hz / 1e6:g} MHz (input / pll_m) is outside "
                         f"{in_min / 1e6:g}..{in_max / 1e6:g} MHz for {family}")
    if not vco_min <= c.vco_hz <= vco_max:
        raise ClockError(f"VCO {c.vco_hz / 1e6:g} MHz (PLL input * pll_n) is outside "
                         f"{vco_min / 1e6:g}..{vco_max / 1e6:g} MHz for {family}")
    if c.vco_hz % c.sys_div or c.sysclk_hz != clock_hz:
        raise ClockError(f"the PLL gives {c.vco_hz / c.sys_div / 1e6:g} MHz, not clock_hz "
                         f"{clock_hz / 1e6:g} MHz")
    if family in ("stm32f4", "stm32f7") and c.pll_p not in (2, 4, 6, 8):
        raise ClockError("clock.pll_p must be 2, 4, 6 or 8 on STM32F4/F7")
    if family == "stm32l4" and c.pll_r not in (2, 4, 6, 8):
        raise ClockError("clock.pll_r must be 2, 4, 6 or 8 on STM32L4 (the system clock is PLLR)")
    if c.ahb_div not in DIVS_AHB:
        raise ClockError(f"clock.ahb_div {c.ahb_div} is not one of {DIVS_AHB}")
    for name in ("apb1_div", "apb2_div", "apb3_div", "apb4_div"):
        if getattr(c, name) not in DIVS_APB:
            raise ClockError(f"clock.{name} {getattr(c, name)} is not one of {DIVS_APB}")
    if not 0 <= c.flash_wait_states <= 15:
        raise ClockError("clock.flash_wait_states must be 0..15")
    if c.max_polls < 1:
        raise ClockError("clock.max_polls must be >= 1")
    return c
