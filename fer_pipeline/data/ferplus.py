"""FER+ (microsoft/FERPlus): FER2013's faces relabelled by 10 crowd votes each (8 classes), into the
image-folder layout. It needs the FER2013 CSV (``data.path``), whose rows ``fer2013new.csv``
(``data.labels_path``) follows row by row."""

from __future__ import annotations

import csv
import itertools
import tempfile
from pathlib import Path

import cv2
import numpy as np

from fer_pipeline.data.fer2013 import USAGE_SPLIT, check_md5, find_source, read_csv
from fer_pipeline.errors import PipelineError
from fer_pipeline.hashing import file_md5

# FER+ (microsoft/FERPlus fer2013new.csv): 10 crowd votes per FER2013 row, in this order.
FERPLUS_VOTES = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
    "unknown", "NF",
)  # fmt: skip
FERPLUS_CLASSES = FERPLUS_VOTES[:8]


def ferplus_label(votes: list[int]) -> int | None:
    """FERPlus's majority rule: votes of 1 are dropped as outliers; the top class wins if it holds
    more than half of the remaining votes and is neither ``unknown`` nor ``NF``; else ``None``."""
    kept = [v if v > 1 else 0 for v in votes]
    total = sum(kept)
    if total == 0:
        return None
    winner = int(np.argmax(kept))
    if kept[winner] <= 0.5 * total or winner >= len(FERPLUS_CLASSES):
        return None
    return winner


def read_ferplus(path: Path) -> list[tuple[int, str, str, list[int]]]:
    """Rows of ``fer2013new.csv`` as ``(line, usage, image name, votes)``."""
    if not path.is_file():
        raise PipelineError(
            f"FER+ labels {path} not found: put fer2013new.csv (microsoft/FERPlus) there, "
            "or set data.labels_path"
        )
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as f:  # a BOM (Excel) is not a name
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if header[:2] != ["Usage", "Image name"] or tuple(header[2:12]) != FERPLUS_VOTES:
            raise PipelineError(
                f"{path}: header must be Usage,Image name,{','.join(FERPLUS_VOTES)}"
            )
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                votes = [int(v) for v in row[2:12]]
            except ValueError:
                raise PipelineError(f"{path} line {line}: vote counts must be integers") from None
            if len(votes) != len(FERPLUS_VOTES):
                raise PipelineError(f"{path} line {line}: {len(votes)} vote counts, expected 10")
            rows.append((line, row[0].strip(), row[1].strip(), votes))
    return rows


def write_ferplus(pixels_path: str | Path, labels_path: str | Path, out: Path) -> dict:
    """FER2013 pixels relabelled by FER+ majority vote into ``<split>/<class>/<image>.png``.

    The two CSVs are aligned row by row, as FERPlus publishes them; rows without an image name or
    without a majority are dropped and counted.
    """
    with tempfile.TemporaryDirectory(prefix="fer2013-", dir=out.parent) as scratch:
        source = find_source(Path(pixels_path), Path(scratch))
        pixels_csv = source.path
        if source.kind != "csv":
            raise PipelineError(
                f"FER+ needs the FER2013 CSV (its rows align with fer2013new.csv), "
                f"but {pixels_path} holds image folders"
            )
        digest = check_md5(pixels_csv, source.name())
        votes = read_ferplus(Path(labels_path))
        for split in USAGE_SPLIT.values():
            for name in FERPLUS_CLASSES:
                (out / split / name).mkdir(parents=True, exist_ok=True)
        dropped = {"no_image": 0, "no_majority": 0}
        for pixel_row, vote_row in itertools.zip_longest(read_csv(pixels_csv), votes):
            if pixel_row is None or vote_row is None:
                raise PipelineError(
                    f"{pixels_csv.name} and {labels_path} differ in length: they are not aligned"
                )
            (line, _, split, image), (vline, usage, name, counts) = pixel_row, vote_row
            if USAGE_SPLIT.get(usage) != split:
                raise PipelineError(
                    f"{labels_path} line {vline}: Usage '{usage}' disagrees with "
                    f"{pixels_csv.name} line {line}: the files are not aligned"
                )
            label = ferplus_label(counts)
            if not name:
                dropped["no_image"] += 1
            elif label is None:
                dropped["no_majority"] += 1
            else:
                cv2.imwrite(str(out / split / FERPLUS_CLASSES[label] / Path(name).name), image)
    origin = {"format": "ferplus", "file": pixels_csv.name, "md5": digest, "dropped": dropped}
    if source.archive is not None:
        origin |= {"archive": source.archive.name, "archive_md5": file_md5(source.archive)}
    return origin
