"""Fit-to-board search over the tinyvit family.

Sits above the compile pipeline and uses it: `space` samples configs,
`vit_ir` builds a config's graph IR without Keras, `cost` lowers and plans it
exactly (the same code that lays out the generated C), `run` ranks the
feasible ones and trains the winner.
"""
