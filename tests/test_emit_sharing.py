"""model.c says at each call why its output may share bytes with its input."""
from __future__ import annotations

import os
import re

import pytest

from tinyml import paths

VWW = os.path.join(paths.shared_models(), "mlperf-tiny", "vww_96_int8.tflite")


@pytest.mark.skipif(not os.path.exists(VWW), reason="shared models not found")
def test_every_shared_byte_is_explained_at_its_call(tmp_path):
    from tinyml.codegen.emit import emit
    from tinyml.codegen.pipeline import compile
    c = compile(VWW)
    emit(c, str(tmp_path))
    text = open(tmp_path / "model.c").read()
    # the comment block of each op: "/* op N KIND: ... */" then "/*   overlap|in place: ... */" lines
    said: dict[int, list[str]] = {}
    for m in re.finditer(r"/\* op (\d+) \w+: [^\n]*\*/\n((?:    /\*   [^\n]*\*/\n)*)", text):
        said[int(m.group(1))] = re.findall(r"/\*   ([^\n]*) \*/", m.group(2))
    expected = 0
    for s in c.steps:
        if s.alias_of is not None:
            continue
        for tin in s.inputs:
            for tout in s.outputs:
                a = c.plan.buffers[c.plan.tensor_buffer[tin]]
                b = c.plan.buffers[c.plan.tensor_buffer[tout]]
                if a is b or (a.offset < b.offset + b.size and b.offset < a.offset + a.size):
                    expected += 1
                    assert any(f"t{tout}" in x and f"t{tin}" in x for x in said[s.index]), (s.index, said[s.index])
    assert expected > 10                                    # VWW's chain zig-zags through one band
    assert sum(len(v) for v in said.values()) == expected   # nothing said where bytes are disjoint


@pytest.mark.skipif(not os.path.exists(VWW), reason="shared models not found")
def test_nothing_is_said_when_nothing_is_shared(tmp_path):
    from tinyml.codegen.emit import emit
    from tinyml.codegen.pipeline import Compiled, compile
    from tinyml.memory_planner.plan import plan_steps
    c = compile(VWW)
    plan = plan_steps(c.graph, c.steps, inplace=False, overlap=False)
    emit(Compiled(c.graph, c.steps, c.ctx, plan, c.options), str(tmp_path))
    assert not re.search(r"/\*   (overlap|in place):", open(tmp_path / "model.c").read())
