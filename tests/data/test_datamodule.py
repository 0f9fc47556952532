"""FERDataModule over a real crop + split: packed faces, batches, augmentation, reproducibility."""

from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from fer_pipeline.data.datamodule import FERDataModule
from fer_pipeline.data.decode import read_image
from fer_pipeline.data.packed import load_packed, pack_splits
from fer_pipeline.errors import PipelineError


def datamodule(root, seed=0, num_workers=0, augment=True, **options) -> FERDataModule:
    dm = FERDataModule(
        str(root / "data/faces"),
        str(root / "data/split/manifest.csv"),
        input_size=40,
        batch_size=8,
        num_workers=num_workers,
        seed=seed,
        augment={"hflip": 0.5, "rotate": 10, "brightness_contrast": 0.2} if augment else None,
        **options,
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


def manifest_rows(root) -> list[dict]:
    with (root / "data/split/manifest.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_packed_faces_are_the_image_files_bit_for_bit_in_manifest_order(split_project):
    rows = manifest_rows(split_project)
    manifest = split_project / "data/split/manifest.csv"
    for split in ("train", "val", "test"):
        chosen = [r for r in rows if r["split"] == split]
        packed = load_packed(split_project / "data/split", split, manifest)
        assert packed.dtype == np.uint8 and packed.shape == (len(chosen), 32, 32)
        for image, row in zip(packed, chosen, strict=True):
            assert np.array_equal(image, read_image(split_project / "data/faces" / row["path"]))
    dm = datamodule(split_project, source="packed")
    dm.setup("test")
    for split in ("train", "val", "test"):
        chosen = [r for r in rows if r["split"] == split]
        assert dm.splits[split].labels == [int(r["label"]) for r in chosen]
        assert dm.splits[split].paths == [r["path"] for r in chosen]


SOURCES = ("packed", "files")


def test_packed_and_file_sources_give_the_same_batches(split_project):
    packed, files = (first_batch(datamodule(split_project, seed=3, source=s)) for s in SOURCES)
    assert torch.equal(packed[0], files[0]) and torch.equal(packed[1], files[1])


def test_batched_augmentation_path_gives_normalised_training_batches(split_project):
    dm = datamodule(split_project, seed=1, augmentation="batched")
    raw = first_batch(dm)
    assert raw[0].dtype == torch.uint8  # the loader leaves augmentation to the device
    x, y = dm.on_after_batch_transfer(raw, 0)
    assert x.shape == (8, 1, 40, 40) and x.dtype == torch.float32 and y.shape == (8,)
    again = datamodule(split_project, seed=1, augmentation="batched")
    assert torch.equal(x, again.on_after_batch_transfer(first_batch(again), 0)[0])
    plain = datamodule(split_project, augment=False)
    val = next(iter(dm.val_dataloader()))[0]  # evaluation batches: already floats, not augmented
    assert torch.equal(val, next(iter(plain.val_dataloader()))[0])


def test_stale_or_missing_packed_faces_are_refused(split_project, tmp_path):
    split_dir = tmp_path / "split"
    shutil.copytree(split_project / "data/split", split_dir)
    manifest = split_dir / "manifest.csv"
    manifest.write_text(manifest.read_text().replace(",train\n", ",val\n", 1))
    with pytest.raises(PipelineError, match="packed from another .*manifest.csv.*rerun the split"):
        load_packed(split_dir, "train", manifest)
    shutil.rmtree(split_dir / "packed")
    with pytest.raises(PipelineError, match="info.json is missing.*loader.source=files"):
        load_packed(split_dir, "train", manifest)


def test_faces_of_different_sizes_are_not_packed(split_project, tmp_path):
    faces = tmp_path / "faces"
    shutil.copytree(split_project / "data/faces", faces)
    rows = [{**r, "label": int(r["label"])} for r in manifest_rows(split_project)]
    odd = faces / rows[-1]["path"]
    cv2.imwrite(str(odd), np.zeros((20, 24), np.uint8))
    info = pack_splits(faces, rows, True, tmp_path / "packed", "md5")
    assert str(odd) in info["unpacked_reason"] and not list((tmp_path / "packed").glob("*.npy"))
    assert json.loads((tmp_path / "packed/info.json").read_text()) == info


@pytest.mark.parametrize(
    ("option", "key"),
    [({"source": "lmdb"}, "loader.source"), ({"augmentation": "gpu"}, "loader.augmentation")],
)
def test_unknown_loader_choice_is_a_clear_error(split_project, option, key):
    with pytest.raises(PipelineError, match=f"{key} must be one of .*got"):
        datamodule(split_project, **option)


def test_auto_augmentation_is_batched_unless_faces_differ_in_size(split_project, tmp_path):
    assert datamodule(split_project, augmentation="auto").augmentation == "batched"
    faces = tmp_path / "faces"
    shutil.copytree(split_project / "data/faces", faces)
    train_row = next(r for r in manifest_rows(split_project) if r["split"] == "train")
    cv2.imwrite(str(faces / train_row["path"]), np.zeros((20, 24), np.uint8))
    dm = FERDataModule(str(faces), str(split_project / "data/split/manifest.csv"), input_size=40,
                       batch_size=8, source="files", augmentation="auto")  # fmt: skip
    dm.setup("fit")
    assert dm.augmentation == "albumentations"
    x, _ = first_batch(dm)
    assert x.shape == (8, 1, 40, 40) and x.dtype == torch.float32  # resized per image
