"""`tinyml flash --probe stlink`: the command line composed for each tool (OpenOCD, st-flash,
pyOCD), the tool picked when several or none are installed, and the one-line handling of
their failures. The tools are fake executables on PATH that record their argv and answer
with the output and exit status each real tool gives in that situation."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tinyml.deploy.firmware_image import Segment, load_firmware, write_ihex

F7 = "stm32f746g-disco"
F4 = "stm32f4-discovery"

FAKE = """#!{python}
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps({{"tool": os.path.basename(sys.argv[0]), "argv": sys.argv[1:]}}) + "\\n")
    # st-flash reads its --format ihex file: record what it would write
    if "--format" in sys.argv:
        f.write(json.dumps({{"hex": open(sys.argv[-1]).read()}}) + "\\n")
sys.stdout.write(os.environ.get("FAKE_OUT_" + os.path.basename(sys.argv[0]).replace("-", "_"), ""))
sys.exit(int(os.environ.get("FAKE_RC_" + os.path.basename(sys.argv[0]).replace("-", "_"), "0")))
"""

OK_OUT = {
    "openocd": "Open On-Chip Debugger 0.12.0\n** Programming Started **\n** Programming Finished **\n"
               "** Verify Started **\n** Verified OK **\n** Resetting Target **\nshutdown command invoked\n",
    "st-flash": "st-flash 1.7.0\nINFO common.c: Flash written and verified! jolly good!\n",
    "pyocd": "0001234:INFO:load_cmd:Loading firmware.bin\n[==================================================]100%\n",
}


def _env(tmp_path, tools, rc=None, out=None):
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for t in tools:
        p = bindir / t
        p.write_text(FAKE.format(python=sys.executable))
        p.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}:/usr/bin:/bin", FAKE_LOG=str(tmp_path / "log.jsonl"))
    # only our fakes may answer: hide any real tool in /usr/bin behind a missing one
    for t, code in (rc or {}).items():
        env["FAKE_RC_" + t.replace("-", "_")] = str(code)
    for t in tools:
        env["FAKE_OUT_" + t.replace("-", "_")] = (out or {}).get(t, OK_OUT[t])
    return env


def _flash(env, *args):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", "flash", *args], capture_output=True,
                          text=True, env=env, timeout=60)


def _calls(tmp_path):
    p = tmp_path / "log.jsonl"
    return [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []


@pytest.fixture
def images(tmp_path):
    """One firmware as .bin, .hex and .elf-less pair (the ELF comes from a real build elsewhere)."""
    data = bytes(range(256)) * 4
    (tmp_path / "fw.bin").write_bytes(data)
    write_ihex(str(tmp_path / "fw.hex"), [Segment(0x0800_0000, data)])
    return tmp_path


@pytest.fixture(autouse=True)
def _no_real_tools(monkeypatch):
    import shutil
    for t in ("openocd", "st-flash", "pyocd"):
        if shutil.which(t, path="/usr/bin:/bin"):
            pytest.skip(f"a real {t} is installed in /usr/bin; the fakes would not be the only tools")


def test_openocd_command_for_bin_and_hex(tmp_path, images):
    env = _env(tmp_path, ["openocd", "st-flash", "pyocd"])
    r = _flash(env, str(images / "fw.bin"), "--probe", "stlink", "--board", F7, "--json")
    assert r.returncode == 0, r.stderr
    calls = _calls(tmp_path)
    assert len(calls) == 1 and calls[0]["tool"] == "openocd"      # first installed wins
    fw = str(images / "fw.bin")
    assert calls[0]["argv"] == ["-f", "interface/stlink.cfg", "-f", "target/stm32f7x.cfg",
                                "-c", f"program {{{fw}}} verify reset exit 0x08000000"]
    out = json.loads(r.stdout)
    assert out["tool"] == "openocd" and out["board"] == F7 and out["command"][1:] == calls[0]["argv"]
    r = _flash(env, str(images / "fw.hex"), "--probe", "stlink", "--board", F4, "--probe-serial", "066DFF")
    assert r.returncode == 0, r.stderr
    argv = _calls(tmp_path)[1]["argv"]
    assert argv == ["-f", "interface/stlink.cfg", "-c", "adapter serial 066DFF", "-f", "target/stm32f4x.cfg",
                    "-c", f"program {{{images / 'fw.hex'}}} verify reset exit"]     # no address for HEX


def test_st_flash_command_for_bin_hex_and_elf(tmp_path, images):
    env = _env(tmp_path, ["st-flash", "pyocd"])
    r = _flash(env, str(images / "fw.bin"), "--probe", "stlink", "--board", F7)
    assert r.returncode == 0, r.stderr
    assert "through the ST-LINK with st-flash" in r.stdout
    assert _calls(tmp_path)[0]["argv"] == ["--reset", "write", str(images / "fw.bin"), "0x08000000"]
    r = _flash(env, str(images / "fw.hex"), "--probe", "stlink", "--board", F7, "--probe-serial", "ABC")
    assert r.returncode == 0, r.stderr
    assert _calls(tmp_path)[-2]["argv"] == ["--serial", "ABC", "--reset", "--format", "ihex", "write",
                                            str(images / "fw.hex")]


def test_st_flash_gets_a_hex_copy_of_an_elf_and_it_is_removed(tmp_path):
    """st-flash reads no ELF: a temporary Intel HEX with the ELF's load segments is passed and
    deleted afterwards, whatever the outcome."""
    elf = _small_elf(tmp_path)
    env = _env(tmp_path, ["st-flash"])
    for rc in (0, 1):
        env["FAKE_RC_st_flash"] = str(rc)
        r = _flash(env, elf, "--probe", "stlink", "--board", F4)
        assert r.returncode == (0 if rc == 0 else 2), r.stderr
    calls = [c for c in _calls(tmp_path) if "argv" in c]
    hexes = [c["hex"] for c in _calls(tmp_path) if "hex" in c]
    for c in calls:
        assert c["argv"][:3] == ["--reset", "--format", "ihex"] and c["argv"][3] == "write"
        assert c["argv"][4].endswith(".hex") and not os.path.exists(c["argv"][4])
    want = load_firmware(elf)
    got_path = tmp_path / "copy.hex"
    got_path.write_text(hexes[0])
    got = load_firmware(str(got_path))
    assert [(s.address, s.data) for s in got.segments] == [(s.address, s.data) for s in want.segments]


def _small_elf(tmp_path) -> str:
    import shutil
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc needed to make an ELF")
    src = tmp_path / "a.c"
    src.write_text("const int table[4] = {1, 2, 3, 4};\nint main(void) { return table[1]; }\n")
    elf = tmp_path / "a.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-Wl,-Ttext=0x08000000",
                    "-Wl,-e,main", str(src), "-o", str(elf)], check=True, capture_output=True)
    return str(elf)


def test_pyocd_command(tmp_path, images):
    env = _env(tmp_path, ["pyocd"])
    r = _flash(env, str(images / "fw.bin"), "--probe", "stlink", "--board", F7, "--probe-serial", "0670FF")
    assert r.returncode == 0, r.stderr
    assert _calls(tmp_path)[0]["argv"] == ["load", "-t", "stm32f746nghx", "-u", "0670FF", "--base-address",
                                           "0x08000000", str(images / "fw.bin")]
    r = _flash(env, str(images / "fw.hex"), "--probe", "stlink", "--board", "nucleo-h743zi")
    assert r.returncode == 0, r.stderr
    assert _calls(tmp_path)[1]["argv"] == ["load", "-t", "stm32h743zitx", str(images / "fw.hex")]


def test_tool_choice_and_missing_tools(tmp_path, images):
    env = _env(tmp_path, ["openocd", "pyocd"])
    r = _flash(env, str(images / "fw.bin"), "--probe", "stlink", "--board", F7, "--tool", "pyocd")
    assert r.returncode == 0 and _calls(tmp_path)[0]["tool"] == "pyocd"
    r = _flash(env, str(images / "fw.bin"), "--probe", "stlink", "--board", F7, "--tool", "st-flash")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "st-flash not found on PATH" in r.stderr and "apt install stlink-tools" in r.stderr
    (tmp_path / "empty").mkdir()
    env = _env(tmp_path / "empty", [])
    r = _flash(env, str(images / "fw.bin"), "--probe", "stlink", "--board", F7)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "no ST-LINK flashing tool found on PATH (looked for openocd, st-flash, pyocd)" in r.stderr
    assert "apt install openocd" in r.stderr and "pip install pyocd" in r.stderr


def test_board_from_build_json_and_missing_board(tmp_path, images):
    env = _env(tmp_path, ["openocd"])
    r = _flash(env, str(images / "fw.bin"), "--probe", "stlink")
    assert r.returncode == 2 and "pass --board" in r.stderr and r.stderr.count("\n") == 1
    (images / "build.json").write_text(json.dumps({"board": F4}))
    r = _flash(env, str(images / "fw.bin"), "--probe", "stlink", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["board"] == F4 and "target/stm32f4x.cfg" in _calls(tmp_path)[0]["argv"]
    r = _flash(env, str(images / "fw.bin"), "--tool", "openocd")
    assert r.returncode == 2 and "--probe stlink" in r.stderr


# (tool, exit status, output the real tool prints, expected exit code, words of the one line)
FAILURES = [
    ("openocd", 1, "Info : auto-selecting first available session transport \"hla_swd\".\n"
                   "Error: open failed\n** OpenOCD init failed **\nshutdown command invoked\n",
     2, "no ST-LINK probe found"),
    ("openocd", 1, "Info : STLINK V2J37M26 (API v2) VID:PID 0483:374B\nInfo : Target voltage: 0.003\n"
                   "Error: init mode failed (unable to connect to the target)\n** OpenOCD init failed **\n",
     2, "the chip does not"),
    ("openocd", 1, "** Programming Finished **\n** Verify Started **\nError: checksum mismatch\n"
                   "** Verify Failed **\nshutdown command invoked\n", 1, "read back differs"),
    ("openocd", 0, "** Programming Finished **\n** Verify Started **\n** Verify Failed **\n", 1,
     "read back differs"),     # OpenOCD < 0.11 exits 0 after a failed verify
    ("openocd", 1, "Error: libusb_open() failed with LIBUSB_ERROR_ACCESS\nError: open failed\n", 2,
     "no permission"),
    ("st-flash", 255, "st-flash 1.7.0\nFailed to connect to target\nFailed to parse flash type or unrecognized flash type\n",
     2, "the chip does not"),
    ("st-flash", 255, "st-flash 1.7.0\nERROR usb.c: Couldn't find any ST-Link devices\n", 2,
     "no ST-LINK probe found"),
    ("st-flash", 255, "INFO common.c: Starting verification of write complete\n"
                      "ERROR common.c: Verification of flash failed at offset: 0\n", 1, "read back differs"),
    ("pyocd", 1, "0000693:ERROR:__main__:No connected debug probes\n", 2, "no ST-LINK probe found"),
    ("pyocd", 1, "0000412:CRITICAL:__main__:Target type stm32f746nghx not recognized. Use 'pyocd list "
                 "--targets' to see currently available target types.\n", 2, "pyocd pack install stm32f746nghx"),
    ("pyocd", 1, "0000900:ERROR:__main__:something nobody expected happened\n", 2,
     "pyocd failed (exit status 1): 0000900:ERROR:__main__:something nobody expected happened"),
]


@pytest.mark.parametrize("tool,rc,out,want_rc,words", FAILURES)
def test_tool_failures_are_one_line(tmp_path, images, tool, rc, out, want_rc, words):
    env = _env(tmp_path, [tool], rc={tool: rc}, out={tool: out})
    r = _flash(env, str(images / "fw.bin"), "--probe", "stlink", "--board", F7)
    assert r.returncode == want_rc, r.stderr
    lines = [l for l in r.stderr.splitlines() if not l.startswith("running: ")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    assert words in lines[0] and " -- " in lines[0]


def test_tool_timeout_and_unrunnable(tmp_path, images):
    from tinyml.boards import load_board
    from tinyml.deploy.errors import NoAnswerError
    from tinyml.deploy.stlink import flash_stlink
    from tinyml.errors import ToolchainError
    bindir = tmp_path / "slow"
    bindir.mkdir()
    (bindir / "openocd").write_text("#!/bin/sh\nsleep 30\n")
    (bindir / "openocd").chmod(0o755)
    (bindir / "st-flash").write_text("not a program")
    (bindir / "st-flash").chmod(0o755)
    which = lambda t: str(bindir / t) if (bindir / t).exists() else None
    board = load_board(F7)
    with pytest.raises(NoAnswerError, match="did not finish within 1 s"):
        flash_stlink(str(images / "fw.bin"), board, which=which, timeout=1.0)
    with pytest.raises(ToolchainError, match="cannot run"):
        flash_stlink(str(images / "fw.bin"), board, tool="st-flash", which=which)
