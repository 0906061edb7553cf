"""Read the imports of a Python source without running it (shared by the layering
and packaging tests)."""
from __future__ import annotations

import ast


def import_statements(source: str, module: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """(target module, imported names) for every import anywhere in `source`, module level
    or inside functions: `import a.b` -> ("a.b", []); `from x import y, z` -> ("x", ["y", "z"])
    with relative `x` resolved against `module`; `importlib.import_module("lit")` or
    `__import__("lit")` with a literal name -> ("lit", [])."""
    package = module if is_package else module.rpartition(".")[0]
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, [a.name for a in node.names]))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if name in ("import_module", "__import__"):
                out.append((node.args[0].value, []))
    return out
