"""`tinyml` command line.

Each subcommand lives in its own module under `tinyml/commands/` and exposes
`register(subparsers)`, which adds its parser and sets `func` to a callable
`(args) -> int`. This file only discovers them and turns `TinymlError` into one
line on stderr and a non-zero exit.

Conventions every command follows:
- `--json` prints exactly one JSON object on stdout and nothing else there;
  progress and human text go to stderr in that mode.
- Failures a user can cause exit non-zero with one line: cause, where, fix.
- `--board NAME` is checked here, by `check_board`, for every command that
  has the option, before the command runs: an unknown name fails at once with
  the list of boards, not after minutes of work (or never, as `generate` did).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys

from tinyml.errors import TinymlError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinyml",
        description="Deploy int8 vision transformers and tiny CNNs to STM32 microcontrollers.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from tinyml import commands
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"tinyml.commands.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def check_board(name: str | None) -> None:
    """The one check of a `--board` value: a descriptor name (see `tinyml boards`)
    or the path of a board .toml. Raises TinymlError (one line) otherwise."""
    if name is None:
        return
    from tinyml.boards import list_boards, load_board
    names = list_boards()
    if name not in names and not (name.endswith(".toml") and os.path.isfile(name)):
        raise TinymlError(f"unknown board {name!r}", "--board",
                          f"use one of: {', '.join(names)} (`tinyml boards` lists them), or a board .toml file")
    load_board(name)  # a descriptor that does not parse fails here too, with its own location


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        check_board(getattr(args, "board", None))
        rc = args.func(args)
    except TinymlError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": exc.line(), "cause": exc.cause,
                              "where": exc.where, "fix": exc.fix}))
        print(exc.line(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
