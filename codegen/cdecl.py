"""Small helpers that format file-scope C declarations for lowerings.

Param structs are written one field per line, nested structs indented, so a
reader of model.c can find every value by name:

    static const tinyml_pool_params op3_params = {
        .filter_h = 2,
        ...
        .activation = {
            .min = -128,
            .max = 127,
        },
    };
"""
from __future__ import annotations

from typing import Any

INDENT = "    "


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v) + "f"
    return str(v)


def _value(v: Any, depth: int) -> str:
    """C initializer of `v` whose first line continues the current one at nesting `depth`."""
    pad, inner = INDENT * depth, INDENT * (depth + 1)
    if isinstance(v, dict):
        lines = [f"{inner}.{k} = {_value(x, depth + 1)}," for k, x in v.items()]
        return "{\n" + "\n".join(lines) + f"\n{pad}}}"
    if isinstance(v, (list, tuple)):
        if any(isinstance(x, (dict, list, tuple)) for x in v):
            lines = [f"{inner}{_value(x, depth + 1)}," for x in v]
            return "{\n" + "\n".join(lines) + f"\n{pad}}}"
        return "{" + ", ".join(_scalar(x) for x in v) + "}"
    return _scalar(v)


def struct(ctype: str, name: str, **fields: Any) -> str:
    """`static const ctype name = {` then `.field = value,` one per line (nested dicts indented) `};`."""
    return f"static const {ctype} {name} = {_value(fields, 0)};"


def array(ctype: str, name: str, items: list) -> str:
    """`static const ctype name[n] = {` then one initializer per element (dicts indented) `};`."""
    return f"static const {ctype} {name}[{len(items)}] = {_value(list(items), 0)};"


def activation(lo: int, hi: int) -> dict:
    return {"min": lo, "max": hi}
