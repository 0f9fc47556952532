"""Record in an MLflow run exactly which data it saw: the split manifest as an MLflow dataset input
(name, content digest, profile), and the dataset card and leakage report as artifacts."""

from __future__ import annotations

from pathlib import Path

import mlflow.data
import pandas as pd
from mlflow.data.dataset_source_registry import get_registered_sources, resolve_dataset_source
from mlflow.entities import DatasetInput, InputTag
from mlflow.tracking import MlflowClient

from fer_pipeline.data.card import CARD_NAME
from fer_pipeline.outputs import MANIFEST
from fer_pipeline.quiet import no_integer_schema_hint

ARTIFACTS = (CARD_NAME, "card.md", "leakage.json", "leakage.png", "leakage_pairs.csv")
FACE_ARTIFACTS = ("crop_report.csv", "crop_summary.json")


def local_source(path: Path):
    """MLflow's local-file dataset source for ``path`` (registered twice by MLflow: pick one, so it
    does not warn that the path is ambiguous)."""
    local = [s for s in get_registered_sources() if s.__name__ == "LocalArtifactDatasetSource"]
    return resolve_dataset_source(str(path.resolve()), candidate_sources=local[:1])


def log_dataset(
    client: MlflowClient, run_id: str, card: dict, split_dir: str | Path, faces_dir: str | Path
) -> None:
    """Log ``split_dir``'s manifest as the run's training input (named and digested by ``card``,
    the split's dataset card), and the card, leakage report and the crop stage's per-image report
    as artifacts under ``dataset/``."""
    split_dir, faces_dir = Path(split_dir), Path(faces_dir)
    manifest = pd.read_csv(split_dir / MANIFEST)
    origin = card.get("source_card", {}).get("origin", {})
    with no_integer_schema_hint():
        dataset = mlflow.data.from_pandas(
            manifest,
            source=local_source(split_dir / MANIFEST),
            targets="label",
            name=card["name"],
            digest=card["digest"],
        )
        entity = dataset._to_mlflow_entity()  # the schema is inferred here
    tags = [
        InputTag("mlflow.data.context", "training"),
        InputTag("fer.source_file", str(origin.get("file", ""))),
        InputTag("fer.source_md5", str(origin.get("md5", ""))),
    ]
    client.log_inputs(run_id, datasets=[DatasetInput(entity, tags=tags)])
    files = [split_dir / n for n in ARTIFACTS] + [faces_dir / n for n in FACE_ARTIFACTS]
    for path in files:
        if path.is_file():
            client.log_artifact(run_id, str(path), "dataset")
