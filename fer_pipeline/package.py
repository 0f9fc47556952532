"""Stage ``package``: the trained model as an MLflow model, logged from the run that trained it and
registered.

Reads ``models/best.ckpt`` and ``reports/train.json`` (the train stage's). Logs an MLflow 3 logged
model named ``model`` (a pyfunc around :class:`~fer_pipeline.inference.recognizer.Recognizer`,
see :mod:`fer_pipeline.inference.mlflow_model`) whose source is that run, registers it as a new
version of ``fer-pipeline`` (``champion`` when no version is), and writes
``reports/package.json`` (the model's id and URI, the registered version): the evaluate stage
links its test metrics to that model. With ``logger.log_model=false`` it logs nothing and says so.

    python -m fer_pipeline.package [hydra overrides]
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from omegaconf import DictConfig

from fer_pipeline.config import load_config, stage_args
from fer_pipeline.dvc_outputs import restore_outputs
from fer_pipeline.errors import PipelineError, exit_on_error
from fer_pipeline.outputs import BEST, MANIFEST, PACKAGE_RECORD, TRAIN_RECORD
from fer_pipeline.quiet import quiet_libraries


def example_face(cfg: DictConfig, classes: list[str]) -> bytes | None:
    """The first validation face as PNG bytes (the MLflow model's input example), or None."""
    from fer_pipeline.data.decode import read_image
    from fer_pipeline.data.split import read_manifest
    from fer_pipeline.inference.mlflow_model import example_face as as_png

    rows = [
        r for r in read_manifest(Path(cfg.paths.split) / MANIFEST, classes) if r["split"] == "val"
    ]
    if not rows:
        return None
    return as_png(read_image(Path(cfg.paths.faces) / rows[0]["path"], grayscale=False))


def package(cfg: DictConfig, client, run_id: str, checkpoint: Path, multirun: bool = False) -> dict:
    """Log ``checkpoint`` as the run's MLflow model and register it; the record of what was done
    (``model_id``, ``model_uri``, ``registered_version``; all None with ``logger.log_model``
    off). A sweep job's run also gets its checkpoint tag pointed at the model, its only copy."""
    from fer_pipeline.inference.mlflow_model import MODEL_ARTIFACT, log_model, save
    from fer_pipeline.models.checkpoint import read_checkpoint
    from fer_pipeline.models.preprocessing import preprocessing_of
    from fer_pipeline.tracking import tags
    from fer_pipeline.tracking.registry import REGISTERED_MODEL, register, version_tags

    record = {"mlflow_run_id": run_id, "model_id": None, "model_uri": None,
              "registered_version": None}  # fmt: skip
    if not cfg.logger.get("log_model", True):
        print("package: logger.log_model is false: no MLflow model logged")
        return record
    preprocessing = preprocessing_of(read_checkpoint(checkpoint), str(checkpoint))
    classes = list(preprocessing.classes)
    with tempfile.TemporaryDirectory() as tmp:
        example = example_face(cfg, classes)
        folder = save(checkpoint, Path(tmp) / MODEL_ARTIFACT, classes, example, preprocessing)
        model_id = log_model(client, run_id, folder)
    version = register(client, run_id, model_id, version_tags(client.get_run(run_id)))
    record |= {"model_id": model_id, "model_uri": f"models:/{model_id}",
               "registered_version": version}  # fmt: skip
    if multirun:
        client.set_tag(run_id, tags.CHECKPOINT, f"runs:/{run_id}/{MODEL_ARTIFACT}")
    print(f"package: logged model {model_id} of run {run_id}, registered as {REGISTERED_MODEL} "
          f"version {version}")  # fmt: skip
    return record


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    restore_outputs()
    cfg = load_config(stage_args(argv, __doc__))
    reports = Path(cfg.paths.reports)
    train_json = reports / TRAIN_RECORD
    if not train_json.is_file():
        raise PipelineError(f"{train_json} is missing (run the train stage first)")
    run = json.loads(train_json.read_text())
    # Imported once the config is known to be good: --help and config errors answer in a second.
    from mlflow.tracking import MlflowClient

    from fer_pipeline.io import write_json

    quiet_libraries()
    client = MlflowClient(run["tracking_uri"])
    record = package(cfg, client, run["mlflow_run_id"], Path(cfg.paths.models) / BEST)
    write_json(reports / PACKAGE_RECORD, record)


if __name__ == "__main__":
    main()
