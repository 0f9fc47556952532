"""The learning curves of a training run as a table (one row per epoch), for DVC's plots."""

from __future__ import annotations

import csv
from pathlib import Path

import pytorch_lightning as pl

from fer_pipeline.io import atomic_file

# Column: the logged metric it takes.
COLUMNS = {
    "train_loss": "train/loss",
    "train_acc": "train/acc",
    "val_loss": "val/loss",
    "val_acc": "val/acc",
    "lr": "lr",
    "epoch_s": "train/epoch_s",  # seconds of the epoch's training batches
    "images_per_s": "train/images_per_s",
}


class EpochHistory(pl.Callback):
    """Keeps ``epoch`` and the :data:`COLUMNS` of every finished epoch. Its rows are saved in the
    checkpoint, so a resumed run's table starts where the interrupted one stopped."""

    def __init__(self):
        self.rows: list[dict] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logged = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch}
        row |= {c: float(logged[m]) for c, m in COLUMNS.items() if m in logged}
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = list(state_dict.get("rows", []))

    def write(self, path: Path | str) -> None:
        """The rows as CSV: ``epoch`` and the columns, empty where a metric was not logged."""
        with atomic_file(path) as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, ["epoch", *COLUMNS], restval="")
            writer.writeheader()
            writer.writerows(self.rows)
