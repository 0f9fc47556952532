"""Leakage check: exact and near-duplicate faces across train/val/test.

Each face gets a 64-bit perceptual hash (pHash: the signs of the 8x8 lowest DCT frequencies of a
32x32 grey thumbnail, against their median), and of its mirror image too, since flipping is the
usual augmentation. Two faces whose hashes differ in at most ``threshold`` bits are near-duplicates;
identical pixels are exact duplicates. Pairs that straddle splits are leakage: they are reported and,
by option, resolved by moving a duplicate group into its earliest split (train, then val, then test:
``reassign``) or by dropping its members outside that split (``drop``).
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_pipeline.data.decode import read_image
from fer_pipeline.errors import PipelineError

ACTIONS = ("report", "drop", "reassign")
SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}
BLOCK = 256  # rows per block of the all-pairs distance computation (BLOCK x N int64 in memory)


def phash(image: np.ndarray) -> np.uint64:
    """64-bit perceptual hash of a grey (or RGB) uint8 image."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    thumb = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(thumb)[:8, :8].reshape(-1)
    bits = low > np.median(low)
    return np.packbits(bits).view(">u8")[0].astype(np.uint64)


@dataclass
class Fingerprints:
    hashes: np.ndarray  # (N,) uint64
    mirrored: np.ndarray  # (N,) uint64, hash of the horizontally flipped image
    pixels: list[str]  # MD5 of the decoded pixels: equal = exact duplicate
    files: list[str]  # MD5 of each file (for the dataset card's digest, so it is read once)


def fingerprint(paths: list[Path]) -> Fingerprints:
    hashes, mirrored, pixels, files = [], [], [], []
    for path in paths:
        data = path.read_bytes()
        files.append(hashlib.md5(data).hexdigest())
        image = read_image(path, grayscale=True, data=data)
        hashes.append(phash(image))
        mirrored.append(phash(image[:, ::-1]))
        pixels.append(hashlib.md5(np.ascontiguousarray(image).tobytes()).hexdigest())
    return Fingerprints(np.array(hashes, np.uint64), np.array(mirrored, np.uint64), pixels, files)


def near_pairs(
    prints: Fingerprints, threshold: int, mirrored: bool = True
) -> list[tuple[int, int, int]]:
    """All pairs ``(i, j, distance)``, ``i < j``, at Hamming distance <= ``threshold``."""
    h, m = prints.hashes, prints.mirrored
    found = []
    for start in range(0, len(h), BLOCK):
        rows = slice(start, start + BLOCK)
        dist = np.bitwise_count(h[rows, None] ^ h[None, :])
        if mirrored:
            dist = np.minimum(dist, np.bitwise_count(m[rows, None] ^ h[None, :]))
        upper = np.arange(start, start + dist.shape[0])[:, None] < np.arange(len(h))[None, :]
        i, j = np.nonzero((dist <= threshold) & upper)
        found += zip((i + start).tolist(), j.tolist(), dist[i, j].tolist(), strict=True)
    return found


