"""What a device's `m-lap-us` latency means, and how `tinyml run` labels it.

The firmware times with the clock it actually runs at (firmware/runtime/
clock.c) and reports it on `clock%`:

    m-clock-[216 MHz (PLL); hz=216000000; timer=dwt; board=stm32f746g-disco; variant=native]

On a board the microseconds are real time at that clock: `12.345 ms at
216 MHz (PLL)`. Under QEMU they are not: QEMU models no RCC (the firmware
stays on its reset clock), no DWT cycle counter (the firmware falls back to
SysTick) and, with `-icount shift=0`, one guest instruction is 1 ns of
virtual time. A device whose cycle counter does not run, or an MPS2 variant
build (made for QEMU only), is therefore the emulator, and its latency is
converted to guest instructions:
us * (firmware clock / 1e6) = SysTick ticks; ticks * 1e9 / (the QEMU
machine's SysTick clock) = instructions. Every supported core (Cortex-M4/M7
STM32) has a DWT cycle counter that runs on silicon.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_CLOCK = re.compile(r"m-clock-\[(?P<text>[^;\]]*);(?P<fields>[^\]]*)\]")


@dataclass(frozen=True)
class DeviceClock:
    text: str          # "216 MHz (PLL)", "16 MHz (HSI, PLL not ready)"
    hz: int            # the core clock the firmware runs at (and times with)
    timer: str         # "dwt" (cycle counter) | "systick"
    board: str
    variant: str       # "native" | "mps2"

    @property
    def emulated(self) -> bool:
        return self.variant != "native" or self.timer != "dwt"


@dataclass(frozen=True)
class Latency:
    us: float | None               # as the device reported it (per inference)
    instructions: int | None       # emulator only
    label: str


def parse_clock(lines: list[str]) -> DeviceClock | None:
    """The `m-clock-[...]` line among `lines` (None if there is none or it is malformed)."""
    for ln in lines:
        m = _CLOCK.search(ln)
        if not m:
            continue
        kv = dict(f.strip().split("=", 1) for f in m.group("fields").split(";") if "=" in f)
        try:
            return DeviceClock(m.group("text").strip(), int(kv["hz"]), kv["timer"], kv["board"], kv["variant"])
        except (KeyError, ValueError):
            return None
    return None


def instructions_per_us(clock: DeviceClock) -> float | None:
    """Guest instructions per reported microsecond under the QEMU machine that runs
    `clock.board`'s `clock.variant` build (None if the board or machine is unknown)."""
    from tinyml.boards import load_board
    from tinyml.errors import TinymlError
    from tinyml.firmware.qemu import QEMU_SYSTICK_HZ
    try:
        machine = load_board(clock.board).qemu.machine
    except TinymlError:
        return None
    systick_hz = QEMU_SYSTICK_HZ.get(machine)
    if not systick_hz or clock.hz <= 0:
        return None
    return clock.hz / 1e6 * 1e9 / systick_hz


def latency(us: float | None, clock: DeviceClock | None) -> Latency:
    if us is None:
        return Latency(None, None, "n/a")
    if clock is None:
        return Latency(us, None, f"{us / 1000:.3f} ms (device clock unknown: the firmware does not answer "
                                 f"`clock%`)")
    if clock.emulated:
        factor = instructions_per_us(clock)
        if factor is None:
            return Latency(us, None, f"{us:,.0f} emulated us (emulator: no clock; unknown machine for "
                                     f"board {clock.board})")
        n = round(us * factor)
        return Latency(us, n, f"{n:,} instructions (emulator: no clock)")
    return Latency(us, None, f"{us / 1000:.3f} ms at {clock.text}")
