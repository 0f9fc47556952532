"""The ResNet50 + ResNet34 hybrid in two forms, and single-backbone baselines.

All return class scores ``(B, num_classes)`` that ``cross_entropy`` takes: logits for ``fusion`` and
``single``; log-probabilities for ``ensemble`` (softmax of log-probabilities gives them back, so one
loss and one prediction rule serve every mode).
"""

from __future__ import annotations

import torch
from torch import nn

from fer_pipeline.models.backbones import Backbone


class FusionNet(nn.Module):
    """Feature fusion: both backbones' pooled features concatenated (2048 + 512) -> one head."""

    def __init__(self, num_classes: int, dropout: float = 0.3, **backbone_kwargs):
        super().__init__()
        self.resnet50 = Backbone("resnet50", **backbone_kwargs)
        self.resnet34 = Backbone("resnet34", **backbone_kwargs)
        features = self.resnet50.num_features + self.resnet34.num_features
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.resnet50(x), self.resnet34(x)], dim=1))


class EnsembleNet(nn.Module):
    """Ensemble: each backbone with its own head; class probabilities averaged, trained jointly.

    With ``learn_weights`` the two members' weights are learned (softmax of two parameters), else
    they are equal. Returns the log of the combined probabilities.
    """

    def __init__(
        self, num_classes: int, dropout: float = 0.3, learn_weights: bool = False, **backbone_kwargs
    ):
        super().__init__()
        self.members = nn.ModuleList()
        for name in ("resnet50", "resnet34"):
            backbone = Backbone(name, **backbone_kwargs)
            head = nn.Sequential(nn.Dropout(dropout), nn.Linear(backbone.num_features, num_classes))
            self.members.append(nn.Sequential(backbone, head))
        self.member_logits = nn.Parameter(torch.zeros(2), requires_grad=learn_weights)

    def member_weights(self) -> torch.Tensor:
        return torch.softmax(self.member_logits, dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_probs = torch.stack([m(x).log_softmax(dim=1) for m in self.members])  # (2, B, K)
        log_w = self.member_weights().log().view(-1, 1, 1)
        return torch.logsumexp(log_probs + log_w, dim=0)


class SingleNet(nn.Module):
    """One backbone and a head: the baseline the hybrid is compared with."""

    def __init__(self, num_classes: int, backbone: str, dropout: float = 0.3, **backbone_kwargs):
        super().__init__()
        self.backbone = Backbone(backbone, **backbone_kwargs)
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(self.backbone.num_features, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
