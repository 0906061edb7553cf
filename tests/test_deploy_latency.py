"""`tinyml run`'s latency label: ms at the clock the firmware reports on a board,
guest instructions on the emulator (deploy/latency.py), against a fake device
that answers `clock%` like firmware/runtime/clock.c."""
from __future__ import annotations

import json

import pytest

from tinyml import cli
from tinyml.deploy.latency import DeviceClock, latency, parse_clock
from tinyml.testing.fake_dut import FakeDut

BOARD_216 = "m-clock-[216 MHz (PLL); hz=216000000; timer=dwt; board=stm32f746g-disco; variant=native]"
BOARD_FALLBACK = ("m-clock-[16 MHz (HSI, HSE not ready); hz=16000000; timer=dwt; board=stm32f4-discovery; "
                  "variant=native]")
QEMU_F4 = ("m-clock-[16 MHz (HSI, HSE not ready); hz=16000000; timer=systick; board=stm32f4-discovery; "
           "variant=native]")
QEMU_MPS2 = ("m-clock-[25 MHz (MPS2 emulator, no RCC: the board's PLL setup is not run); hz=25000000; "
             "timer=systick; board=stm32f746g-disco; variant=mps2]")


def zeros(data: bytes) -> list[float]:
    return [0.25, 0.75]


def _run(tmp_path, capsys, clock: str | None, us: int, *extra: str) -> tuple[int, str, str]:
    raw = tmp_path / "x.bin"
    raw.write_bytes(bytes(16))
    with FakeDut(zeros, us_per_inference=us, clock=clock) as dut:
        rc = cli.main(["run", "--port", dut.path, str(raw), "--timeout", "3", *extra])
    out, err = capsys.readouterr()
    return rc, out, err


def test_parse_clock_line():
    c = parse_clock(["m-clock-[216 MHz (PLL); hz=216000000; timer=dwt; board=stm32f746g-disco; variant=native]"])
    assert c == DeviceClock("216 MHz (PLL)", 216_000_000, "dwt", "stm32f746g-disco", "native")
    assert not c.emulated
    assert parse_clock([QEMU_F4]).emulated and parse_clock([QEMU_MPS2]).emulated
    assert parse_clock(["m-clock-[16 MHz; hz=x; timer=dwt]"]) is None     # malformed: no label, not a crash
    assert parse_clock(["e-[Unknown command: clock]"]) is None


@pytest.mark.timeout(30)
def test_board_latency_in_ms_at_the_reported_clock(tmp_path, capsys):
    rc, out, err = _run(tmp_path, capsys, BOARD_216, 12_345)
    assert rc == 0, err
    assert out.strip().endswith("latency 12.345 ms at 216 MHz (PLL)")
    # A board whose PLL did not start says so in the label.
    rc, out, err = _run(tmp_path, capsys, BOARD_FALLBACK, 2_000)
    assert rc == 0, err
    assert out.strip().endswith("latency 2.000 ms at 16 MHz (HSI, HSE not ready)")


@pytest.mark.timeout(30)
def test_emulator_latency_in_instructions(tmp_path, capsys):
    # MPS2 (QEMU mps2-an500): firmware and SysTick both at 25 MHz, -icount shift=0:
    # 1 reported us = 25 ticks = 25 * 40 ns = 1000 instructions.
    rc, out, err = _run(tmp_path, capsys, QEMU_MPS2, 1_737)
    assert rc == 0, err
    assert out.strip().endswith("latency 1,737,000 instructions (emulator: no clock)")
    # netduinoplus2: the firmware times at its 16 MHz fallback clock, QEMU's SysTick runs at
    # 168 MHz: 1234 us = 19,744 ticks = 19,744 / 168e6 s = 117,524 ns = 117,524 instructions.
    rc, out, err = _run(tmp_path, capsys, QEMU_F4, 1_234, "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["clock"]["emulated"] and doc["clock"]["hz"] == 16_000_000
    entry = doc["inputs"][0]
    assert entry["latency_us"] == 1234.0 and entry["instructions"] == 117_524
    assert entry["latency"] == "117,524 instructions (emulator: no clock)"


@pytest.mark.timeout(30)
def test_firmware_without_clock_command(tmp_path, capsys):
    rc, out, err = _run(tmp_path, capsys, None, 1_234, "--json")
    assert rc == 0, err
    entry = json.loads(out)["inputs"][0]
    assert entry["instructions"] is None
    assert entry["latency"].startswith("1.234 ms (device clock unknown")


def test_unknown_board_on_the_emulator_keeps_the_raw_figure():
    c = DeviceClock("25 MHz (x)", 25_000_000, "systick", "no-such-board", "mps2")
    lat = latency(100.0, c)
    assert lat.instructions is None and "emulated us" in lat.label and "no-such-board" in lat.label
    assert latency(None, c).label == "n/a"
