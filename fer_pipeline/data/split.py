"""Train/val/test assignment: the dataset's official split when it has one, else stratified by seed."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fer_pipeline.data.layout import ImageFolder
from fer_pipeline.errors import PipelineError

SPLITS = ("train", "val", "test")
MANIFEST_FIELDS = ["path", "label", "class", "split"]


def stratified_split(labels: list[int], val: float, test: float, seed: int) -> list[str]:
    """Assign each index a split so every class keeps its share in train, val and test.

    Each class with at least 3 images puts at least one in val and one in test.
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise PipelineError(f"split fractions val={val}, test={test} must be >= 0 and sum below 1")
    labels_arr = np.asarray(labels)
    splits = np.full(len(labels), "train", dtype=object)
    rng = np.random.default_rng(seed)
    for label in np.unique(labels_arr):
        idx = np.flatnonzero(labels_arr == label)
        rng.shuffle(idx)
        n = len(idx)
        n_test = int(round(n * test))
        n_val = int(round(n * val))
        if n >= 3:
            n_test = max(n_test, 1 if test > 0 else 0)
            n_val = max(n_val, 1 if val > 0 else 0)
        splits[idx[:n_test]] = "test"
        splits[idx[n_test : n_test + n_val]] = "val"
    return splits.tolist()


def grouped_split(
    labels: list[int], groups: list[int] | None, val: float, test: float, seed: int
) -> list[str]:
    """:func:`stratified_split` over groups of images (near-duplicates of one face) instead of
    images, so a group never straddles splits. A group is stratified by its first member's label."""
    if groups is None:
        return stratified_split(labels, val, test, seed)
    first: dict[int, int] = {}
    for i, group in enumerate(groups):
        first.setdefault(group, i)
    keys = list(first)
    per_group = stratified_split([labels[first[g]] for g in keys], val, test, seed)
    split_of = dict(zip(keys, per_group, strict=True))
    return [split_of[g] for g in groups]


def assign_splits(
    dataset: ImageFolder, val: float, test: float, seed: int, groups: list[int] | None = None
) -> list[str]:
    """The split of each item of ``dataset``: official where the dataset has one.

    A dataset with official train and test but no val gets val carved from train, stratified.
    ``groups`` (a group id per item, e.g. from the leakage check) keeps each group in one split
    wherever this function chooses the split; official assignments are never changed here.
    """
    labels = [item.label for item in dataset.items]
    if not dataset.has_official_split:
        return grouped_split(labels, groups, val, test, seed)
    official = [item.split for item in dataset.items]
    present = set(official)
    if "train" not in present or "test" not in present:
        raise PipelineError(
            f"dataset {dataset.root} has split folders {sorted(present)}; it needs train and test"
        )
    if "val" in present:
        return official
    train_idx = [i for i, s in enumerate(official) if s == "train"]
    carved = grouped_split(
        [labels[i] for i in train_idx],
        [groups[i] for i in train_idx] if groups is not None else None,
        val / (1 - test),
        0.0,
        seed,
    )
    for i, split in zip(train_idx, carved, strict=True):
        official[i] = split
    return official


def write_manifest(path: Path, dataset: ImageFolder, splits: list[str | None]) -> None:
    """One row per image; images whose split is ``None`` (dropped) are left out."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(MANIFEST_FIELDS)
        for item, split in zip(dataset.items, splits, strict=True):
            if split is not None:
                writer.writerow([item.path, item.label, dataset.classes[item.label], split])


def read_manifest(path: str | Path, classes: list[str]) -> list[dict]:
    """Rows of a split manifest as dicts (path, label: int, split). Checks labels and splits."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"split manifest {path} is missing (run the split stage first)")
    rows = []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"path", "label", "split"} <= set(reader.fieldnames):
            raise PipelineError(f"{path}: header must include path,label,split")
        for line, row in enumerate(reader, start=2):
            try:
                label = int(row["label"])
            except ValueError:
                raise PipelineError(
                    f"{path} line {line}: label '{row['label']}' is not an integer"
                ) from None
            if not 0 <= label < len(classes):
                raise PipelineError(
                    f"{path} line {line}: label {label} is outside the class list "
                    f"(0..{len(classes) - 1}: {classes})"
                )
            if row["split"] not in SPLITS:
                raise PipelineError(f"{path} line {line}: unknown split '{row['split']}'")
            rows.append({"path": row["path"], "label": label, "split": row["split"]})
    if not rows:
        raise PipelineError(f"split manifest {path} has no rows")
    return rows
