"""ResNet backbones as feature extractors, with ImageNet weights through torchvision's loading code.

``pretrained=True`` loads torchvision's ImageNet weights via ``weights.get_state_dict()``, which reads
the torch hub cache (``$TORCH_HOME/hub/checkpoints/<file>``) and downloads into it when the file is
missing. Offline, a missing file is a :class:`PipelineError` that says which file to put where.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path

import torch
from torch import nn
from torchvision import models

from fer_pipeline.errors import PipelineError

BACKBONES = {
    "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V2),
    "resnet34": (models.resnet34, models.ResNet34_Weights.IMAGENET1K_V1),
}

STEMS = ("imagenet", "small")


def weights_file(name: str) -> Path:
    """Where torchvision looks for ``name``'s ImageNet weights: the torch hub cache."""
    weights = BACKBONES[name][1]
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def load_imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    weights = BACKBONES[name][1]
    try:
        return weights.get_state_dict(progress=True)
    except (urllib.error.URLError, OSError, RuntimeError) as err:
        raise PipelineError(
            f"ImageNet weights for {name} are not available ({type(err).__name__}: {err}); "
            f"download {weights.url} and put it at {weights_file(name)}, "
            f"or train from scratch with model.net.pretrained=false"
        ) from None


class Backbone(nn.Module):
    """A torchvision ResNet without its classifier: ``(B, C, H, W)`` -> pooled ``(B, features)``.

    Args:
        name: ``resnet50`` (2048 features) or ``resnet34`` (512 features).
        in_channels: channels of the input (1 for gray faces, 3 for RGB).
        gray_to_rgb: for 1-channel input, repeat it 3 times so the ImageNet stem is used as is;
            otherwise the stem is replaced by a 1-channel conv (ImageNet weights summed over RGB).
        pretrained: start from ImageNet weights.
        stem: ``imagenet``: the 7x7 stride-2 convolution (a 48 px face is 24 px after it);
            ``small``: a 3x3 stride-1 convolution for small faces, newly initialised, taking the
            input's own channels (no gray-to-RGB repeat).
        maxpool: keep the stem's 3x3 stride-2 max pooling. ImageNet stem with pooling: 48 px ->
            12 px at the first residual stage; small stem with pooling: 24 px (4x the compute);
            small stem without: 48 px (16x).
    """

    def __init__(
        self,
        name: str,
        in_channels: int = 1,
        gray_to_rgb: bool = True,
        pretrained: bool = False,
        stem: str = "imagenet",
        maxpool: bool = True,
    ):
        super().__init__()
        if name not in BACKBONES:
            raise PipelineError(f"unknown backbone '{name}' (choose from {sorted(BACKBONES)})")
        if in_channels not in (1, 3):
            raise PipelineError(f"in_channels must be 1 or 3, got {in_channels}")
        if stem not in STEMS:
            raise PipelineError(f"model.net.stem must be one of {STEMS}, got '{stem}'")
        builder, _ = BACKBONES[name]
        net = builder(weights=None, zero_init_residual=not pretrained)  # stabler from scratch
        if pretrained:
            net.load_state_dict(load_imagenet_state_dict(name))
        self.repeat = 3 if in_channels == 1 and gray_to_rgb and stem == "imagenet" else 1
        if stem == "small":
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        elif in_channels == 1 and not gray_to_rgb:
            rgb = net.conv1
            net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
            with torch.no_grad():
                net.conv1.weight.copy_(rgb.weight.sum(dim=1, keepdim=True))
        if not maxpool:
            net.maxpool = nn.Identity()
        self.num_features = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.repeat > 1:
            x = x.expand(-1, self.repeat, -1, -1)
        return self.net(x)
