"""Small helpers that format file-scope C declarations for lowerings."""
from __future__ import annotations

from typing import Any


def _value(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f".{k} = {_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v) + "f"
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(_value(x) for x in v) + "}"
    return str(v)


def struct(ctype: str, name: str, **fields: Any) -> str:
    """`static const ctype name = {.field = value, ...};` (nested dicts allowed)."""
    return f"static const {ctype} {name} = {_value(fields)};"


def activation(lo: int, hi: int) -> dict:
    return {"min": lo, "max": hi}
