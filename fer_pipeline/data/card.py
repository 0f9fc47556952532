"""Dataset cards: what a dataset holds, written next to it so a run can say exactly what it saw.

``prepare`` writes the *source* card (``data/raw/card.json``): the source file and its checksum,
images per official split and class, image sizes and modes, and a digest of every image and label.
``split`` writes the *final* card (``data/split/card.json``): the train/val/test counts actually
used, the leakage check's result, and the source card inside. Each comes with a ``card.md``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from fer_pipeline.data.layout import ImageFolder
from fer_pipeline.errors import PipelineError
from fer_pipeline.hashing import file_md5

CARD_NAME = "card.json"
SOURCE_CARD = "source_card.json"  # the source card, as the crop stage passes it on


def image_stats(paths: list[Path]) -> dict:
    """Sizes, modes and bytes of image files (headers only: fast on 30 k files)."""
    widths, heights, modes, total = [], [], Counter(), 0
    for path in paths:
        with Image.open(path) as im:
            widths.append(im.width)
            heights.append(im.height)
            modes[im.mode] += 1
        total += path.stat().st_size
    summary = {}
    for name, values in (("width", widths), ("height", heights)):
        summary[name] = {
            "min": int(np.min(values)),
            "median": float(np.median(values)),
            "max": int(np.max(values)),
        }
    return {**summary, "modes": dict(sorted(modes.items())), "bytes": total}


def content_digest(
    dataset: ImageFolder, splits: list[str] | None = None, file_md5s: list[str] | None = None
) -> str:
    """MD5 over every image's path, label (and split) and file MD5: equal digests, equal data.

    ``file_md5s``: the files' MD5s, when the caller has them already."""
    digest = hashlib.md5()
    for i, item in enumerate(dataset.items):
        split = splits[i] if splits is not None else item.split
        md5 = file_md5s[i] if file_md5s is not None else file_md5(dataset.root / item.path)
        line = f"{item.path}\t{item.label}\t{split}\t{md5}\n"
        digest.update(line.encode())
    return digest.hexdigest()


def count_table(dataset: ImageFolder, splits: list[str | None]) -> dict[str, dict[str, int]]:
    counts = Counter(zip(splits, (item.label for item in dataset.items), strict=True))
    order = [s for s in ("train", "val", "test", None) if any(k[0] == s for k in counts)]
    return {
        (split or "all"): {c: counts[(split, i)] for i, c in enumerate(dataset.classes)}
        for split in order
    }


def source_card(dataset: ImageFolder) -> dict:
    """The card ``prepare`` writes for the dataset it just materialised."""
    splits = [item.split for item in dataset.items]
    counts = count_table(dataset, splits)
    return {
        "name": dataset.name,
        "source": dataset.info.get("source"),
        "origin": dataset.info.get("origin", {}),
        "classes": dataset.classes,
        "official_split": dataset.has_official_split,
        "counts": counts,
        "totals": {s: sum(c.values()) for s, c in counts.items()},
        "images": image_stats([dataset.root / item.path for item in dataset.items]),
        "digest": content_digest(dataset),
    }


def split_card(
    dataset: ImageFolder,
    splits: list[str | None],
    source: dict,
    file_md5s: list[str] | None = None,
    **extra,
) -> dict:
    """The card ``split`` writes: final counts per split and class (``None`` = left out)."""
    kept = [s for s in splits if s is not None]
    counts = count_table(dataset, splits)
    counts.pop("all", None)  # images the leakage check dropped
    return {
        "name": dataset.name,
        "classes": dataset.classes,
        "counts": counts,
        "totals": {s: sum(c.values()) for s, c in counts.items()},
        "images": len(kept),
        "digest": content_digest(dataset, splits, file_md5s),
        **extra,
        "source_card": source,
    }


def card_markdown(card: dict) -> str:
    """A human-readable card: the count table and the provenance lines."""
    classes = card["classes"]
    lines = [f"# Dataset card: {card['name']}", ""]
    origin = card.get("origin") or card.get("source_card", {}).get("origin", {})
    if origin:
        lines += [f"- source: {origin.get('format', '?')} `{origin.get('file', '?')}`"]
        if origin.get("md5"):
            lines += [f"- source MD5: `{origin['md5']}`"]
        if origin.get("archive"):
            lines += [f"- from archive `{origin['archive']}`, MD5 `{origin['archive_md5']}`"]
    lines += [f"- content digest: `{card['digest']}`", ""]
    lines += ["| split | " + " | ".join(classes) + " | total |"]
    lines += ["|---" * (len(classes) + 2) + "|"]
    for split, row in card["counts"].items():
        cells = " | ".join(str(row[c]) for c in classes)
        lines.append(f"| {split} | {cells} | {card['totals'][split]} |")
    images = card.get("images")
    if isinstance(images, dict):
        w, h = images["width"], images["height"]
        lines += [
            "",
            f"- image width {w['min']}..{w['max']} (median {w['median']:g}), "
            f"height {h['min']}..{h['max']} (median {h['median']:g}), modes {images['modes']}, "
            f"{images['bytes'] / 1e6:.1f} MB",
        ]
    if "leakage" in card:
        leak = card["leakage"]
        lines += [
            "",
            f"- leakage check: {leak['cross_split_pairs']} near-duplicate pairs across splits "
            f"({leak['exact_cross_split_pairs']} exact), action `{leak['action']}`",
        ]
    return "\n".join(lines) + "\n"


def write_card(folder: Path, card: dict) -> None:
    (folder / CARD_NAME).write_text(json.dumps(card, indent=2) + "\n")
    (folder / "card.md").write_text(card_markdown(card))


def read_card(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"dataset card {path} is missing (rerun the stage that writes it)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise PipelineError(f"dataset card {path} is not valid JSON ({err})") from None


def check_prepared(split_dir: str | Path, name: str) -> dict:
    """The card of the split in ``split_dir``, when it is of the dataset ``name`` (the composed
    ``data.name``); otherwise a one-line error naming both and the commands that prepare ``name``.
    Returns the card."""
    path = Path(split_dir) / CARD_NAME
    prepare = (
        f"python -m fer_pipeline.prepare data={name}, then crop and split with the same "
        f"data={name} (docs/datasets.md), or dvc exp run -S data={name}"
    )
    if not path.is_file():
        raise PipelineError(f"no prepared data: {path} is missing; prepare '{name}' with {prepare}")
    card = read_card(path)
    if card.get("name") != name:
        raise PipelineError(
            f"{split_dir} holds '{card.get('name')}' ({path}), but this run's data is '{name}': "
            f"prepare it with {prepare}"
        )
    return card
