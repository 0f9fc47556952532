"""The MLflow tag keys this project writes and reads, in one place."""

from __future__ import annotations

KIND = "fer.kind"  # train (a training run) | sweep (a sweep's parent run)
PARENT_RUN = "mlflow.parentRunId"  # how the MLflow UI nests a sweep's runs under its parent
FINGERPRINT = "fer.fingerprint"  # on a training run: what it trains (config and data digest)
CHECKPOINT = "fer.checkpoint"  # where the run's best checkpoint is (a path or a runs:/ URI)
METRICS_PATH = "fer.metrics_path"  # the local metrics.json of its test report
CONFUSION_PATH = "fer.confusion_matrix_path"
SWEEP_KEYS = "fer.sweep_keys"  # on a sweep: the config keys it varies, comma-separated
SWEEP_KEY = "fer.sweep_key"  # on a sweep: what makes two sweep commands the same
SWEEP_DIR = "fer.sweep_dir"  # on a sweep: its Hydra folder (its jobs find their parent by it)
DATA_NAME = "data.name"
DATA_DIGEST = "data.digest"
DATA_CLASSES = "data.classes"
BEST_SETTING = "fer.best_setting"  # on a compared parent run: its best setting, seeds, run
BEST_SEEDS = "fer.best_seeds"
BEST_RUN = "fer.best_run_id"
# The config groups a run is tagged with, as fer.<group> (what it chose).
CHOICE_GROUPS = ("data", "model", "optimizer", "scheduler", "trainer")


def choice(group: str) -> str:
    """The tag of a config group's choice: ``fer.model``."""
    return f"fer.{group}"
