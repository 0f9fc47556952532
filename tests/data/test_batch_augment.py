"""Batched (device) augmentation draws from the same distributions as the albumentations path.

Each test runs one transform alone on a synthetic image through both paths, a few thousand times,
and compares a statistic a wrong implementation would shift (two-sample Kolmogorov-Smirnov, or
proportions for a coin flip). Normalisation is the identity scaled to 0..1 (mean 0, std 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

from fer_pipeline.data.batch_augment import BatchAugment
from fer_pipeline.data.transforms import build_transform

SIDE = 48
N = 2000


def both_paths(image: np.ndarray, augment: dict, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    """``n`` augmented copies of ``image`` from each path, float ``(n, SIDE, SIDE)`` in 0..1."""
    transform = build_transform(SIDE, 0.0, 1.0, augment, seed=0)
    cpu = np.stack([transform(image=image)["image"][0].numpy() for _ in range(n)])
    batch = torch.from_numpy(np.repeat(image[None], n, axis=0))
    device = BatchAugment(SIDE, 0.0, 1.0, augment, seed=0)(batch)[:, 0].numpy()
    return cpu, device


def dot_image(y: int = 14, x: int = 30) -> np.ndarray:
    """A dark face-sized image with one bright 5x5 square off the centre."""
    image = np.zeros((SIDE, SIDE), np.uint8)
    image[y - 2 : y + 3, x - 2 : x + 3] = 255
    return image


def centroid(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre of brightness (row, column) of each image, relative to the image centre."""
    weights = images / images.sum(axis=(1, 2), keepdims=True)
    grid = np.arange(SIDE) - (SIDE - 1) / 2
    return (weights.sum(2) * grid).sum(1), (weights.sum(1) * grid).sum(1)


def assert_same_distribution(a: np.ndarray, b: np.ndarray) -> None:
    result = ks_2samp(a, b)
    assert result.pvalue > 1e-3, f"KS statistic {result.statistic:.3f}, p {result.pvalue:.2e}"


def test_horizontal_flip_rate_matches():
    image = dot_image()
    cpu, device = both_paths(image, {"hflip": 0.3})
    flipped = image[:, ::-1] / 255.0
    rates = [np.mean([np.array_equal(x, flipped) for x in out]) for out in (cpu, device)]
    assert all(abs(rate - 0.3) < 4 * np.sqrt(0.3 * 0.7 / N) for rate in rates), rates


def test_rotation_angles_match():
    cpu, device = both_paths(dot_image(), {"rotate": 20})
    angles = []
    for out in (cpu, device):
        rows, cols = centroid(out)
        angles.append(np.degrees(np.arctan2(rows, cols)))
    assert_same_distribution(*angles)
    start = np.degrees(np.arctan2(*centroid(dot_image()[None] / 255.0)))[0]
    assert np.ptp(angles[1]) == pytest.approx(40, abs=4)  # U(-20, 20) about the start
    assert np.median(angles[1]) == pytest.approx(start, abs=2)


def test_shift_and_scale_match():
    cpu, device = both_paths(dot_image(), {"shift": 0.1, "scale": 0.1}, n=1500)
    for a, b in zip(centroid(cpu), centroid(device), strict=True):
        assert_same_distribution(a, b)


def test_brightness_contrast_match():
    gradient = np.tile(np.linspace(40, 200, SIDE, dtype=np.float32), (SIDE, 1)).astype(np.uint8)
    cpu, device = both_paths(gradient, {"brightness_contrast": 0.2})
    assert_same_distribution(cpu.mean(axis=(1, 2)), device.mean(axis=(1, 2)))
    assert_same_distribution(cpu.std(axis=(1, 2)), device.std(axis=(1, 2)))


def test_erased_area_matches():
    grey = np.full((SIDE, SIDE), 128, np.uint8)
    cpu, device = both_paths(grey, {"erase": 0.5})
    erased = [(out == 0).mean(axis=(1, 2)) for out in (cpu, device)]
    assert_same_distribution(*erased)
    assert abs((erased[1] > 0).mean() - 0.5) < 4 * np.sqrt(0.25 / N)


def test_no_augmentation_only_resizes_and_normalises():
    faces = torch.randint(0, 256, (4, 32, 32), dtype=torch.uint8)
    out = BatchAugment(32, 0.5, 0.25, {"hflip": 1.0})(faces, train=False)
    assert out.shape == (4, 1, 32, 32)
    assert torch.allclose(out[:, 0], (faces / 255.0 - 0.5) / 0.25)
    assert BatchAugment(48, 0.5, 0.25)(faces).shape == (4, 1, 48, 48)
    rgb = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    assert BatchAugment(32, 0.0, 1.0)(rgb).shape == (2, 3, 32, 32)


def test_same_seed_same_augmentations():
    faces = torch.randint(0, 256, (8, 48, 48), dtype=torch.uint8)
    augment = {"hflip": 0.5, "rotate": 10, "shift": 0.05, "erase": 0.5}
    a, b, c = (BatchAugment(48, 0.0, 1.0, augment, seed=s)(faces) for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)
