"""The MLflow experiment every run goes into, made so the MLflow UI opens it as model training
(not GenAI) and says what it holds."""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

KIND_TAG = "mlflow.experimentKind"
KIND = "custom_model_development"  # the UI's "model training" view
DESCRIPTION_TAG = "mlflow.note.content"  # the experiment's description in the UI
DESCRIPTION = """Facial expression recognition runs of fer-pipeline: ResNet50 + ResNet34 (fused or
ensembled) and single backbones, fine-tuned on FER2013-style faces.

- A training run: learning curves (`train/*`, `val/*`, `lr`), test metrics with bootstrap intervals
  (`test/*`, `test_ci/*`), the confusion matrix and occlusion maps (top-level PNGs), per-class
  scores (`per_class.json`), the dataset card, and the MLflow model (`model/`).
- A sweep (`fer.kind = sweep`): a parent run whose children are its jobs; it holds the comparison
  table (`compare/`) and the best setting's mean test metrics.
"""


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created if missing; its kind and description are set when
    it has none (a description written in the UI stays)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(
                name, tags={KIND_TAG: KIND, DESCRIPTION_TAG: DESCRIPTION}
            )
        except MlflowException:  # a parallel job created it meanwhile; else this raises
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    for key, value in ((KIND_TAG, KIND), (DESCRIPTION_TAG, DESCRIPTION)):
        if key not in experiment.tags:
            client.set_experiment_tag(experiment.experiment_id, key, value)
    return experiment.experiment_id
