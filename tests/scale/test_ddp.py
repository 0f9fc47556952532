"""Distributed data parallel on this machine's CPUs (gloo, two processes): one MLflow run with
metrics synced across the ranks, outputs written once, by rank 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import TINY_EVALUATION, run_module

pytestmark = pytest.mark.slow

DDP = ("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2")
# trainer=ddp builds on conf/trainer/gpu.yaml (30 epochs, bf16, channels_last): tiny and fp32 here.
TINY = ("trainer.max_epochs=2", "trainer.precision=32-true", "trainer.channels_last=false",
        "trainer.enable_progress_bar=false", *TINY_EVALUATION)  # fmt: skip


def test_ddp_on_two_cpu_processes_trains_one_run(prepared_project):
    result = run_module("train", *DDP, *TINY, cwd=prepared_project)
    out, err = result.stdout, result.stderr
    assert "train: trained in 2 processes (ddp)" in out  # two ranks did train
    # Rank 0 alone reports, registers and tests; no rank drops the other's run.
    for line in (
        "train: best val/acc",
        "registered as fer-pipeline version 1",
        "test: accuracy",
    ):
        assert out.count(line) == 1, out
    assert "starting over" not in out and "warning: MLflow" not in err
    assert "sync_dist=True" not in err  # every epoch-level value is reduced across the ranks

    client = MlflowClient()
    (run,) = client.search_runs(client.get_experiment_by_name("fer-pipeline").experiment_id)
    assert run.info.status == "FINISHED"
    assert len(client.get_metric_history(run.info.run_id, "val/acc")) == 2  # once per epoch
    assert {"train/loss", "val/acc_best", "lr", "test/accuracy"} <= set(run.data.metrics)
    summary = json.loads((prepared_project / "reports/train.json").read_text())
    assert summary["mlflow_run_id"] == run.info.run_id
    assert summary["val_acc_best"] == pytest.approx(run.data.metrics["val/acc_best"])
    assert sorted(p.name for p in (prepared_project / "models").iterdir()) == [
        "best.ckpt", "last.ckpt",
    ]  # fmt: skip
    assert not (prepared_project / "checkpoints").exists()
    assert [int(v.version) for v in client.search_model_versions("name='fer-pipeline'")] == [1]


def test_torchrun_starts_the_ranks_and_rank_0_alone_writes(prepared_project):
    """torchrun (as on several nodes, or under SLURM's srun) starts every rank itself: each runs
    the whole command, and Lightning takes the processes it is given."""
    torchrun = Path(sys.executable).parent / "torchrun"
    command = [str(torchrun), "--standalone", "--nproc-per-node", "2",
               "-m", "fer_pipeline.train", *DDP, *TINY]  # fmt: skip
    result = subprocess.run(command, cwd=prepared_project, capture_output=True, text=True,
                            timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train: trained in 2 processes (ddp)" in result.stdout
    for line in (
        "train: best val/acc",
        "registered as fer-pipeline version 1",
        "test: accuracy",
    ):
        assert result.stdout.count(line) == 1, result.stdout
    client = MlflowClient()
    (run,) = client.search_runs(client.get_experiment_by_name("fer-pipeline").experiment_id)
    assert run.info.status == "FINISHED" and "test/accuracy" in run.data.metrics
    assert (prepared_project / "models/best.ckpt").is_file()


def test_ddp_inside_a_one_process_sweep_is_refused_before_any_job(prepared_project):
    result = run_module("train", "-m", *DDP, "optimizer=sgdm,adam", cwd=prepared_project,
                        check=False)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: trainer.strategy=ddp with trainer.devices=2 cannot run inside a -m sweep started "
        "as one process (Lightning starts each rank by replaying the command line); run each "
        "setting on its own, under torchrun/srun, or with hydra/launcher=submitit_slurm"
    ]
    assert not (prepared_project / "multirun").exists()
