"""Sweep jobs in parallel processes through Hydra's joblib launcher: the same parent run,
children and comparison table as the jobs run one after another."""

from __future__ import annotations

import os
import shutil

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import TINY_EVALUATION, run_module

pytestmark = pytest.mark.slow

SWEEP = ("-m", "optimizer=sgdm,adam", *TINY_EVALUATION)


def sweep(root, *launcher: str) -> dict:
    """Run the sweep with its own MLflow store; what a user compares of it."""
    store = f"sqlite:///{root / 'mlflow.db'}"
    result = run_module("train", *SWEEP, *launcher, cwd=root, env={"MLFLOW_TRACKING_URI": store})
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("fer-pipeline").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("fer.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    table_md = root / "reports/compare/table.md"
    assert table_md.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    table = table_md.read_text().splitlines()
    return {
        "parent": (parent.info.run_name, parent.info.status),
        "children": sorted(
            (r.data.params["optimizer._target_"], r.info.status, "test/accuracy" in r.data.metrics)
            for r in children
        ),
        "rows": sorted(line.split("|")[1].strip() for line in table if line.startswith("| ")),
        "versions": sorted(int(v.version) for v in client.search_model_versions("")),
        "output": result.stdout,
    }


def test_a_parallel_sweep_matches_the_serial_one(prepared_project, tmp_path):
    parallel_root = tmp_path / "parallel"
    shutil.copytree(prepared_project, parallel_root, symlinks=True)
    serial = sweep(prepared_project)
    parallel = sweep(parallel_root, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert "Joblib.Parallel(n_jobs=2" in parallel["output"]  # the jobs did run side by side
    for key in ("parent", "children", "rows", "versions"):  # both jobs registered, in parallel too
        assert parallel[key] == serial[key], key
    assert serial["parent"][1] == "FINISHED" and len(serial["children"]) == 2
    assert os.path.isdir(parallel_root / "multirun")
