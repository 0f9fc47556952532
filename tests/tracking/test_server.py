"""The training run's MLflow logger: params arrive whole (up to MLflow's limit), not cut at 250
characters as Lightning's logger cuts them; the tracking-URI check asks as MLflow's client does
(credentials included)."""

from __future__ import annotations

import base64
import http.server
import json
import threading

import pytest
from mlflow.tracking import MlflowClient

from fer_pipeline.errors import PipelineError
from fer_pipeline.tracking.provenance import MLFLOW_PARAM_LIMIT
from fer_pipeline.tracking.server import ResilientMLFlowLogger, check_tracking_uri


def test_long_params_arrive_whole_and_over_100_in_batches(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logger = ResilientMLFlowLogger(experiment_name="fer", tracking_uri=uri)
    params = {f"p{i}": str(i) for i in range(150)} | {
        "sweep.overrides": "x" * 1000,
        "huge": "y" * (MLFLOW_PARAM_LIMIT + 10),
    }
    logger.log_hyperparams(params)
    logged = MlflowClient(uri).get_run(logger.run_id).data.params
    assert len(logged) == 152 and logged["sweep.overrides"] == "x" * 1000
    assert logged["huge"] == "y" * MLFLOW_PARAM_LIMIT  # cut at MLflow's own limit only


class NeedsBasicAuth(http.server.BaseHTTPRequestHandler):
    """An MLflow server behind basic auth (user ``fer``, password ``secret``), as far as the
    tracking-URI check asks it."""

    def do_POST(self):  # noqa: N802 - http.server's name
        expected = "Basic " + base64.b64encode(b"fer:secret").decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="mlflow"')
            self.end_headers()
            return
        body = json.dumps({"experiments": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_tracking_uri_check_uses_mlflows_credentials(monkeypatch):
    server = http.server.HTTPServer(("127.0.0.1", 0), NeedsBasicAuth)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    try:
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
        with pytest.raises(PipelineError, match=r"refused this client \(HTTP 401\): set MLFLOW"):
            check_tracking_uri(uri)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "fer")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "secret")
        check_tracking_uri(uri)  # MLflow's own settings apply: it passes
    finally:
        server.shutdown()
