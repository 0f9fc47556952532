"""Stage ``evaluate``: test the best checkpoint on the test split.

Writes ``reports/metrics.json`` (every metric, with bootstrap intervals), ``reports/scores.json``
(its headline: DVC's metrics), ``reports/predictions.csv``, ``reports/confusion_matrix.png`` and
``reports/occlusion/`` (DVC plots), ``reports/occlusion_maps.npz``, and logs them, with ``test/*``
metrics, to the training run recorded in ``reports/train.json`` (the metrics linked to the MLflow
model the package stage logged, named in ``reports/package.json``).

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
from fer_pipeline.outputs import BEST, PACKAGE_RECORD, TRAIN_RECORD
from fer_pipeline.quiet import quiet_libraries


def checkpoint_datamodule(cfg, module):
    """The test data of ``cfg``, preprocessed as ``module`` was trained (its preprocessing
    record: input size, normalisation, classes)."""
    from fer_pipeline.data.datamodule import build_datamodule

    record = module.preprocessing
    if record is None:
        raise PipelineError("the checkpoint holds no preprocessing record and no loader config")
    loader = {"input_size": record.input_size, "mean": record.mean, "std": record.std}
    datamodule = build_datamodule(OmegaConf.merge(cfg, {"loader": loader}))
    if list(datamodule.classes) != list(record.classes):
        raise PipelineError(
            f"the checkpoint's classes {list(record.classes)} are not the data's "
            f"{datamodule.classes} ({cfg.paths.faces})"
        )
    return datamodule


def test_checkpoint(cfg, checkpoint: Path, reports: Path) -> dict:
    """Test ``checkpoint`` on the test split of ``cfg``'s data, preprocessed as it was trained;
    writes the report folder ``reports`` and returns its metrics."""
    from fer_pipeline.evaluation.report import write_test_report
    from fer_pipeline.models.module import load_trained

    module = load_trained(checkpoint)
    datamodule = checkpoint_datamodule(cfg, module)
    return write_test_report(
        module, datamodule, reports, cfg.evaluation, accelerator=cfg.trainer.accelerator
    )


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    restore_outputs()
    cfg = load_config(stage_args(argv, __doc__))
    check_evaluation(cfg)
    check_prepared(cfg.paths.split, cfg.data.name)
    reports = Path(cfg.paths.reports)
    train_json = reports / TRAIN_RECORD
    if not train_json.is_file():
        raise PipelineError(f"{train_json} is missing (run the train stage first)")
    run = json.loads(train_json.read_text())
    packaged = reports / PACKAGE_RECORD  # the package stage's: the model the metrics belong to
    model_id = json.loads(packaged.read_text()).get("model_id") if packaged.is_file() else None
    # Imported once the config is known to be good: --help and config errors answer in a second.
    from mlflow.tracking import MlflowClient

    from fer_pipeline.tracking.test_report import log_test_report

    quiet_libraries()
    metrics = test_checkpoint(cfg, Path(cfg.paths.models) / BEST, reports)
    client = MlflowClient(run["tracking_uri"])
    log_test_report(client, run["mlflow_run_id"], metrics, reports, model_id)
    summary = ", ".join(f"{k} {v:.4f}" for k, v in metrics["test"].items())
    print(f"evaluate: {summary} (run {run['mlflow_run_id']})")


if __name__ == "__main__":
    main()
