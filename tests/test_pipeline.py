"""The pipeline as a user runs it: `dvc repro`, Hydra multirun, and bad inputs, in a tiny project."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch
from mlflow.tracking import MlflowClient

from tests.conftest import edit_yaml, run_module, start_in_own_group, wait_until

pytestmark = pytest.mark.slow
BIN = str(Path(sys.executable).parent)


GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def project_env() -> dict[str, str]:
    """The environment stage commands need: the project's executables first on PATH."""
    return {**os.environ, **GIT_ENV, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def sh(*command: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command in :func:`project_env`; with ``check``, assert that it succeeded."""
    result = subprocess.run(
        command, cwd=cwd, env=project_env(), capture_output=True, text=True, timeout=900
    )
    if check:
        assert result.returncode == 0, (
            f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return sh(f"{BIN}/dvc", *args, cwd=cwd, check=check)


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '(\w+)'", output))


def all_runs(project: Path):
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("fer-pipeline")
    return client, client.search_runs([experiment.experiment_id])


def test_dvc_repro_end_to_end(project, tmp_path):
    sh("git", "init", "-q", cwd=project)
    dvc("init", "-q", cwd=project)
    first = dvc("repro", cwd=project).stdout
    assert stages_run(first) == {"prepare", "crop", "split", "train", "package", "evaluate"}
    # No terminal here: progress comes as lines (the first batch's at once) and a line per epoch.
    for progress in (
        r"crop: \d+/84 images",
        r"train: epoch 1/\d+: 1/\d+ batches .* images/s, loss ",
        r"train: epoch 1/\d+ done in .*val/acc ",
        r"evaluate: predict: 1/\d+ batches",
    ):
        assert re.search(progress, first), progress  # fmt: skip

    metrics = json.loads((project / "reports/metrics.json").read_text())
    for name in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "specificity_macro"):
        assert 0.0 <= metrics["test"][name] <= 1.0
    card = json.loads((project / "data/split/card.json").read_text())
    assert metrics["num_test_samples"] == card["totals"]["test"]
    source_card = json.loads((project / "data/raw/card.json").read_text())
    assert card["source_card"] == source_card
    assert source_card["totals"] == {"all": 84} and card["images"] == 84
    assert card["leakage"]["action"] == "report"
    assert (project / "data/split/leakage.png").read_bytes()[:4] == b"\x89PNG"
    assert (project / "reports/confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert (project / "models/best.ckpt").is_file()
    # Every metric with its bootstrap interval; the predictions; occlusion pictures and maps.
    assert {"top2_accuracy", "f1_weighted", "specificity_weighted"} <= set(metrics["test"])
    for name in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "specificity_macro"):
        assert metrics["ci"][name]["low"] <= metrics["test"][name] <= metrics["ci"][name]["high"]
    assert len(metrics["confusion_matrix_normalized"]) == 7
    with (project / "reports/predictions.csv").open() as f:
        predictions = list(csv.DictReader(f))
    assert len(predictions) == metrics["num_test_samples"]
    assert set(predictions[0]) == {
        "path",
        "label",
        "predicted",
        *(f"p_{c}" for c in metrics["classes"]),
    }
    right = sum(p["label"] == p["predicted"] for p in predictions) / len(predictions)
    assert right == pytest.approx(metrics["test"]["accuracy"])
    assert metrics["occlusion"]["window"] == 8 and metrics["occlusion"]["faces"] >= 7
    for picture in ("overlays.png", "mean_maps.png"):
        assert (project / "reports/occlusion" / picture).read_bytes()[:4] == b"\x89PNG"
    shown = dvc("metrics", "show", "--json", cwd=project).stdout
    assert '"ci"' in shown and '"top2_accuracy"' in shown
    assert '"per_class"' not in shown  # the headline (scores.json); metrics.json has the rest
    with (project / "reports/train_curves.csv").open() as f:
        curves = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in curves] == list(range(len(curves))) and curves
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr"} <= set(curves[0])
    assert all(float(r["epoch_s"]) > 0 and float(r["images_per_s"]) > 0 for r in curves)
    plots = dvc("plots", "show", "--json", cwd=project).stdout
    for picture in ("confusion_matrix.png", "occlusion/overlays.png", "occlusion/mean_maps.png"):
        assert f"reports/{picture}" in plots
    for curve in ("Accuracy per epoch", "Loss per epoch", "Test confusion matrix"):
        assert curve in plots  # drawn by DVC from train_curves.csv and predictions.csv

    # The MLflow run and the DVC outputs point to each other.
    train = json.loads((project / "reports/train.json").read_text())
    client, runs = all_runs(project)
    assert [r.info.run_id for r in runs] == [train["mlflow_run_id"]]
    run = runs[0]
    assert run.data.params["optimizer._target_"] == "torch.optim.SGD"
    assert run.data.params["model.name"] == "resnet34"
    # Its name says what ran and where; params.yaml's other choices are tags, not in the name.
    assert re.fullmatch(
        r"resnet34 sgdm seed\d+ · dvc \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", run.info.run_name
    )
    assert not [k for k in run.data.params if k.startswith("config/")]  # the config once, not twice
    assert {"train/loss", "train/loss_step", "val/acc", "test/accuracy"} <= set(run.data.metrics)
    assert run.data.metrics["test/accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert run.data.tags["fer.metrics_path"].endswith("reports/metrics.json")
    assert run.data.tags["data.name"] == "synthetic"
    assert "data.dvc_md5.data/faces" in run.data.tags  # the DVC hash of the faces it trained on
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"reports", "dataset"} <= artifacts and "last" not in artifacts  # weights only
    # Its MLflow model: a logged model whose source is the run, the test metrics linked to it,
    # registered from it (the package stage); reports/package.json names it.
    (model,) = client.search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
    )
    assert model.name == "model" and str(model.status).endswith("READY")
    assert "test/accuracy" in {m.key for m in model.metrics}
    packaged = json.loads((project / "reports/package.json").read_text())
    assert packaged["model_id"] == model.model_id and packaged["mlflow_run_id"] == run.info.run_id
    version = client.get_model_version("fer-pipeline", packaged["registered_version"])
    assert version.source == f"models:/{model.model_id}"
    assert version.tags["test_accuracy"] == f"{metrics['test']['accuracy']:.4f}"
    record = torch.load(project / "models/best.ckpt", weights_only=True)["fer_preprocessing"]
    assert str(record["input_size"]) == run.data.params["loader.input_size"]
    assert record["classes"] == metrics["classes"]
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "dataset")}
    assert {"dataset/card.json", "dataset/leakage.png", "dataset/leakage.json"} <= logged
    assert {"dataset/crop_report.csv", "dataset/crop_summary.json"} <= logged
    reported = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert reported == {"reports/metrics.json", "reports/predictions.csv"}
    occlusion = {a.path for a in client.list_artifacts(run.info.run_id, "occlusion")}
    assert occlusion == {"occlusion/occlusion_maps.npz"}
    # Pictures and the per-class table at the top, where MLflow's compare view finds them.
    pictures = ("confusion_matrix.png", "occlusion_mean_maps.png", "occlusion_overlays.png")
    assert {*pictures, "per_class.json"} <= artifacts
    local = client.download_artifacts(run.info.run_id, "per_class.json", str(tmp_path))
    table = json.loads(Path(local).read_text())
    assert table["columns"][0] == "class" and len(table["data"]) == len(metrics["classes"])
    assert not [k for k in run.data.metrics if k.startswith("test_class/")]  # a table, not metrics
    assert "test_ci/accuracy_low" in run.data.metrics and "occlusion/flip_rate" in run.data.metrics
    # The run names the exact data it saw: the card's content digest, as an MLflow dataset input.
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "synthetic"
    assert dataset_input.dataset.digest == card["digest"] == run.data.tags["data.digest"]
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"
    # The run's MLflow model holds its best checkpoint; it is the registered champion, tested.
    in_model = {a.path for a in client.list_artifacts(run.info.run_id, "model/artifacts")}
    assert in_model == {"model/artifacts/best.ckpt"}  # runs:/<run>/model is its logged model
    champion = client.get_model_version_by_alias("fer-pipeline", "champion")
    assert champion.run_id == run.info.run_id and champion.source == f"models:/{model.model_id}"
    assert champion.tags["model"] == "resnet34" and champion.tags["optimizer"] == "sgdm"
    assert champion.tags["data.digest"] == card["digest"]
    assert float(champion.tags["test_accuracy"]) == pytest.approx(
        metrics["test"]["accuracy"], abs=1e-4
    )
    history = client.get_metric_history(run.info.run_id, "val/acc")
    assert len(history) >= 1

    # Nothing changed: nothing runs.
    again = dvc("repro", cwd=project).stdout
    assert stages_run(again) == set() and "up to date" in again

    # One training parameter changed, and its run stopped: Ctrl-C, then a kill (a pre-empted node).
    # Each time the outputs the user had stay as they were, and no temporary is left; the next
    # `dvc repro` resumes the run, runs only train and evaluate, and leaves no run RUNNING.
    kept = outputs(project)
    trainer = (project / "conf/trainer/cpu.yaml").read_text()
    edit_yaml(project / "conf/trainer/cpu.yaml", {"max_epochs": 4})
    last = project / "checkpoints/last.ckpt"
    for sig in (signal.SIGINT, signal.SIGKILL):
        saved = last.stat().st_mtime_ns if last.exists() else None
        repro = start_dvc_repro(project)
        wait_until(lambda saved=saved: last.exists() and last.stat().st_mtime_ns != saved, repro)
        os.killpg(repro.pid, sig)  # the whole process group, as a terminal or a scheduler does
        repro.communicate(timeout=120)
        assert repro.returncode != 0
        assert outputs(project) == kept, sig
        assert not list(project.glob(".models.*")) and not list(project.glob("reports/.*.tmp"))
    changed = dvc("repro", cwd=project).stdout
    assert stages_run(changed) == {"train", "package", "evaluate"}
    assert "train: resuming run" in changed
    _, runs = all_runs(project)
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    assert json.loads((project / "reports/train.json").read_text())["mlflow_run_id"] in {
        r.info.run_id for r in runs
    }
    assert not last.exists()

    # A failing evaluate keeps the previous report.
    kept = outputs(project)
    evaluation = (project / "conf/evaluation.yaml").read_text()
    edit_yaml(project / "conf/evaluation.yaml", {"evaluation": {"bootstrap": {"resamples": 0}}})
    failed = dvc("repro", cwd=project, check=False)
    assert failed.returncode != 0 and "resamples must be >= 1" in failed.stderr + failed.stdout
    assert outputs(project) == kept
    (project / "conf/evaluation.yaml").write_text(evaluation)

    # Back to the first training config, as an experiment on the committed pipeline: DVC's
    # run-cache (kept: outputs are not `persist`) restores those results without training again.
    (project / "conf/trainer/cpu.yaml").write_text(trainer)
    sh("git", "add", "-A", cwd=project)
    sh("git", "commit", "-qm", "pipeline", cwd=project)
    back = dvc("exp", "run", "-S", "optimizer.choice=sgdm", cwd=project).stdout
    assert stages_run(back) == set() and "Stage 'train' is cached - skipping run" in back
    _, runs = all_runs(project)
    assert [r.data.tags["fer.optimizer"] for r in runs] == ["sgdm", "sgdm"]  # no new run

    # `make experiments`: the experiments without the dependency hashes, readable at 200 columns.
    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    drop = re.search(r"dvc exp show --drop '([^']+)'", makefile)[1].replace("$$", "$")
    header = dvc("exp", "show", "--csv", "--drop", drop, cwd=project).stdout.splitlines()[0]
    assert set(header.split(",")) - {"rev", "typ", "parent"} == {
        "Experiment", "Created", "best_epoch", "val_acc_best", "test.accuracy", "test.f1_macro",
        "test.specificity_macro", "data.choice", "face.detector", "model.choice",
        "optimizer.choice", "optimizer.lr", "scheduler.choice", "trainer.choice",
        "trainer.max_epochs", "loader.batch_size", "loss.label_smoothing", "seed",
    }  # fmt: skip
    # Any value, as an experiment: it lands in params.yaml, the run, and `make experiments`.
    tried = dvc("exp", "run", "-S", "trainer.max_epochs=2", "-S", "optimizer.lr=0.0003",
                cwd=project).stdout  # fmt: skip
    assert stages_run(tried) == {"train", "package", "evaluate"}
    shown = dvc("exp", "show", "--csv", "--drop", drop, cwd=project).stdout.splitlines()
    columns = shown[0].split(",")
    row = dict(zip(columns, shown[1].split(","), strict=True))  # the workspace: the new experiment
    assert (row["trainer.max_epochs"], row["optimizer.lr"]) == ("2", "0.0003")
    client, runs = all_runs(project)
    newest = max(runs, key=lambda r: r.info.start_time)
    assert newest.data.params["optimizer.lr"] == "0.0003"
    assert len(client.get_metric_history(newest.info.run_id, "val/acc")) == 2  # two epochs

    # Training only trains: editing the annotator, a detector or the app leaves it up to date.
    for code in ("inference/annotate.py", "faces/detectors.py", "app/server.py"):
        with (project / "fer_pipeline" / code).open("a") as f:
            f.write("# an edit\n")
    status = json.loads(dvc("status", "--json", cwd=project).stdout)
    assert "train" not in status and "package" in status, status


OUTPUTS = ("models", "reports")


def outputs(project: Path) -> dict[str, str]:
    """MD5 of every file the train and evaluate stages wrote (models/, reports/)."""
    return {
        str(path.relative_to(project)): hashlib.md5(path.read_bytes()).hexdigest()
        for folder in OUTPUTS
        for path in sorted((project / folder).rglob("*"))
        if path.is_file() and path.name != ".gitignore"
    }


def start_dvc_repro(project: Path) -> subprocess.Popen:
    return start_in_own_group([f"{BIN}/dvc", "repro"], project, project_env())


def assert_one_line_error(result, *fragments: str) -> None:
    """``result``: a finished subprocess, or ``(status, stdout, stderr)`` from ``call_main``."""
    if isinstance(result, tuple):
        result = subprocess.CompletedProcess([], result[0], result[1], result[2])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_data_folder(project):
    assert_one_line_error(
        run_module("crop", cwd=project, check=False), "data/raw", "does not exist"
    )
    assert not (project / "data/faces").exists()


def test_empty_data_folder(project):
    (project / "data/raw").mkdir(parents=True)
    (project / "data/raw/dataset.json").write_text('{"name": "x", "classes": ["a", "b"]}')
    assert_one_line_error(run_module("crop", cwd=project, check=False), "data/raw", "empty")


def test_bad_images_get_an_outcome_not_a_crash(project):
    """Unreadable, empty, 16-bit, RGBA, tiny, faceless and many-face images: each is recorded in
    the crop report; the stage finishes."""
    import numpy as np
    from skimage import data as samples

    from tests.conftest import two_faces

    run_module("prepare", cwd=project)
    raw = project / "data/raw/happy"
    victim = sorted(raw.iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:40])  # truncated PNG
    (raw / "empty.png").write_bytes(b"")
    cv2.imwrite(
        str(raw / "sixteen.png"),
        cv2.cvtColor(samples.astronaut(), cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257,
    )
    rgba = np.dstack([samples.astronaut(), np.full((512, 512), 255, np.uint8)])
    cv2.imwrite(str(raw / "alpha.png"), rgba)
    cv2.imwrite(str(raw / "tiny.png"), np.zeros((10, 10), np.uint8))
    cv2.imwrite(str(raw / "coffee.png"), samples.coffee())
    cv2.imwrite(str(raw / "two.png"), two_faces()[..., ::-1])
    out = run_module("crop", "face.detector=haar", cwd=project).stdout
    with (project / "data/faces/crop_report.csv").open() as f:
        report = {row["source"]: row for row in csv.DictReader(f)}
    assert len(report) == 84 + 6
    outcome = {
        name: report[f"happy/{name}"]["outcome"]
        for name in ("empty.png", "sixteen.png", "alpha.png", "tiny.png", "coffee.png", "two.png")
    }
    assert outcome == {
        "empty.png": "unreadable",
        "sixteen.png": "aligned",
        "alpha.png": "aligned",
        "tiny.png": "too_small",
        "coffee.png": "no_face",
        "two.png": "aligned",
    }
    assert report[f"happy/{victim.name}"]["outcome"] == "unreadable"
    assert report["happy/two.png"]["found"] == "3"  # two faces and her hair at the edge
    assert report["happy/empty.png"]["action"] == "dropped"
    summary = json.loads((project / "data/faces/crop_summary.json").read_text())
    assert summary["outcomes"]["unreadable"] == 2 and summary["images"] == 90
    assert "images without a face:" in out
    # One report row per detection of two.png: the largest face kept (its file written), the other
    # face skipped, the eyeless patch rejected.
    with (project / "data/faces/crop_report.csv").open() as f:
        two = [row for row in csv.DictReader(f) if row["source"] == "happy/two.png"]
    assert [r["face"] for r in two] == ["0", "1", "2"]
    assert sorted((r["action"], r["verified"]) for r in two) == [
        ("kept", "yes"), ("rejected", "no"), ("skipped", "yes"),
    ]  # fmt: skip
    assert summary["faces_written"] == summary["files_written"] - summary["actions"]["center_crop"]


def test_missing_retinaface_weights_leave_previous_output_intact(project, tmp_path):
    run_module("prepare", cwd=project)
    run_module("crop", cwd=project)
    before = sorted(p.name for p in (project / "data/faces/happy").iterdir())
    env_home = {"TORCH_HOME": str(tmp_path)}
    result = run_module(
        "crop",
        "face.detector=retinaface",
        "face.retinaface.weights_path=/nonexistent/r.pth",
        cwd=project,
        check=False,
        env=env_home,
    )
    assert_one_line_error(result, "face.retinaface.weights_path /nonexistent/r.pth does not exist")
    assert sorted(p.name for p in (project / "data/faces/happy").iterdir()) == before
    assert not list((project / "data").glob(".faces*"))  # no temporary left behind


def test_unknown_config_value(project, call_main):
    from fer_pipeline import prepare, train

    assert_one_line_error(call_main(prepare.main, "model=resnet99"), "model/resnet99")
    assert_one_line_error(
        call_main(train.main, "-m", "optimizer=sgdm,adagrad"), "optimizer/adagrad"
    )


def test_bad_occlusion_settings_stop_training_at_start(project, call_main):
    from fer_pipeline import evaluate, train

    # No data prepared: the settings are checked before anything is read.
    result = call_main(train.main, "evaluation.occlusion.window=64")
    assert_one_line_error(result, "evaluation.occlusion.window 64 is larger than the 32 px faces")
    result = call_main(evaluate.main, "evaluation.occlusion.stride=0")
    assert_one_line_error(result, "evaluation.occlusion.stride must be >= 1, got 0")
    assert not (project / "models").exists() and not (project / "mlflow.db").exists()


def test_label_outside_class_list(project):
    run_module("prepare", cwd=project)
    shutil.copytree(project / "data/raw/fear", project / "data/raw/contempt")
    assert_one_line_error(run_module("crop", cwd=project, check=False), "'contempt'", "class list")


def test_label_outside_class_list_in_manifest(prepared_project, call_main):
    from fer_pipeline import train

    manifest = prepared_project / "data/split/manifest.csv"
    lines = manifest.read_text().splitlines()
    lines[1] = re.sub(r",\d+,", ",9,", lines[1], count=1)
    manifest.write_text("\n".join(lines) + "\n")
    assert_one_line_error(call_main(train.main), "manifest.csv line 2", "label 9")
    assert not (prepared_project / "models").exists()
    assert not (prepared_project / "mlflow.db").exists()  # no run opened for data that cannot train


def test_fer2013_csv_through_dvc_repro(project):
    """A real-format FER2013 (the competition CSV) through the data stages; the card counts the
    CSV. (Training on what they write: test_dvc_repro_end_to_end.)"""
    from collections import Counter

    from tests.data.test_fer2013 import write_csv

    usages = ["Training"] * 6 + ["PublicTest"] * 2 + ["PrivateTest"] * 2
    rows = [(label, usage) for label in range(7) for usage in usages]
    write_csv(project / "data/external/fer2013.csv", rows=rows)
    edit_yaml(project / "params.yaml", {"data": "fer2013", "face": {"detector": "none"}})
    sh("git", "init", "-q", cwd=project)
    dvc("init", "-q", cwd=project)
    out = dvc("repro", "split", cwd=project)
    assert stages_run(out.stdout) == {"prepare", "crop", "split"}
    assert "warning:" in out.stderr and "not the published f8428a1e" in out.stderr

    source = json.loads((project / "data/raw/card.json").read_text())
    expected = Counter(
        ({"Training": "train", "PublicTest": "val", "PrivateTest": "test"}[u], e) for e, u in rows
    )
    for split, counts in source["counts"].items():
        assert list(counts.values()) == [expected[(split, label)] for label in range(7)]
    assert (
        source["origin"]["md5"]
        == hashlib.md5((project / "data/external/fer2013.csv").read_bytes()).hexdigest()
    )
    final = json.loads((project / "data/split/card.json").read_text())
    assert final["totals"] == {"train": 42, "val": 14, "test": 14}  # the official split, kept
    assert final["name"] == "fer2013"


def test_offline_without_data_says_what_to_put_where(project, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path))  # no kaggle.json: nothing is fetched
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    result = run_module("prepare", "data=fer2013", cwd=project, check=False)
    assert_one_line_error(
        result,
        "data/external holds no FER2013 and the download failed (no Kaggle API token",
        "put fer2013.csv",
    )
    assert not (project / "data/raw").exists()


def test_bad_image_in_a_folder_dataset(project, tmp_path):
    from tests.data.test_labelled_folder import bad_images, odd_images

    odd_images(project / "data/external/faces/happy")
    odd_images(project / "data/external/faces/sad")
    bad_images(project / "data/external/faces/fear")
    result = run_module("prepare", "data=folder", cwd=project, check=False)
    assert_one_line_error(result, "data/external/faces/fear/", "data.on_bad_image=skip")
    assert not (project / "data/raw").exists()
    result = run_module("prepare", "data=folder", "data.on_bad_image=skip", cwd=project)
    assert "skipped 3 bad images" in result.stderr and "data/raw/skipped.csv" in result.stderr
    card = json.loads((project / "data/raw/card.json").read_text())
    assert card["totals"] == {"all": 15} and card["origin"]["skipped"] == 3


def test_dvc_repro_with_each_detector(project, tmp_path):
    """The detectors run as DVC stages; the per-image report is in data/faces."""
    import torch

    from tests.faces.test_detectors import retinaface_net

    weights = tmp_path / "retinaface.pth"
    torch.save(retinaface_net().state_dict(), weights)
    edit_yaml(
        project / "conf/face.yaml",
        {"face": {"retinaface": {"weights_path": str(weights), "max_size": 128}}},
    )
    sh("git", "init", "-q", cwd=project)
    dvc("init", "-q", cwd=project)
    # none: test_fer2013_csv_through_dvc_repro; auto's choice: tests/faces/test_detectors.py.
    for detector in ("haar", "retinaface"):
        edit_yaml(project / "params.yaml", {"face": {"detector": detector}})
        out = dvc("repro", "split", cwd=project).stdout
        assert "crop" in stages_run(out), out
        summary = json.loads((project / "data/faces/crop_summary.json").read_text())
        assert summary["detector"] == detector and summary["images"] == 84
        assert (project / "data/split/manifest.csv").is_file()
    assert stages_run(dvc("repro", "split", cwd=project).stdout) == set()  # nothing changed
