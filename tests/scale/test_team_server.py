"""A team's MLflow server: runs log to ``mlflow server`` with proxied artifacts (clients never see
the artifact store), and a URI that is not such a server fails at once, in one line."""

from __future__ import annotations

import http.server
import threading

import pytest
from mlflow.tracking import MlflowClient

from fer_pipeline import train
from fer_pipeline.hashing import file_md5
from tests.conftest import TINY_EVALUATION, run_module

pytestmark = pytest.mark.slow


def test_a_run_logs_params_metrics_checkpoint_and_model_to_the_server(
    prepared_project, mlflow_server, tmp_path
):
    root, (uri, _) = prepared_project, mlflow_server
    env = {"MLFLOW_TRACKING_URI": uri}
    result = run_module("train", "trainer.max_epochs=1", *TINY_EVALUATION, cwd=root, env=env)
    noise = ("GPU available", "TPU available", "Tip:", "limit_train_batches", "LeafSpec",
             "Inferred schema", "Creating it", "monitoring system metrics")  # fmt: skip
    assert not [n for n in noise if n in result.stdout + result.stderr], result.stderr

    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("fer-pipeline").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")  # proxied through the server
    assert run.data.params["optimizer.lr"] and run.data.params["model.name"] == "resnet34"
    assert {"val/acc", "train/loss", "test/accuracy"} <= set(run.data.metrics)
    (model,) = client.search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
    )  # the run's MLflow model, a logged model
    logged = {a.path for a in client.list_logged_model_artifacts(model.model_id, "artifacts")}
    assert "artifacts/best.ckpt" in logged and {"test/accuracy"} <= {m.key for m in model.metrics}
    # The files are in the server's artifact store, the same checkpoint as models/best.ckpt ...
    stored = list((tmp_path / "server-artifacts").rglob("best.ckpt"))
    assert [file_md5(p) for p in stored] == [file_md5(root / "models/best.ckpt")]
    assert (stored[0].parent.parent / "MLmodel").is_file()
    # ... registered there, and nothing was written to a local store.
    (version,) = client.search_model_versions("name='fer-pipeline'")
    assert version.run_id == run.info.run_id
    assert not (root / "mlruns").exists() and not (root / "mlflow.db").exists()


class NotMLflow(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        self.send_error(404)

    def log_message(self, *args):
        pass


def test_a_uri_that_is_not_an_mlflow_server_is_one_line(project, call_main, monkeypatch):
    server = http.server.HTTPServer(("127.0.0.1", 0), NotMLflow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    try:
        code, _, err = call_main(train.main, "trainer.max_epochs=1")
    finally:
        server.shutdown()
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: tracking URI {uri} is not an MLflow tracking server (HTTP 404")
    assert not (project / "mlflow.db").exists()
