"""Run a built firmware's self-test on an emulator: `emulate(DIR)` reads DIR's
build metadata and runs the self-test on QEMU (`firmware/qemu.py`) or Renode
(`firmware/renode.py`); the console report is parsed by
`firmware/selftest_console.py`.

The rest of the emulator support lives beside it, one concern per module:
- `firmware/profile.py`: per-op instruction counts (profile rebuild + run),
- `firmware/mapfile.py`: linked code size by origin from the GNU ld map,
- `firmware/serial_session.py`: QEMU serving a serial-mode build on TCP.
The names re-exported below keep `from tinyml.firmware.emulate import X`
working for code written before the split.
"""
from __future__ import annotations

from tinyml.boards import load_board
from tinyml.errors import TinymlError
from tinyml.firmware.build import load_build_meta
from tinyml.firmware.mapfile import code_size
from tinyml.firmware.profile import OpProfile, ProfileResult, build_profile_firmware, profile
from tinyml.firmware.qemu import (QEMU_SYSTICK_HZ, emulate_qemu, machine_note, qemu_command, spawn_qemu,
                                  stop_qemu)
from tinyml.firmware.renode import emulate_renode, write_renode_files
from tinyml.firmware.selftest_console import EmulationResult, VectorResult, parse_selftest
from tinyml.firmware.serial_session import SerialSession, start_serial_session, stop_serial_session

__all__ = ["emulate", "EmulationResult", "VectorResult", "parse_selftest", "QEMU_SYSTICK_HZ",
           "machine_note", "qemu_command", "spawn_qemu", "stop_qemu", "emulate_qemu", "emulate_renode",
           "write_renode_files", "OpProfile", "ProfileResult", "build_profile_firmware", "profile",
           "code_size", "SerialSession", "start_serial_session", "stop_serial_session"]


def emulate(out_dir: str, emulator: str = "qemu", timeout: float = 120.0, progress=None
            ) -> EmulationResult:
    """Run DIR's self-test build on `emulator` ("qemu" or "renode") and return its parsed report."""
    meta = load_build_meta(out_dir)
    if meta.get("mode") != "selftest":
        raise TinymlError(f"{out_dir} was built in {meta.get('mode')} mode", out_dir,
                          "rebuild with --mode selftest to emulate the self-test")
    board = load_board(meta["board"])
    if emulator == "renode":
        return emulate_renode(out_dir, board, meta, timeout)
    if emulator != "qemu":
        raise TinymlError(f"unknown emulator {emulator!r}", "tinyml emulate", "use qemu or renode")
    return emulate_qemu(out_dir, board, timeout, progress)
