"""`tinyml flash FIRMWARE --port PORT`: program a board through the STM32 ROM bootloader;
`tinyml flash FIRMWARE --probe stlink`: through the board's ST-LINK (deploy/stlink.py)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from tinyml.errors import TinymlError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "flash", help="flash firmware through the STM32 ROM bootloader (AN3155) or the board's ST-LINK",
        description="Flash a .bin/.hex/.elf through the STM32 USART ROM bootloader: sync, check the "
                    "chip id, erase, write, read back and start it. Needs only a USB-UART adapter "
                    "(see deploy/WIRING.md). With --probe stlink: through the board's ST-LINK with "
                    "OpenOCD, st-flash (stlink-tools) or pyOCD, the first installed.")
    p.add_argument("firmware", help="firmware file: an ARM .elf, an Intel .hex or a raw .bin, starting with a "
                                    "Cortex-M vector table (checked before anything is erased)")
    p.add_argument("--probe", choices=("bootloader", "stlink"), default="bootloader",
                   help="bootloader: ROM bootloader over --port (default); stlink: the on-board ST-LINK")
    p.add_argument("--tool", choices=("openocd", "st-flash", "pyocd"),
                   help="--probe stlink: the tool to run (default: the first of these on PATH)")
    p.add_argument("--probe-serial", metavar="SN", help="--probe stlink: serial number of the ST-LINK to use")
    p.add_argument("--port", help="serial port (/dev/ttyUSB0, a pty, or a pyserial URL); needed for the bootloader")
    p.add_argument("--board", help="board descriptor name (default: found from the chip's product id; "
                                   "for --probe stlink: the build.json beside the firmware)")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--erase", choices=("sectors", "mass"), default="sectors",
                   help="erase only the sectors the image covers (default) or the whole flash")
    p.add_argument("--no-verify", action="store_true", help="skip the read-back comparison")
    p.add_argument("--no-go", action="store_true", help="do not start the firmware afterwards")
    p.add_argument("--reset-polarity", choices=("normal", "inverted", "none"), default="normal",
                   help="RTS->BOOT0 / DTR->NRST polarity; none = put the board in bootloader mode by hand")
    p.add_argument("--address", type=lambda s: int(s, 0),
                   help="load address of a raw .bin (default: the board's flash origin)")
    p.add_argument("--force", action="store_true", help="flash even if the chip id is not the board's")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for each answer")
    p.add_argument("--retries", type=int, default=5, help="retries (with resync) per command")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


class _Bars:
    """One tqdm bar per phase (erase, write, verify) on stderr."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.phase = ""

    def __call__(self, phase: str, done: int, total: int) -> None:
        from tqdm import tqdm
        if phase != self.phase:
            self.close()
            self.phase = phase
            unit = "sector" if phase == "erase" else "B"
            self.bar = tqdm(total=total, desc=f"{phase:6s}", unit=unit, unit_scale=unit == "B",
                            file=sys.stderr, leave=True, disable=None)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


def _board_beside(firmware: str) -> str | None:
    """The board of the `tinyml build` that wrote `firmware` (DIR/build.json, or ../ for DIR/mps2)."""
    d = os.path.dirname(os.path.abspath(firmware))
    for cand in (d, os.path.dirname(d)):
        try:
            with open(os.path.join(cand, "build.json")) as f:
                return json.load(f).get("board")
        except (OSError, ValueError):
            continue
    return None


