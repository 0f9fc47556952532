"""The one on-disk dataset layout every stage reads and writes.

```
<root>/dataset.json                  {"name": ..., "classes": [... in label order ...], ...}
<root>/[train|val|test/]<class>/<image>   images; class folders named after the dataset's classes
<root>/annotations.csv               optional: face box and 5 landmarks per image (RetinaFace order)
```

This is the common Kaggle FER2013 layout plus two small files, so a real image-folder dataset and the
synthetic one take the same path through crop, split and training. Labels come from the class *name*
(its index in ``dataset.json``'s ``classes``), never from folder order.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_pipeline.errors import PipelineError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
OFFICIAL_SPLITS = ("train", "val", "test")
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
ANNOTATION_FIELDS = ["path", "x1", "y1", "x2", "y2"] + [
    f"{name}_{axis}" for name in LANDMARK_NAMES for axis in "xy"
]


@dataclass(frozen=True)
class FaceAnnotation:
    """A face box ``(x1, y1, x2, y2)`` and 5 landmarks ``(5, 2)`` in pixel coordinates of the image."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray


@dataclass(frozen=True)
class Item:
    path: str  # relative to the dataset root, with forward slashes
    label: int
    split: str | None  # the dataset's official split, if it has one


@dataclass
class ImageFolder:
    root: Path
    name: str
    classes: list[str]
    items: list[Item]
    info: dict = field(default_factory=dict)

    @property
    def has_official_split(self) -> bool:
        return any(item.split is not None for item in self.items)

    def class_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.classes, 0)
        for item in self.items:
            counts[self.classes[item.label]] += 1
        return counts


def write_info(root: Path, name: str, classes: list[str], **extra) -> None:
    info = {"name": name, "classes": list(classes), **extra}
    (root / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")


def read_info(root: Path) -> dict:
    info_path = root / "dataset.json"
    if not root.is_dir():
        raise PipelineError(f"data folder {root} does not exist (run the previous stage first)")
    if not info_path.is_file():
        raise PipelineError(f"{info_path} is missing: {root} is not a dataset folder")
    try:
        info = json.loads(info_path.read_text())
        classes = info["classes"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise PipelineError(f"{info_path} is not a valid dataset description ({err})") from None
    if not classes or len(set(classes)) != len(classes):
        raise PipelineError(f"{info_path}: 'classes' must be a non-empty list of distinct names")
    return info


def read_image_folder(root: str | Path) -> ImageFolder:
    """List a dataset folder. Raises :class:`PipelineError` for a missing or empty folder, a class
    folder that is not in the class list, or an empty split."""
    root = Path(root)
    info = read_info(root)
    classes = list(info["classes"])
    index = {name: i for i, name in enumerate(classes)}
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise PipelineError(f"data folder {root} has no class folders (it is empty)")
    split_layout = {p.name for p in subdirs} <= set(OFFICIAL_SPLITS)
    groups = [(p.name, p) for p in subdirs] if split_layout else [(None, root)]
    items: list[Item] = []
    for split, base in groups:
        class_dirs = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
        for class_dir in class_dirs:
            if class_dir.name not in index:
                raise PipelineError(
                    f"label '{class_dir.name}' ({class_dir}) is not in the class list {classes} "
                    f"of {root / 'dataset.json'}"
                )
            for image in sorted(class_dir.iterdir()):
                if image.suffix.lower() in IMAGE_SUFFIXES:
                    rel = image.relative_to(root).as_posix()
                    items.append(Item(rel, index[class_dir.name], split))
        if split is not None and not any(item.split == split for item in items):
            raise PipelineError(f"split folder {base} holds no images")
    if not items:
        raise PipelineError(f"data folder {root} holds no images")
    return ImageFolder(root, info.get("name", root.name), classes, items, info)


def write_annotations(path: Path, rows: dict[str, FaceAnnotation]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ANNOTATION_FIELDS)
        for rel, ann in rows.items():
            values = [*ann.box, *np.asarray(ann.landmarks, dtype=float).reshape(-1)]
            writer.writerow([rel, *(f"{v:.2f}" for v in values)])


def read_annotations(root: Path) -> dict[str, FaceAnnotation]:
    """Face boxes and landmarks shipped with a dataset (``annotations.csv``), keyed by image path."""
    path = root / "annotations.csv"
    if not path.is_file():
        return {}
    rows: dict[str, FaceAnnotation] = {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != ANNOTATION_FIELDS:
            raise PipelineError(f"{path}: header must be {','.join(ANNOTATION_FIELDS)}")
        for line, row in enumerate(reader, start=2):
            try:
                values = [float(row[name]) for name in ANNOTATION_FIELDS[1:]]
            except (TypeError, ValueError):
                raise PipelineError(f"{path} line {line}: non-numeric box or landmark") from None
            rows[row["path"]] = FaceAnnotation(
                tuple(values[:4]), np.array(values[4:]).reshape(5, 2)
            )
    return rows
