"""Stage ``evaluate``: test the best checkpoint on the test split.

Writes ``reports/metrics.json`` (DVC metrics, with bootstrap intervals), ``reports/predictions.csv``,
``reports/confusion_matrix.png`` and ``reports/occlusion/`` (DVC plots), ``reports/occlusion_maps.npz``
and logs them, with ``test/*`` metrics, to the training run recorded in ``reports/train.json``.

    python -m fer_pipeline.evaluate [hydra overrides]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fer_pipeline.config import load_config
from fer_pipeline.data.datamodule import build_datamodule
from fer_pipeline.errors import PipelineError, exit_on_error
from fer_pipeline.evaluation.report import check_evaluation, write_test_report
from fer_pipeline.models.module import load_trained


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    cfg = load_config(sys.argv[1:] if argv is None else argv)
    check_evaluation(cfg)
    reports = Path(cfg.paths.reports)
    train_json = reports / "train.json"
    if not train_json.is_file():
        raise PipelineError(f"{train_json} is missing (run the train stage first)")
    run = json.loads(train_json.read_text())
    module = load_trained(Path(cfg.paths.models) / "best.ckpt")
    datamodule = build_datamodule(cfg)
    metrics = write_test_report(
        module,
        datamodule,
        reports,
        cfg.evaluation,
        run["mlflow_run_id"],
        run["tracking_uri"],
        accelerator=cfg.trainer.accelerator,
    )
    summary = ", ".join(f"{k} {v:.4f}" for k, v in metrics["test"].items())
    print(f"evaluate: {summary} (run {run['mlflow_run_id']})")


if __name__ == "__main__":
    main()
