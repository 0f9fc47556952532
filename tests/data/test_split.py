"""Train/val/test split: stratified, disjoint, deterministic; official splits kept."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_pipeline.data.layout import read_image_folder
from fer_pipeline.data.split import assign_splits, stratified_split
from fer_pipeline.errors import PipelineError


def test_stratified_split_keeps_class_shares():
    labels = [0] * 500 + [1] * 40 + [2] * 300
    splits = stratified_split(labels, val=0.15, test=0.2, seed=0)
    per = Counter(zip(labels, splits, strict=True))
    for label, n in Counter(labels).items():
        assert abs(per[(label, "test")] - 0.2 * n) <= 1
        assert abs(per[(label, "val")] - 0.15 * n) <= 1
        assert per[(label, "train")] + per[(label, "val")] + per[(label, "test")] == n


def test_split_is_deterministic_by_seed():
    labels = list(np.random.default_rng(0).integers(0, 7, 300))
    assert stratified_split(labels, 0.1, 0.1, seed=3) == stratified_split(labels, 0.1, 0.1, seed=3)
    assert stratified_split(labels, 0.1, 0.1, seed=3) != stratified_split(labels, 0.1, 0.1, seed=4)


def test_rare_class_reaches_every_split():
    splits = stratified_split([0] * 100 + [1] * 3, val=0.1, test=0.1, seed=0)
    assert set(splits[100:]) == {"train", "val", "test"}


def test_bad_fractions_are_refused():
    with pytest.raises(PipelineError, match="val=0.6, test=0.5"):
        stratified_split([0, 1], val=0.6, test=0.5, seed=0)


def make_folder(root: Path, layout: dict[str, int], classes=("a", "b")) -> Path:
    for rel, n in layout.items():
        (root / rel).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(root / rel / f"{i}.png"), np.full((8, 8), i, np.uint8))
    (root / "dataset.json").write_text(json.dumps({"name": "t", "classes": list(classes)}))
    return root


def test_official_split_is_kept(tmp_path):
    root = make_folder(
        tmp_path, {"train/a": 5, "train/b": 5, "val/a": 2, "val/b": 2, "test/a": 3, "test/b": 3}
    )
    dataset = read_image_folder(root)
    splits = assign_splits(dataset, val=0.5, test=0.5, seed=0)
    assert [s for s in splits] == [item.split for item in dataset.items]


def test_val_is_carved_from_official_train_only(tmp_path):
    root = make_folder(tmp_path, {"train/a": 20, "train/b": 20, "test/a": 4, "test/b": 4})
    dataset = read_image_folder(root)
    splits = assign_splits(dataset, val=0.1, test=0.2, seed=0)
    for item, split in zip(dataset.items, splits, strict=True):
        if item.split == "test":
            assert split == "test"
        else:
            assert split in ("train", "val")
    assert Counter(splits)["val"] > 0


def test_manifest_splits_are_disjoint_and_cover_every_face(tmp_path):
    from fer_pipeline.data.split import read_manifest, write_manifest

    root = make_folder(tmp_path / "faces", {"a": 30, "b": 12})
    dataset = read_image_folder(root)
    write_manifest(tmp_path / "manifest.csv", dataset, assign_splits(dataset, 0.2, 0.2, seed=1))
    rows = read_manifest(tmp_path / "manifest.csv", dataset.classes)
    by_split = {s: {r["path"] for r in rows if r["split"] == s} for s in ("train", "val", "test")}
    assert not (by_split["train"] & by_split["val"]) and not (by_split["train"] & by_split["test"])
    assert not (by_split["val"] & by_split["test"])
    assert set().union(*by_split.values()) == {item.path for item in dataset.items}
    assert len(rows) == len(dataset.items)


def test_carved_val_keeps_duplicate_groups_together(tmp_path):
    root = make_folder(tmp_path, {"train/a": 40, "train/b": 40, "test/a": 4, "test/b": 4})
    dataset = read_image_folder(root)
    # Pretend every run of 4 consecutive train images is one face, duplicated.
    groups = [i // 4 if item.split == "train" else 1000 + i for i, item in enumerate(dataset.items)]
    for seed in range(5):
        splits = assign_splits(dataset, val=0.2, test=0.2, seed=seed, groups=groups)
        by_group: dict[int, set[str]] = {}
        for group, split in zip(groups, splits, strict=True):
            by_group.setdefault(group, set()).add(split)
        assert all(len(s) == 1 for s in by_group.values())
        assert 8 <= Counter(splits)["val"] <= 32
        assert [
            s for s, item in zip(splits, dataset.items, strict=True) if item.split == "test"
        ] == ["test"] * 8


def test_stratified_split_by_groups_without_official_split(tmp_path):
    root = make_folder(tmp_path, {"a": 30, "b": 30})
    dataset = read_image_folder(root)
    groups = [i // 3 for i in range(len(dataset.items))]
    splits = assign_splits(dataset, val=0.2, test=0.2, seed=0, groups=groups)
    for g in set(groups):
        assert len({s for s, gg in zip(splits, groups, strict=True) if gg == g}) == 1
