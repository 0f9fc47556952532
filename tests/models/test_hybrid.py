"""The four model modes: shapes, gradients to both backbones, ensemble semantics, weight loading."""

from __future__ import annotations

import urllib.error

import pytest
import torch
from torchvision import models

from fer_pipeline.errors import PipelineError
from fer_pipeline.models import backbones
from fer_pipeline.models.backbones import Backbone, weights_file
from fer_pipeline.models.hybrid import EnsembleNet, FusionNet, SingleNet

MODES = {
    "fusion": lambda **kw: FusionNet(7, **kw),
    "ensemble": lambda **kw: EnsembleNet(7, learn_weights=True, **kw),
    "resnet50": lambda **kw: SingleNet(7, "resnet50", **kw),
    "resnet34": lambda **kw: SingleNet(7, "resnet34", **kw),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("in_channels,gray_to_rgb", [(1, True), (1, False), (3, True)])
def test_output_shape_and_gradient_flow(mode, in_channels, gray_to_rgb):
    torch.manual_seed(0)
    net = MODES[mode](in_channels=in_channels, gray_to_rgb=gray_to_rgb)
    x = torch.randn(2, in_channels, 48, 48)
    scores = net(x)
    assert scores.shape == (2, 7)
    torch.nn.functional.cross_entropy(scores, torch.tensor([0, 6])).backward()
    stems = [m for name, m in net.named_modules() if name.endswith("net.conv1")]
    assert len(stems) == (1 if mode.startswith("resnet") else 2)
    for stem in stems:  # the loss reaches the first layer of every backbone
        assert stem.weight.grad is not None and stem.weight.grad.abs().sum() > 0


def test_fusion_concatenates_2048_and_512_features():
    net = FusionNet(7)
    assert net.head[-1].in_features == 2048 + 512


def test_ensemble_returns_log_of_averaged_probabilities():
    torch.manual_seed(0)
    net = EnsembleNet(5).eval()
    x = torch.randn(3, 1, 40, 40)
    with torch.no_grad():
        members = [m(x).softmax(1) for m in net.members]
        expected = (members[0] + members[1]) / 2
        assert torch.allclose(net(x).exp(), expected, atol=1e-6)
        assert torch.allclose(net(x).softmax(1), expected, atol=1e-6)


def test_ensemble_weights_learn_only_when_asked():
    assert not EnsembleNet(7).member_logits.requires_grad
    assert EnsembleNet(7, learn_weights=True).member_logits.requires_grad


def test_pretrained_offline_says_which_file_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(PipelineError) as err:
        Backbone("resnet34", pretrained=True)
    message = str(err.value)
    assert str(weights_file("resnet34")) in message
    assert str(tmp_path) in message and models.ResNet34_Weights.IMAGENET1K_V1.url in message
    assert "model.net.pretrained=false" in message


def test_pretrained_loads_from_the_hub_cache(tmp_path, monkeypatch):
    """Weights placed where the error says are used, without any download."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", pytest.fail)
    torch.manual_seed(1)
    reference = models.resnet34()
    target = weights_file("resnet34")
    target.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), target)
    loaded = Backbone("resnet34", in_channels=3, pretrained=True)
    assert torch.equal(loaded.net.conv1.weight, reference.conv1.weight)
    assert backbones.BACKBONES["resnet34"][1].url.endswith(target.name)


def test_gray_stem_sums_rgb_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = models.resnet34()
    weights_file("resnet34").parent.mkdir(parents=True)
    torch.save(reference.state_dict(), weights_file("resnet34"))
    gray = Backbone("resnet34", in_channels=1, gray_to_rgb=False, pretrained=True)
    assert torch.allclose(gray.net.conv1.weight, reference.conv1.weight.sum(1, keepdim=True))


def test_unknown_backbone():
    with pytest.raises(PipelineError, match="resnet18"):
        Backbone("resnet18")


def test_small_stem_keeps_more_resolution_for_small_faces():
    x = torch.randn(2, 1, 48, 48)
    first_stage = {}
    for stem, maxpool in (("imagenet", True), ("small", True), ("small", False)):
        net = Backbone("resnet34", stem=stem, maxpool=maxpool).net
        h = net.maxpool(
            net.relu(net.bn1(net.conv1(x if stem == "small" else x.expand(-1, 3, -1, -1))))
        )
        first_stage[(stem, maxpool)] = h.shape[-1]
    assert first_stage == {("imagenet", True): 12, ("small", True): 24, ("small", False): 48}
    with pytest.raises(PipelineError, match="model.net.stem must be one of"):
        Backbone("resnet34", stem="tiny")
