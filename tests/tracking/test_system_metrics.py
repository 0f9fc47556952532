"""A training run records the machine's use (MLflow's system metrics) while it fits."""

from __future__ import annotations

import time
from types import SimpleNamespace

from mlflow.tracking import MlflowClient
from pytorch_lightning.loggers import MLFlowLogger

from fer_pipeline.tracking.system_metrics import SystemMetrics


def test_system_metrics_are_logged_while_fitting_and_stop_with_it(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logger = MLFlowLogger(experiment_name="e", tracking_uri=uri)
    client = MlflowClient(uri)
    callback = SystemMetrics(uri, interval_s=0.5)
    callback.on_fit_start(SimpleNamespace(logger=logger), None)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the monitor's thread logs every 0.5 s
        if "system/cpu_utilization_percentage" in client.get_run(logger.run_id).data.metrics:
            break
        time.sleep(0.2)
    callback.on_fit_end(SimpleNamespace(logger=logger), None)
    metrics = client.get_run(logger.run_id).data.metrics
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_percentage"} <= set(
        metrics
    )
    assert callback.monitor is None  # stopped: nothing runs on after training


def test_no_mlflow_logger_no_monitor():
    callback = SystemMetrics("sqlite:///unused.db", interval_s=0.5)
    callback.on_fit_start(SimpleNamespace(logger=None), None)  # a DDP rank other than 0
    assert callback.monitor is None
