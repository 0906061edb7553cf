"""`--board` is checked the same way by every command that has it
(`tinyml.cli.check_board`, called by `main` before the command runs)."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from tinyml import cli
from tinyml.boards import BOARDS_DIR, list_boards

# Commands known to take --board; the enumeration below must find at least these.
KNOWN = {"bench", "build", "demo", "flash", "generate", "plan", "search"}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _board_commands() -> dict[str, argparse.ArgumentParser]:
    return {name: p for name, p in _subparsers().items()
            if any("--board" in a.option_strings for a in p._actions)}


def _minimal_argv(name: str, p: argparse.ArgumentParser, tmp: str) -> list[str]:
    """The command's required arguments with placeholder values (files that do not exist)."""
    argv = [name]
    for a in p._actions:
        if a.option_strings and not a.required:
            continue
        if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        value = str(a.choices[0]) if a.choices else os.path.join(tmp, "missing")
        if a.type is int or a.type is float:
            value = "1"
        if a.option_strings:
            argv += [a.option_strings[-1], value]
        elif a.nargs != "*":
            argv.append(value)
    return argv


def test_every_board_command_found():
    assert KNOWN <= set(_board_commands())


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_unknown_board_is_one_line_error(name, tmp_path, capsys):
    p = _board_commands()[name]
    argv = _minimal_argv(name, p, str(tmp_path)) + ["--board", "no-such-board"]
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: unknown board 'no-such-board' (in --board) -- use one of: ")
    for b in list_boards():
        assert b in lines[0]
    assert "Traceback" not in err and out == ""
    assert os.listdir(tmp_path) == []          # failed before doing any work


def test_unknown_board_json_mode(tmp_path, capsys):
    rc = cli.main(["plan", str(tmp_path / "m.tflite"), "--board", "nope", "--json"])
    out, err = capsys.readouterr()
    assert rc == 2
    import json
    d = json.loads(out)
    assert d["ok"] is False and d["where"] == "--board" and "nope" in d["cause"]


def test_generate_unknown_board_subprocess(tmp_path):
    """The reported bug: `tinyml generate --board no-such-board` exited 0."""
    out = tmp_path / "gen"
    r = subprocess.run([sys.executable, "-m", "tinyml.cli", "generate", str(tmp_path / "m.tflite"),
                        "-o", str(out), "--board", "no-such-board"],
                       capture_output=True, text=True, cwd=str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert r.stderr.startswith("error: unknown board 'no-such-board'")
    assert not out.exists()


def test_check_board_accepts_names_and_descriptor_files(tmp_path):
    for b in list_boards():
        cli.check_board(b)
        cli.check_board(os.path.join(BOARDS_DIR, f"{b}.toml"))
    cli.check_board(None)                      # option not given (generate, flash)
    from tinyml.errors import TinymlError
    for bad in ("", "STM32F746G-DISCO", "stm32f746g-disco.toml", str(tmp_path / "x.toml")):
        with pytest.raises(TinymlError) as e:
            cli.check_board(bad)
        assert e.value.where == "--board"
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(TinymlError) as e:
        cli.check_board(str(broken))
    assert e.value.where == str(broken)       # parse errors keep the descriptor's location


def test_valid_board_reaches_the_command(tmp_path, capsys):
    """A good --board passes the check: the command runs and fails on its own (missing model)."""
    rc = cli.main(["generate", str(tmp_path / "m.tflite"), "-o", str(tmp_path / "o"),
                   "--board", "stm32f746g-disco"])
    err = capsys.readouterr().err
    assert rc != 0 and "unknown board" not in err and "model file not found" in err
