"""Flash through the board's ST-LINK with a tool the user already has.

`tinyml flash FIRMWARE --probe stlink` runs the first of these found on PATH
(or the one named by --tool):

- `openocd` (Debian `openocd`): `-f interface/stlink.cfg -f target/<family>x.cfg
  -c "program FILE verify reset exit [ADDRESS]"` (the address only for a raw .bin);
- `st-flash` (Debian `stlink-tools`): `--reset write FILE.bin ADDRESS`, or
  `--reset --format ihex write FILE.hex`; an ELF is converted to a temporary
  Intel HEX first (st-flash reads no ELF), removed afterwards;
- `pyocd` (`pip install pyocd`): `load -t <CMSIS-pack part> FILE` (`--base-address`
  for a .bin).

The tool's exit status and output are turned into one line naming the cause
and the fix (no probe, no USB permission, chip not answering, verify failure,
unknown pyOCD target, timeout). Nothing here opens USB itself.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from tinyml.errors import TinymlError, ToolchainError

from .errors import NoAnswerError, PortBusyError, PortMissingError, VerifyMismatchError
from .firmware_image import load_firmware, write_ihex

TOOLS = ("openocd", "st-flash", "pyocd")
INSTALL_HINT = "install one: sudo apt install openocd (or stlink-tools), or pip install pyocd"

# OpenOCD target scripts per board family (scripts/target/ of the openocd package).
OPENOCD_TARGETS = {"stm32f4": "target/stm32f4x.cfg", "stm32f7": "target/stm32f7x.cfg",
                   "stm32h7": "target/stm32h7x.cfg", "stm32l4": "target/stm32l4x.cfg"}
# pyOCD target names: the CMSIS device family pack's part names, lower case
# (`pyocd pack install <part>` fetches the pack once).
PYOCD_TARGETS = {"STM32F405RG": "stm32f405rgtx", "STM32F407VG": "stm32f407vgtx",
                 "STM32F746NG": "stm32f746nghx", "STM32H743ZI": "stm32h743zitx",
                 "STM32L4R5ZI": "stm32l4r5zitx"}


@dataclass
class StlinkResult:
    tool: str
    command: list[str]
    board: str
    firmware: str
    seconds: float
    output: str = field(default="", repr=False)

    def as_dict(self) -> dict:
        return {"probe": "stlink", "tool": self.tool, "command": self.command, "board": self.board,
                "firmware": self.firmware, "seconds": round(self.seconds, 3)}


def find_tool(preferred: str | None = None, which: Callable[[str], str | None] = shutil.which
              ) -> tuple[str, str]:
    """(tool name, executable path): `preferred` if given, else the first of TOOLS on PATH."""
    if preferred is not None:
        if preferred not in TOOLS:
            raise TinymlError(f"unknown ST-LINK tool {preferred!r}", "tinyml flash --tool",
                              f"use one of {', '.join(TOOLS)}")
        path = which(preferred)
        if path is None:
            pkg = {"openocd": "sudo apt install openocd", "st-flash": "sudo apt install stlink-tools",
                   "pyocd": "pip install pyocd"}[preferred]
            raise ToolchainError(f"{preferred} not found on PATH", "tinyml flash --probe stlink",
                                 f"{pkg}, or drop --tool to use another installed tool")
        return preferred, path
    for tool in TOOLS:
        path = which(tool)
        if path is not None:
            return tool, path
    raise ToolchainError("no ST-LINK flashing tool found on PATH (looked for openocd, st-flash, pyocd)",
                         "tinyml flash --probe stlink", INSTALL_HINT)


def _kind(path: str) -> str:
    """'elf', 'hex' or 'bin' as load_firmware reads the file."""
    with open(path, "rb") as f:
        head = f.read(4)
    ext = os.path.splitext(path)[1].lower()
    if head == b"\x7fELF" or ext in (".elf", ".axf", ".out"):
        return "elf"
    if ext in (".hex", ".ihex", ".ihx") or (head[:1] == b":" and ext != ".bin"):
        return "hex"
    return "bin"


def compose(tool: str, exe: str, firmware: str, board: Any, serial: str | None = None,
            address: int | None = None, hex_path: str | None = None) -> list[str]:
    """The tool's command line for flashing `firmware` to `board` (a loaded descriptor: name, mcu,
    family, flash_origin), verifying and starting it. `hex_path`: st-flash's Intel HEX copy of an ELF."""
    kind = _kind(firmware)
    addr = f"0x{(board.flash_origin if address is None else address):08x}"
    if tool == "openocd":
        target = OPENOCD_TARGETS.get(board.family)
        if target is None:
            raise TinymlError(f"no OpenOCD target script known for family {board.family}", board.name,
                              "use --tool st-flash or pyocd")
        cmd = [exe, "-f", "interface/stlink.cfg"]
        if serial:
            cmd += ["-c", f"adapter serial {serial}"]
        cmd += ["-f", target]
        program = f"program {{{os.path.abspath(firmware)}}} verify reset exit"
        return cmd + ["-c", program + (f" {addr}" if kind == "bin" else "")]
    if tool == "st-flash":
        cmd = [exe] + (["--serial", serial] if serial else []) + ["--reset"]
        if kind == "bin":
            return cmd + ["write", os.path.abspath(firmware), addr]
        src = hex_path if kind == "elf" else firmware
        if src is None:
            raise TinymlError("st-flash needs a .bin or .hex; no HEX copy of the ELF was made",
                              firmware, "flash the firmware.bin that `tinyml build` wrote")
        return cmd + ["--format", "ihex", "write", os.path.abspath(src)]
    if tool == "pyocd":
        target = PYOCD_TARGETS.get(board.mcu.upper())
        if target is None:
            raise TinymlError(f"no pyOCD target name known for {board.mcu}", board.name,
                              "use --tool openocd or st-flash")
        cmd = [exe, "load", "-t", target] + (["-u", serial] if serial else [])
        if kind == "bin":
            cmd += ["--base-address", addr]
        return cmd + [os.path.abspath(firmware)]
    raise TinymlError(f"unknown ST-LINK tool {tool!r}", "tinyml flash --tool", f"use one of {', '.join(TOOLS)}")


