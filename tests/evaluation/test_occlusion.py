"""Occlusion sensitivity against models whose answer is known by construction."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fer_pipeline.errors import PipelineError
from fer_pipeline.evaluation.occlusion import (
    occlusion_masks,
    occlusion_sensitivity,
    sample_per_class,
    window_starts,
)
from fer_pipeline.evaluation.settings import check_settings

# The only region the model looks at: rows 8..15, columns 28..35 of a 48 x 48 face.
ROWS, COLS = slice(8, 16), slice(28, 36)


class LooksAtOneRegion(nn.Module):
    """Class 0 score = 20 x mean of the region, class 1 score = 0: a bright region means class 0,
    a region filled with the mean (0 in normalised units) means a 50/50 tie."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(20.0))

    def forward(self, x):
        evidence = self.scale * x[:, 0, ROWS, COLS].mean(dim=(1, 2))
        return torch.stack([evidence, torch.zeros_like(evidence)], dim=1)


def bright_faces(n: int = 3) -> torch.Tensor:
    faces = torch.randn(n, 1, 48, 48) * 0.1
    faces[:, :, ROWS, COLS] = 1.0
    return faces


def test_map_lights_up_the_region_the_model_reads_and_nothing_else():
    faces = bright_faces()
    maps = occlusion_sensitivity(LooksAtOneRegion(), faces, torch.zeros(3, dtype=torch.long), 8, 4)
    assert maps.drop.shape == (3, 48, 48) and maps.flip.shape == (3, 48, 48)
    assert torch.all(maps.pred == 0) and torch.all(maps.prob > 0.99)
    # The pixels some window overlapping the region covers: windows start every 4 px, so rows
    # 4..19 and columns 24..39. Those light up; everything else stays exactly 0.
    band = torch.zeros(48, 48, dtype=torch.bool)
    band[4:20, 24:40] = True
    for drop in maps.drop:
        assert torch.all(drop[band] > 0) and torch.all(drop[~band] == 0)
        assert drop[ROWS, COLS].min() > 0.1
        row, col = divmod(int(drop.argmax()), 48)  # the strongest effect: inside the region
        assert ROWS.start <= row < ROWS.stop and COLS.start <= col < COLS.stop
    # A dark fill flips the prediction to class 1 when it hides enough of the region, and never
    # outside the band; hiding exactly the region always flips it.
    dark = occlusion_sensitivity(
        LooksAtOneRegion(), faces, torch.zeros(3, dtype=torch.long), 8, 4, fill=-2.0
    )
    whole_region = dark.window_flip.view(3, 11, 11)[:, 2, 7]  # the window at (8, 28)
    assert torch.all(whole_region == 1)
    assert torch.all(dark.flip[:, ROWS, COLS] > 0) and torch.all(dark.flip[:, ~band] == 0)


def test_batching_does_not_change_the_maps():
    faces = bright_faces(4)
    labels = torch.tensor([0, 1, 0, 1])
    model = LooksAtOneRegion()
    one = occlusion_sensitivity(model, faces, labels, 8, 4, batch_size=7)
    many = occlusion_sensitivity(model, faces, labels, 8, 4, batch_size=1000)
    assert torch.allclose(one.drop, many.drop, atol=1e-6)
    assert torch.equal(one.window_flip, many.window_flip)
    # For the wrong label (class 1) occluding the evidence raises its probability: a negative drop.
    assert one.drop[1, ROWS, COLS].max() < 0


def test_windows_cover_every_pixel():
    assert window_starts(48, 8, 4) == list(range(0, 41, 4))
    assert window_starts(10, 4, 4) == [0, 4, 6]  # a last window flush with the edge
    masks = occlusion_masks(10, 10, 4, 4)
    assert masks.shape == (9, 10, 10) and torch.all(masks.any(dim=0))


@pytest.mark.parametrize(
    "window,stride,message",
    [(64, 4, "window 64 is larger than the 48 px"), (8, 0, "stride must be >= 1, got 0")],
)
def test_bad_settings_are_refused(window, stride, message):
    with pytest.raises(PipelineError, match=message):
        check_settings(window, stride, 48)


def test_sample_is_seeded_per_class_and_nested():
    labels = [0] * 10 + [1] * 3 + [2] * 6
    three = sample_per_class(labels, 3, seed=1)
    assert [labels[i] for i in three] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert three == sample_per_class(labels, 3, seed=1)
    assert three != sample_per_class(labels, 3, seed=2)
    five = sample_per_class(labels, 5, seed=1)
    assert five[:3] == three[:3]  # a larger sample starts with the smaller one, class by class
    assert len(sample_per_class(labels, None, seed=1)) == len(labels)
