"""Stage ``train``: fit the configured model on train/val, checkpoint it, record an MLflow run.

    python -m fer_pipeline.train [hydra overrides]              # one run (the DVC stage)
    python -m fer_pipeline.train -m optimizer=sgdm,adam,rmsprop  # a sweep: one run per value,
                                                                 # grouped under a parent run

A single run writes ``paths.models`` (``best.ckpt``, ``last.ckpt``) and ``reports/train.json`` (the
MLflow run id and best validation accuracy). A sweep's jobs write into their Hydra job folders and,
with ``evaluate_after_fit`` (the default), test themselves into their own MLflow runs.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

from fer_pipeline import config as config_lib
from fer_pipeline.data.card import CARD_NAME, read_card
from fer_pipeline.data.datamodule import FERDataModule, build_datamodule
from fer_pipeline.errors import PipelineError, exit_on_error
from fer_pipeline.evaluation.report import check_evaluation, write_test_report
from fer_pipeline.io import atomic_dir, write_json
from fer_pipeline.models.module import FERModule, build_net
from fer_pipeline.tracking.dataset import log_dataset
from fer_pipeline.tracking.provenance import dvc_hashes, file_md5, flat_params, git_commit
from fer_pipeline.tracking.sweep import PARENT_RUN_ENV

CHOICE_GROUPS = ("data", "model", "optimizer", "scheduler", "trainer")
# Keys of the trainer config that FERModule takes; the rest are pytorch_lightning.Trainer arguments.
MODULE_SPEED_KEYS = ("channels_last", "compile", "compile_backend")


def class_weights(labels: list[int], num_classes: int) -> torch.Tensor:
    """Balanced loss weights ``N / (K * n_k)`` from training labels; 0 for a class never seen."""
    counts = torch.bincount(torch.tensor(labels), minlength=num_classes).float()
    return torch.where(counts > 0, counts.sum() / (counts * len(counts)), torch.zeros_like(counts))


def run_tags(
    cfg: DictConfig, datamodule: FERDataModule, choices: dict[str, str], card: dict
) -> dict[str, str]:
    """The run's tags: choices, git commit, and what data it read (``card``: the split's card)."""
    manifest = Path(cfg.paths.split) / "manifest.csv"
    tags = {f"fer.{group}": str(choices.get(group, "")) for group in CHOICE_GROUPS}
    tags |= {
        "fer.kind": "train",
        "git.commit": git_commit(),
        "data.name": datamodule.dataset_name,
        "data.classes": ",".join(datamodule.classes),
        **{f"data.size.{split}": str(n) for split, n in card["totals"].items()},
        "data.manifest_md5": file_md5(manifest),
        "data.digest": card["digest"],
    }
    for path, digest in dvc_hashes([cfg.paths.faces, cfg.paths.split]).items():
        tags[f"data.dvc_md5.{path}"] = digest
    if os.environ.get(PARENT_RUN_ENV):
        tags["mlflow.parentRunId"] = os.environ[PARENT_RUN_ENV]
    return tags


def build_module(cfg: DictConfig, datamodule: FERDataModule) -> FERModule:
    """The configured net in a FERModule (loss, optimizer, speed options); sets up ``fit`` data.
    A missing ImageNet weights file fails here, before any image is loaded."""
    in_channels = 1 if datamodule.grayscale else 3
    net = build_net(cfg.model, datamodule.num_classes, in_channels)
    datamodule.setup("fit")
    return FERModule(
        net,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.scheduler else None,
        classes=datamodule.classes,
        label_smoothing=cfg.loss.label_smoothing,
        class_weights=(
            class_weights(datamodule.splits["train"].labels, datamodule.num_classes)
            if cfg.loss.class_weights
            else None
        ),
        config=OmegaConf.to_container(cfg, resolve=True),
        in_channels=in_channels,
        **{key: cfg.trainer[key] for key in MODULE_SPEED_KEYS if key in cfg.trainer},
    )


def build_trainer(cfg: DictConfig, **kwargs) -> pl.Trainer:
    """``pytorch_lightning.Trainer`` from the ``trainer`` config, less the keys FERModule takes."""
    trainer_cfg = {k: v for k, v in cfg.trainer.items() if k not in MODULE_SPEED_KEYS}
    return instantiate(trainer_cfg, **kwargs)


def train(cfg: DictConfig) -> float:
    """Fit, checkpoint, log; return the best validation accuracy (what a sweeper maximises)."""
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    choices = dict(hydra_cfg.runtime.choices)
    check_evaluation(cfg)  # a bad occlusion window fails now, not after training
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)

    job_dir = Path(hydra_cfg.runtime.output_dir)
    models_dir = job_dir / "models" if multirun else Path(cfg.paths.models)
    reports_dir = job_dir / "reports" if multirun else Path(cfg.paths.reports)
    run_name = " ".join(str(choices.get(g)) for g in ("model", "optimizer")) + f" seed{cfg.seed}"
    card = read_card(Path(cfg.paths.split) / CARD_NAME)
    tags = run_tags(cfg, datamodule, choices, card)
    logger = instantiate(cfg.logger, run_name=run_name, tags=tags)
    logger.log_hyperparams(flat_params(cfg))
    log_dataset(logger.experiment, logger.run_id, card, cfg.paths.split, cfg.paths.faces)

    with atomic_dir(models_dir) as tmp_models:
        # Weights only: with Adam's state the fused net's checkpoint would be 3x larger (540 MB).
        checkpoint = ModelCheckpoint(
            dirpath=tmp_models,
            filename="best",
            monitor="val/acc",
            mode="max",
            save_last=True,
            save_weights_only=True,
            auto_insert_metric_name=False,
        )
        trainer = build_trainer(
            cfg, logger=logger, callbacks=[checkpoint], default_root_dir=str(job_dir)
        )
        trainer.fit(module, datamodule=datamodule)
        best_score = float(checkpoint.best_model_score or 0.0)
        best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
    # A sweep keeps its checkpoints in MLflow only (see the end); a single run in paths.models.
    best_path = (
        f"runs:/{logger.run_id}/best/best.ckpt" if multirun else str(models_dir / "best.ckpt")
    )
    logger.experiment.set_tag(logger.run_id, "fer.checkpoint", best_path)

    summary = {
        "mlflow_run_id": logger.run_id,
        "mlflow_experiment_id": logger.experiment_id,
        "tracking_uri": cfg.logger.tracking_uri,
        "best_checkpoint": best_path,
        "best_epoch": int(best["epoch"]),
        "val_acc_best": best_score,
    }
    write_json(reports_dir / "train.json", summary)
    print(f"train: best val/acc {best_score:.4f} (epoch {best['epoch']}), run {logger.run_id}")

    if cfg.evaluate_after_fit:
        module.load_state_dict(best["state_dict"])
        metrics = write_test_report(
            module.eval(),
            datamodule,
            reports_dir,
            cfg.evaluation,
            logger.run_id,
            cfg.logger.tracking_uri,
            accelerator=cfg.trainer.accelerator,
        )
        print(f"test: accuracy {metrics['test']['accuracy']:.4f} -> {reports_dir}/metrics.json")
    if multirun:  # the run's artifacts hold the checkpoints; keep one copy of each, not two
        shutil.rmtree(models_dir, ignore_errors=True)
        shutil.rmtree(job_dir / "lightning_logs", ignore_errors=True)
    return best_score


@hydra.main(version_base="1.3", config_path=None, config_name="config")
@exit_on_error
def _hydra_entry(cfg: DictConfig) -> float:
    return train(cfg)


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    """Apply ``params.yaml``, check the config (every swept value too), then run Hydra."""
    args = sys.argv[1:] if argv is None else list(argv)
    flags = [a for a in args if a.startswith("-")]
    overrides = [a for a in args if not a.startswith("-")]
    experiment = config_lib.chosen_experiment(overrides)
    multirun = any(f in ("-m", "--multirun") for f in flags)
    if experiment and not multirun:
        given = {config_lib.override_key(o) for o in overrides}
        if missing := [k for k in config_lib.experiment_sweep(experiment) if k not in given]:
            raise PipelineError(
                f"experiment={experiment} sweeps {', '.join(missing)}: run it with -m "
                f"(python -m fer_pipeline.train -m experiment={experiment})"
            )
    config_lib.check_sweep(overrides)
    config_path = ["--config-path", str(config_lib.conf_dir())]  # the project's, not the package's
    sys.argv = [sys.argv[0], *config_path, *flags, *config_lib.with_params(overrides)]
    _hydra_entry()


if __name__ == "__main__":
    main()
