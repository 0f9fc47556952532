"""Test-time augmentation: which views are averaged, and what averaging them does."""

from __future__ import annotations

import pytest
import torch

from fer_pipeline.errors import PipelineError
from fer_pipeline.evaluation.settings import check_tta
from fer_pipeline.evaluation.tta import predict_proba, views


class LeftRight(torch.nn.Module):
    """Scores (mean of the left half, mean of the right half): a net that tells mirror images apart."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        return torch.stack([x[..., :half].mean((1, 2, 3)), x[..., half:].mean((1, 2, 3))], dim=1)


def test_views_per_mode_keep_the_input_shape():
    x = torch.randn(3, 1, 48, 48)
    for mode, count in (("none", 1), ("hflip", 2), ("tencrop", 10)):
        got = views(x, mode, crop=0.875)
        assert len(got) == count and all(v.shape == x.shape for v in got)
    assert torch.equal(views(x, "hflip")[1], x.flip(-1))


def test_tencrop_takes_the_corners_and_the_centre():
    x = torch.zeros(1, 1, 8, 8)
    x[..., :4, :4] = 1.0  # top-left quarter lit
    crops = views(x, "tencrop", crop=0.5)[:5]  # 4x4 crops: top-left, top-right, bottom-left, ...
    assert [float(c.mean()) for c in crops[:4]] == [1.0, 0.0, 0.0, 0.0]
    assert float(crops[4].mean()) == pytest.approx(0.25)  # the centre crop sees one quarter lit


def test_mirror_averaging_cancels_a_left_right_preference():
    x = torch.zeros(2, 1, 16, 16)
    x[..., :8] = 3.0  # bright left half: class 0 wins without TTA
    plain = predict_proba(LeftRight(), x, "none")
    assert plain[:, 0].min() > 0.9
    averaged = predict_proba(LeftRight(), x, "hflip")
    assert torch.allclose(averaged, torch.full_like(averaged, 0.5))
    assert torch.allclose(predict_proba(LeftRight(), x, "tencrop").sum(1), torch.ones(2))


@pytest.mark.parametrize(("mode", "crop"), [("fivecrop", 0.9), ("tencrop", 0.0), ("hflip", 1.5)])
def test_bad_tta_settings_are_refused(mode, crop):
    with pytest.raises(PipelineError, match="evaluation.tta"):
        check_tta(mode, crop)
