"""A sweep's parent run: stopped midway (Ctrl-C in the driver), it ends KILLED, not RUNNING; a job
that failed in another process (parallel launchers) fails it, and the sweep's exit status says so."""

from __future__ import annotations

import pytest
from hydra.core.utils import JobReturn, JobStatus
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from fer_pipeline.errors import JobFailed
from fer_pipeline.tracking.sweep import PARENT_RUN_ENV, ParentRunCallback, parent_run_id


def test_a_stopped_sweep_ends_its_parent_run_killed(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.delenv(PARENT_RUN_ENV, raising=False)
    config = OmegaConf.create({
        "logger": {"tracking_uri": uri, "experiment_name": "fer-pipeline"},
        "hydra": {"overrides": {"task": ["optimizer=sgdm,adam"]}, "sweep": {"dir": "multirun/x"},
                  "sweeper": {"params": None}},
    })  # fmt: skip
    callback = ParentRunCallback()
    callback.on_multirun_start(config)
    run_id = parent_run_id()  # what every job reads, in this process or another
    assert MlflowClient(uri).get_run(run_id).info.status == "RUNNING"
    callback.end("KILLED")  # at exit, when Hydra never reached the sweep's end (Ctrl-C)
    assert MlflowClient(uri).get_run(run_id).info.status == "KILLED"
    assert parent_run_id() is None
    callback.end("KILLED")  # nothing open any more: nothing to do


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
    run_id = parent_run_id()
    (sweep_dir / "1").mkdir(parents=True)
    fail_job(str(sweep_dir / "1"), 1)  # as its own process would: nothing kept in memory
    assert callback.failed == [] and (sweep_dir / "1/job_failed.txt").is_file()
    with pytest.raises(SystemExit) as ended:  # the sweep's exit status
        callback.on_multirun_end(config)
    assert ended.value.code == 2
    assert callback.failed == ["job 1: bogus value (x=1)"]
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
    callback = ParentRunCallback()
    callback.on_multirun_start(config)
    parent = MlflowClient(uri).get_run(parent_run_id())
    callback.end("KILLED")
    assert parent.info.run_name == "sweep seed=1,2 ++tuned_lr.sgdm=0.01,0.1"
    assert parent.data.tags["fer.sweep_keys"] == "seed,tuned_lr.sgdm"
