"""What fits a model: the configured net in a :class:`FERModule`, the Lightning ``Trainer`` with
its checkpoints and progress lines, and publishing a finished run's checkpoints."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

from fer_pipeline.data.datamodule import FERDataModule
from fer_pipeline.io import atomic_dir
from fer_pipeline.models.checkpoint import build_net
from fer_pipeline.models.log_progress import LogProgress
from fer_pipeline.models.module import FERModule
from fer_pipeline.outputs import BEST, LAST
from fer_pipeline.progress import on_terminal

# Keys of the trainer config that FERModule takes; the rest are pytorch_lightning.Trainer arguments.
MODULE_SPEED_KEYS = ("channels_last", "compile", "compile_backend")


def class_weights(labels: list[int], num_classes: int) -> torch.Tensor:
    """Balanced loss weights ``N / (K * n_k)`` from training labels; 0 for a class never seen."""
    counts = torch.bincount(torch.tensor(labels), minlength=num_classes).float()
    return torch.where(counts > 0, counts.sum() / (counts * len(counts)), torch.zeros_like(counts))


def build_module(cfg: DictConfig, datamodule: FERDataModule) -> FERModule:
    """The configured net in a FERModule (loss, optimizer, speed options); sets up ``fit`` data.
    A missing ImageNet weights file fails here, before any image is loaded."""
    in_channels = 1 if datamodule.grayscale else 3
    net = build_net(cfg.model, datamodule.num_classes, in_channels)
    datamodule.setup("fit")
    return FERModule(
        net,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.scheduler else None,
        classes=datamodule.classes,
        label_smoothing=cfg.loss.label_smoothing,
        class_weights=(
            class_weights(datamodule.splits["train"].labels, datamodule.num_classes)
            if cfg.loss.class_weights
            else None
        ),
        config=OmegaConf.to_container(cfg, resolve=True),
        in_channels=in_channels,
        **{key: cfg.trainer[key] for key in MODULE_SPEED_KEYS if key in cfg.trainer},
    )


def native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bf16 natively (x86 AVX512-BF16 or AMX-BF16, Arm BF16), read from
    ``cpuinfo``'s flags; ``False`` where there is no such file."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags |= set(line.split(":", 1)[-1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def build_trainer(cfg: DictConfig, **kwargs) -> pl.Trainer:
    """``pytorch_lightning.Trainer`` from the ``trainer`` config, less the keys FERModule takes."""
    trainer_cfg = {k: v for k, v in cfg.trainer.items() if k not in MODULE_SPEED_KEYS}
    precision = str(trainer_cfg.get("precision", ""))
    if precision.startswith("bf16") and trainer_cfg.get("accelerator") == "cpu":
        if not native_bf16():  # emulated bf16 is slower than fp32
            print(f"train: this CPU has no native bf16 (AVX512-BF16, AMX or Arm BF16): "
                  f"trainer.precision={precision} -> 32-true")  # fmt: skip
            trainer_cfg["precision"] = "32-true"
    if trainer_cfg.get("sync_batchnorm") and trainer_cfg.get("accelerator") == "cpu":
        # torch's SyncBatchNorm runs on GPUs only; CPU processes keep their own batch statistics
        print("train: trainer.sync_batchnorm is for GPUs; off with trainer.accelerator=cpu")
        trainer_cfg["sync_batchnorm"] = False
    return instantiate(trainer_cfg, **kwargs)


def progress_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """Progress lines in a log (:class:`LogProgress`) when stdout is no terminal, where
    Lightning's bar shows nothing until an epoch ends; none when ``trainer.enable_progress_bar``
    is off."""
    if on_terminal() or not cfg.trainer.get("enable_progress_bar", True):
        return []
    return [LogProgress()]


def checkpoint_callbacks(folder: Path) -> tuple[ModelCheckpoint, ModelCheckpoint]:
    """``best.ckpt``: the weights of the best val/acc epoch (what is used); ``last.ckpt``: the
    whole training state after each epoch (optimizer, scheduler, loops, RNGs: what resumes)."""
    best = ModelCheckpoint(
        dirpath=folder,
        filename=Path(BEST).stem,
        monitor="val/acc",
        mode="max",
        save_weights_only=True,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    last = ModelCheckpoint(  # no monitor, top 1: the newest epoch, replacing the one before
        dirpath=folder, filename=Path(LAST).stem, save_top_k=1, enable_version_counter=False
    )
    return best, last


def publish(checkpoints: Path, models_dir: Path) -> None:
    """Replace ``models_dir`` with the finished run's checkpoints, in one rename."""
    with atomic_dir(models_dir) as tmp:
        for name in (BEST, LAST):
            try:
                os.link(checkpoints / name, tmp / name)  # same file system: no copy
            except OSError:
                shutil.copy2(checkpoints / name, tmp / name)
