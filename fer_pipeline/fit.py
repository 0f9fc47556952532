"""Fit the configured model on train/val and checkpoint it: the DVC pipeline's ``train`` stage.

    python -m fer_pipeline.fit [hydra overrides]     # what `dvc repro` runs; -m sweeps too

It trains and nothing else: the MLflow run gets the config, the data, the training metrics and
curves; ``paths.models`` gets the checkpoints (``best.ckpt``: the best val/acc epoch's weights;
``last.ckpt``: the whole training state) and ``reports/train.json`` says which run made them.
Testing and the MLflow model are the ``evaluate`` and ``package`` stages' jobs;
``python -m fer_pipeline.train`` runs all three (see there). An interrupted run is resumed by the
same command (``resume=auto``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from fer_pipeline import cli
from fer_pipeline.io import clean_stale, write_json
from fer_pipeline.outputs import BEST, CURVES, TRAIN_RECORD


@dataclass
class Fitted:
    """What a fit left: its run, where its checkpoints and reports are."""

    val_acc_best: float
    run_id: str | None = None  # None: a DDP rank other than 0 (no MLflow client there)
    best_epoch: int = -1
    models_dir: Path | None = None  # best.ckpt, last.ckpt
    reports_dir: Path | None = None
    job_dir: Path | None = None
    multirun: bool = False
    finished_before: bool = False  # a continued sweep's job that had finished: nothing was done
    logger: object = None  # the run's ResilientMLFlowLogger (what could not be sent is kept)


def output_dirs(cfg: DictConfig, job_dir: Path, multirun: bool) -> tuple[Path, Path, Path]:
    """(models, reports, checkpoints): the configured paths, or a sweep job's own folders."""
    if multirun:
        return job_dir / "models", job_dir / "reports", job_dir / "checkpoints"
    return Path(cfg.paths.models), Path(cfg.paths.reports), Path(cfg.paths.checkpoints)


def fit(cfg: DictConfig) -> Fitted:
    """Fit, checkpoint and log one run (a Hydra job). The command line (:mod:`fer_pipeline.cli`)
    has checked every value, the tracking URI and the data before any job started."""
    import pytorch_lightning as pl
    import torch
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from fer_pipeline.data.card import CARD_NAME, read_card
    from fer_pipeline.data.datamodule import build_datamodule
    from fer_pipeline.models.checkpoint import read_checkpoint
    from fer_pipeline.models.history import EpochHistory
    from fer_pipeline.models.interrupt import StopOnSignal, between_batches
    from fer_pipeline.models.trainer import (
        build_module,
        build_trainer,
        checkpoint_callbacks,
        progress_callbacks,
        publish,
    )  # fmt: skip
    from fer_pipeline.progress import on_terminal
    from fer_pipeline.ranks import is_leader
    from fer_pipeline.tracking import tags
    from fer_pipeline.tracking.sweep import finished_job, parent_run_id
    from fer_pipeline.tracking.training_run import (
        ends_run,
        fingerprint,
        open_run,
        plan_resume,
        system_metrics,
    )  # fmt: skip

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    job_dir = Path(hydra_cfg.runtime.output_dir)
    models_dir, reports_dir, ckpt_dir = output_dirs(cfg, job_dir, multirun)
    leader = is_leader()
    if leader:
        clean_stale(models_dir)
    card = read_card(Path(cfg.paths.split) / CARD_NAME)
    trains = fingerprint(cfg, card["digest"])
    parent = parent_run_id() if multirun else None
    if done := finished_job(cfg.logger.tracking_uri, parent, trains):
        # a rerun of an interrupted sweep: this job finished before, into the same parent run
        print(f"train: sweep job {hydra_cfg.job.num} finished before (run {done.info.run_id}); "
              "skipped")  # fmt: skip
        score = float(done.data.metrics.get("val/acc_best", 0.0))
        return Fitted(score, done.info.run_id, multirun=True, finished_before=True)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")  # bad data fails here, before any run is opened or dropped
    resume = plan_resume(cfg, ckpt_dir, trains, leader)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = build_module(cfg, datamodule)
    choices = dict(hydra_cfg.runtime.choices)
    logger = None
    if leader:
        logger = open_run(cfg, choices, datamodule, card, resume, ckpt_dir, trains, parent)
    with ends_run(logger):
        best_cb, last_cb = checkpoint_callbacks(ckpt_dir)
        history = EpochHistory()
        trainer = build_trainer(
            cfg,
            logger=logger or False,  # DDP's other ranks: no MLflow client at all
            callbacks=[best_cb, last_cb, history, StopOnSignal(), *system_metrics(cfg, resume)]
            + progress_callbacks(cfg),
            default_root_dir=str(job_dir),
            **({} if on_terminal() else {"enable_progress_bar": False}),
        )
        with between_batches():  # Ctrl-C stops at a batch end, never inside a write
            trainer.fit(
                module, datamodule=datamodule, ckpt_path=resume.checkpoint, weights_only=True
            )
        best_score = float(best_cb.best_model_score or 0.0)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # DDP is over: rank 0 publishes and logs alone, the other ranks return
            torch.distributed.destroy_process_group()
        if not leader:
            return Fitted(best_score)
        if trainer.world_size > 1:
            print(f"train: trained in {trainer.world_size} processes ({cfg.trainer.strategy})")
        best_epoch = int(read_checkpoint(ckpt_dir / BEST)["epoch"])
        publish(ckpt_dir, models_dir)
        history.write(reports_dir / CURVES)
        best_path = str(models_dir / BEST)
        logger.safely(
            "tag the checkpoint",
            lambda: logger.experiment.set_tag(logger.run_id, tags.CHECKPOINT, best_path),
        )
        write_json(reports_dir / TRAIN_RECORD, {
            "mlflow_run_id": logger.run_id,
            "mlflow_experiment_id": logger.experiment_id,
            "tracking_uri": cfg.logger.tracking_uri,
            "best_checkpoint": best_path,
            "best_epoch": best_epoch,
            "val_acc_best": best_score,  # = the run's last val/acc_best metric
        })  # fmt: skip
    print(f"train: best val/acc {best_score:.4f} (epoch {best_epoch}), run {logger.run_id}")
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # finished: nothing left to resume
    return Fitted(
        best_score, logger.run_id, best_epoch, models_dir, reports_dir, job_dir, multirun,
        logger=logger,
    )  # fmt: skip


def fit_only(cfg: DictConfig) -> float:
    """The ``train`` stage's job: fit; a sweep's job keeps only its MLflow run."""
    fitted = fit(cfg)
    if fitted.logger is not None:
        fitted.logger.report_unsent(fitted.reports_dir)
    if fitted.multirun and fitted.job_dir is not None:
        shutil.rmtree(fitted.job_dir / "lightning_logs", ignore_errors=True)
    return fitted.val_acc_best


def task(cfg: DictConfig):
    """Hydra's task function (importable, so launchers can run it in other processes)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return cli.run_job(fit_only, cfg, HydraConfig.get().mode == RunMode.MULTIRUN)


def main(argv: list[str] | None = None) -> None:
    cli.main(task, argv)


if __name__ == "__main__":
    # The importable module's main: its task function pickles by reference.
    from fer_pipeline.fit import main as importable_main

    importable_main()
