"""Finding training runs in MLflow and reading back what they recorded."""

from __future__ import annotations

import csv
from pathlib import Path

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from fer_pipeline.errors import PipelineError
from fer_pipeline.tracking import tags as tag_keys

PREDICTIONS_ARTIFACT = "reports/predictions.csv"


def describe(run: Run) -> str:
    """``'<run name>' (<first 8 characters of the id>)``: how errors name a run."""
    return f"'{run.info.run_name}' ({run.info.run_id[:8]})"


def runs_of(parent: Run) -> str:
    """How a table names the runs it compares: ``sweep optimizer=sgdm,adam (1a2b3c4d)``."""
    name = parent.info.run_name or ""
    return f"{name} ({parent.info.run_id[:8]})" if name.startswith("sweep") else describe(parent)


def latest_sweep(client: MlflowClient, experiment_id: str) -> Run:
    sweeps = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{tag_keys.KIND}` = 'sweep'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not sweeps:
        raise PipelineError("--parent latest: the experiment has no sweep (run train with -m)")
    return sweeps[0]


def given_runs(client: MlflowClient, run_ids: list[str]) -> list[Run]:
    """The runs named by id (a table made of several sweeps' runs), oldest first; refuses, naming
    it, an id that is no run, or no finished training run."""
    runs = []
    for run_id in run_ids:
        try:
            run = client.get_run(run_id)
        except MlflowException:
            raise PipelineError(f"--run {run_id}: no such MLflow run") from None
        if run.data.tags.get(tag_keys.KIND) != "train" or run.info.status != "FINISHED":
            raise PipelineError(
                f"--run {run_id}: {describe(run)} is not a finished training run "
                f"({run.data.tags.get(tag_keys.KIND, 'no kind')}, {run.info.status})"
            )
        runs.append(run)
    return sorted(runs, key=lambda r: r.info.start_time)


def find_runs(
    client: MlflowClient,
    experiment_name: str,
    parent: str | None = None,
    tags: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> tuple[list[Run], Run | None]:
    """Finished training runs of ``experiment_name``, optionally only the children of ``parent``
    (a run id, or ``latest`` for the newest sweep) and only those with every tag in ``tags`` and
    every param in ``params``. Returns the runs (oldest first) and the parent run."""
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise PipelineError(f"MLflow has no experiment '{experiment_name}' (nothing trained yet?)")
    parent_run = None
    if parent == "latest":
        parent_run = latest_sweep(client, experiment.experiment_id)
    elif parent:
        try:
            parent_run = client.get_run(parent)
        except MlflowException:
            raise PipelineError(f"--parent {parent}: no such MLflow run") from None
    filters = [f"tags.`{tag_keys.KIND}` = 'train'", "attributes.status = 'FINISHED'"]
    if parent_run:
        filters.append(f"tags.`{tag_keys.PARENT_RUN}` = '{parent_run.info.run_id}'")
    for key, value in (tags or {}).items():
        filters.append(f"tags.`{key}` = '{value}'")
    for key, value in (params or {}).items():
        filters.append(f"params.`{key}` = '{value}'")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=" and ".join(filters),
        order_by=["attributes.start_time ASC"],
        max_results=10_000,
    )
    if not runs:
        where = f"experiment '{experiment_name}'"
        if parent_run:
            where += f", parent {describe(parent_run)}"
        if tags:
            where += ", tags " + ", ".join(f"{k}={v}" for k, v in tags.items())
        if params:
            where += ", params " + ", ".join(f"{k}={v}" for k, v in params.items())
        raise PipelineError(f"no finished training runs match ({where})")
    return runs, parent_run


def setting_value(run: Run, key: str) -> str | None:
    """A run's value for config key ``key``: its choice tag (``fer.<key>``, e.g. ``optimizer`` ->
    ``adam``) when there is one, else the logged param (``optimizer.lr`` -> ``0.001``)."""
    return run.data.tags.get(tag_keys.choice(key)) or run.data.params.get(key)


def read_predictions(
    client: MlflowClient, run: Run, folder: Path
) -> dict[str, tuple[str, str]] | None:
    """``{test face path: (label, predicted)}`` from the run's ``reports/predictions.csv``;
    ``None`` when the run has none (tested before predictions were logged)."""
    try:
        local = client.download_artifacts(run.info.run_id, PREDICTIONS_ARTIFACT, str(folder))
    except (MlflowException, OSError):
        return None
    with open(local, newline="") as f:
        return {row["path"]: (row["label"], row["predicted"]) for row in csv.DictReader(f)}
