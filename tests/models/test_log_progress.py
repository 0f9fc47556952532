"""Training in a log file (no terminal): a line per batch at most every 30 s, and one per epoch."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from fer_pipeline.models.log_progress import LogProgress


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train/loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/acc", (self.net(x).argmax(1) == y).float().mean())

    def predict_step(self, batch, batch_idx):
        return self.net(batch[0])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader():
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(12, 4, generator=g), torch.randint(0, 2, (12,), generator=g))
    return DataLoader(data, batch_size=4)


def trainer(callback, **kwargs) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[callback], **kwargs,
    )  # fmt: skip


def test_training_prints_batch_lines_and_an_epoch_summary(capsys):
    trainer(LogProgress(), max_epochs=2).fit(Tiny(), loader(), loader())
    lines = capsys.readouterr().out.splitlines()
    batches = [line for line in lines if line.startswith("train: epoch 1/2: ")]
    # the first batch at once, the last (the total); the second within 30 s: none
    assert [b.split(",")[0] for b in batches] == [
        "train: epoch 1/2: 1/3 batches (33 %)",
        "train: epoch 1/2: 3/3 batches (100 %)",
    ]
    assert all("images/s, loss " in b and "elapsed " in b for b in batches)
    (summary,) = [line for line in lines if line.startswith("train: epoch 1/2 done in ")]
    assert "train/loss " in summary and "val/acc " in summary
    assert any(line.startswith("train: epoch 2/2 done in ") for line in lines)


def test_prediction_prints_batch_lines(capsys):
    trainer(LogProgress("evaluate: predict")).predict(Tiny(), loader())
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "evaluate: predict: 1/3 batches (33 %)",
        "evaluate: predict: 3/3 batches (100 %)",
    ]
