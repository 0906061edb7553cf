"""Several RAM regions: split one planned arena into one arena per region.

A board may have RAM in regions that are not contiguous (the F4's SRAM1+SRAM2
at 0x20000000 and its 64 KB CCM at 0x10000000; the H7's DTCM and AXI SRAM).
The caller (codegen.pipeline, from the board descriptor) passes the regions
that may hold the arena, the first being the one `tinyml_arena` is linked
into, each with its free bytes (region size minus stack, data and bss).

Decisions, each taken once:

1. A plan whose arena fits the first region is returned unchanged (the
   default plan, byte for byte).
2. Otherwise every buffer starts in the first region; while that region's
   arena is over its capacity, one buffer live at its busiest step moves to
   another region: the largest such buffer that the other region can still
   hold (planned, not just summed), trying regions in the given order.
   No buffer is split, so no tensor straddles regions.
3. Each region is placed on its own by the same policy with the overlap
   allowances (tinyml.steps.Overlap facts) of pairs whose two buffers share
   the region; a pair split across regions is disjoint in bytes and its
   allowance is dropped.
4. The result is the first split in which every region fits, or None (the
   caller keeps the single arena, and the linker reports the overflow).

Lower bounds: each region reports the bytes live at its own busiest step
(`lifetimes.lower_bound` on its buffers); the whole plan keeps the single
arena's lower bound, which the regions' arenas together can never beat.
"""
from __future__ import annotations

from dataclasses import dataclass

from .lifetimes import Buffer, lower_bound

Overlaps = dict[tuple[int, int], int]


@dataclass(frozen=True)
class ArenaRegion:
    """A RAM region that may hold part of the arena."""
    name: str          # the board's region label, e.g. "SRAM1+SRAM2", "CCM"
    capacity: int      # free bytes for the arena (after stack, data and bss)
    section: str       # linker input section of its arena symbol
    symbol: str        # C symbol of its arena, e.g. "tinyml_arena", "tinyml_arena_ccm"


@dataclass
class RegionArena:
    """One region's part of a plan: its arena, bound and buffers (indices into Plan.buffers)."""
    name: str
    capacity: int
    section: str
    symbol: str
    arena_bytes: int
    lower_bound: int
    buffers: list[int]


def _live_peak(buffers: list[Buffer], members: list[int], nsteps: int) -> int:
    """The step at which the members' bytes live together are largest."""
    live = [0] * (max(nsteps, 1) + 1)
    for i in members:
        live[buffers[i].first] += buffers[i].size
        live[buffers[i].last + 1] -= buffers[i].size
    for pos in range(1, len(live)):
        live[pos] += live[pos - 1]
    return max(range(max(nsteps, 1)), key=lambda p: (live[p], -p))


def place_region(buffers: list[Buffer], members: list[int], place, alignment: int,
                 overlaps: Overlaps, overlaps_up: Overlaps, nsteps: int) -> tuple[int, int]:
    """Place `members` by `place` (a placement policy) on their own; offsets are set on the
    buffers. Returns (arena bytes, lower bound) of the region."""
    local = {g: k for k, g in enumerate(members)}
    sub = [buffers[g] for g in members]
    ov = {(local[o], local[i]): d for (o, i), d in overlaps.items() if o in local and i in local}
    up = {(local[o], local[i]): d for (o, i), d in overlaps_up.items() if o in local and i in local}
    arena = place(sub, alignment, ov, up)
    return arena, lower_bound(sub, nsteps, ov, up)


def split_regions(buffers: list[Buffer], regions: list[ArenaRegion], place, alignment: int,
                  overlaps: Overlaps, overlaps_up: Overlaps, nsteps: int) -> list[RegionArena] | None:
    """Assign every buffer to one region and place each region (see the module doc)."""
    assign = [[*range(len(buffers))]] + [[] for _ in regions[1:]]

    def arena(r: int) -> tuple[int, int]:
        return place_region(buffers, assign[r], place, alignment, overlaps, overlaps_up, nsteps)

    sizes = [arena(r) for r in range(len(regions))]
    while sizes[0][0] > regions[0].capacity:
        peak = _live_peak(buffers, assign[0], nsteps)
        live = sorted((i for i in assign[0] if buffers[i].live_at(peak)),
                      key=lambda i: (-buffers[i].size, i))
        moved = False
        for i in live:
            for r in range(1, len(regions)):
                if buffers[i].size > regions[r].capacity:
                    continue
                assign[r].append(i)
                trial = arena(r)
                if trial[0] <= regions[r].capacity:
                    assign[0].remove(i)
                    sizes[r] = trial
                    moved = True
                    break
                assign[r].pop()
            if moved:
                break
        if not moved:
            return None
        sizes[0] = arena(0)
    # the last trial of each region may not be its final placement: place every region again
    out = []
    for r, reg in enumerate(regions):
        a, lb = arena(r)
        if a > reg.capacity:
            return None
        out.append(RegionArena(reg.name, reg.capacity, reg.section, reg.symbol, a, lb, sorted(assign[r])))
    return out
