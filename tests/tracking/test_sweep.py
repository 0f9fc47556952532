"""A sweep's parent run: stopped midway (Ctrl-C in the driver), it ends KILLED, not RUNNING."""

from __future__ import annotations

import os

from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from fer_pipeline.tracking.sweep import PARENT_RUN_ENV, ParentRunCallback, end_parent_run


def test_a_stopped_sweep_ends_its_parent_run_killed(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.delenv(PARENT_RUN_ENV, raising=False)
    config = OmegaConf.create({
        "logger": {"tracking_uri": uri, "experiment_name": "fer-pipeline"},
        "hydra": {"overrides": {"task": ["optimizer=sgdm,adam"]}, "sweep": {"dir": "multirun/x"},
                  "sweeper": {"params": None}},
    })  # fmt: skip
    ParentRunCallback().on_multirun_start(config)
    run_id = os.environ[PARENT_RUN_ENV]
    assert MlflowClient(uri).get_run(run_id).info.status == "RUNNING"
    end_parent_run("KILLED")  # what train.main does when the sweep is interrupted
    assert MlflowClient(uri).get_run(run_id).info.status == "KILLED"
    assert PARENT_RUN_ENV not in os.environ
    end_parent_run("KILLED")  # nothing open any more: nothing to do
