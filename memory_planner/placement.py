"""Offset assignment policies: buffers with lifetimes -> arena offsets.

`greedy` follows TFLM's GreedyMemoryPlanner: place buffers largest first; each
goes at the lowest offset where it does not overlap (in bytes) any already
placed buffer whose lifetime overlaps its own.

`best` tries several placement orders (largest first, earliest first, largest
area size x lifetime first, longest-lived first, latest first) with both first-fit and
best-fit gap choice, and keeps the smallest arena. It is never worse than
`greedy`, which is one of its candidates.

Both honour overlap allowances (tinyml.steps.Overlap, via plan.plan_steps): for an output `o`
that may overlap its dying input `i` (overlaps[(o, i)] = delta), the only
forbidden placements are those with o.offset > i.offset - delta that also
overlap in bytes. Where the kernel may also run bottom to top
(overlaps_up[(o, i)] = delta_up), o may instead end delta_up or more bytes
after i ends: o.offset + o.size >= i.offset + i.size + delta_up.
"""
from __future__ import annotations

from typing import Callable

from .lifetimes import Buffer, align

Overlaps = dict[tuple[int, int], int]


def _conflicts(buffers: list[Buffer]) -> list[list[int]]:
    """For each buffer, the buffers whose lifetimes overlap its own (computed once per plan)."""
    order = sorted(range(len(buffers)), key=lambda i: buffers[i].first)
    out: list[list[int]] = [[] for _ in buffers]
    for k, i in enumerate(order):
        bi = buffers[i]
        for j in order[k + 1:]:
            if buffers[j].first > bi.last:
                break
            out[i].append(j)
            out[j].append(i)
    return out


def _forbidden(bi: int, buffers: list[Buffer], placed: list[bool], overlaps: Overlaps,
               conflicts: list[list[int]], overlaps_up: Overlaps | None = None) -> list[tuple[int, int]]:
    """Open intervals (lo, hi) of start offsets that buffer bi may not take."""
    b = buffers[bi]
    up = overlaps_up or {}
    out = []
    for pi in conflicts[bi]:
        if not placed[pi]:
            continue
        p = buffers[pi]
        if (bi, pi) in overlaps:          # b writes over the front of its input p
            hi = p.offset + p.size
            if (bi, pi) in up:            # ... or over its back: b ends >= up bytes after p ends
                hi += min(0, up[(bi, pi)] - b.size)
            out.append((p.offset - overlaps[(bi, pi)], hi))
        elif (pi, bi) in overlaps:        # p (already placed) writes over the front of b
            lo = p.offset - b.size
            if (pi, bi) in up:            # ... or over its back: b ends >= up bytes before p ends
                lo += max(0, p.size - up[(pi, bi)])
            out.append((lo, p.offset + overlaps[(pi, bi)]))
        else:
            out.append((p.offset - b.size, p.offset + p.size))
    return out


def _candidates(forbidden: list[tuple[int, int]], alignment: int) -> list[int]:
    cands = {0}
    for lo, hi in forbidden:
        if hi > 0:
            cands.add(align(hi, alignment))
    return sorted(c for c in cands if not any(lo < c < hi for lo, hi in forbidden))


def _first_fit(bi: int, buffers: list[Buffer], placed: list[bool], overlaps: Overlaps, alignment: int,
               conflicts: list[list[int]], overlaps_up: Overlaps | None = None) -> int:
    return _candidates(_forbidden(bi, buffers, placed, overlaps, conflicts, overlaps_up), alignment)[0]


def _best_fit(bi: int, buffers: list[Buffer], placed: list[bool], overlaps: Overlaps, alignment: int,
              conflicts: list[list[int]], overlaps_up: Overlaps | None = None) -> int:
    """The feasible offset that leaves the least free space below the next occupied block."""
    forb = _forbidden(bi, buffers, placed, overlaps, conflicts, overlaps_up)
    best, best_slack = None, None
    for c in _candidates(forb, alignment):
        above = [lo for lo, _ in forb if lo >= c]
        if not above:
            continue
        slack = min(above) - c
        if best_slack is None or slack < best_slack:
            best, best_slack = c, slack
    return best if best is not None else _candidates(forb, alignment)[-1]


def _place(buffers: list[Buffer], order: list[int], fit, overlaps: Overlaps, alignment: int,
           conflicts: list[list[int]] | None = None, overlaps_up: Overlaps | None = None) -> list[int]:
    conflicts = conflicts if conflicts is not None else _conflicts(buffers)
    placed = [False] * len(buffers)
    for i in order:
        buffers[i].offset = fit(i, buffers, placed, overlaps, alignment, conflicts, overlaps_up)
        placed[i] = True
    return [b.offset for b in buffers]


def greedy_by_size(buffers: list[Buffer], alignment: int, overlaps: Overlaps | None = None,
                   overlaps_up: Overlaps | None = None) -> int:
    order = sorted(range(len(buffers)), key=lambda i: (-buffers[i].size, buffers[i].first, i))
    _place(buffers, order, _first_fit, overlaps or {}, alignment, overlaps_up=overlaps_up)
    return max((b.offset + b.size for b in buffers), default=0)


def best_of_orders(buffers: list[Buffer], alignment: int, overlaps: Overlaps | None = None,
                   overlaps_up: Overlaps | None = None) -> int:
    overlaps = overlaps or {}
    idx = range(len(buffers))
    orders = [
        sorted(idx, key=lambda i: (-buffers[i].size, buffers[i].first, i)),
        sorted(idx, key=lambda i: (buffers[i].first, -buffers[i].size, i)),
        sorted(idx, key=lambda i: (-buffers[i].size * (buffers[i].last - buffers[i].first + 1), i)),
        sorted(idx, key=lambda i: (-(buffers[i].last - buffers[i].first), -buffers[i].size, i)),
        # Latest first: chains of overlapping outputs stack upwards, each input
        # placed `delta` above the output that overwrites its front.
        sorted(idx, key=lambda i: (-buffers[i].first, -buffers[i].size, i)),
        sorted(idx, key=lambda i: (-buffers[i].last, -buffers[i].size, i)),
    ]
    # Scratch buffers (no tensors, live in one step) go last: they fit in gaps,
    # and placed early they split the room an overlapping in/out pair needs.
    orders = [[i for i in o if buffers[i].tensors] + [i for i in o if not buffers[i].tensors] for o in orders]
    best_offsets, best_arena = None, None
    conflicts = _conflicts(buffers)
    for order in orders:
        for fit in (_first_fit, _best_fit):
            offsets = _place(buffers, order, fit, overlaps, alignment, conflicts, overlaps_up)
            arena = max((o + b.size for o, b in zip(offsets, buffers)), default=0)
            if best_arena is None or arena < best_arena:
                best_offsets, best_arena = offsets, arena
    for b, o in zip(buffers, best_offsets or []):
        b.offset = o
    return best_arena or 0


POLICIES: dict[str, Callable[..., int]] = {
    "greedy": greedy_by_size,
    "best": best_of_orders,
}
