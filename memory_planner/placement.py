"""Offset assignment policies: buffers with lifetimes -> arena offsets.

`greedy` follows TFLM's GreedyMemoryPlanner: place buffers largest first; each
goes at the lowest offset where it does not overlap (in bytes) any already
placed buffer whose lifetime overlaps its own.

`best` tries several placement orders (largest first, earliest first, largest
area size x lifetime first, longest-lived first) with both first-fit and
best-fit gap choice, and keeps the smallest arena. It is never worse than
`greedy`, which is one of its candidates.
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


def _best_fit(b: Buffer, placed: list[Buffer], alignment: int) -> int:
    """The aligned gap between time-overlapping buffers that leaves the least slack."""
    busy = sorted((p.offset, p.offset + p.size) for p in placed
                  if p.first <= b.last and b.first <= p.last)
    best, best_slack = None, None
    cursor = 0
    for start, end in busy:
        gap = start - cursor
        if gap >= b.size and (best_slack is None or gap - b.size < best_slack):
            best, best_slack = cursor, gap - b.size
        cursor = max(cursor, (end + alignment - 1) // alignment * alignment)
    return best if best is not None else cursor


def _place(buffers: list[Buffer], order: list[int], fit, alignment: int) -> list[int]:
    placed: list[Buffer] = []
    for i in order:
        b = buffers[i]
        b.offset = fit(b, placed, alignment)
        placed.append(b)
    return [b.offset for b in buffers]


def best_of_orders(buffers: list[Buffer], alignment: int) -> int:
    idx = range(len(buffers))
    orders = [
        sorted(idx, key=lambda i: (-buffers[i].size, buffers[i].first, i)),
        sorted(idx, key=lambda i: (buffers[i].first, -buffers[i].size, i)),
        sorted(idx, key=lambda i: (-buffers[i].size * (buffers[i].last - buffers[i].first + 1), i)),
        sorted(idx, key=lambda i: (-(buffers[i].last - buffers[i].first), -buffers[i].size, i)),
    ]
    best_offsets, best_arena = None, None
    for order in orders:
        for fit in (_first_fit, _best_fit):
            offsets = _place(buffers, order, fit, alignment)
            arena = max((o + b.size for o, b in zip(offsets, buffers)), default=0)
            if best_arena is None or arena < best_arena:
                best_offsets, best_arena = offsets, arena
    for b, o in zip(buffers, best_offsets or []):
        b.offset = o
    return best_arena or 0


POLICIES: dict[str, Callable[[list[Buffer], int], int]] = {
    "greedy": greedy_by_size,
    "best": best_of_orders,
}
