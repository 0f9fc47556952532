"""A stage's terminal output is its own summary, progress bars and results: third-party libraries
keep their warnings and errors, not their info lines and tips."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


def quiet_libraries() -> None:
    """Lightning's info lines (device availability, a product tip, "fit stopped", distributed
    setup) and MLflow's (store creation, input-example validation, registry waits, download
    progress bars) are configured off; a torch deprecation that Lightning's pytree helper trips on
    every run is ignored, and so is Lightning's note that the checkpoint folder is not empty (it
    holds the run's ``run.json``), and that an epoch is shorter than the step-logging interval."""
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero",
                 "mlflow"):  # fmt: skip
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    # short epochs (a tiny project) log their step loss less often than every epoch: expected
    warnings.filterwarnings("ignore", message=r"The number of training batches .* is smaller than")


@contextmanager
def no_integer_schema_hint() -> Iterator[None]:
    """MLflow hints, inferring a schema from our own frames, that integer columns cannot hold
    missing values. Ours never have any (labels, frame and face numbers), so the hint is noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        yield
