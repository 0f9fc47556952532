"""Test a trained model and write everything a reader of the result needs into a folder
(:mod:`fer_pipeline.tracking.test_report` logs it to MLflow).

Into ``out_dir``: ``metrics.json`` (every metric, bootstrap intervals, per class, confusion
matrix, occlusion summary), ``scores.json`` (its headline), ``confusion_matrix.png``,
``predictions.csv`` (path, label and class probabilities of every test face: any metric can be
recomputed without the model), ``occlusion/overlays.png`` and ``occlusion/mean_maps.png``, and
``occlusion_maps.npz`` (the raw maps).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from fer_pipeline.data.datamodule import FaceDataset, FERDataModule
from fer_pipeline.devices import resolve_device
from fer_pipeline.evaluation.confusion import plot_confusion_matrix
from fer_pipeline.evaluation.metrics import SUMMARY, bootstrap_ci, classification_report
from fer_pipeline.evaluation.occlusion import occlusion_sensitivity, sample_per_class
from fer_pipeline.evaluation.occlusion_figures import plot_class_means, plot_overlays
from fer_pipeline.evaluation.tta import predict_proba
from fer_pipeline.io import atomic_file, write_json
from fer_pipeline.models.log_progress import LogProgress
from fer_pipeline.models.module import FERModule
from fer_pipeline.progress import on_terminal, track

WEIGHTED = ("precision_weighted", "recall_weighted", "f1_weighted", "specificity_weighted")
HEADLINE = (*SUMMARY, "top2_accuracy", *WEIGHTED)
OCCLUSION_DIR = "occlusion"
OCCLUSION_MAPS = "occlusion_maps.npz"
SCORES = "scores.json"  # the headline of metrics.json, for `dvc metrics show` / `dvc exp show`


class TestTimeAugmented(pl.LightningModule):
    """``module``'s prediction averaged over the ``tta`` views of each face (see
    :mod:`fer_pipeline.evaluation.tta`), for Lightning's prediction loop."""

    def __init__(self, module: FERModule, tta: str = "none", crop: float = 0.875):
        super().__init__()
        self.module, self.tta, self.crop = module, tta, crop

    def predict_step(self, batch, batch_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        return predict_proba(self.module, x, self.tta, self.crop), y


def predict(
    module: FERModule, loader, accelerator: str = "auto", tta: str = "none", crop: float = 0.875
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities ``(N, K)`` and labels ``(N,)`` of every batch in ``loader``, with a progress
    bar, averaged over the ``tta`` views of each face."""
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=on_terminal(),  # Lightning's bar draws on a terminal only
        callbacks=[] if on_terminal() else [LogProgress("evaluate: predict")],
    )
    batches = trainer.predict(TestTimeAugmented(module, tta, crop), loader)
    probs = torch.cat([p for p, _ in batches]).float().cpu()
    labels = torch.cat([y for _, y in batches]).cpu()
    return probs, labels


def progress_of(what: str):
    """Progress of one step of the report (the evaluate stage runs for minutes): a bar on a
    terminal, lines in a log."""
    return lambda steps: track(steps, f"evaluate: {what}", unit="steps")


def write_predictions(
    path: Path, paths: list[str], labels: torch.Tensor, probs: torch.Tensor, classes: list[str]
) -> None:
    """``path,label,predicted,p_<class>...`` per test face, labels as class names."""
    with atomic_file(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "predicted", *(f"p_{c}" for c in classes)])
        for name, label, p in zip(paths, labels.tolist(), probs.tolist(), strict=True):
            best = max(range(len(classes)), key=p.__getitem__)
            writer.writerow([name, classes[label], classes[best], *(f"{v:.6f}" for v in p)])


def occlusion_report(
    module: FERModule,
    dataset: FaceDataset,
    classes: list[str],
    settings,
    out_dir: Path,
    mean: float,
    std: float,
    title: str,
) -> dict:
    """Occlusion maps of a seeded sample of ``faces_per_class`` test faces per class: overlays of
    the first ``examples_per_class``, the mean maps per class, and the raw maps. Returns the
    summary that goes into ``metrics.json``."""
    chosen = sample_per_class(dataset.labels, settings.faces_per_class, settings.seed)
    images = torch.stack([dataset.transform(image=dataset.images[i])["image"] for i in chosen])
    labels = torch.tensor([dataset.labels[i] for i in chosen])
    maps = occlusion_sensitivity(
        module,
        images,
        labels,
        window=settings.window,
        stride=settings.stride,
        fill=settings.fill,
        batch_size=settings.batch_size,
        progress=progress_of("occlusion"),
    )
    faces = (images * std + mean).clamp(0, 1).mean(dim=1).numpy()  # gray, [0, 1], for display
    drop, flip = maps.drop.numpy(), maps.flip.numpy()
    k = len(classes)
    counts = [int((labels == c).sum()) for c in range(k)]
    per_class_mean = {
        name: np.stack(
            [a[labels.numpy() == c].mean(0) if counts[c] else np.zeros_like(a[0]) for c in range(k)]
        )
        for name, a in (("face", faces), ("drop", drop), ("flip", flip))
    }
    per_row = settings.examples_per_class
    examples = [int(j) for c in range(k) for j in np.flatnonzero(labels.numpy() == c)[:per_row]]
    folder = out_dir / OCCLUSION_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_file(folder / "overlays.png") as tmp:
        plot_overlays(
            faces[examples],
            drop[examples],
            labels[examples].tolist(),
            maps.pred[examples].tolist(),
            maps.prob[examples].tolist(),
            classes,
            tmp,
            title,
        )
    with atomic_file(folder / "mean_maps.png") as tmp:
        plot_class_means(
            per_class_mean["face"],
            per_class_mean["drop"],
            per_class_mean["flip"],
            counts,
            classes,
            tmp,
            title,
        )
    with atomic_file(out_dir / OCCLUSION_MAPS) as tmp, tmp.open("wb") as f:
        np.savez_compressed(
            f,
            paths=np.array([dataset.paths[i] for i in chosen]),
            labels=labels.numpy(),
            preds=maps.pred.numpy(),
            probs=maps.prob.numpy(),
            faces=faces,
            drop=drop,
            flip=flip,
            classes=np.array(classes),
            window=settings.window,
            stride=settings.stride,
            fill=settings.fill,
        )
    return {
        "window": settings.window,
        "stride": settings.stride,
        "fill": settings.fill,
        "faces": len(chosen),
        "flip_rate": float(maps.window_flip.mean()),
        "per_class": {
            classes[c]: {
                "faces": counts[c],
                "flip_rate": float(maps.window_flip[labels == c].mean()) if counts[c] else 0.0,
                "max_mean_drop": float(per_class_mean["drop"][c].max()) if counts[c] else 0.0,
            }
            for c in range(k)
        },
    }


def write_test_report(
    module: FERModule,
    datamodule: FERDataModule,
    out_dir: Path | str,
    evaluation,
    accelerator: str = "auto",
) -> dict:
    """Evaluate ``module`` on the test split as ``evaluation`` (the ``evaluation`` config) says and
    write the files listed in the module docstring into ``out_dir``. Returns the content of
    ``metrics.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    datamodule.setup("test")
    classes = datamodule.classes
    test = datamodule.splits["test"]
    probs, labels = predict(
        module, datamodule.test_dataloader(), accelerator, evaluation.tta, evaluation.tta_crop
    )
    report = classification_report(probs, labels, classes)
    boot = evaluation.bootstrap
    intervals = bootstrap_ci(
        probs, labels, len(classes), boot.resamples, boot.level, boot.seed,
        progress=progress_of("bootstrap"),
    )  # fmt: skip
    metrics = {
        "test": {name: report[name] for name in HEADLINE},
        "ci": intervals,
        "bootstrap": {"resamples": boot.resamples, "level": boot.level, "seed": boot.seed},
        "tta": evaluation.tta,
        "num_test_samples": report["num_samples"],
        "per_class": report["per_class"],
        "confusion_matrix": report["confusion_matrix"],
        "confusion_matrix_normalized": report["confusion_matrix_normalized"],
        "classes": classes,
        "dataset": datamodule.dataset_name,
    }
    title = f"{datamodule.dataset_name} test, accuracy {report['accuracy']:.3f}"
    write_predictions(out_dir / "predictions.csv", test.paths, labels, probs, classes)
    with atomic_file(out_dir / "confusion_matrix.png") as tmp:
        plot_confusion_matrix(report["confusion_matrix"], classes, tmp, title)
    if evaluation.occlusion.enabled:
        module.to(resolve_device(accelerator, fallback=True))
        metrics["occlusion"] = occlusion_report(
            module, test, classes, evaluation.occlusion, out_dir,
            datamodule.mean, datamodule.std, title,
        )  # fmt: skip
    write_json(out_dir / "metrics.json", metrics)
    write_json(out_dir / SCORES, scores(metrics))
    return metrics


def scores(metrics: dict) -> dict:
    """The headline of ``metrics.json`` (what DVC shows as the stage's metrics): the test scores,
    their bootstrap intervals and the occlusion flip rate; no per-class or per-cell numbers."""
    summary = {
        "test": metrics["test"],
        "ci": {name: {"low": i["low"], "high": i["high"]} for name, i in metrics["ci"].items()},
    }
    if "occlusion" in metrics:
        summary["occlusion_flip_rate"] = metrics["occlusion"]["flip_rate"]
    return summary
