"""firmware/emulate.py after the split: `emulate()` plus the public names of
the per-concern modules, re-exported as the same objects."""
from __future__ import annotations

import importlib

import pytest

HOME = {
    "EmulationResult": "selftest_console", "VectorResult": "selftest_console",
    "parse_selftest": "selftest_console",
    "QEMU_SYSTICK_HZ": "qemu", "machine_note": "qemu", "qemu_command": "qemu", "spawn_qemu": "qemu",
    "stop_qemu": "qemu", "emulate_qemu": "qemu",
    "emulate_renode": "renode", "write_renode_files": "renode",
    "OpProfile": "profile", "ProfileResult": "profile", "build_profile_firmware": "profile",
    "profile": "profile",
    "code_size": "mapfile",
    "SerialSession": "serial_session", "start_serial_session": "serial_session",
    "stop_serial_session": "serial_session",
}


@pytest.mark.parametrize("name", sorted(HOME))
def test_reexport_is_the_module_object(name):
    emulate = importlib.import_module("tinyml.firmware.emulate")
    home = importlib.import_module(f"tinyml.firmware.{HOME[name]}")
    assert getattr(emulate, name) is getattr(home, name)


def test_all_lists_exactly_emulate_and_the_reexports():
    emulate = importlib.import_module("tinyml.firmware.emulate")
    assert sorted(emulate.__all__) == sorted(["emulate", *HOME])


def test_code_size_reads_a_map(tmp_path):
    from tinyml.errors import TinymlError
    from tinyml.firmware.mapfile import code_size
    m = tmp_path / "firmware.map"
    m.write_text("Memory Configuration\n\nLinker script and memory map\n\n"
                 " .text          0x08000100       0x40 obj/model/model.o\n"
                 " .text.conv\n"
                 "                0x08000140      0x120 obj/model/kernels/src/conv.o\n"
                 " .rodata        0x08000300      0x800 obj/model/weights.o\n"
                 " .text          0x08000b00       0x10 obj/runtime/startup.o\n"
                 " .bss           0x20000000      0x400 obj/model/model.o\n"
                 " .text          0x00000000       0x99 obj/runtime/uart.o\n")
    c = code_size(str(m))
    assert (c["model"], c["kernels"], c["weights"], c["runtime"]) == (0x40, 0x120, 0x800, 0x10)
    assert c["per_kernel"] == {"conv": 0x120} and c["code_excluding_weights"] == 0x160
    (tmp_path / "bad.map").write_text("not a map\n")
    with pytest.raises(TinymlError):
        code_size(str(tmp_path / "bad.map"))
