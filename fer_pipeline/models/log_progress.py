"""Training progress for a log file: Lightning's bar redraws itself on a terminal only, so under
nohup, SLURM or CI a run would print nothing until its first epoch ends. This callback prints a
plain line after the first batch and then at most every 30 s (epoch, batch/total, images/s,
elapsed, ETA, running loss), and one line per epoch with its train and val metrics; prediction
(the test) gets the same batch lines."""

from __future__ import annotations

import pytorch_lightning as pl

from fer_pipeline.progress import EVERY_S, ProgressLines, clock

EPOCH_METRICS = ("train/loss", "train/acc", "val/loss", "val/acc")


class LogProgress(pl.Callback):
    def __init__(self, predicting: str = "predict", every_s: float = EVERY_S):
        self.predicting, self.every_s = predicting, every_s
        self.lines: ProgressLines | None = None
        self.images = 0

    def epoch_name(self, trainer: pl.Trainer) -> str:
        epochs = trainer.max_epochs
        total = f"/{epochs}" if epochs is not None and epochs > 0 else ""
        return f"train: epoch {trainer.current_epoch + 1}{total}"

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        batches = trainer.num_training_batches
        total = int(batches) if batches != float("inf") else None
        self.lines = ProgressLines(self.epoch_name(trainer), total, "batches", self.every_s)
        self.images = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.lines is None:
            return
        self.images += len(batch[1])

        def suffix() -> str:
            elapsed = self.lines.now() - self.lines.start
            rate = self.images / elapsed if elapsed > 0 else 0.0
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            text = f"; {rate:.1f} images/s"
            return text + (f", loss {float(loss):.4f}" if loss is not None else "")

        self.lines.update(1, suffix)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.lines is None:
            return
        logged = trainer.callback_metrics
        scores = ", ".join(f"{m} {float(logged[m]):.4f}" for m in EPOCH_METRICS if m in logged)
        took = clock(self.lines.now() - self.lines.start)
        print(f"{self.epoch_name(trainer)} done in {took}: {scores}", flush=True)
        self.lines = None

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        total = int(sum(trainer.num_predict_batches))
        self.lines = ProgressLines(self.predicting, total, "batches", self.every_s)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, *_) -> None:
        if self.lines is not None:
            self.lines.update(1)

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.lines = None
