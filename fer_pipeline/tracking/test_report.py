"""Log a test report (:mod:`fer_pipeline.evaluation.report`'s folder) to the run that trained the
model, so that the MLflow UI shows it well:

- ``test/*``, ``test_ci/*`` and ``occlusion/flip_rate`` as metrics (the headline numbers only);
- the per-class scores as one table, ``per_class.json`` (MLflow's table artifact), not as metrics;
- the pictures at the top of the run's artifacts (``confusion_matrix.png``,
  ``occlusion_mean_maps.png``, ``occlusion_overlays.png``), where the runs-comparison view puts
  them side by side;
- ``reports/metrics.json`` and ``reports/predictions.csv``, ``occlusion/occlusion_maps.npz``;
- tags pointing at the local copies, and the test accuracy on the run's registered model version.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from PIL import Image

from fer_pipeline.evaluation.report import OCCLUSION_DIR, OCCLUSION_MAPS
from fer_pipeline.tracking import tags
from fer_pipeline.tracking.registry import tag_versions

PER_CLASS_TABLE = "per_class.json"
PICTURES = {  # artifact name in the run: file in the report folder
    "confusion_matrix.png": "confusion_matrix.png",
    "occlusion_mean_maps.png": f"{OCCLUSION_DIR}/mean_maps.png",
    "occlusion_overlays.png": f"{OCCLUSION_DIR}/overlays.png",
}


def per_class_table(metrics: dict) -> pd.DataFrame:
    """One row per class: ``class``, then its scores (precision, recall, f1, specificity, support)."""
    return pd.DataFrame([{"class": c, **scores} for c, scores in metrics["per_class"].items()])


def log_test_report(
    client: MlflowClient, run_id: str, metrics: dict, out_dir: Path, model_id: str | None = None
) -> None:
    """Log ``metrics`` (the content of ``metrics.json``) and the files of ``out_dir``, as listed
    in the module docstring, to the run ``run_id``; the metrics are linked to its logged model
    ``model_id`` when given (shown on the model's page and in the experiment's Models tab)."""
    out_dir = Path(out_dir)
    values = {f"test/{name}": v for name, v in metrics["test"].items()}
    for name, interval in metrics["ci"].items():
        values |= {f"test_ci/{name}_low": interval["low"], f"test_ci/{name}_high": interval["high"]}
    if "occlusion" in metrics:
        values["occlusion/flip_rate"] = metrics["occlusion"]["flip_rate"]
    now = int(time.time() * 1000)
    client.log_batch(
        run_id, metrics=[Metric(k, float(v), now, 0, model_id=model_id) for k, v in values.items()]
    )
    client.log_table(run_id, per_class_table(metrics), PER_CLASS_TABLE)
    for name, local in PICTURES.items():
        if (out_dir / local).is_file():
            with Image.open(out_dir / local) as picture:
                client.log_image(run_id, picture.convert("RGB"), artifact_file=name)
    for name in ("metrics.json", "predictions.csv"):
        client.log_artifact(run_id, str(out_dir / name), "reports")
    if "occlusion" in metrics:
        client.log_artifact(run_id, str(out_dir / OCCLUSION_MAPS), OCCLUSION_DIR)
    client.set_tag(run_id, tags.METRICS_PATH, str(out_dir / "metrics.json"))
    client.set_tag(run_id, tags.CONFUSION_PATH, str(out_dir / "confusion_matrix.png"))
    accuracy, ci = metrics["test"]["accuracy"], metrics["ci"].get("accuracy")
    scores = {"test_accuracy": f"{accuracy:.4f}"}
    if ci:
        scores["test_accuracy_ci95"] = f"{ci['low']:.4f}-{ci['high']:.4f}"
    tag_versions(client, run_id, scores)  # the run's registered model, if it has one
