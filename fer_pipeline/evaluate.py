"""Stage ``evaluate``: test the best checkpoint on the test split.

Writes ``reports/metrics.json`` (every metric, with bootstrap intervals), ``reports/scores.json``
(its headline: DVC's metrics), ``reports/predictions.csv``, ``reports/confusion_matrix.png`` and
``reports/occlusion/`` (DVC plots), ``reports/occlusion_maps.npz``, and logs them, with ``test/*``
metrics, to the training run recorded in ``reports/train.json``.

The faces are preprocessed as the checkpoint's own config says (input size, normalisation), and
its class list must be the data's: the current ``conf/`` chooses only the data and the evaluation
settings. The checkpoint is loaded without running any code it may hold.

    python -m fer_pipeline.evaluate [hydra overrides]
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from fer_pipeline.config import load_config, stage_args
from fer_pipeline.data.card import check_prepared
from fer_pipeline.dvc_outputs import restore_outputs
from fer_pipeline.errors import PipelineError, exit_on_error
from fer_pipeline.evaluation.settings import check_evaluation
from fer_pipeline.quiet import quiet_libraries

PREPROCESSING = ("input_size", "mean", "std")  # loader keys the model was trained with


def checkpoint_datamodule(cfg, module):
    """The test data of ``cfg``, preprocessed as ``module`` was trained (its config's loader)."""
    from fer_pipeline.data.datamodule import build_datamodule

    trained = module.config.loader
    cfg = OmegaConf.merge(cfg, {"loader": {k: trained[k] for k in PREPROCESSING}})
    datamodule = build_datamodule(cfg)
    if list(datamodule.classes) != list(module.hparams.classes):
        raise PipelineError(
            f"the checkpoint's classes {list(module.hparams.classes)} are not the data's "
            f"{datamodule.classes} ({cfg.paths.faces})"
        )
    return datamodule


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    restore_outputs()
    cfg = load_config(stage_args(argv, __doc__))
    check_evaluation(cfg)
    check_prepared(cfg.paths.split, cfg.data.name)
    # Imported once the config is known to be good: --help and config errors answer in a second.
    from mlflow.tracking import MlflowClient

    from fer_pipeline.evaluation.report import write_test_report
    from fer_pipeline.models.module import load_trained
    from fer_pipeline.tracking.test_report import log_test_report

    quiet_libraries()
    reports = Path(cfg.paths.reports)
    train_json = reports / "train.json"
    if not train_json.is_file():
        raise PipelineError(f"{train_json} is missing (run the train stage first)")
    run = json.loads(train_json.read_text())
    module = load_trained(Path(cfg.paths.models) / "best.ckpt")
    datamodule = checkpoint_datamodule(cfg, module)
    metrics = write_test_report(
        module, datamodule, reports, cfg.evaluation, accelerator=cfg.trainer.accelerator
    )
    log_test_report(MlflowClient(run["tracking_uri"]), run["mlflow_run_id"], metrics, reports)
    summary = ", ".join(f"{k} {v:.4f}" for k, v in metrics["test"].items())
    print(f"evaluate: {summary} (run {run['mlflow_run_id']})")


if __name__ == "__main__":
    main()
