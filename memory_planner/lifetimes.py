"""Buffers and their lifetimes, measured in step positions.

A buffer is born at the step that writes it (graph inputs: step 0) and dies
after the last step that reads it (graph outputs: the last step). Tensors that
alias another (RESHAPE outputs) share their root's buffer, whose lifetime is
the union. A step's scratch is a buffer live during that step only.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Buffer:
    name: str
    size: int            # bytes, rounded up to the alignment
    first: int           # first step position at which the bytes must be valid
    last: int            # last step position that reads them
    tensors: list[int]   # tensors stored here (root first); empty for scratch
    offset: int = -1

    def live_at(self, step: int) -> bool:
        return self.first <= step <= self.last


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def build_buffers(graph, steps, alignment: int):
    n = len(steps)
    root: dict[int, int] = {}

    def find(t: int) -> int:
        while root.get(t, t) != t:
            t = root[t]
        return t

    for s in steps:
        if s.alias_of is not None:
            for o in s.outputs:
                root[o] = find(s.alias_of)

    first: dict[int, int] = {}
    last: dict[int, int] = {}
    members: dict[int, list[int]] = {}

    def touch(t: int, pos: int) -> None:
        r = find(t)
        members.setdefault(r, [])
        if t not in members[r]:
            members[r].append(t) if t != r else members[r].insert(0, t)
        first[r] = min(first.get(r, pos), pos)
        last[r] = max(last.get(r, pos), pos)

    for t in graph.inputs:
        touch(t, 0)
    for pos, s in enumerate(steps):
        for t in s.inputs:
            touch(t, pos)
        for t in s.outputs:
            touch(t, pos)
    for t in graph.outputs:
        touch(t, max(n - 1, 0))

    buffers: list[Buffer] = []
    tensor_buffer: dict[int, int] = {}
    for r in sorted(members, key=lambda r: (first[r], r)):
        size = max(graph.t(t).nbytes for t in members[r])
        b = Buffer(name=f"t{r}", size=_align(max(size, 1), alignment), first=first[r], last=last[r],
                   tensors=members[r])
        for t in members[r]:
            tensor_buffer[t] = len(buffers)
        buffers.append(b)
    scratch_buffer: dict[int, int] = {}
    for pos, s in enumerate(steps):
        if s.scratch_bytes > 0:
            scratch_buffer[pos] = len(buffers)
            buffers.append(Buffer(name=f"scratch@op{s.index}", size=_align(s.scratch_bytes, alignment),
                                  first=pos, last=pos, tensors=[]))
    return buffers, tensor_buffer, scratch_buffer


def lower_bound(buffers: list[Buffer], nsteps: int) -> int:
    """No placement can use less than the bytes live at the busiest step."""
    best = 0
    for pos in range(max(nsteps, 1)):
        best = max(best, sum(b.size for b in buffers if b.live_at(pos)))
    return best
