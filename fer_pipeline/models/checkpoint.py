"""Trained checkpoints without Lightning: read one safely, rebuild its net from its own config.

Inference (``fer_pipeline.inference``) loads models through this module only, so predicting never
imports Lightning; the train and evaluate stages use it through :mod:`fer_pipeline.models.module`.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import NamedTuple

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from fer_pipeline.errors import PipelineError
from fer_pipeline.models.preprocessing import (
    PREPROCESSING_KEY,
    Preprocessing,
    has_preprocessing,
    preprocessing_of,
)


def build_net(model_cfg, num_classes: int, in_channels: int) -> nn.Module:
    """Instantiate the ``model.net`` config for ``num_classes`` classes and ``in_channels`` input."""
    try:
        return instantiate(model_cfg.net, num_classes=num_classes, in_channels=in_channels)
    except InstantiationException as err:
        if isinstance(err.__cause__, PipelineError):  # e.g. ImageNet weights missing offline
            raise err.__cause__ from None
        raise PipelineError(f"model.net: {' '.join(str(err).split())}") from None


def read_checkpoint(path: str | Path) -> dict:
    """A checkpoint's content, loaded without running any code it may hold
    (``torch.load(weights_only=True)``); one-line errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"checkpoint {path} is missing (run the train stage first)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = " ".join(str(err).split("Check the documentation")[0].split())[:300]
        raise PipelineError(
            f"{path} holds more than weights and plain values and was not loaded "
            f"(it could run code): {reason}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, struct.error) as err:
        raise PipelineError(
            f"{path} is not a readable checkpoint ({' '.join(str(err).split())[:300]})"
        ) from None


def checkpoint_config(state: dict, path: str | Path) -> tuple[DictConfig, list[str], int]:
    """The experiment config, class list and input channels a train-stage checkpoint was made with."""
    try:
        hparams = state["hyper_parameters"]
        return (
            OmegaConf.create(hparams["config"]),
            list(hparams["classes"]),
            hparams.get("in_channels", 1),
        )
    except (KeyError, TypeError) as err:
        raise PipelineError(f"{path} is not a fer-pipeline checkpoint (no {err})") from None


class Loaded(NamedTuple):
    net: nn.Module
    config: DictConfig
    classes: list[str]
    in_channels: int
    preprocessing: Preprocessing | None  # None: a net saved without the pipeline's loader config


def load_net(path: str | Path) -> Loaded:
    """The trained net of a train-stage checkpoint in eval mode, with its config and its
    preprocessing record (classes, input, face crop: :mod:`fer_pipeline.models.preprocessing`). The net is rebuilt from the checkpoint's own config (never fetching ImageNet
    weights: the checkpoint's replace them) and every weight must fit it (strict: a missing or
    unexpected key is a one-line error naming ``path``)."""
    state = read_checkpoint(path)
    config, classes, in_channels = checkpoint_config(state, path)
    preprocessing = None  # a net saved outside the pipeline may have none: what needs it says so
    if PREPROCESSING_KEY in state or has_preprocessing(config):
        preprocessing = preprocessing_of(state, str(path))
    config.model.net.pretrained = False
    net = build_net(config.model, len(classes), in_channels)
    prefix = "net."
    weights = state.get("state_dict")
    if not isinstance(weights, dict):
        raise PipelineError(f"{path} is not a fer-pipeline checkpoint (no state_dict)")
    try:
        net.load_state_dict(
            {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}, strict=True
        )
    except (KeyError, RuntimeError) as err:
        lines = str(err).splitlines()
        first = " ".join((lines[1] if len(lines) > 1 else lines[0]).split())[:300]
        raise PipelineError(f"{path} does not fit the net its config describes ({first})") from None
    return Loaded(net.eval(), config, classes, in_channels, preprocessing)