def _components(n: int, pairs) -> list[int]:
    """Union-find: the component id of each of ``n`` items linked by ``(i, j)`` pairs."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        parent[root(i)] = root(j)
    return [root(i) for i in range(n)]


def find_duplicates(
    paths: list[Path], threshold: int, mirrored: bool = True
) -> tuple[Fingerprints, list[tuple[int, int, int]]]:
    """Fingerprints of ``paths`` and every near-duplicate pair among them."""
    if not 0 <= threshold <= 64:
        raise PipelineError(f"split.leakage.threshold={threshold} must be between 0 and 64 bits")
    prints = fingerprint(paths)
    return prints, near_pairs(prints, threshold, mirrored)


def duplicate_groups(pairs: list[tuple[int, int, int]], n: int) -> list[int]:
    """A group id per image: near-duplicates (transitively) share one."""
    return _components(n, [(i, j) for i, j, _ in pairs])


def resolve(
    pairs: list[tuple[int, int, int]], splits: list[str], action: str
) -> tuple[list[str | None], int]:
    """Apply ``action`` to the duplicate groups that straddle splits; return the new splits (``None``
    for a dropped image) and how many images changed."""
    if action not in ACTIONS:
        raise PipelineError(f"split.leakage.action={action} (choose from {list(ACTIONS)})")
    new: list[str | None] = list(splits)
    if action == "report":
        return new, 0
    group = _components(len(splits), [(i, j) for i, j, _ in pairs if splits[i] != splits[j]])
    earliest: dict[int, str] = {}
    for i, split in enumerate(splits):
        g = group[i]
        if g not in earliest or SPLIT_ORDER[split] < SPLIT_ORDER[earliest[g]]:
            earliest[g] = split
    changed = 0
    for i, split in enumerate(splits):
        target = earliest[group[i]]
        if split != target:
            new[i] = target if action == "reassign" else None
            changed += 1
    return new, changed


def leakage_report(
    prints: Fingerprints,
    pairs: list[tuple[int, int, int]],
    rel_paths: list[str],
    splits: list[str],
    labels: list[int] | None = None,
    threshold: int = 4,
    action: str = "report",
    mirrored: bool = True,
) -> tuple[list[str | None], dict, list[dict]]:
    """Resolve the cross-split duplicates in ``splits`` by ``action``; return the new splits, the
    summary for the report and dataset card, and every pair it counts (``kind``: ``train-test``
    ..., or ``within <split>``; ``label_conflict`` when the two faces' labels differ), cross-split
    pairs first."""
    new_splits, changed = resolve(pairs, splits, action)
    by_kind: Counter[str] = Counter()
    listed = []
    for i, j, dist in pairs:
        conflict = labels is not None and labels[i] != labels[j]
        by_kind["label conflicts"] += conflict
        a, b = sorted((splits[i], splits[j]), key=SPLIT_ORDER.get)
        kind = f"within {a}" if a == b else f"{a}-{b}"
        by_kind[kind] += 1
        exact = bool(prints.pixels[i] == prints.pixels[j])
        by_kind["exact"] += exact and a != b
        first, second = (i, j) if SPLIT_ORDER[splits[i]] <= SPLIT_ORDER[splits[j]] else (j, i)
        listed.append(
            {
                "a": rel_paths[first],
                "split_a": splits[first],
                "b": rel_paths[second],
                "split_b": splits[second],
                "kind": kind,
                "distance": dist,
                "exact": exact,
                "label_a": "" if labels is None else labels[first],
                "label_b": "" if labels is None else labels[second],
                "label_conflict": conflict,
            }
        )
    cross = [p for p in listed if not p["kind"].startswith("within")]
    in_pairs = {p[k] for p in cross for k in ("a", "b")}
    summary = {
        "method": "pHash 64-bit" + (" (mirror images too)" if mirrored else ""),
        "threshold": threshold,
        "images": len(rel_paths),
        "cross_split_pairs": len(cross),
        "exact_cross_split_pairs": by_kind.pop("exact", 0),
        "pairs": {k: by_kind[k] for k in ("train-val", "train-test", "val-test")},
        "within_split_pairs": {s: by_kind[f"within {s}"] for s in SPLIT_ORDER},
        "images_in_cross_split_pairs": {
            s: sum(1 for p, sp in zip(rel_paths, splits, strict=True) if sp == s and p in in_pairs)
            for s in SPLIT_ORDER
        },
        "pairs_with_different_labels": by_kind["label conflicts"] if labels is not None else None,
        "action": action,
        "changed": changed,
    }
    # Every pair counted above: the cross-split ones first (what leaks), then those within a split.
    ordered = sorted(listed, key=lambda p: (p["kind"].startswith("within"), p["distance"], p["a"]))
    return new_splits, summary, ordered


def write_pairs(path: Path, cross: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["a", "split_a", "b", "split_b", "kind", "distance", "exact",
                                    "label_a", "label_b", "label_conflict"])  # fmt: skip
        writer.writeheader()
        writer.writerows(cross)


def plot_examples(path: Path, root: Path, cross: list[dict], summary: dict, count: int) -> None:
    """A picture of up to ``count`` cross-split pairs, spread over the distances found."""
    from matplotlib.figure import Figure  # no pyplot: no global backend

    title = (
        f"{summary['cross_split_pairs']} near-duplicate pairs across splits "
        f"(pHash distance <= {summary['threshold']}; {summary['exact_cross_split_pairs']} exact)"
    )
    if not cross:
        fig = Figure(figsize=(6, 1.5), layout="tight")
        ax = fig.subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, title, ha="center", va="center")
    else:
        picks = [cross[k] for k in np.unique(np.linspace(0, len(cross) - 1, count).astype(int))]
        cols = min(4, len(picks))
        rows = -(-len(picks) // cols)
        fig = Figure(figsize=(3.2 * cols, 1.9 * rows + 0.6), layout="tight")
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for ax, pair in zip(axes.ravel(), picks, strict=False):
            a = read_image(root / pair["a"], grayscale=True)
            b = read_image(root / pair["b"], grayscale=True)
            b = cv2.resize(b, (a.shape[1], a.shape[0]))
            gap = np.full((a.shape[0], max(2, a.shape[1] // 12)), 255, np.uint8)
            ax.imshow(np.hstack([a, gap, b]), cmap="gray", vmin=0, vmax=255)
            kind = "exact" if pair["exact"] else f"d={pair['distance']}"
            ax.set_title(f"{pair['split_a']} | {pair['split_b']}  {kind}", fontsize=9)
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=100)
