"""The notebooks run, top to bottom, on what a tiny pipeline and sweep produced."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("paper_sweep")]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_the_three_notebooks_are_there():
    assert [p.name for p in NOTEBOOKS] == [
        "01_dataset.ipynb",
        "02_compare_runs.ipynb",
        "03_occlusion.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path: Path, paper_sweep, monkeypatch):
    monkeypatch.setenv("FER_PIPELINE_ROOT", str(paper_sweep))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{paper_sweep / 'mlflow.db'}")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pictures) >= 2  # every notebook draws what it reads
