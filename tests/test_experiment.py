"""The paper's experiment as a one-liner: `train -m experiment=paper_table1` ends with the table."""

from __future__ import annotations

import csv

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_module

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("paper_sweep")]


def test_paper_table1_sweeps_optimizers_and_seeds_and_writes_the_table(paper_sweep):
    client = MlflowClient(f"sqlite:///{paper_sweep / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("fer-pipeline").experiment_id
    runs = client.search_runs([experiment])
    (parent,) = [r for r in runs if r.data.tags.get("fer.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["fer.sweep_keys"] == "optimizer,seed"
    # The experiment's choices win over params.yaml (which says resnet34 and sgdm in tests).
    assert sorted((r.data.tags["fer.optimizer"], r.data.params["seed"]) for r in children) == [
        (o, s) for o in ("adam", "rmsprop", "sgdm") for s in ("1", "2")
    ]
    assert {r.data.tags["fer.model"] for r in children} == {"fusion"}
    for child in children:  # every run tested itself: intervals, predictions, occlusion maps
        assert {"test/accuracy", "test_ci/accuracy_low", "occlusion/flip_rate"} <= set(
            child.data.metrics
        )
        occlusion = {a.path for a in client.list_artifacts(child.info.run_id, "occlusion")}
        assert occlusion == {"occlusion/occlusion_maps.npz"}
        top = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"occlusion_overlays.png", "occlusion_mean_maps.png", "confusion_matrix.png"} <= top
        reports = {a.path for a in client.list_artifacts(child.info.run_id, "reports")}
        assert "reports/predictions.csv" in reports

    folder = paper_sweep / "reports/paper_table1"
    table = (folder / "table.md").read_text()
    assert table in (paper_sweep / "sweep.log").read_text()  # printed at the end of the sweep
    for optimizer in ("adam", "rmsprop", "sgdm"):
        assert f"| {optimizer} | 1, 2 | " in table
    assert "t interval over 2 seeds and the test faces" in table and "Holm-adjusted" in table
    assert "Learning rate (optimizer.lr): adam 0.001, rmsprop 0.0005, sgdm 0.05." in table
    assert "significantly better" in table
    with (folder / "table.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["optimizer"] for r in rows] == ["adam", "rmsprop", "sgdm"]
    assert all(r["n_seeds"] == "2" and len(r["run_ids"].split()) == 2 for r in rows)
    assert (folder / "table.png").read_bytes()[:4] == b"\x89PNG"
    attached = {a.path for a in client.list_artifacts(parent.info.run_id, "compare")}
    assert attached == {"compare/table.md", "compare/table.csv", "compare/table.png"}

    # Every run registered its model, tagged with its test accuracy; the end of the sweep made the
    # best setting's best run the champion.
    versions = client.search_model_versions("name = 'fer-pipeline'")
    assert sorted(v.run_id for v in versions) == sorted(r.info.run_id for r in children)
    accuracy = {r.info.run_id: r.data.metrics["test/accuracy"] for r in children}
    for version in versions:
        assert float(version.tags["test_accuracy"]) == pytest.approx(
            accuracy[version.run_id], abs=1e-4
        )
    best_setting = max(rows, key=lambda r: float(r["accuracy_mean"]))
    best_run = max(best_setting["run_ids"].split(), key=accuracy.get)
    assert client.get_model_version_by_alias("fer-pipeline", "champion").run_id == best_run
    assert f"run {best_run})" in (paper_sweep / "sweep.log").read_text()

    # What the MLflow UI shows: a model-training experiment with a description; unique run names
    # that say what ran; the parent run carries the best setting's mean scores; lr as trained.
    tags = client.get_experiment(experiment).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    assert "fer-pipeline" in tags["mlflow.note.content"]
    names = [r.info.run_name for r in children]
    assert len(set(names)) == len(names)
    assert all(f"sweep {parent.info.run_id[:8]} #" in name for name in names)
    assert parent.data.tags["fer.best_setting"] == best_setting["optimizer"]
    assert parent.data.tags["fer.best_run_id"] == best_run
    assert parent.data.metrics["test/accuracy"] == pytest.approx(
        float(best_setting["accuracy_mean"]), abs=1e-6
    )
    for child in children:  # lr of the first epoch is the configured one (cosine steps after it)
        (first, *_) = client.get_metric_history(child.info.run_id, "lr")
        assert first.value == pytest.approx(float(child.data.params["optimizer.lr"]))

    # The same table again from the command line, for the newest sweep.
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{paper_sweep / 'mlflow.db'}"}
    out = run_module(
        "compare", "--parent", "latest", "--out", "reports/again", cwd=paper_sweep, env=env
    )
    assert (paper_sweep / "reports/again/table.md").read_text() == table
    assert "reports/again/table.png" in out.stdout


def test_experiment_without_multirun_is_a_one_line_error(project, call_main):
    from fer_pipeline import train

    code, _, err = call_main(train.main, "experiment=paper_table1")
    assert code == 2
    assert err.strip() == (
        "error: experiment=paper_table1 sweeps optimizer, seed: run it with -m "
        "(python -m fer_pipeline.train -m experiment=paper_table1)"
    )
