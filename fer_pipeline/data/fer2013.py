"""FER2013 in its common distributions, turned into the image-folder layout.

Accepted at ``data.path`` (a file, or a folder holding one of these, at most two levels down):

- the competition CSV ``fer2013.csv`` (``emotion,pixels,Usage``) or its ``icml_face_data.csv``
  variant (``emotion, Usage, pixels``, leading spaces in the header): 48x48 faces as 2,304
  space-separated pixels, ``Usage`` Training / PublicTest / PrivateTest, which become the official
  train / val / test split;
- the Kaggle image folders ``train/<class>/*`` and ``test/<class>/*`` with lowercase class names
  (``test`` there is the PublicTest usage; val is carved from train by the split stage);
- a ``.zip``, ``.tar.gz`` or ``.tgz`` archive of either.

Labels always follow FER2013's canonical order (0 angry, 1 disgust, 2 fear, 3 happy, 4 sad,
5 surprise, 6 neutral), taken from class *names* for folders, never from folder order.
"""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_pipeline.data.archives import extract, is_archive
from fer_pipeline.data.classes import FER2013_CLASSES
from fer_pipeline.data.layout import IMAGE_SUFFIXES
from fer_pipeline.errors import PipelineError
from fer_pipeline.hashing import file_md5, tree_md5

CSV_NAMES = ("fer2013.csv", "icml_face_data.csv")
KNOWN_MD5 = {
    "fer2013.csv": "f8428a1edbd21e88f42c73edd2a14f95",
    "icml_face_data.csv": "b114b9e04e6949e5fe8b6a98b3892b1d",
}
USAGE_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SIDE = 48
WHAT_TO_PUT = (
    "put fer2013.csv, icml_face_data.csv, the Kaggle train/ and test/ folders, "
    "or a .zip/.tar.gz of them there"
)


@dataclass(frozen=True)
class Source:
    kind: str  # "csv" | "folders"
    path: Path  # the CSV file, or the folder holding train/ and test/
    archive: Path | None = None  # the user's archive it was unpacked from

    def name(self) -> str:
        """How to name the data to the user: the scratch path of an unpacked file means nothing
        to them, the archive does."""
        if self.archive is None:
            return str(self.path)
        return f"{self.path.name} in {self.archive}"


def find_source(path: Path, scratch: Path, archive: Path | None = None) -> Source:
    """What FER2013 form ``path`` holds: a CSV, or a folder with train/ and test/.

    Archives (given, or the first one in a folder) are unpacked into ``scratch``; the result
    names the archive.
    """
    if not path.exists():
        raise PipelineError(f"no FER2013 at {path}: {WHAT_TO_PUT}, or set data.path")
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return Source("csv", path, archive)
        if is_archive(path):
            return find_source(extract(path, scratch / path.name), scratch, path)
        raise PipelineError(f"{path} is not a FER2013 CSV or archive ({WHAT_TO_PUT})")
    candidates = [path, *sorted(p for p in path.iterdir() if p.is_dir())]
    candidates += [q for p in candidates[1:] for q in sorted(p.iterdir()) if q.is_dir()]
    for folder in candidates:
        for name in CSV_NAMES:
            if (folder / name).is_file():
                return Source("csv", folder / name, archive)
        if (folder / "train").is_dir() and (folder / "test").is_dir():
            return Source("folders", folder, archive)
    archives = sorted(p for p in path.iterdir() if p.is_file() and is_archive(p))
    if archives:  # the first one, by name
        return find_source(extract(archives[0], scratch / archives[0].name), scratch, archives[0])
    raise PipelineError(f"no FER2013 found in {path}: {WHAT_TO_PUT}")


def check_md5(path: Path, shown: str | None = None) -> str:
    """The file's MD5; a warning (not an error) when a known file name has another checksum.
    ``shown``: how to name the file in it (default: its path)."""
    digest = file_md5(path)
    expected = KNOWN_MD5.get(path.name)
    if expected and digest != expected:
        print(
            f"warning: {shown or path} has MD5 {digest}, not the published {expected}: "
            "a modified or partial copy?",
            file=sys.stderr,
        )
    return digest


