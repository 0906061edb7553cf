"""The few board facts the serial link needs, read through `boards.load_board`.

The flasher needs: `name`, `mcu`, `bootloader_pid`, `flash_origin`,
`flash_size` and `flash_sectors` (list of (start address, size)). Any object
with those attributes works (the tests pass small dataclasses).
"""
from __future__ import annotations

import glob
import os
from typing import Any, Protocol

from tinyml.errors import TinymlError


class BoardLike(Protocol):
    name: str
    mcu: str
    bootloader_pid: int
    flash_origin: int
    flash_size: int
    flash_sectors: list[tuple[int, int]]


def load(name: str) -> Any:
    """`boards.load_board(name)`, with a clear error while the loader is missing."""
    try:
        from tinyml.boards import load_board  # type: ignore[attr-defined]
    except ImportError:
        raise TinymlError("board descriptors are not available (boards.load_board is missing)",
                          "boards/__init__.py", "update the checkout; the board loader ships with boards/") from None
    return load_board(name)


def all_boards() -> list[Any]:
    """Every board descriptor in boards/*.toml that loads."""
    try:
        from tinyml.boards import list_boards  # type: ignore[attr-defined]
        names = list(list_boards())
    except ImportError:
        from tinyml.paths import BOARDS
        names = [os.path.splitext(os.path.basename(p))[0] for p in sorted(glob.glob(os.path.join(BOARDS, "*.toml")))]
    out = []
    for name in names:
        try:
            out.append(load(name))
        except Exception:  # noqa: BLE001 - a broken descriptor is not ours to report here
            continue
    return out


def boards_for_pid(pid: int) -> list[Any]:
    return [b for b in all_boards() if int(getattr(b, "bootloader_pid", -1)) == pid]


def sector_index_range(board: BoardLike, start: int, end: int) -> list[int]:
    """Indices of the flash sectors that intersect [start, end)."""
    out = []
    for i, (s_start, s_size) in enumerate(board.flash_sectors):
        if s_start < end and start < s_start + s_size:
            out.append(i)
    return out
