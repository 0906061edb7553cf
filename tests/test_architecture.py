"""The package's layers import only downward, and nothing imports in a cycle.

Every import statement in the installed package (module level and inside
functions) is read with `ast`. Each module belongs to one layer; a module may
import its own layer or a lower one, never a higher one. Separately, the
module graph inside `tinyml.codegen` and the graph between layers must be
acyclic. docs/architecture.md draws the same table.
"""
from __future__ import annotations

import os

import pytest
from import_scan import import_statements

import tinyml
from tinyml import paths

# Lowest first. A module belongs to the first layer whose prefix matches it
# most specifically (longest prefix wins).
LAYERS: list[tuple[str, list[str]]] = [
    ("core", ["tinyml", "tinyml.errors", "tinyml.paths", "tinyml.ir", "tinyml.op_options", "tinyml.steps"]),
    ("boards", ["tinyml.boards"]),
    ("import", ["tinyml.codegen.importer", "tinyml.codegen.shape_fold", "tinyml.codegen.validate"]),
    ("lower", ["tinyml.codegen.lowering", "tinyml.codegen.patterns", "tinyml.codegen.ops",
               "tinyml.codegen.quant", "tinyml.codegen.luts", "tinyml.codegen.cdecl",
               "tinyml.codegen.fuse", "tinyml.codegen.lower", "tinyml.codegen.stream",
               "tinyml.codegen.code_size"]),
    ("plan", ["tinyml.memory_planner"]),
    ("pipeline", ["tinyml.codegen.pipeline", "tinyml.codegen.lower_cache"]),
    ("emit", ["tinyml.codegen.emit", "tinyml.codegen"]),
    ("build", ["tinyml.firmware"]),
    ("run", ["tinyml.deploy"]),
    ("models", ["tinyml.tinyvit"]),
    ("search", ["tinyml.memory_planner.search"]),
    ("testing", ["tinyml.testing"]),
    ("cli", ["tinyml.cli", "tinyml.commands"]),
]
RANK = {name: k for k, (name, _) in enumerate(LAYERS)}
# Layers that are side by side rather than stacked: neither may import the other.
# tinyvit (Keras models) sits on core only; the pipeline never imports it.
SIDE = {("models", n) for n in ("boards", "import", "lower", "plan", "pipeline", "emit", "build", "run")}


def layer_of(module: str) -> str:
    best, best_len = None, -1
    for name, prefixes in LAYERS:
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = name, len(p)
    assert best is not None, module
    return best


def _package_roots() -> dict[str, str]:
    """import name -> folder, for tinyml and every subpackage mapped from a top-level folder."""
    roots = {"tinyml": os.path.dirname(tinyml.__file__)}
    for sub in ("codegen", "memory_planner", "firmware", "boards", "deploy", "tinyvit"):
        roots[f"tinyml.{sub}"] = paths.package_dir(sub)
    return roots


def _modules() -> dict[str, str]:
    """module name -> file, for every .py file of the package."""
    out: dict[str, str] = {}
    roots = _package_roots()
    for pkg, folder in roots.items():
        for dirpath, dirnames, files in os.walk(folder):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            rel = os.path.relpath(dirpath, folder)
            parts = [] if rel == "." else rel.split(os.sep)
            name = ".".join([pkg] + parts)
            if name in roots and name != pkg:
                continue                 # a mapped subpackage, walked on its own
            if not os.path.exists(os.path.join(dirpath, "__init__.py")):
                dirnames[:] = []
                continue
            for f in files:
                if f.endswith(".py"):
                    mod = name if f == "__init__.py" else f"{name}.{f[:-3]}"
                    out[mod] = os.path.join(dirpath, f)
    return out


MODULES = _modules()


def _imports(module: str, path: str) -> set[str]:
    found: set[str] = set()
    for target, names in import_statements(open(path).read(), module, path.endswith("__init__.py")):
        subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
        # `from pkg import module`: the module is the dependency (pkg's __init__
        # runs for any import below pkg anyway); otherwise pkg itself is
        found.update(subs if names and len(subs) == len(names) else subs + [target])
    own = set()
    for t in found:
        if t == "tinyml" or t.startswith("tinyml."):
            while t not in MODULES and "." in t:
                t = t.rpartition(".")[0]
            own.add(t)
    own.discard(module)
    return own


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def test_every_top_level_folder_is_seen():
    for name in ("tinyml.codegen.emit", "tinyml.memory_planner.plan", "tinyml.firmware.build",
                 "tinyml.boards", "tinyml.deploy.runner", "tinyml.tinyvit.model", "tinyml.cli",
                 "tinyml.memory_planner.search.cost", "tinyml.codegen.ops.conv"):
        assert name in MODULES, name


def test_no_old_top_level_imports():
    """Nothing imports `codegen`, `boards`, ... as top-level names any more."""
    old = ("codegen", "memory_planner", "firmware", "boards", "deploy", "tinyvit")
    bad = []
    for m, p in MODULES.items():
        for target, _ in import_statements(open(p).read(), m, p.endswith("__init__.py")):
            if target.split(".")[0] in old:
                bad.append(f"{m}: {target}")
    assert not bad, bad


def test_layers_import_only_downward():
    bad = []
    for m, deps in GRAPH.items():
        lm = layer_of(m)
        for d in deps:
            ld = layer_of(d)
            if RANK[ld] > RANK[lm] or (lm, ld) in SIDE or (ld, lm) in SIDE and ld != lm:
                bad.append(f"{m} ({lm}) imports {d} ({ld})")
    assert not bad, "\n".join(sorted(bad))


def test_planner_imports_only_core():
    """memory_planner (outside its search layer) reads Steps and the graph IR only: kernel
    facts (tinyml.steps.Overlap, inplace_ok) come from the lowerings, never from codegen."""
    bad = [f"{m} imports {d} ({layer_of(d)})" for m, deps in GRAPH.items() if layer_of(m) == "plan"
           for d in deps if layer_of(d) not in ("core", "plan")]
    assert not bad, "\n".join(sorted(bad))
    assert "tinyml.memory_planner.plan" in GRAPH and "tinyml.steps" in GRAPH["tinyml.memory_planner.plan"]


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                c = visit(d)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def test_no_cycle_between_layers():
    g: dict[str, set[str]] = {}
    for m, deps in GRAPH.items():
        for d in deps:
            if layer_of(m) != layer_of(d):
                g.setdefault(layer_of(m), set()).add(layer_of(d))
    assert _cycle(g) is None, _cycle(g)


@pytest.mark.parametrize("pkg", ["tinyml.codegen", "tinyml.memory_planner", "tinyml.firmware",
                                 "tinyml.deploy", "tinyml"])
def test_no_module_cycle_inside(pkg):
    inside = {m: {d for d in deps if d.startswith(pkg + ".") or d == pkg}
              for m, deps in GRAPH.items() if m.startswith(pkg + ".") or m == pkg}
    # a package's __init__ importing its own modules is not a cycle through them
    for m in inside:
        inside[m].discard(pkg)
    assert _cycle(inside) is None, " -> ".join(_cycle(inside))


def test_the_checker_finds_a_planted_cycle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert _cycle(g) == ["a", "b", "c", "a"]
    assert layer_of("tinyml.codegen.emit") == "emit" and layer_of("tinyml.codegen.ops.conv") == "lower"
    assert RANK[layer_of("tinyml.memory_planner.plan")] < RANK[layer_of("tinyml.codegen.pipeline")]
