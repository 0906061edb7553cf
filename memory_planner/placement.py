"""Offset assignment policies: buffers with lifetimes -> arena offsets.

`greedy` follows TFLM's GreedyMemoryPlanner: place buffers largest first; each
goes at the lowest offset where it does not overlap (in bytes) any already
placed buffer whose lifetime overlaps its own.
"""
from __future__ import annotations

from typing import Callable

from .lifetimes import Buffer


def _first_fit(b: Buffer, placed: list[Buffer], alignment: int) -> int:
    """Lowest aligned offset where `b` fits between time-overlapping buffers."""
    busy = sorted((p.offset, p.offset + p.size) for p in placed
                  if p.first <= b.last and b.first <= p.last)
    offset = 0
    for start, end in busy:
        if offset + b.size <= start:
            break
        offset = max(offset, end)
        offset = (offset + alignment - 1) // alignment * alignment
    return offset


def greedy_by_size(buffers: list[Buffer], alignment: int) -> int:
    order = sorted(range(len(buffers)), key=lambda i: (-buffers[i].size, buffers[i].first, i))
    placed: list[Buffer] = []
    for i in order:
        b = buffers[i]
        b.offset = _first_fit(b, placed, alignment)
        placed.append(b)
    return max((b.offset + b.size for b in buffers), default=0)


POLICIES: dict[str, Callable[[list[Buffer], int], int]] = {
    "greedy": greedy_by_size,
}
