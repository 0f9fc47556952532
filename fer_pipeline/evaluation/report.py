"""Test a trained model: predictions, metrics, confusion matrix, written to a folder and to MLflow."""

from __future__ import annotations

import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from fer_pipeline.data.datamodule import FERDataModule
from fer_pipeline.evaluation.confusion import plot_confusion_matrix
from fer_pipeline.evaluation.metrics import classification_report
from fer_pipeline.io import atomic_file, write_json
from fer_pipeline.models.module import FERModule

SUMMARY = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "specificity_macro")


def predict(
    module: FERModule, loader, accelerator: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities ``(N, K)`` and labels ``(N,)`` of every batch in ``loader``."""
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    batches = trainer.predict(module, loader)
    probs = torch.cat([p for p, _ in batches]).float()
    labels = torch.cat([y for _, y in batches])
    return probs, labels


def write_test_report(
    module: FERModule,
    datamodule: FERDataModule,
    out_dir: Path | str,
    run_id: str | None = None,
    tracking_uri: str | None = None,
    accelerator: str = "auto",
) -> dict:
    """Evaluate ``module`` on the test split; write ``metrics.json`` and ``confusion_matrix.png``
    into ``out_dir`` and, with ``run_id``, log both and ``test/*`` metrics to that MLflow run."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    datamodule.setup("test")
    probs, labels = predict(module, datamodule.test_dataloader(), accelerator)
    report = classification_report(probs, labels, datamodule.classes)
    metrics = {
        "test": {name: report[name] for name in SUMMARY},
        "num_test_samples": report["num_samples"],
        "per_class": report["per_class"],
        "confusion_matrix": report["confusion_matrix"],
        "classes": datamodule.classes,
        "dataset": datamodule.dataset_name,
    }
    metrics_path = out_dir / "metrics.json"
    figure_path = out_dir / "confusion_matrix.png"
    write_json(metrics_path, metrics)
    with atomic_file(figure_path) as tmp:
        title = f"{datamodule.dataset_name} test, accuracy {report['accuracy']:.3f}"
        plot_confusion_matrix(report["confusion_matrix"], datamodule.classes, tmp, title)
    if run_id:
        client = MlflowClient(tracking_uri)
        now = int(time.time() * 1000)
        values = {f"test/{name}": report[name] for name in SUMMARY}
        for cls, scores in report["per_class"].items():
            values |= {f"test_class/{cls}/{name}": float(v) for name, v in scores.items()}
        client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in values.items()])
        client.log_artifact(run_id, str(metrics_path), "reports")
        client.log_artifact(run_id, str(figure_path), "reports")
        client.set_tag(run_id, "fer.metrics_path", str(metrics_path))
        client.set_tag(run_id, "fer.confusion_matrix_path", str(figure_path))
    return metrics
