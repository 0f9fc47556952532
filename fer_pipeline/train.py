"""Train, package and test one model, or a sweep of them: the pipeline's ``train``, ``package`` and
``evaluate`` stages in one command, into one MLflow run per model.

    python -m fer_pipeline.train [hydra overrides]              # one run
    python -m fer_pipeline.train -m optimizer=sgdm,adam,rmsprop  # a sweep: one run per value,
                                                                 # grouped under a parent run
    python -m fer_pipeline.train --cfg job                      # Hydra's own flags work as usual

A run fits (:mod:`fer_pipeline.fit`: checkpoints in ``paths.models``, ``reports/train.json``), logs
and registers its MLflow model (:mod:`fer_pipeline.package`, unless ``logger.log_model=false``)
and, with ``evaluate_after_fit`` (the default), tests it (:mod:`fer_pipeline.evaluate`). An
interrupted run is resumed by the same command (``resume=auto``). A sweep's jobs write into their
Hydra job folders and keep their checkpoints in MLflow only; a failing job is reported and the
others still run; the same command continues an interrupted sweep. ``params.yaml`` holds the
experiment's choices, applied as the first overrides (see :mod:`fer_pipeline.cli`).
"""

from __future__ import annotations

import json
import shutil

from omegaconf import DictConfig

from fer_pipeline import cli
from fer_pipeline.outputs import BEST, PACKAGE_RECORD, TRAIN_RECORD


def train(cfg: DictConfig) -> float:
    """Fit, package and test one run (a Hydra job); returns the best validation accuracy (what a
    sweeper maximises)."""
    from fer_pipeline.evaluate import test_checkpoint
    from fer_pipeline.fit import fit
    from fer_pipeline.inference.mlflow_model import MODEL_ARTIFACT
    from fer_pipeline.io import write_json
    from fer_pipeline.package import package
    from fer_pipeline.tracking.training_run import ends_run

    fitted = fit(cfg)
    if fitted.finished_before or fitted.logger is None:  # skipped, or a DDP rank other than 0
        return fitted.val_acc_best
    logger = fitted.logger
    client = logger.experiment  # an MlflowClient for the run's store
    with ends_run(logger):  # an error from here on leaves the run FAILED, not FINISHED
        checkpoint = fitted.models_dir / BEST
        record = logger.safely(
            "log the MLflow model",
            lambda: package(cfg, client, logger.run_id, checkpoint, fitted.multirun),
        )
        if record:
            write_json(fitted.reports_dir / PACKAGE_RECORD, record)
            if fitted.multirun and record["model_id"]:  # the job's checkpoints go (see the end)
                summary = json.loads((fitted.reports_dir / TRAIN_RECORD).read_text())
                summary["best_checkpoint"] = f"runs:/{logger.run_id}/{MODEL_ARTIFACT}"
                write_json(fitted.reports_dir / TRAIN_RECORD, summary)
        if cfg.evaluate_after_fit:
            from fer_pipeline.tracking.test_report import log_test_report

            metrics = test_checkpoint(cfg, checkpoint, fitted.reports_dir)
            model_id = record["model_id"] if record else None
            logger.safely(
                "log the test report",
                lambda: log_test_report(
                    client, logger.run_id, metrics, fitted.reports_dir, model_id
                ),
            )
            print(f"test: accuracy {metrics['test']['accuracy']:.4f} -> "
                  f"{fitted.reports_dir}/metrics.json")  # fmt: skip
    logger.report_unsent(fitted.reports_dir)
    if fitted.multirun:  # the run's MLflow model holds the checkpoint; keep one copy, not two
        shutil.rmtree(fitted.models_dir, ignore_errors=True)
        shutil.rmtree(fitted.job_dir / "lightning_logs", ignore_errors=True)
    return fitted.val_acc_best


def task(cfg: DictConfig):
    """Hydra's task function (importable, so launchers can run it in other processes)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return cli.run_job(train, cfg, HydraConfig.get().mode == RunMode.MULTIRUN)


def main(argv: list[str] | None = None) -> None:
    cli.main(task, argv)


if __name__ == "__main__":
    # The importable module's main: its task function pickles by reference, so launchers that run
    # sweep jobs in other processes (hydra/launcher=joblib, submitit) can send it there.
    from fer_pipeline.train import main as importable_main

    importable_main()
