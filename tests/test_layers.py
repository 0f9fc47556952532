"""Layers point down: a module imports only its own package and the layers below it, and no
modules import each other in a circle. Imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "fer_pipeline"

# Lowest first. Packages of one layer do not import each other, except the base helpers.
LAYERS = [
    {
        "errors",
        "io",
        "hashing",
        "rng",
        "ranks",
        "quiet",
        "config",
        "dvc_outputs",
        "progress",
    },  # base
    {"data"},
    {"models", "faces"},
    {"evaluation"},
    {"tracking"},
    {"inference"},
    {"app"},
    {"fit"},  # the training run, started by the train command
    # the entry points
    {"prepare", "crop", "split", "train", "evaluate", "predict", "compare", "find_lr", "choose_lr"},
]
LAYER = {group: i for i, groups in enumerate(LAYERS) for group in groups}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The fer_pipeline modules ``path`` imports (``from x import name`` counts as ``x.name`` when
    that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {name for name in found if name in MODULES}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def group(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def test_every_module_has_a_layer():
    assert {group(m) for m in MODULES} - {"__init__"} <= set(LAYER)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "fer_pipeline"))
def test_module_imports_only_lower_layers(module):
    mine = group(module)
    upward = [
        name
        for name in imports(MODULES[module])
        if group(name) not in ("__init__", mine)
        and (LAYER[group(name)] > LAYER[mine] or LAYER[group(name)] == LAYER[mine] > 0)
    ]
    assert not upward, f"{module} (layer {LAYER[mine]}) imports {upward}"


def test_no_import_cycles():
    graph = {m: imports(p) - {m} for m, p in MODULES.items()}
    for name in graph:  # a package's __init__ is imported with its modules: not an edge back
        graph[name] = {d for d in graph[name] if not name.startswith(d + ".")}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in graph[node]:
            assert state.get(dep) != 1, " -> ".join([*path[path.index(dep) :], dep])
            if dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
