"""A sweep's parent run: stopped midway (Ctrl-C in the driver), it ends KILLED, not RUNNING; a job
that failed in another process (parallel launchers) fails it."""

from __future__ import annotations

import os

from hydra.core.utils import JobReturn, JobStatus
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from fer_pipeline.tracking.sweep import (
    FAILED_JOBS,
    PARENT_RUN_ENV,
    JobFailed,
    ParentRunCallback,
    end_parent_run,
)


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


def fail_job(output_dir: str, num: int) -> None:
    """What a failing sweep job's process does at its end (the joblib and submitit launchers run
    jobs in other processes, so the sweep learns of it from the job's folder, not memory)."""
    config = OmegaConf.create(
        {"hydra": {"runtime": {"output_dir": output_dir}, "job": {"num": num}}}
    )
    result = JobReturn(status=JobStatus.COMPLETED, _return_value=JobFailed("bogus value (x=1)"))
    ParentRunCallback().on_job_end(config, result)


def test_a_job_failing_in_another_process_fails_the_sweep(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.delenv(PARENT_RUN_ENV, raising=False)
    sweep_dir = tmp_path / "multirun"
    config = OmegaConf.create({
        "logger": {"tracking_uri": uri, "experiment_name": "fer-pipeline"},
        "hydra": {"overrides": {"task": ["x=1,2"]}, "sweep": {"dir": str(sweep_dir)},
                  "sweeper": {"params": None}},
        "compare": {"by": None, "name": "compare", "metric": "accuracy", "alpha": 0.05},
        "paths": {"reports": str(tmp_path / "reports")},
    })  # fmt: skip
    callback = ParentRunCallback()
    callback.on_multirun_start(config)
    run_id = os.environ[PARENT_RUN_ENV]
    (sweep_dir / "1").mkdir(parents=True)
    fail_job(str(sweep_dir / "1"), 1)  # as its own process would: nothing kept in memory
    assert FAILED_JOBS == [] and (sweep_dir / "1/job_failed.txt").is_file()
    callback.on_multirun_end(config)
    assert FAILED_JOBS == ["job 1: bogus value (x=1)"]  # what train.main's exit status reads
    assert MlflowClient(uri).get_run(run_id).info.status == "FAILED"


def test_the_parent_run_names_what_the_command_line_leaves_swept(tmp_path, monkeypatch):
    """An experiment's sweep (optimizer: sgdm,adam,rmsprop) narrowed on the command line
    (optimizer=sgdm) and widened there (++tuned_lr.sgdm=0.01,0.1): the name and the swept keys
    say what the jobs vary."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.delenv(PARENT_RUN_ENV, raising=False)
    config = OmegaConf.create({
        "logger": {"tracking_uri": uri, "experiment_name": "fer-pipeline"},
        "hydra": {"overrides": {"task": ["optimizer=sgdm", "++tuned_lr.sgdm=0.01,0.1"]},
                  "sweep": {"dir": "multirun/x"},
                  "sweeper": {"params": {"optimizer": "sgdm,adam,rmsprop", "seed": "1,2"}}},
    })  # fmt: skip
    ParentRunCallback().on_multirun_start(config)
    parent = MlflowClient(uri).get_run(os.environ[PARENT_RUN_ENV])
    end_parent_run("KILLED")
    assert parent.info.run_name == "sweep seed=1,2 ++tuned_lr.sgdm=0.01,0.1"
    assert parent.data.tags["fer.sweep_keys"] == "seed,tuned_lr.sgdm"
