"""The model registry: every training run's MLflow model is a version of one registered model
(``fer-pipeline``), tagged with what it is; the alias ``champion`` names the version to use.

The first version registered becomes ``champion``; after that only a comparison moves it
(``python -m fer_pipeline.compare``, and the end of a sweep): to the best run of the best setting.
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

REGISTERED_MODEL = "fer-pipeline"
CHAMPION = "champion"


def register(client: MlflowClient, run_id: str, source: str, tags: dict[str, str]) -> str:
    """A new version of :data:`REGISTERED_MODEL` for the run's model at ``source``; it becomes
    ``champion`` when no version is. Returns the version."""
    try:
        client.get_registered_model(REGISTERED_MODEL)
    except MlflowException:  # not there yet
        try:
            client.create_registered_model(
                REGISTERED_MODEL,
                description="Facial expression recognition models trained by fer-pipeline; the "
                f"alias '{CHAMPION}' is the best run of the latest comparison.",
            )
        except MlflowException:  # a parallel sweep job created it meanwhile; else this raises
            client.get_registered_model(REGISTERED_MODEL)
    version = client.create_model_version(REGISTERED_MODEL, source, run_id=run_id, tags=tags)
    if champion(client) is None:
        client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version.version)
    return str(version.version)


def champion(client: MlflowClient):
    """The champion's model version, or None."""
    try:
        return client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION)
    except MlflowException:
        return None


def versions_of(client: MlflowClient, run_id: str) -> list:
    try:
        return client.search_model_versions(f"name = '{REGISTERED_MODEL}' and run_id = '{run_id}'")
    except MlflowException:
        return []


def tag_versions(client: MlflowClient, run_id: str, tags: dict[str, str]) -> None:
    """Set ``tags`` on the run's registered versions (e.g. its test accuracy, once tested)."""
    for version in versions_of(client, run_id):
        for key, value in tags.items():
            client.set_model_version_tag(REGISTERED_MODEL, version.version, key, value)


def crown(client: MlflowClient, run_id: str) -> str | None:
    """Point ``champion`` at the run's newest version; returns it, or None when the run has no
    registered model (trained before models were logged, or with ``logger.log_model=false``)."""
    versions = versions_of(client, run_id)
    if not versions:
        return None
    newest = max(versions, key=lambda v: int(v.version))
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, newest.version)
    return str(newest.version)


def crown_best(client: MlflowClient, run_id: str, name: str) -> str:
    """:func:`crown` the comparison's best run; one line saying what happened."""
    version = crown(client, run_id)
    if version is None:
        return f"champion: not moved ({name}, run {run_id}, has no registered model)"
    return f"champion: {REGISTERED_MODEL} version {version} ({name}, run {run_id})"
