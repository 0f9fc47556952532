"""FERDataModule over a real crop + split: batches, augmentation, reproducibility."""

from __future__ import annotations

import pytest
import torch

from fer_pipeline.data.datamodule import FERDataModule
from tests.conftest import run_module


@pytest.fixture(scope="module")
def split_project(tmp_path_factory):
    from tests.conftest import make_project

    root = make_project(tmp_path_factory.mktemp("dm") / "project")
    for stage in ("prepare", "crop", "split"):
        run_module(stage, cwd=root)
    return root


def datamodule(root, seed=0, num_workers=0, augment=True) -> FERDataModule:
    dm = FERDataModule(
        str(root / "data/faces"),
        str(root / "data/split/manifest.csv"),
        input_size=40,
        batch_size=8,
        num_workers=num_workers,
        seed=seed,
        augment={"hflip": 0.5, "rotate": 10, "brightness_contrast": 0.2} if augment else None,
    )
    dm.setup("fit")
    return dm


def first_batch(dm: FERDataModule):
    torch.manual_seed(0)  # the shuffle order
    return next(iter(dm.train_dataloader()))


def test_batches_have_the_documented_shapes(split_project):
    dm = datamodule(split_project)
    x, y = first_batch(dm)
    assert x.shape == (8, 1, 40, 40) and x.dtype == torch.float32
    assert y.dtype == torch.long and int(y.max()) < dm.num_classes == 7
    assert set(dm.splits) == {"train", "val"}  # fitting reads no test face
    dm.setup("test")
    assert sum(len(dm.splits[s]) for s in ("train", "val", "test")) == 84


def test_same_seed_same_augmentation_other_seed_other(split_project):
    a, b, c = (first_batch(datamodule(split_project, seed=s))[0] for s in (1, 1, 2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_evaluation_batches_are_not_augmented(split_project):
    plain = datamodule(split_project, augment=False)
    augmented = datamodule(split_project)
    x_plain, _ = next(iter(plain.val_dataloader()))
    x_aug, _ = next(iter(augmented.val_dataloader()))
    assert torch.equal(x_plain, x_aug)


def test_augmentation_with_workers_is_reproducible(split_project):
    a = first_batch(datamodule(split_project, seed=1, num_workers=2))[0]
    b = first_batch(datamodule(split_project, seed=1, num_workers=2))[0]
    assert torch.equal(a, b)
