"""The memory plan: where every activation tensor and scratch buffer lives.

Interface (stable; later policies replace `place`, not this):

    plan = plan_steps(graph, steps, policy="best")
    plan.arena_bytes, plan.lower_bound, plan.offset_of(tensor), plan.scratch_offset(step)

Input is the lowered step list (`tinyml.steps.Step`): which activation
tensors each step reads and writes, which output merely aliases an input
(RESHAPE), how much scratch a step needs, and the kernel facts that make
sharing bytes legal (`inplace_ok`, `overlap`). The planner imports nothing
from codegen; it reads those facts only. Constant tensors are weights in
flash and never appear here.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from tinyml.errors import TinymlError
from tinyml.steps import Overlap

from .lifetimes import Buffer, align, build_buffers, lower_bound
from .placement import POLICIES
from .regions import ArenaRegion, RegionArena, split_regions

ALIGNMENT = 16


@dataclass
class Plan:
    buffers: list[Buffer]
    tensor_buffer: dict[int, int]          # tensor index -> index into buffers
    scratch_buffer: dict[int, int]         # step position -> index into buffers
    arena_bytes: int
    lower_bound: int
    policy: str
    alignment: int = ALIGNMENT
    notes: list[str] = field(default_factory=list)
    overlaps: dict[tuple[int, int], int] = field(default_factory=dict)  # (out buf, in buf) -> delta
    # pairs whose kernel may also run bottom to top: (out buf, in buf) -> delta_up
    # (out may end delta_up or more bytes after in ends; tinyml.steps.Overlap.up_bytes)
    overlaps_up: dict[tuple[int, int], int] = field(default_factory=dict)
    # several RAM regions (memory_planner/regions.py): empty = one arena. Otherwise one
    # RegionArena per region, the first being `tinyml_arena`; offsets are within a buffer's
    # region, and `arena_bytes` is the first region's arena.
    regions: list[RegionArena] = field(default_factory=list)
    # variable tensors (Step.state: op state kept between inferences) -> offset in the model's
    # state block, which lies outside the arena; state_bytes is its size (0: no state)
    state_offsets: dict[int, int] = field(default_factory=dict)
    state_bytes: int = 0

    @property
    def total_arena_bytes(self) -> int:
        """Activation bytes over all regions."""
        return sum(r.arena_bytes for r in self.regions) if self.regions else self.arena_bytes

    def region_of(self, buffer: int) -> int:
        """Index into `regions` of a buffer (0 with one arena)."""
        for k, r in enumerate(self.regions):
            if buffer in r.buffers:
                return k
        return 0

    def symbol_of_buffer(self, buffer: int, default: str = "tinyml_arena") -> str:
        return self.regions[self.region_of(buffer)].symbol if self.regions else default

    def symbol_of(self, tensor: int) -> str:
        """The arena symbol a tensor lives in (`tinyml_arena` with one arena)."""
        return self.symbol_of_buffer(self.tensor_buffer[tensor])

    def offset_of(self, tensor: int) -> int:
        return self.buffers[self.tensor_buffer[tensor]].offset

    def scratch_offset(self, step_pos: int) -> int:
        return self.buffers[self.scratch_buffer[step_pos]].offset

    def to_dict(self) -> dict:
        d = {
            "policy": self.policy,
            "alignment": self.alignment,
            "arena_bytes": self.arena_bytes,
            "lower_bound_bytes": self.lower_bound,
            "buffers": [asdict(b) for b in self.buffers],
            "overlaps": [{"output_buffer": self.buffers[o].name, "input_buffer": self.buffers[i].name,
                          "min_distance_bytes": d,
                          "min_distance_up_bytes": self.overlaps_up.get((o, i))}
                         for (o, i), d in self.overlaps.items()],
            "notes": self.notes,
        }
        if self.state_bytes:   # only with state, so a stateless plan.json is unchanged
            d["state_bytes"] = self.state_bytes
            d["state"] = [{"tensor": t, "offset": o} for t, o in self.state_offsets.items()]
        if self.regions:   # only with several regions, so a one-arena plan.json is unchanged
            for k, b in enumerate(d["buffers"]):
                b["region"] = self.regions[self.region_of(k)].name
            d["total_arena_bytes"] = self.total_arena_bytes
            d["regions"] = [{"name": r.name, "symbol": r.symbol, "section": r.section,
                             "capacity_bytes": r.capacity, "arena_bytes": r.arena_bytes,
                             "lower_bound_bytes": r.lower_bound,
                             "buffers": [self.buffers[i].name for i in r.buffers]} for r in self.regions]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


def plan_steps(graph, steps, policy: str = "best", alignment: int = ALIGNMENT,
               inplace: bool = True, overlap: bool = True,
               stream_input_bytes: int | None = None,
               regions: tuple[ArenaRegion, ...] = ()) -> Plan:
    """Plan the arena. `inplace`: outputs may take over dying inputs' buffers
    (Step.inplace_ok); `overlap`: a step whose kernel states an Overlap
    (tinyml.steps.Overlap, set by its lowering) may write its output over its
    dying input by that much.
    `stream_input_bytes` (--stream-input, codegen.stream): graph input 0 is
    fetched in stripes of this many bytes by its only reader, the first step;
    its buffer is one stripe, which nothing may overlap while it is live.
    `regions` (memory_planner/regions.py): the RAM regions that may hold the arena, the
    first being `tinyml_arena`'s; a plan that fits the first is returned as is, otherwise
    it is split into one arena per region when that fits."""
    if policy not in POLICIES:
        raise TinymlError(f"unknown placement policy {policy!r}", fix="use one of " + ", ".join(POLICIES))
    buffers, tensor_buffer, scratch_buffer = build_buffers(graph, steps, alignment, inplace=inplace)
    stream_buf = None
    if stream_input_bytes is not None:
        stream_buf = tensor_buffer[graph.inputs[0]]
        sb = buffers[stream_buf]
        assert sb.first == 0 and sb.last == 0 and len(sb.tensors) == 1, "streamed input read after step 0"
        sb.size = align(stream_input_bytes, alignment)
    overlaps: dict[tuple[int, int], int] = {}
    overlaps_up: dict[tuple[int, int], int] = {}
    if overlap:
        graph_outputs = set(graph.outputs)
        for pos, tin, tout, ov in _overlap_facts(steps):
            bi, bo = tensor_buffer[tin], tensor_buffer[tout]
            if bi == bo or buffers[bi].last != pos or buffers[bo].first != pos or bi == stream_buf:
                continue
            if any(t in graph_outputs for t in buffers[bi].tensors):
                continue
            overlaps[(bo, bi)] = align(ov.down_bytes, alignment)
            if ov.up_bytes is not None:   # same eligibility as the downward allowance
                # the rule is on the tensors' ends; buffers end at aligned sizes
                pad = (buffers[bo].size - graph.t(tout).nbytes) - (buffers[bi].size - graph.t(tin).nbytes)
                overlaps_up[(bo, bi)] = max(0, align(ov.up_bytes + pad, alignment))
    place = POLICIES[policy]
    arena = place(buffers, alignment, overlaps, overlaps_up)
    plan = Plan(buffers=buffers, tensor_buffer=tensor_buffer, scratch_buffer=scratch_buffer,
                arena_bytes=arena, lower_bound=lower_bound(buffers, len(steps), overlaps, overlaps_up),
                policy=policy, alignment=alignment, overlaps=overlaps, overlaps_up=overlaps_up)
    for s in steps:
        for t in s.state:
            if t not in plan.state_offsets:
                plan.state_offsets[t] = plan.state_bytes
                plan.state_bytes += align(graph.t(t).nbytes, alignment)
    if stream_buf is not None:
        plan.notes.append(f"input streamed: buffer {buffers[stream_buf].name} holds one stripe "
                          f"({stream_input_bytes} B)")
    if len(regions) > 1 and arena > regions[0].capacity:
        split = split_regions(buffers, list(regions), place, alignment, overlaps, overlaps_up, len(steps))
        if split is None:
            place(buffers, alignment, overlaps, overlaps_up)     # back to the one-arena offsets
            plan.notes.append(f"arena {arena} B does not fit {regions[0].name} ({regions[0].capacity} B) "
                              f"and cannot be split over " + ", ".join(r.name for r in regions))
        else:
            plan.regions = split
            plan.arena_bytes = split[0].arena_bytes
            # an allowance only holds between two buffers of one region
            same = {i: k for k, r in enumerate(split) for i in r.buffers}
            plan.overlaps = {p: d for p, d in overlaps.items() if same[p[0]] == same[p[1]]}
            plan.overlaps_up = {p: d for p, d in overlaps_up.items() if same[p[0]] == same[p[1]]}
            plan.notes.append("arena split over " + ", ".join(f"{r.name} {r.arena_bytes} B" for r in split))
    check_plan(plan)
    return plan


def _overlap_facts(steps) -> list[tuple[int, int, int, Overlap]]:
    """(step position, input tensor, output tensor, fact) for every step whose kernel states an Overlap."""
    out = []
    for pos, s in enumerate(steps):
        ov = s.overlap
        if ov is None or s.alias_of is not None:
            continue
        out.append((pos, s.inputs[ov.input], s.outputs[ov.output], ov))
    return out


def check_plan(plan: Plan) -> None:
    """Assert no two buffers that are live at the same step overlap in bytes."""
    bs = plan.buffers
    region = [plan.region_of(i) for i in range(len(bs))]
    for i, a in enumerate(bs):
        assert a.offset >= 0 and a.offset % plan.alignment == 0, a
        limit = plan.regions[region[i]].arena_bytes if plan.regions else plan.arena_bytes
        assert a.offset + a.size <= limit, a
        for j in range(i + 1, len(bs)):
            b = bs[j]
            if region[i] != region[j]:
                continue              # different regions: disjoint address ranges
            if a.first <= b.last and b.first <= a.last:
                disjoint = a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
                if (i, j) in plan.overlaps:      # a is the output of b
                    disjoint = disjoint or a.offset <= b.offset - plan.overlaps[(i, j)]
                if (j, i) in plan.overlaps:      # b is the output of a
                    disjoint = disjoint or b.offset <= a.offset - plan.overlaps[(j, i)]
                if (i, j) in plan.overlaps_up:   # a, written bottom to top over the back of b
                    disjoint = disjoint or a.offset + a.size >= b.offset + b.size + plan.overlaps_up[(i, j)]
                if (j, i) in plan.overlaps_up:
                    disjoint = disjoint or b.offset + b.size >= a.offset + a.size + plan.overlaps_up[(j, i)]
                assert disjoint, f"planner bug: {a.name} and {b.name} overlap while both live"
