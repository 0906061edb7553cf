"""Fit-to-board search over the tinyvit family.

Sits above the compile pipeline and uses it: `space` samples configs,
`vit_ir` builds a config's graph IR without Keras, `cost` lowers and plans it
exactly (the same code that lays out the generated C; `CostModel` owns the
speed-ups), `candidates` evaluates and ranks them, `run` drives the search
(`budget`, `instructions`, `proxy`, `executor`, `final`, `report`, `benchmark`).
"""
