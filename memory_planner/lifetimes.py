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


def align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def build_buffers(graph, steps, alignment: int, inplace: bool = True):
    """Group tensors into buffers and give each buffer its lifetime.

    Two tensors share a buffer when the later one aliases the earlier
    (RESHAPE: same bytes, new shape) or, with `inplace`, when a step declares
    that its kernel may write an output over an input (`Step.inplace_ok`) and
    that input's bytes are not read by any later step: the output then takes
    over the input's buffer, which is how residual ADDs, requantizations and
    activations run in place.
    """
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

    # Per-tensor first write / last read.
    t_first: dict[int, int] = {}
    t_last: dict[int, int] = {}

    def seen(t: int, pos: int) -> None:
        t_first[t] = min(t_first.get(t, pos), pos)
        t_last[t] = max(t_last.get(t, pos), pos)

    for t in graph.inputs:
        seen(t, 0)
    for pos, s in enumerate(steps):
        for t in s.inputs:
            seen(t, pos)
        for t in s.outputs:
            seen(t, pos)
    for t in graph.outputs:
        seen(t, max(n - 1, 0))
    graph_outputs = set(graph.outputs)

    if inplace:
        # Per-group aggregates, kept up to date as groups merge.
        g_last: dict[int, int] = {}
        g_out: dict[int, bool] = {}
        g_size: dict[int, int] = {}
        for t in t_first:
            r = find(t)
            g_last[r] = max(g_last.get(r, -1), t_last[t])
            g_out[r] = g_out.get(r, False) or t in graph_outputs
            g_size[r] = max(g_size.get(r, 0), graph.t(t).nbytes)
        for pos, s in enumerate(steps):
            for a, b in s.inplace_ok:
                ra, rb = find(a), find(b)
                if ra == rb or rb != b:
                    continue
                if g_last[ra] > pos or g_out[ra]:
                    continue  # the input's bytes are still needed after this step
                if graph.t(b).nbytes > g_size[ra]:
                    continue
                root[b] = ra
                g_last[ra] = max(g_last[ra], g_last[b])
                g_out[ra] = g_out[ra] or g_out[b]
                g_size[ra] = max(g_size[ra], g_size[b])
                break

    first: dict[int, int] = {}
    last: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    for t in sorted(t_first, key=lambda t: (t_first[t], t)):
        r = find(t)
        members.setdefault(r, []).append(t)
        first[r] = min(first.get(r, t_first[t]), t_first[t])
        last[r] = max(last.get(r, t_last[t]), t_last[t])

    buffers: list[Buffer] = []
    tensor_buffer: dict[int, int] = {}
    for r in sorted(members, key=lambda r: (first[r], r)):
        members[r].sort(key=lambda t: (t != r, t_first[t]))
        size = max(graph.t(t).nbytes for t in members[r])
        b = Buffer(name=f"t{r}", size=align(max(size, 1), alignment), first=first[r], last=last[r],
                   tensors=members[r])
        for t in members[r]:
            tensor_buffer[t] = len(buffers)
        buffers.append(b)
    scratch_buffer: dict[int, int] = {}
    for pos, s in enumerate(steps):
        if s.scratch_bytes > 0:
            scratch_buffer[pos] = len(buffers)
            buffers.append(Buffer(name=f"scratch@op{s.index}", size=align(s.scratch_bytes, alignment),
                                  first=pos, last=pos, tensors=[]))
    return buffers, tensor_buffer, scratch_buffer


def lower_bound(buffers: list[Buffer], nsteps: int, overlaps: dict | None = None,
                overlaps_up: dict | None = None) -> int:
    """No placement can use less than the bytes live at the busiest step.

    An output allowed to overlap its dying input (overlaps[(out, in)] = delta)
    needs only `delta` bytes beyond the input's at that step; one that may also
    sit over the input's back (overlaps_up[(out, in)] = delta_up) needs only
    min(delta, delta_up): by symmetry the pair then spans
    delta_up + max(in, out - delta_up) bytes.
    """
    overlaps = overlaps or {}
    overlaps_up = overlaps_up or {}
    steps = max(nsteps, 1)
    live = [0] * (steps + 1)
    for b in buffers:               # running sum: +size at birth, -size after death
        live[b.first] += b.size
        live[b.last + 1] -= b.size
    for pos in range(1, steps + 1):
        live[pos] += live[pos - 1]
    for (o, i), d in overlaps.items():
        d = min(d, overlaps_up.get((o, i), d))
        bo, bi = buffers[o], buffers[i]
        for pos in range(max(bo.first, bi.first), min(bo.last, bi.last) + 1):
            # the pair spans d + max(in, out - d) bytes instead of in + out
            live[pos] -= max(0, min(bo.size - d, bi.size))
    return max(live[:steps], default=0)