# (pattern over the tool's lower-cased output, error class, cause, fix); first match wins.
_PROBLEMS: list[tuple[re.Pattern, type, str, str]] = [
    (re.compile(r"libusb_error_access|permission denied|insufficient permissions"), PortBusyError,
     "no permission to open the ST-LINK USB device",
     "install the tool's udev rules (Debian's openocd/stlink-tools packages ship them), replug the board, "
     "or add yourself to the plugdev group"),
    (re.compile(r"libusb_error_busy|resource busy"), PortBusyError,
     "the ST-LINK is held by another program",
     "close STM32CubeIDE/CubeProgrammer, a debugger or another flash run, then retry"),
    (re.compile(r"open failed|couldn't find any st-?link|no st-?link detected|no (connected|available) "
                r"debug probes|unable to find a matching|no device found"), PortMissingError,
     "no ST-LINK probe found on USB",
     "connect the board's ST-LINK USB port (not the user USB) and check that `lsusb` lists 0483:374b/374e"),
    (re.compile(r"target type \S+ not recognized"), TinymlError,
     "pyOCD does not know this part yet",
     "run `pyocd pack install {part}` once, then retry"),
    (re.compile(r"verify failed|verification of flash failed|verify error|verification failed"),
     VerifyMismatchError, "flash content read back differs from the image",
     "retry; if it persists, mass-erase the chip (or remove write protection) and flash again"),
    (re.compile(r"unable to connect to the target|init mode failed|failed to enter swd mode|"
                r"failed to connect|no ack|target voltage may be too low|could not connect|unknown chip id"),
     NoAnswerError, "the ST-LINK answers but the chip does not",
     "check the board is powered and its ST-LINK jumpers connect SWD to the target; "
     "a chip in low-power mode may need a reset while connecting"),
]


def classify(tool: str, returncode: int, output: str, board: Any = None) -> TinymlError | None:
    """One error for a failed tool run: a non-zero exit status, or a verify failure reported
    with status 0 (OpenOCD before 0.11 exits 0 after `** Verify Failed **`). None if it succeeded."""
    low = output.lower()
    if returncode == 0 and not _PROBLEMS[4][0].search(low):
        return None
    part = PYOCD_TARGETS.get(str(getattr(board, "mcu", "")).upper(), "the part's pack")
    for pat, cls, cause, fix in _PROBLEMS:
        if pat.search(low):
            return cls(f"{tool}: {cause}", tool, fix.format(part=part))
    lines = [l.strip() for l in output.splitlines() if l.strip()]
    errs = [l for l in lines if "error" in l.lower()]
    last = (errs or lines or ["(no output)"])[-1][:200]
    return ToolchainError(f"{tool} failed (exit status {returncode}): {last}", tool,
                          f"run the command by hand to see its full output, or try --tool with another of "
                          f"{', '.join(TOOLS)}")


def flash_stlink(firmware: str, board: Any, tool: str | None = None, serial: str | None = None,
                 address: int | None = None, timeout: float = 180.0,
                 which: Callable[[str], str | None] = shutil.which, log: Callable[[str], None] | None = None
                 ) -> StlinkResult:
    """Flash `firmware` (.bin/.hex/.elf) to `board` through its ST-LINK with the chosen or first
    installed tool; raise one TinymlError on any failure."""
    say = log or (lambda msg: None)
    image = load_firmware(firmware, board.flash_origin if address is None else address)  # checks the file
    name, exe = find_tool(tool, which)
    tmp = None
    try:
        hex_path = None
        if name == "st-flash" and _kind(firmware) == "elf":
            tmp = tempfile.mkdtemp(prefix="tinyml-stlink-")
            hex_path = os.path.join(tmp, os.path.splitext(os.path.basename(firmware))[0] + ".hex")
            write_ihex(hex_path, image.segments)
        cmd = compose(name, exe, firmware, board, serial, address, hex_path)
        say("running: " + " ".join(cmd))
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise NoAnswerError(f"{name} did not finish within {timeout:.0f} s", name,
                                "unplug and replug the ST-LINK, then retry") from None
        except OSError as exc:
            raise ToolchainError(f"cannot run {exe}: {exc.strerror or exc}", name,
                                 f"reinstall it, or {INSTALL_HINT}") from None
        seconds = time.monotonic() - t0
        output = (proc.stdout or "") + (proc.stderr or "")
        err = classify(name, proc.returncode, output, board)
        if err is not None:
            raise err
        return StlinkResult(tool=name, command=cmd, board=board.name, firmware=firmware, seconds=seconds,
                            output=output)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
