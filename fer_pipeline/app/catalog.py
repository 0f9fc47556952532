"""Which trained models the app offers: the registered versions of ``fer-pipeline`` in the MLflow
store, one per (network, optimizer) cell, with their test accuracy and its 95 % CI."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from fer_pipeline.config import config_choices
from fer_pipeline.errors import PipelineError
from fer_pipeline.inference.recognizer import DEMO_DATASETS, tracking_uri, trained_on
from fer_pipeline.tracking.registry import CHAMPION, REGISTERED_MODEL
from fer_pipeline.tracking.tags import DATA_NAME

# The paper's order of the menus, and how its optimizers are written; other choices follow.
NETWORK_ORDER = ("fusion", "ensemble", "resnet50", "resnet34")
OPTIMIZER_ORDER = ("sgdm", "adam", "rmsprop")
_OPTIMIZER_LABELS = {"sgdm": "SGDM", "adam": "Adam", "rmsprop": "RMSprop"}
NO_RUN = (
    "No trained model yet. Train one from the project folder with `make demo` (or `dvc repro`, or "
    "`python -m fer_pipeline.train -m optimizer=sgdm,adam,rmsprop` for a sweep), then reload."
)


@dataclass
class Choice:
    key: str  # the registered version
    network: str
    optimizer: str
    run_id: str
    run_name: str
    accuracy: float | None
    ci: tuple[float, float] | None
    champion: bool
    uri: str  # what Recognizer.load takes
    dataset: str = ""  # what it trained on (data.name)
    demo: bool = False  # trained on the built-in synthetic set: not for real photos
    trained_on: str = ""  # both, in words

    def to_json(self) -> dict:
        return asdict(self)


def store_exists(uri: str) -> bool:
    """False for a local SQLite file or folder that is not there (opening it would create it)."""
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).is_file()
    if "://" not in uri:
        return Path(uri).exists()
    return True


def _accuracy(tags: dict) -> tuple[float | None, tuple[float, float] | None]:
    try:
        accuracy = float(tags["test_accuracy"])
    except (KeyError, ValueError):
        return None, None
    low, _, high = tags.get("test_accuracy_ci95", "").partition("-")
    try:
        return accuracy, (float(low), float(high))
    except ValueError:
        return accuracy, None


def tracked_choices(uri: str | None = None) -> list[Choice]:
    """One choice per (network, optimizer) that has a registered version: the champion if it is
    in that cell, else the version with the best test accuracy (untested ones last, newest
    first)."""
    uri = uri or tracking_uri()
    if not store_exists(uri):
        return []
    client = MlflowClient(uri)
    try:
        versions = client.search_model_versions(f"name = '{REGISTERED_MODEL}'")
    except MlflowException:
        return []
    try:
        champion = client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION).version
    except MlflowException:
        champion = None
    cells: dict[tuple[str, str], Choice] = {}
    for version in versions:
        tags = version.tags or {}
        accuracy, ci = _accuracy(tags)
        try:
            run_name = client.get_run(version.run_id).info.run_name if version.run_id else ""
        except MlflowException:
            run_name = ""
        choice = Choice(
            key=str(version.version),
            network=tags.get("model", "?"),
            optimizer=tags.get("optimizer", "?"),
            run_id=version.run_id or "",
            run_name=run_name,
            accuracy=accuracy,
            ci=ci,
            champion=str(version.version) == str(champion),
            uri=f"models:/{REGISTERED_MODEL}/{version.version}",
            dataset=tags.get(DATA_NAME, ""),
            demo=tags.get(DATA_NAME) in DEMO_DATASETS,
            trained_on=trained_on(tags.get(DATA_NAME)),
        )
        cell = (choice.network, choice.optimizer)
        if cell not in cells or _rank(choice) > _rank(cells[cell]):
            cells[cell] = choice
    return sorted(cells.values(), key=lambda c: (_order(c.network, NETWORK_ORDER),
                                                 _order(c.optimizer, OPTIMIZER_ORDER)))  # fmt: skip


def menus() -> dict:
    """The app's menus: ``networks`` (the ``model`` config group) and ``optimizers`` (the
    ``optimizer`` group, each with its label), in the paper's order; from ``conf/`` of the
    working directory, else the paper's choices."""
    try:
        groups = config_choices()
    except PipelineError:  # not started from the project folder
        groups = {}
    networks = sorted(groups.get("model") or NETWORK_ORDER, key=lambda n: _order(n, NETWORK_ORDER))
    optimizers = sorted(
        groups.get("optimizer") or OPTIMIZER_ORDER, key=lambda o: _order(o, OPTIMIZER_ORDER)
    )
    return {
        "networks": networks,
        "optimizers": {o: _OPTIMIZER_LABELS.get(o, o) for o in optimizers},
    }


def _rank(choice: Choice) -> tuple:
    return (choice.champion, choice.accuracy is not None, choice.accuracy or 0.0, int(choice.key))


def _order(value: str, known: tuple[str, ...]) -> tuple[int, str]:
    return (known.index(value) if value in known else len(known), value)
