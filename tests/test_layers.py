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
        "outputs",
        "devices",
        "progress",
    },  # base
    {"data"},
    {"models", "faces"},
    {"evaluation"},
    {"tracking"},
    {"inference"},
    {"app"},
    {"cli"},  # the training commands' command line
    # the stages' entry points
    {
        "prepare",
        "crop",
        "split",
        "fit",
        "package",
        "evaluate",
        "predict",
        "compare",
        "find_lr",
        "choose_lr",
    },  # fmt: skip
    {"train"},  # fit, package and evaluate in one command (and every sweep job)
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


MUTATORS = {"append", "extend", "insert", "clear", "pop", "popitem", "update", "add", "remove",
            "discard", "setdefault"}  # fmt: skip


def mutable_globals(path: Path) -> set[str]:
    """Names a module binds at its top level to a list, dict or set (a literal or a call)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        targets, value = [], None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        mutable = isinstance(value, ast.List | ast.Dict | ast.Set) or (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id in ("list", "dict", "set", "defaultdict")
        )
        if mutable:
            found |= {t.id for t in targets if isinstance(t, ast.Name)}
    return found


def mutated_names(path: Path) -> set[str]:
    """Names a module changes in place: ``x.append(...)``, ``x[k] = ...``, ``x[:] = ...``,
    ``del x[k]``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in MUTATORS and isinstance(node.func.value, ast.Name):
                found.add(node.func.value.id)
        targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else []
        targets += [node.target] if isinstance(node, ast.AugAssign) else []
        for target in targets:
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                found.add(target.value.id)
    return found


def module_state() -> set[str]:
    """``module.name`` of every module-level list, dict or set its module changes at run time."""
    return {
        f"{m}.{name}" for m, p in MODULES.items() for name in mutable_globals(p) & mutated_names(p)
    }


def test_no_module_reads_another_modules_state():
    """State a module changes at run time (a list it appends to, a dict it fills) stays private to
    it: what several modules share travels as arguments or on objects (a sweep's failed jobs
    belong to its Hydra callback)."""
    state = module_state()
    readers = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                readers += [
                    f"{module} imports {node.module}.{a.name}"
                    for a in node.names
                    if f"{node.module}.{a.name}" in state
                ]
    assert not readers, readers


def test_the_state_check_sees_a_list_filled_at_run_time(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("FAILED = []\nCACHE = {}\nNAMES = ['a']\n"
                      "def f():\n    FAILED.append(1)\n    CACHE['k'] = 2\n")  # fmt: skip
    assert mutable_globals(source) & mutated_names(source) == {"FAILED", "CACHE"}
