"""Runs you can trust when things go wrong: an interrupted run resumes to the same weights, a
tracking server that dies does not take training (or its checkpoints) with it, and a failing
sweep job does not end the sweep. (Ctrl-C and kill under `dvc repro`: tests/test_pipeline.py.)"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from tests.conftest import TINY_EVALUATION, run_module, start_in_own_group, wait_until

pytestmark = pytest.mark.slow


def start(module: str, *args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return start_in_own_group([sys.executable, "-m", f"fer_pipeline.{module}", *args], cwd, env)


def without_timing(curves_csv: bytes) -> list[dict]:
    rows = csv.DictReader(io.StringIO(curves_csv.decode()))
    return [{k: v for k, v in row.items() if k not in ("epoch_s", "images_per_s")} for row in rows]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_interrupted_run_resumes_into_the_same_run_and_weights(prepared_project):
    """Ctrl-C after the first epoch, the same command again: the run continues into the same MLflow
    run and ends with exactly the weights of a run never interrupted (which also shows that training
    with one config and seed is reproducible on one machine)."""
    root, args = prepared_project, ("trainer.max_epochs=4", "evaluate_after_fit=false")
    run_module("train", *args, cwd=root)  # uninterrupted: the reference, and the outputs a user has
    reference = weights(root / "models/last.ckpt")
    curves = root / "reports/train_curves.csv"
    previous = {p: p.read_bytes() for p in (root / "models/best.ckpt", root / "reports/train.json",
                                            curves)}  # fmt: skip

    process = start("train", *args, cwd=root)
    last = root / "checkpoints/last.ckpt"
    wait_until(last.is_file, process)  # the first epoch is saved: Ctrl-C
    signals = [line for line in Path(f"/proc/{process.pid}/status").read_text().splitlines()
               if line.startswith(("Sig", "ShdPnd"))]  # fmt: skip
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0, f"{signals}\n{output[-3000:]}"
    stopped_at = torch.load(root / "checkpoints/last.ckpt", weights_only=True)["epoch"]
    assert stopped_at < 3  # stopped before its last epoch
    assert {p: p.read_bytes() for p in previous} == previous  # what the user had is untouched
    run_id = json.loads((root / "checkpoints/run.json").read_text())["run_id"]
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    assert client.get_run(run_id).info.status == "KILLED", output[-3000:]

    out = run_module("train", *args, cwd=root).stdout  # the same command again
    assert f"resuming run {run_id} from checkpoints/last.ckpt" in out
    resumed = weights(root / "models/last.ckpt")
    assert resumed.keys() == reference.keys()
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert json.loads((root / "reports/train.json").read_text())["mlflow_run_id"] == run_id
    # The per-epoch table (DVC's curves) went on from the checkpoint: as the unbroken run's, but
    # for the seconds each epoch took.
    assert without_timing(curves.read_bytes()) == without_timing(previous[curves])
    assert [line.split(",")[0] for line in curves.read_text().splitlines()[1:]] == list("0123")
    epochs = [m.step for m in client.get_metric_history(run_id, "val/acc")]
    assert len(epochs) == 4 and epochs == sorted(epochs)  # one curve, each epoch once
    assert run.data.metrics["val/acc_best"] == pytest.approx(
        json.loads((root / "reports/train.json").read_text())["val_acc_best"]
    )
    assert not (root / "checkpoints").exists()  # finished: nothing left to resume
    assert run_id not in {
        r.info.run_id for r in client.search_runs(["1"], "attributes.status = 'RUNNING'")
    }


def test_tracking_server_dying_mid_run_loses_no_checkpoint(prepared_project, mlflow_server):
    root, (uri, server) = prepared_project, mlflow_server
    process = start(
        "train", "trainer.max_epochs=3", *TINY_EVALUATION, cwd=root,
        env={"MLFLOW_TRACKING_URI": uri},
    )  # fmt: skip
    wait_until((root / "checkpoints/last.ckpt").is_file, process)
    os.killpg(server.pid, signal.SIGKILL)  # the server goes away after the first epoch
    server.wait()
    started = time.monotonic()
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    assert time.monotonic() - started < 120  # no minutes of retries
    assert (root / "models/best.ckpt").is_file() and (root / "models/last.ckpt").is_file()
    assert (root / "reports/metrics.json").is_file()  # it also tested itself
    warnings = [line for line in output.splitlines() if line.startswith("warning: MLflow")]
    assert len(warnings) == 2, output[-3000:]  # when it went down, and what was not sent
    assert f"MLflow at {uri} failed" in warnings[0]
    unsent = json.loads((root / "reports/mlflow_unsent.json").read_text())
    assert unsent["tracking_uri"] == uri
    assert {m["key"] for m in unsent["metrics"]} >= {"val/acc", "train/loss"}
    assert "log the MLflow model" in unsent["calls"] and "log the test report" in unsent["calls"]
    assert "train: best val/acc" in output


def test_a_failing_sweep_job_does_not_stop_the_sweep(prepared_project):
    """A sweep groups its jobs under a parent run; one job fails (a value only the job can refuse):
    the others still run, the parent ends FAILED, and the table covers the jobs that finished."""
    root = prepared_project
    result = run_module(
        "train", "-m", "model.net.stem=imagenet,bogus,small", *TINY_EVALUATION,
        cwd=root, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "error: sweep job 1 failed: model.net.stem" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 sweep job(s) failed (job 1: ")
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    runs = client.search_runs(["1"])
    (parent,) = [r for r in runs if r.data.tags.get("fer.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FAILED"
    assert parent.info.run_name == "sweep model.net.stem=imagenet,bogus,small"
    assert sorted(r.data.params["model.net.stem"] for r in children) == ["imagenet", "small"]
    summary = client.download_artifacts(parent.info.run_id, "sweep_summary.md", str(root))
    assert len(Path(summary).read_text().splitlines()) == 2 + 2  # header + a row per finished job
    assert not (root / "models").exists()  # sweeps leave the DVC outputs alone
    assert all(r.info.status == "FINISHED" and "test/accuracy" in r.data.metrics for r in children)
    table = (root / "reports/compare/table.md").read_text()  # the jobs that finished
    assert table.startswith("# Test metrics by model.net.stem")  # by the swept key
    assert "| imagenet | 42 | " in table and "| small | 42 | " in table  # params.yaml's seed
    assert "| bogus |" not in table


def test_an_interrupted_sweep_continues_where_it_stopped(prepared_project):
    """Ctrl-C while the second of three jobs trains, then the same command: the first job is
    skipped, the second resumes from its checkpoint into its own run, the third runs, and one table
    covers all three under the one parent run."""
    root = prepared_project
    args = ("-m", "seed=1,2,3", "trainer.max_epochs=3", *TINY_EVALUATION)
    process = start("train", *args, cwd=root)
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])

    def second_job_saved_an_epoch() -> bool:
        return any(root.glob("multirun/*/*/1/checkpoints/last.ckpt"))

    wait_until(second_job_saved_an_epoch, process)
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0, output[-3000:]
    (parent,) = client.search_runs(["1"], "tags.`fer.kind` = 'sweep'")
    assert parent.info.status == "KILLED"
    first = client.search_runs(["1"], "tags.`fer.kind` = 'train'", order_by=["start_time ASC"])
    assert [r.info.status for r in first] == ["FINISHED", "KILLED"], output[-3000:]

    result = run_module("train", *args, cwd=root)  # the same command again
    out = result.stdout
    assert f"continuing sweep {parent.info.run_id} (KILLED)" in out and "1 job(s) finished" in out
    assert f"sweep job 0 finished before (run {first[0].info.run_id}); skipped" in out
    assert f"resuming run {first[1].info.run_id}" in out
    runs = client.search_runs(["1"], "tags.`fer.kind` = 'train'", order_by=["start_time ASC"])
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    assert [r.info.run_id for r in runs[:2]] == [r.info.run_id for r in first]
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    sweeps = client.search_runs(["1"], "tags.`fer.kind` = 'sweep'")
    assert [s.info.status for s in sweeps] == ["FINISHED"]  # the same parent, now finished
    table = (root / "reports/compare/table.md").read_text()
    assert "| resnet34 / sgdm | 1, 2, 3 |" in table  # one setting, all three seeds
    assert len(list(root.glob("multirun/*/*"))) == 1  # one sweep folder
