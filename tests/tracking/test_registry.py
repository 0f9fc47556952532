"""The model registry: the first version is champion until a comparison crowns another."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from fer_pipeline.tracking.registry import champion, crown, crown_best, register, tag_versions


def test_first_version_is_champion_until_another_is_crowned(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("fer", artifact_location=str(tmp_path / "artifacts"))
    first, second, untracked = (client.create_run(experiment).info.run_id for _ in range(3))
    for run_id in (first, second):
        client.log_text(run_id, "model", "model/MLmodel")
    assert register(client, first, f"runs:/{first}/model", {"optimizer": "adam"}) == "1"
    assert register(client, second, f"runs:/{second}/model", {"optimizer": "sgdm"}) == "2"
    assert champion(client).run_id == first  # registering alone never moves the champion

    tag_versions(client, second, {"test_accuracy": "0.7300"})
    assert client.get_model_version("fer-pipeline", "2").tags["test_accuracy"] == "0.7300"
    assert crown(client, second) == "2" and champion(client).run_id == second
    assert champion(client).tags == {"optimizer": "sgdm", "test_accuracy": "0.7300"}

    line = crown_best(client, untracked, "fusion adam seed1")
    assert (
        line == f"champion: not moved (fusion adam seed1, run {untracked}, has no registered model)"
    )
    assert champion(client).run_id == second
