"""`python -m fer_pipeline.compare` on an MLflow store holding runs made by hand."""

from __future__ import annotations

import csv
import os

import pytest
from mlflow.tracking import MlflowClient

from fer_pipeline.compare import main
from fer_pipeline.evaluation.compare_stats import COLUMNS

CLASSES = "angry,disgust,fear,happy,sad,surprise,neutral"


def fake_run(client, parent, optimizer, seed, right, faces=40, tmp=None, **changes):
    """A finished training run as train.py records it: tags, seed, test metrics, predictions."""
    tags = {
        "fer.kind": "train",
        "fer.optimizer": optimizer,
        "fer.model": "fusion",
        "data.name": "synthetic",
        "data.digest": "d1gest",
        "data.classes": CLASSES,
        "mlflow.parentRunId": parent,
        **changes.pop("tags", {}),
    }
    experiment = client.get_experiment_by_name("fer-pipeline").experiment_id
    run = client.create_run(experiment, run_name=f"fusion {optimizer} seed{seed}", tags=tags)
    run_id = run.info.run_id
    client.log_param(run_id, "seed", seed)
    client.log_param(run_id, "optimizer.lr", {"adam": "0.001", "sgdm": "0.05"}.get(optimizer, "1"))
    for metric in changes.pop("metrics", COLUMNS.values()):
        client.log_metric(run_id, f"test/{metric}", right / faces)
    folder = tmp / run_id / "reports"
    folder.mkdir(parents=True)
    with (folder / "predictions.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "predicted"])
        for i in range(faces):
            writer.writerow([f"happy/{i}.png", "happy", "happy" if i < right else "sad"])
    client.log_artifact(run_id, str(folder / "predictions.csv"), "reports")
    client.set_terminated(run_id, "FINISHED")
    return run_id


@pytest.fixture
def store(project, tmp_path):
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    client.create_experiment("fer-pipeline")
    experiment = client.get_experiment_by_name("fer-pipeline").experiment_id
    parent = client.create_run(experiment, run_name="sweep", tags={"fer.kind": "sweep"})
    return client, parent.info.run_id, tmp_path / "artifacts"


def error_of(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_table_for_a_sweep_is_written_and_attached_to_its_parent(store, project, capsys):
    client, parent, tmp = store
    for seed, (adam, sgdm) in {"1": (38, 20), "2": (37, 22)}.items():
        fake_run(client, parent, "adam", seed, adam, tmp=tmp)
        fake_run(client, parent, "sgdm", seed, sgdm, tmp=tmp)
    main(["--parent", "latest", "--by", "optimizer"])
    out = capsys.readouterr().out
    table = (project / "reports/compare/table.md").read_text()
    assert table in out
    assert "| adam | 1, 2 | 0.9375 ± 0.0177" in table
    assert "| sgdm | 1, 2 | 0.5250 ± 0.0354" in table
    assert "vs sgdm: significantly better: +0.4125 [" in table
    assert "counting seeds and the 40 shared test faces" in table
    assert "Learning rate (optimizer.lr): adam 0.001, sgdm 0.05." in table
    assert "data synthetic (digest d1gest), 40 test faces" in table
    attached = {a.path for a in client.list_artifacts(parent, "compare")}
    assert attached == {"compare/table.md", "compare/table.csv", "compare/table.png"}
    assert "champion: not moved (fusion adam seed1, run " in out  # runs made by hand: no model


def test_no_matching_runs(store, capsys):
    client, parent, tmp = store
    fake_run(client, parent, "adam", "1", 30, tmp=tmp)
    line = error_of(["--tag", "fer.optimizer=rmsprop"], capsys)
    assert "no finished training runs match" in line and "fer.optimizer=rmsprop" in line


def test_runs_of_several_sweeps_are_compared_by_id(store, project, capsys):
    """A table of chosen runs: seed 1 from one sweep (a grid), seeds 2 and 3 from another."""
    client, parent, tmp = store
    experiment = client.get_experiment_by_name("fer-pipeline").experiment_id
    other = client.create_run(experiment, run_name="sweep 2", tags={"fer.kind": "sweep"})
    ids = [fake_run(client, parent, "adam", "1", 36, tmp=tmp)]
    fake_run(client, parent, "adam", "1", 10, tmp=tmp)  # not chosen: left out
    for seed, right in (("2", 38), ("3", 37)):
        ids.append(fake_run(client, other.info.run_id, "adam", seed, right, tmp=tmp))
    argv = [a for i in ids for a in ("--run", i)] + ["--by", "optimizer", "--out", "t"]
    main(argv)
    table = (project / "t/table.md").read_text()
    assert "| adam | 1, 2, 3 | 0.9250 ± 0.0250" in table
    assert "3 runs of the runs given" in table
    line = error_of(["--run", ids[0], "--parent", "latest"], capsys)
    assert "--run names the runs itself" in line
    assert f"--run {other.info.run_id}: 'sweep 2'" in error_of(["--run", other.info.run_id], capsys)
    assert "--run nope: no such MLflow run" in error_of(["--run", "nope"], capsys)


def test_runs_missing_a_metric_are_named(store, capsys):
    client, parent, tmp = store
    fake_run(client, parent, "adam", "1", 30, tmp=tmp)
    old = fake_run(client, parent, "sgdm", "1", 30, tmp=tmp, metrics=["accuracy"])
    line = error_of(["--by", "optimizer"], capsys)
    assert (
        f"1 of 2 runs lack metric test/precision_macro (not tested?): 'fusion sgdm seed1' ({old[:8]})"
        in line
    )
    assert not os.path.exists("reports/compare")  # no misleading table


def test_runs_of_different_datasets_are_refused(store, capsys):
    client, parent, tmp = store
    fake_run(client, parent, "adam", "1", 30, tmp=tmp)
    fake_run(
        client,
        parent,
        "sgdm",
        "1",
        30,
        tmp=tmp,
        tags={"data.digest": "other", "data.name": "fer2013"},
    )
    line = error_of(["--by", "optimizer"], capsys)
    assert "different data or class lists" in line
    assert "data synthetic digest d1gest" in line and "data fer2013 digest other" in line
    assert "'fusion sgdm seed1'" in line and "--tag data.digest=" in line
    assert not os.path.exists("reports/compare")