def run_stlink(args: argparse.Namespace) -> int:
    from tinyml.deploy import board_info
    from tinyml.deploy.stlink import flash_stlink

    name = args.board or _board_beside(args.firmware)
    if name is None:
        raise TinymlError("--probe stlink needs the board (no build.json beside the firmware)",
                          "tinyml flash", "pass --board (see `tinyml boards`)")
    board = board_info.load(name)
    res = flash_stlink(args.firmware, board, tool=args.tool, serial=args.probe_serial, address=args.address,
                       log=_log)
    if args.json:
        print(json.dumps(res.as_dict()))
    else:
        print(f"flashed {args.firmware} to {board.name} ({board.mcu}) through the ST-LINK with {res.tool} "
              f"(verified, started); {res.seconds:.2f} s")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.probe == "stlink":
        return run_stlink(args)
    if args.tool or args.probe_serial:
        raise TinymlError("--tool and --probe-serial apply to --probe stlink", "tinyml flash",
                          "add --probe stlink, or drop them to use the ROM bootloader")
    if not args.port:
        raise TinymlError("the ROM bootloader needs --port", "tinyml flash",
                          "pass --port /dev/ttyUSB0 (the USB-UART adapter), or use --probe stlink")
    from tinyml.deploy import board_info
    from tinyml.deploy.firmware_image import check_vector_table, load_firmware, read_firmware_file
    from tinyml.deploy.serial_port import open_port
    from tinyml.deploy.stm32_bootloader import ResetControl, Stm32Bootloader, check_fits, flash_image, pid_name

    if args.retries < 0 or args.timeout <= 0:
        raise TinymlError("--retries must be >= 0 and --timeout > 0", "tinyml flash", "fix the option")
    board = board_info.load(args.board) if args.board else None
    # The file is judged before the port is opened: nothing is touched for a wrong file.
    read_firmware_file(args.firmware)
    image = None
    if board is not None:
        image = load_firmware(args.firmware, args.address if args.address is not None else board.flash_origin)
        check_fits(image, board)
        check_vector_table(image, board.flash_origin, board.flash_origin + board.flash_size)
    reset = ResetControl(args.reset_polarity)
    rts, dtr = reset.states(boot0_high=True, in_reset=False) if args.reset_polarity != "none" else (None, None)
    ser = open_port(args.port, args.baud, parity="E", timeout=args.timeout, rts=rts, dtr=dtr)
    bars = _Bars()
    try:
        if not reset.enter_bootloader(ser):
            _log(f"warning: {args.port} has no RTS/DTR lines (a pty or socket?); not resetting the board, "
                 "it must already be in bootloader mode")
        bl = Stm32Bootloader(ser, retries=args.retries, where=args.port)
        if board is None:
            bl.connect()
            pid = bl.get_id()
            matches = board_info.boards_for_pid(pid)
            maps = {(b.flash_origin, tuple(map(tuple, b.flash_sectors))) for b in matches}
            if not matches:
                raise TinymlError(f"no board descriptor has the chip's product id {pid_name(pid)}",
                                  args.port, "pass --board (see `tinyml boards`)")
            if len(maps) > 1:
                raise TinymlError(f"several boards match product id {pid_name(pid)} with different flash maps: "
                                  + ", ".join(b.name for b in matches), args.port, "pass --board")
            board = matches[0]
            _log(f"chip {pid_name(pid)}: using the flash map of board {board.name}")
        if image is None:
            image = load_firmware(args.firmware, args.address if args.address is not None else board.flash_origin)
        result = flash_image(bl, board, image, erase=args.erase, verify=not args.no_verify,
                             go=not args.no_go, force=args.force, progress=bars, log=_log)
    finally:
        bars.close()
        reset.run_mode(ser)
        ser.close()
    out = result.as_dict()
    if args.json:
        print(json.dumps(out))
    else:
        erased = "mass erase" if result.sectors_erased is None else f"{len(result.sectors_erased)} sector(s) erased"
        rate = out["bytes_per_second"]
        print(f"flashed {result.bytes_written} bytes to {board.name} ({board.mcu}, id 0x{result.pid:03X}, "
              f"bootloader {result.bootloader_version}) at {out['address']}: {erased}, "
              f"{'verified' if result.verified else 'NOT verified (--no-verify)'}"
              f"{', started' if result.started else ''}; {result.seconds:.2f} s"
              + (f" ({rate / 1000:.1f} kB/s)" if rate else "")
              + (f"; {result.retries} retries" if result.retries else ""))
    return 0
