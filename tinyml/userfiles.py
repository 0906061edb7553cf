"""Opening a file a user named: only regular files, read with a size bound.

A path on the command line or inside a dataset may be a folder, a named pipe
(reading it blocks forever), a device (/dev/zero never ends), a socket, or a
huge file. `regular_file` refuses each with one `TinymlError` line before
anything is read; `read_bounded` then reads at most the stated bound.
"""
from __future__ import annotations

import os
import stat

from tinyml.errors import TinymlError


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def regular_file(path: str, what: str, fix: str, max_bytes: int | None = None,
                 error: type[TinymlError] = TinymlError) -> os.stat_result:
    """stat() of `path` if it is a regular file of at most `max_bytes`, else `error`
    (one line: `what` names the role, e.g. "input file", `fix` what to pass)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist", path, fix) from None
    except OSError as exc:
        raise error(f"cannot open {what} {path} ({exc.strerror})", path, fix) from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {path} is {kind_of(st.st_mode)}, not a file", path, fix)
    if max_bytes is not None and st.st_size > max_bytes:
        raise error(f"{what} is {st.st_size} bytes, more than the {_size(max_bytes)} allowed", path, fix)
    return st


def read_bounded(path: str, what: str, fix: str, max_bytes: int,
                 error: type[TinymlError] = TinymlError) -> bytes:
    """The bytes of a regular file of at most `max_bytes` (checked again while reading)."""
    regular_file(path, what, fix, max_bytes, error)
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path} ({exc.strerror})", path, fix) from None
    if len(data) > max_bytes:
        raise error(f"{what} grew past {_size(max_bytes)} while being read", path, fix)
    return data


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n} bytes"
