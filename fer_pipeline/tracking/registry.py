"""The model registry: every training run's MLflow model is a version of one registered model
(``fer-pipeline``), tagged with what it is; the alias ``champion`` names the version to use.

The first version registered becomes ``champion``; after that only a comparison moves it
(``python -m fer_pipeline.compare``, and the end of a sweep): to the best run of the best setting.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from fer_pipeline.tracking import tags as tag_keys

REGISTERED_MODEL = "fer-pipeline"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
CHAMPION = "champion"


def register(client: MlflowClient, run_id: str, model_id: str, tags: dict[str, str]) -> str:
    """A new version of :data:`REGISTERED_MODEL` from the run's logged model ``model_id``; it
    becomes ``champion`` when no version is. Returns the version."""
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
    with default_store(client.tracking_uri) as resolvable:
        # models:/<id> links the version to the logged model; else its files' location
        source = (
            f"models:/{model_id}"
            if resolvable
            else client.get_logged_model(model_id).artifact_location
        )
        version = client.create_model_version(
            REGISTERED_MODEL, source, run_id=run_id, tags=tags, model_id=model_id
        )
    if champion(client) is None:
        client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version.version)
    return str(version.version)


@contextmanager
def default_store(uri: str):
    """MLflow's default tracking store is ``uri`` for the block, through ``MLFLOW_TRACKING_URI``
    (restored after): the registry resolves a version's ``models:/<id>`` source in the default
    store, not in its client's (a TODO in MLflow 3's registry store). Yields whether it took
    (not when the process pinned another store with ``mlflow.set_tracking_uri``)."""
    previous = os.environ.get(TRACKING_URI_ENV)
    os.environ[TRACKING_URI_ENV] = uri
    try:
        yield mlflow.get_tracking_uri() == uri
    finally:
        if previous is None:
            os.environ.pop(TRACKING_URI_ENV, None)
        else:
            os.environ[TRACKING_URI_ENV] = previous


def version_tags(run) -> dict[str, str]:
    """The tags of a training run's registered version: what it is (model, optimizer, seed, data)
    and, when it has been tested, its test accuracy."""
    found = {
        "model": run.data.tags.get(tag_keys.choice("model"), ""),
        "optimizer": run.data.tags.get(tag_keys.choice("optimizer"), ""),
        "seed": run.data.params.get("seed", ""),
        "data.name": run.data.tags.get(tag_keys.DATA_NAME, ""),
        "data.digest": run.data.tags.get(tag_keys.DATA_DIGEST, ""),
    }
    metrics = run.data.metrics
    if "test/accuracy" in metrics:
        found["test_accuracy"] = f"{metrics['test/accuracy']:.4f}"
        if "test_ci/accuracy_low" in metrics and "test_ci/accuracy_high" in metrics:
            low, high = metrics["test_ci/accuracy_low"], metrics["test_ci/accuracy_high"]
            found["test_accuracy_ci95"] = f"{low:.4f}-{high:.4f}"
    return found


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
