"""`python -m fer_pipeline.choose_lr` on an MLflow store holding grid runs made by hand."""

from __future__ import annotations

import os

import pytest
from mlflow.tracking import MlflowClient

from fer_pipeline.choose_lr import main


def grid_run(client, optimizer, lr, val, test=0.5, seed=1, grid="g", **params):
    """A finished training run of grid ``grid`` as train.py records it (the params that matter)."""
    experiment = client.get_experiment_by_name("fer-pipeline").experiment_id
    tags = {"fer.kind": "train", "fer.optimizer": optimizer}
    run_id = client.create_run(
        experiment, run_name=f"{optimizer} {lr} s{seed}", tags=tags
    ).info.run_id
    values = {"compare.name": grid, "optimizer.lr": lr, "scheduler.max_lr": lr, "seed": seed,
              "trainer.max_epochs": 1}  # fmt: skip
    for key, value in (values | params).items():
        client.log_param(run_id, key, value)
    client.log_metric(run_id, "val/acc_best", val)
    client.log_metric(run_id, "test/accuracy", test)
    client.set_terminated(run_id, "FINISHED")
    return run_id


@pytest.fixture
def client(project):
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    client.create_experiment("fer-pipeline")
    return client


@pytest.fixture
def error_of(call_main):
    """The one-line error (exit status 2) that choose_lr gives for ``argv``."""

    def call(*argv: str) -> str:
        code, _, err = call_main(main, *argv)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        return err

    return call


def test_each_optimizer_gets_its_best_rate_on_validation(client, project, capsys):
    grid_run(client, "sgdm", "0.01", 0.40, test=0.60)  # the best test score: plays no part
    grid_run(client, "sgdm", "0.03", 0.45)
    grid_run(client, "sgdm", "0.1", 0.42, **{"logger.tracking_uri": "sqlite:////elsewhere.db"})
    grid_run(client, "adam", "0.001", 0.50, seed=1)  # mean over seeds: 0.45
    grid_run(client, "adam", "0.001", 0.40, seed=2)
    grid_run(client, "adam", "0.003", 0.47)
    grid_run(client, "rmsprop", "0.001", 0.30, grid="other")  # another grid: left out
    main(["--grid", "g"])
    out = capsys.readouterr().out
    text = (project / "reports/g/lr_choice.md").read_text()
    assert text in out
    assert "| sgdm | 0.03 | 0.4500 | 1 (sgdm 0.03 s1) | yes |" in text
    assert "| sgdm | 0.01 | 0.4000 | 1 (sgdm 0.01 s1) |  |" in text
    assert "| adam | 0.001 | 0.4500 | 2 (adam 0.001 s1, adam 0.001 s2) |  |" in text
    assert "| adam | 0.003 | 0.4700 | 1 (adam 0.003 s1) | yes |" in text
    assert "tuned_lr:\n  adam: 0.003\n  sgdm: 0.03\n" in text
    assert "rmsprop" not in text
    assert "At the grid's edge (the best rate may lie beyond it): adam." in text


def test_a_tie_goes_to_the_smaller_rate(client, capsys):
    grid_run(client, "adam", "0.003", 0.45)
    grid_run(client, "adam", "0.001", 0.45)
    grid_run(client, "adam", "0.0003", 0.40)
    main(["--grid", "g"])
    assert "tuned_lr:\n  adam: 0.001\n" in capsys.readouterr().out


def test_runs_at_another_budget_are_refused(client, project, error_of):
    grid_run(client, "adam", "0.001", 0.45)
    grid_run(client, "adam", "0.003", 0.47, **{"trainer.max_epochs": 3})
    error = error_of("--grid", "g")
    assert "differ in trainer.max_epochs (1 vs 3)" in error
    assert not (project / "reports/g/lr_choice.md").exists()


def test_one_rate_is_no_choice_and_test_metrics_are_refused(client, error_of):
    grid_run(client, "adam", "0.001", 0.45)
    assert "adam was tried at one rate only (0.001)" in error_of("--grid", "g")
    error = error_of("--grid", "g", "--metric", "test/accuracy")
    assert "--metric test/accuracy: rates are chosen on validation" in error
    assert "no finished training runs match" in error_of("--grid", "nothing")
    assert "params compare.name=nothing" in error_of("--grid", "nothing")
