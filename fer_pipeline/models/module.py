"""``FERModule``: the LightningModule that owns loss, metrics and optimisation for any ``net``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from fer_pipeline.errors import PipelineError
from fer_pipeline.models.checkpoint import load_net
from fer_pipeline.models.preprocessing import (
    PREPROCESSING_KEY,
    Preprocessing,
    has_preprocessing,
)
from fer_pipeline.rng import global_rng_state, set_global_rng_state

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


class FERModule(pl.LightningModule):
    """Train ``net`` (``(B, C, H, W)`` -> class scores ``(B, K)``) with cross-entropy.

    Args:
        net: the network (see :mod:`fer_pipeline.models.hybrid`).
        optimizer: ``params -> torch.optim.Optimizer`` (a Hydra ``_partial_`` target).
        scheduler: ``optimizer -> LR scheduler`` or ``None``; stepped once per epoch, except
            ``OneCycleLR`` (given the run's step count, stepped per optimizer step).
        classes: class names in label order.
        label_smoothing: cross-entropy label smoothing.
        class_weights: per-class loss weights ``(K,)`` or ``None``.
        config: the resolved experiment config, stored in checkpoints so they rebuild their net.
        in_channels: input channels of ``net`` (1 gray, 3 RGB), stored for the same reason.
        channels_last: keep the net's weights and inputs in NHWC layout (faster convolutions on
            GPUs with tensor cores and on recent CPUs).
        compile: ``torch.compile`` mode for the net (``default``, ``reduce-overhead``,
            ``max-autotune``), or ``False``. Compiled in place: checkpoints keep their keys.
        compile_backend: ``torch.compile`` backend: ``inductor`` (generated kernels), or
            ``aot_eager`` / ``eager`` (trace only, to check a model compiles).
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable | None = None,
        scheduler: Callable | None = None,
        classes: list[str] | tuple[str, ...] = (),
        label_smoothing: float = 0.0,
        class_weights: torch.Tensor | None = None,
        config: dict | None = None,
        in_channels: int = 1,
        channels_last: bool = False,
        compile: str | bool = False,
        compile_backend: str = "inductor",
    ):
        super().__init__()
        # In checkpoints only: train logs the flat config to MLflow once, as `optimizer.lr` etc.
        self.save_hyperparameters(
            ignore=["net", "optimizer", "scheduler", "class_weights"], logger=False
        )
        self.net = net
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        if compile:
            mode = "default" if compile is True else str(compile)
            if mode not in COMPILE_MODES:
                raise PipelineError(
                    f"trainer.compile must be false or one of {COMPILE_MODES}, got {compile}"
                )
            self.net.compile(mode=mode, backend=compile_backend)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        num_classes = len(classes)
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        # Best val/acc of the real validation epochs (never the sanity check's few batches): the
        # same number as the best checkpoint's score. Persistent, so a resumed run keeps it.
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)
        self._epoch_start: float | None = None  # the training cost of each epoch (see below)
        self._faces_seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=self.memory_format))

    def model_step(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = batch
        scores = self(x)
        loss = nn.functional.cross_entropy(
            scores, y, weight=self.class_weights, label_smoothing=self.hparams.label_smoothing
        )
        return loss, scores, y

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss, scores, y = self.model_step(batch)
        self._faces_seen += int(y.shape[0])
        self.train_loss(loss)
        self.train_acc(scores, y)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        # every trainer.log_every_n_steps steps: a long run's curve while it runs
        self.log("train/loss_step", loss, on_step=True, on_epoch=False)
        return loss

    def on_train_epoch_start(self) -> None:
        # The learning rate this epoch trains with (an epoch scheduler steps after the epoch).
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], sync_dist=True)
        self._epoch_start, self._faces_seen = time.perf_counter(), 0

    def on_validation_epoch_start(self) -> None:
        """The training cost of the epoch that just ended (its training batches only):
        ``train/epoch_s`` and ``train/images_per_s`` (this process's faces)."""
        if self.trainer.sanity_checking or self._epoch_start is None:
            return
        seconds = time.perf_counter() - self._epoch_start
        self.log("train/epoch_s", seconds, sync_dist=True)
        self.log("train/images_per_s", self._faces_seen / seconds, sync_dist=True)
        self._epoch_start = None

    def validation_step(self, batch, batch_idx: int) -> None:
        loss, scores, y = self.model_step(batch)
        self.val_loss(loss)
        self.val_acc(scores, y)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:  # a couple of batches of one class: not a score
            return
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Every checkpoint carries its preprocessing record (see
        :mod:`fer_pipeline.models.preprocessing`) beside the config it was trained with; a full
        one (``last.ckpt``) also every global RNG state, so a resumed run shuffles and augments as
        the unbroken run would have."""
        if has_preprocessing(self.hparams.config):
            record = Preprocessing.from_config(
                self.hparams.config, self.hparams.classes, self.hparams.in_channels
            )
            checkpoint[PREPROCESSING_KEY] = record.to_dict()
        if "optimizer_states" in checkpoint:
            checkpoint["rng"] = global_rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "rng" in checkpoint:
            set_global_rng_state(checkpoint["rng"])

    def configure_optimizers(self):
        if self.optimizer_factory is None:
            raise PipelineError("FERModule was built without an optimizer; it cannot train")
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        if per_step(self.scheduler_factory):
            # one-cycle: warm up, then anneal over every optimizer step of the run
            total = int(self.trainer.estimated_stepping_batches)
            scheduler = self.scheduler_factory(optimizer=optimizer, total_steps=total)
            interval = "step"
        else:
            scheduler, interval = self.scheduler_factory(optimizer=optimizer), "epoch"
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": interval},
        }


def per_step(factory: Callable | None) -> bool:
    """Whether a scheduler factory (a Hydra ``_partial_``) builds a schedule stepped per batch:
    :class:`~torch.optim.lr_scheduler.OneCycleLR`, which needs the run's step count."""
    return getattr(factory, "func", None) is torch.optim.lr_scheduler.OneCycleLR


def load_trained(checkpoint: str | Path) -> FERModule:
    """A trained :class:`FERModule` from a checkpoint written by the train stage, in eval mode.

    The net is :func:`~fer_pipeline.models.checkpoint.load_net`'s (rebuilt from the checkpoint's
    own config, every weight strictly matched). ``module.config`` is that config and
    ``module.preprocessing`` its preprocessing record (how to feed it faces)."""
    net, config, classes, in_channels, preprocessing = load_net(checkpoint)
    module = FERModule(
        net, classes=classes, config=OmegaConf.to_container(config), in_channels=in_channels
    )
    module.config = config
    module.preprocessing = preprocessing
    return module.eval()
