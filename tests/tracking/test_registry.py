"""The model registry: the first version is champion until a comparison crowns another."""

from __future__ import annotations

import os

from mlflow.tracking import MlflowClient

from fer_pipeline.inference.mlflow_model import log_model
from fer_pipeline.tracking.registry import (
    champion,
    crown,
    crown_best,
    register,
    tag_versions,
    version_tags,
)


def test_first_version_is_champion_until_another_is_crowned(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("fer", artifact_location=str(tmp_path / "artifacts"))
    first, second, untracked = (client.create_run(experiment).info.run_id for _ in range(3))
    models = {}
    for run_id in (first, second):
        folder = tmp_path / run_id
        folder.mkdir()
        (folder / "MLmodel").write_text("flavors: {}\n")
        models[run_id] = log_model(client, run_id, folder)
    assert register(client, first, models[first], {"optimizer": "adam"}) == "1"
    assert register(client, second, models[second], {"optimizer": "sgdm"}) == "2"
    assert champion(client).run_id == first  # registering alone never moves the champion
    assert champion(client).source == f"models:/{models[first]}"  # from the logged model
    assert "MLFLOW_TRACKING_URI" not in os.environ  # the default store is left as it was
    assert client.get_logged_model(models[first]).source_run_id == first
    outputs = client.get_run(first).outputs.model_outputs  # the run page's "Logged models"
    assert [o.model_id for o in outputs] == [models[first]]

    tag_versions(client, second, {"test_accuracy": "0.7300"})
    assert client.get_model_version("fer-pipeline", "2").tags["test_accuracy"] == "0.7300"
    assert crown(client, second) == "2" and champion(client).run_id == second
    assert champion(client).tags == {"optimizer": "sgdm", "test_accuracy": "0.7300"}

    line = crown_best(client, untracked, "fusion adam seed1")
    assert (
        line == f"champion: not moved (fusion adam seed1, run {untracked}, has no registered model)"
    )
    assert champion(client).run_id == second


def test_a_versions_tags_say_what_the_run_trained_and_its_test_accuracy(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("fer", artifact_location=str(tmp_path / "artifacts"))
    run_id = client.create_run(
        experiment, tags={"fer.model": "fusion", "fer.optimizer": "adam", "data.name": "fer2013",
                          "data.digest": "abc"},
    ).info.run_id  # fmt: skip
    client.log_param(run_id, "seed", "3")
    assert version_tags(client.get_run(run_id)) == {
        "model": "fusion", "optimizer": "adam", "seed": "3", "data.name": "fer2013",
        "data.digest": "abc",
    }  # fmt: skip
    for key, value in {"test/accuracy": 0.61234, "test_ci/accuracy_low": 0.6,
                       "test_ci/accuracy_high": 0.62}.items():  # fmt: skip
        client.log_metric(run_id, key, value)
    tags = version_tags(client.get_run(run_id))
    assert tags["test_accuracy"] == "0.6123" and tags["test_accuracy_ci95"] == "0.6000-0.6200"