def read_csv(path: Path) -> Iterator[tuple[int, int, str, np.ndarray]]:
    """Rows of a FER2013 CSV as ``(line, label, split, image (48, 48) uint8)``; one-line errors
    name the file and line."""
    with path.open(newline="", encoding="utf-8-sig") as f:  # a BOM (Excel) is not a name
        reader = csv.reader(f)
        header = [name.strip() for name in next(reader, [])]
        if not {"emotion", "pixels", "Usage"} <= set(header):
            raise PipelineError(f"{path}: header must name emotion, pixels and Usage, got {header}")
        col = {name: header.index(name) for name in ("emotion", "pixels", "Usage")}
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise PipelineError(
                    f"{path} line {line}: {len(row)} fields, header has {len(header)}"
                )
            emotion, pixels, usage = (row[col[k]].strip() for k in ("emotion", "pixels", "Usage"))
            try:
                label = int(emotion)
                values = [int(v) for v in pixels.split()]
            except ValueError:
                raise PipelineError(f"{path} line {line}: emotion or pixels not integers") from None
            if not 0 <= label < len(FER2013_CLASSES):
                raise PipelineError(
                    f"{path} line {line}: emotion {label} is outside the class list 0..6"
                )
            if usage not in USAGE_SPLIT:
                raise PipelineError(
                    f"{path} line {line}: unknown Usage '{usage}' (expected {sorted(USAGE_SPLIT)})"
                )
            if len(values) != SIDE * SIDE:
                raise PipelineError(
                    f"{path} line {line}: {len(values)} pixels, expected {SIDE * SIDE}"
                )
            image = np.array(values)
            if image.min() < 0 or image.max() > 255:
                raise PipelineError(f"{path} line {line}: pixel values outside 0..255")
            yield line, label, USAGE_SPLIT[usage], image.astype(np.uint8).reshape(SIDE, SIDE)


def write_from_csv(path: Path, out: Path, shown: str | None = None) -> dict:
    """Write every CSV row as ``<split>/<class>/<usage>_<row>.png``; return provenance."""
    digest = check_md5(path, shown)
    usage_of = {v: k for k, v in USAGE_SPLIT.items()}
    for split in USAGE_SPLIT.values():
        for name in FER2013_CLASSES:
            (out / split / name).mkdir(parents=True, exist_ok=True)
    for line, label, split, image in read_csv(path):
        name = f"{usage_of[split]}_{line - 2}.png"  # 0-based data row, as Kaggle's file names
        cv2.imwrite(str(out / split / FER2013_CLASSES[label] / name), image)
    return {"format": "csv", "file": path.name, "md5": digest}


def usage_of(name: str) -> str | None:
    """``Training`` / ``PublicTest`` / ``PrivateTest`` from a Kaggle file name such as
    ``PrivateTest_1234.jpg``, else ``None``."""
    prefix = name.split("_", 1)[0]
    return prefix if prefix in USAGE_SPLIT else None


def copy_folders(root: Path, out: Path) -> dict:
    """Copy the Kaggle ``train/`` and ``test/`` class folders, checking class names.

    Kaggle's ``test/`` holds both test usages, and its file names say which
    (``PublicTest_…``, ``PrivateTest_…``). When every file name carries its usage and both test
    usages are there, images go to the official split of their usage, as from the CSV; otherwise
    ``train/`` -> train and ``test/`` -> test (val is carved from train later).
    """
    images: list[tuple[str, str, Path]] = []  # (folder split, class, file)
    for split in ("train", "test"):
        class_dirs = sorted(p for p in (root / split).iterdir() if p.is_dir())
        names = {p.name.lower() for p in class_dirs}
        unknown = names - set(FER2013_CLASSES)
        if unknown:
            raise PipelineError(
                f"{root / split}: class folders {sorted(unknown)} are not FER2013 classes "
                f"{list(FER2013_CLASSES)}"
            )
        for class_dir in class_dirs:
            for image in sorted(class_dir.iterdir()):
                if image.suffix.lower() in IMAGE_SUFFIXES:
                    images.append((split, class_dir.name.lower(), image))
    usages = [usage_of(image.name) for _, _, image in images]
    by_usage = None not in usages and {"PublicTest", "PrivateTest"} <= set(usages)
    for (split, name, image), usage in zip(images, usages, strict=True):
        target = out / (USAGE_SPLIT[usage] if by_usage else split) / name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, target / image.name)
    return {
        "format": "folders",
        "file": root.name,
        "md5": tree_md5(root, [image for _, _, image in images]),
        "split_from": "file names (Training/PublicTest/PrivateTest)" if by_usage else "folders",
    }


def materialise_fer2013(path: str | Path, out: Path) -> dict:
    """Write FER2013 from ``path`` (any form above) into ``out``; return what was read."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="fer2013-", dir=out.parent) as scratch:
        source = find_source(path, Path(scratch))
        if source.kind == "csv":
            origin = write_from_csv(source.path, out, source.name())
        else:
            origin = copy_folders(source.path, out)
    if source.archive is not None:  # given, or found in the folder given
        origin |= {"archive": source.archive.name, "archive_md5": file_md5(source.archive)}
    return origin
