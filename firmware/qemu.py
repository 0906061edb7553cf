"""QEMU (`qemu-system-arm`): pick the machine and the ELF for a board, run the
self-test, spawn QEMU for serial sessions and tests.

- STM32F4 boards run the unchanged board binary on `netduinoplus2`
  (STM32F405); the console USART is connected to the matching `-serial`.
- Cortex-M7 boards (and the L4) run on an MPS2 machine (`mps2-an500` is a
  Cortex-M7) from the DIR/mps2 variant build: memory origins follow the MPS2
  map, SRAM and flash sizes stay the board's.
- `-icount shift=0`: one guest instruction = 1 ns of virtual time. The
  firmware times inferences with SysTick on the processor clock, so
  instructions = SysTick ticks * 1e9 / (the machine's SysTick clock):
  168 MHz on netduinoplus2 (5.95 ns per tick), 25 MHz on MPS2 (40 per tick).
  These are instructions, not cycles: QEMU models no pipeline, cache or
  flash wait states.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time

from tinyml.boards import Board, load_board
from tinyml.errors import ToolchainError, TinymlError
from tinyml.firmware.build import ensure_variant, load_build_meta
from tinyml.firmware.selftest_console import (RESULT_LINE, EmulationResult, kill_group, parse_selftest,
                                              run_capture)

# QEMU 7.2 stm32f405-soc creates its USARTs in this order; serial port i is USART i.
QEMU_STM32F405_USARTS = [0x4001_1000, 0x4000_4400, 0x4000_4800, 0x4000_4C00,
                         0x4000_5000, 0x4001_1400, 0x4000_7800, 0x4000_7C00]
# SysTick clock (processor clock) of each QEMU machine, Hz.
QEMU_SYSTICK_HZ = {"netduinoplus2": 168_000_000, "mps2-an500": 25_000_000,
                   "mps2-an386": 25_000_000, "mps2-an385": 25_000_000}


def qemu_serial_args(board: Board, variant: str, spec: str) -> list[str]:
    """`-serial` options that connect `spec` (e.g. "stdio") to the console UART."""
    if variant == "mps2":
        return ["-serial", spec]
    if board.qemu.machine != "netduinoplus2":
        raise TinymlError(f"no QEMU serial mapping for machine {board.qemu.machine}", board.path,
                          "use netduinoplus2 or an mps2 variant")
    try:
        idx = QEMU_STM32F405_USARTS.index(board.uart.base)
    except ValueError:
        raise TinymlError(f"QEMU's STM32F405 has no USART at 0x{board.uart.base:08x}", board.path,
                          "use a USART1-6 console") from None
    args: list[str] = []
    for _ in range(idx):
        args += ["-serial", "null"]
    return args + ["-serial", spec]


def qemu_command(board: Board, elf: str, variant: str, serial: str = "stdio") -> list[str]:
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        raise ToolchainError("qemu-system-arm not found on PATH", "tinyml emulate",
                             "install the qemu-system-arm package (apt)")
    return [qemu, "-M", board.qemu.machine, "-nographic", "-monitor", "none",
            "-icount", "shift=0", "-semihosting-config", "enable=on,target=native",
            "-kernel", elf, *qemu_serial_args(board, variant, serial)]


def machine_note(board: Board, variant: str) -> str:
    if variant == "native":
        return (f"unchanged {board.name} binary on QEMU {board.qemu.machine}")
    if variant == "remap":
        moved = ", ".join(f"{n} at 0x{o:08x}" for n, o in board.qemu.remap)
        return (f"{board.name} variant build on QEMU {board.qemu.machine}: {moved} (where the machine "
                f"maps that memory), everything else the board binary's")
    return (f"{board.name} variant build on QEMU {board.qemu.machine}: memory origins follow the "
            f"MPS2 map (flash at 0x0, SRAM at 0x20000000), sizes are the board's")


def firmware_elf(out_dir: str, variant: str, progress=None, check: bool = True) -> str:
    """The ELF QEMU runs for DIR: DIR/firmware.elf for the native variant, else
    DIR/<variant>/firmware.elf (built on demand by `ensure_variant`)."""
    elf = ensure_variant(out_dir, variant, progress) if variant != "native" else \
        os.path.join(out_dir, "firmware.elf")
    if check and not os.path.exists(elf):
        raise TinymlError(f"no firmware at {elf}", out_dir, "run `tinyml build` first")
    return elf


def build_variant(out_dir: str, board: Board) -> str:
    """The memory-map variant of DIR that QEMU runs (build.json "qemu_variant"; older builds:
    the board's). A build whose weights sit in external flash cannot run: QEMU maps none."""
    meta = load_build_meta(out_dir)
    if meta.get("weights_region"):
        raise TinymlError(f"{out_dir} links the weights into {meta['weights_region']} (external "
                          f"memory-mapped flash), which QEMU does not model", out_dir,
                          "build without --weights-region to emulate, or run it on the board")
    return meta.get("qemu_variant", board.qemu.variant)


def emulate_qemu(out_dir: str, board: Board, timeout: float = 120.0, progress=None) -> EmulationResult:
    """Run DIR's self-test build on the board's QEMU machine and parse its report."""
    variant = build_variant(out_dir, board)
    elf = firmware_elf(out_dir, variant, progress)
    cmd = qemu_command(board, elf, variant)
    t0 = time.monotonic()
    text, timed_out, rc = run_capture(cmd, timeout)
    meta = load_build_meta(out_dir)
    sizes = meta["sizes"].get(variant, {})
    res = EmulationResult(passed=False, instructions_per_inference=None,
                          peak_sram_bytes_measured=None, flash_bytes=sizes.get("flash_bytes"),
                          emulator="qemu", machine=board.qemu.machine, variant=variant,
                          board=board.name, model=meta.get("model", ""),
                          note=machine_note(board, variant), timed_out=timed_out,
                          seconds=round(time.monotonic() - t0, 2), output=text,
                          stack_estimate_bytes=sizes.get("stack_estimate"))
    parse_selftest(text, QEMU_SYSTICK_HZ.get(board.qemu.machine, 0) or 1, res)
    if timed_out:
        res.passed = False
        res.error = f"no RESULT line within {timeout:g} s (firmware hung or too slow)"
    elif "qemu: fatal" in text:
        res.passed = False
        res.error = next(l for l in text.splitlines() if "qemu: fatal" in l).strip()
    elif not RESULT_LINE.search(text):
        res.passed = False
        res.error = f"emulator exited (code {rc}) without a RESULT line"
    return res


def spawn_qemu(out_dir: str, serial: str) -> subprocess.Popen:
    """Start QEMU on DIR's firmware with the console UART on `serial` (a QEMU
    chardev spec such as "tcp:127.0.0.1:4444,server=on,wait=on" or "pty").
    The caller owns the process (kill its process group when done)."""
    meta = load_build_meta(out_dir)
    board = load_board(meta["board"])
    variant = build_variant(out_dir, board)
    elf = firmware_elf(out_dir, variant, check=False)
    cmd = qemu_command(board, elf, variant, serial)
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop_qemu(proc: subprocess.Popen) -> None:
    kill_group(proc)
