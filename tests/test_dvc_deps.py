"""Every DVC stage depends on the code it runs: a stage's `deps` in dvc.yaml cover each project
module its entry point imports, directly or through other modules (imports inside functions too),
so a code change can never leave `dvc repro` saying "up to date" over stale results."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

PACKAGE = "fer_pipeline"
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def module_file(name: str) -> Path | None:
    """The file of project module ``name`` (a package's ``__init__.py``), or None."""
    base = ROOT / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, name: str) -> set[str]:
    """Project modules ``path`` (module ``name``) imports, anywhere in the file."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return {m for m in found if m.split(".")[0] == PACKAGE and module_file(m)}


def files_run_by(module: str) -> set[Path]:
    """Every project file that importing ``module`` executes (parent packages' __init__ too)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            parent = ".".join(parts[:i])
            if parent not in seen and module_file(parent):
                seen.add(parent)
                todo.extend(imported_modules(module_file(parent), parent))
    return {module_file(name).relative_to(ROOT) for name in seen}


def stage_module(cmd: str) -> str:
    return cmd.split("-m", 1)[1].split()[0]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_depends_on_every_module_it_runs(stage):
    deps = [Path(d) for d in STAGES[stage]["deps"]]
    module = stage_module(STAGES[stage]["cmd"])
    needed = files_run_by(module)
    assert Path(*module.split(".")).with_suffix(".py") in needed
    missing = sorted(str(f) for f in needed if not any(f == d or d in f.parents for d in deps))
    assert not missing, f"dvc.yaml stage {stage} runs {missing} but does not depend on them"


def test_the_import_walk_sees_imports_inside_functions_and_relative_ones(tmp_path):
    source = tmp_path / "stage.py"
    source.write_text(
        "import os\n"
        "from . import io\n"
        "def main():\n"
        "    from fer_pipeline.data import card\n"
        "    import fer_pipeline.errors\n"
    )
    found = imported_modules(source, "fer_pipeline.stage")
    assert found == {"fer_pipeline", "fer_pipeline.io", "fer_pipeline.data", "fer_pipeline.data.card",
                     "fer_pipeline.errors"}  # fmt: skip
    assert Path("fer_pipeline/__init__.py") in files_run_by("fer_pipeline.train")
