"""Leakage check: planted exact, re-encoded, brightened, resized and mirrored duplicates across
splits are all found; distinct faces are not; reassign and drop resolve duplicate groups."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fer_pipeline.data.leakage import (
    find_duplicates,
    leakage_report,
    near_pairs,
    phash,
    resolve,
)
from fer_pipeline.errors import PipelineError
from tests.conftest import run_module


def natural_image(seed: int, size: int = 48) -> np.ndarray:
    """Smooth random structure at several scales, like a photo's spectrum (not white noise)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size), np.float32)
    for cells, weight in ((3, 1.0), (6, 0.5), (12, 0.25), (24, 0.12)):
        grid = rng.normal(size=(cells, cells)).astype(np.float32)
        image += weight * cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    image = (image - image.min()) / (image.max() - image.min())
    return (image * 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)


# How a duplicate of a FER2013 face looks in practice.
PLANTS = {
    "exact": lambda im: im.copy(),
    "jpeg q60": lambda im: jpeg(im, 60),
    "brighter": lambda im: np.clip(im.astype(int) + 12, 0, 255).astype(np.uint8),
    "contrast": lambda im: np.clip((im.astype(float) - 128) * 1.15 + 128, 0, 255).astype(np.uint8),
    "resized": lambda im: cv2.resize(
        cv2.resize(im, (96, 96)), (48, 48), interpolation=cv2.INTER_AREA
    ),
    "mirrored": lambda im: im[:, ::-1].copy(),
    "blurred": lambda im: cv2.GaussianBlur(im, (3, 3), 0.8),
}


def check_leakage(paths, rels, splits, threshold, mirrored=True):
    """The split stage's check, for splits already chosen."""
    prints, pairs = find_duplicates(paths, threshold, mirrored)
    return leakage_report(prints, pairs, rels, splits, threshold=threshold, mirrored=mirrored)


def planted_set(tmp_path, distinct: int = 200):
    """``distinct`` different faces over three splits, plus one planted duplicate of a train face in
    val or test per kind of change."""
    paths, rels, splits, planted = [], [], [], []
    splits_cycle = ["train", "train", "train", "val", "test"]
    for i in range(distinct):
        rel = f"{splits_cycle[i % 5]}/{i:04d}.png"
        cv2.imwrite(str(tmp_path / f"{i:04d}.png"), natural_image(i))
        paths.append(tmp_path / f"{i:04d}.png")
        rels.append(rel)
        splits.append(splits_cycle[i % 5])
    for k, (name, change) in enumerate(PLANTS.items()):
        original = 5 * k  # a train face
        path = tmp_path / f"plant_{k}.png"
        cv2.imwrite(str(path), change(natural_image(original)))
        paths.append(path)
        rels.append(f"{'val' if k % 2 else 'test'}/plant_{k}.png")
        splits.append("val" if k % 2 else "test")
        planted.append((rels[original], rels[-1], name))
    return paths, rels, splits, planted


def test_every_planted_duplicate_is_found_and_nothing_else(tmp_path):
    paths, rels, splits, planted = planted_set(tmp_path)
    _, summary, pairs = check_leakage(paths, rels, splits, threshold=4)
    found = {(p["a"], p["b"]) for p in pairs}
    missed = [name for a, b, name in planted if (a, b) not in found]
    assert not missed, f"planted duplicates not found: {missed}"
    assert len(pairs) == len(planted)  # 200 distinct faces: no false pair
    assert summary["cross_split_pairs"] == len(PLANTS)
    assert summary["exact_cross_split_pairs"] == 1
    assert summary["pairs"]["train-test"] + summary["pairs"]["train-val"] == len(PLANTS)
    assert summary["images_in_cross_split_pairs"]["train"] == len(PLANTS)


def test_mirror_images_count_only_when_asked(tmp_path):
    paths, rels, splits, planted = planted_set(tmp_path, distinct=40)
    _, summary, pairs = check_leakage(paths, rels, splits, threshold=4, mirrored=False)
    assert "mirrored" not in {
        name for a, b, name in planted if (a, b) in {(p["a"], p["b"]) for p in pairs}
    }


def test_hash_distance_grows_with_difference():
    a = natural_image(0)
    near = int(np.bitwise_count(phash(a) ^ phash(jpeg(a, 60))))
    far = int(np.bitwise_count(phash(a) ^ phash(natural_image(1))))
    assert near <= 4 < 16 <= far


def test_groups_resolve_to_their_earliest_split():
    splits = ["train", "test", "val", "test", "val", "test"]
    # 0-1-2 form one group (train, test, val); 3-4 another (test, val); 5 is alone.
    pairs = [(0, 1, 2), (1, 2, 0), (3, 4, 4)]
    assert resolve(pairs, splits, "report") == (splits, 0)
    assert resolve(pairs, splits, "reassign") == (
        ["train", "train", "train", "val", "val", "test"],
        3,
    )
    assert resolve(pairs, splits, "drop") == (["train", None, None, None, "val", "test"], 3)
    with pytest.raises(PipelineError, match="split.leakage.action=delete"):
        resolve(pairs, splits, "delete")


def test_within_split_pairs_are_counted_not_resolved():
    splits = ["train", "train"]
    assert resolve([(0, 1, 0)], splits, "drop") == (splits, 0)


def test_near_pairs_over_blocks_match_brute_force(monkeypatch):
    import fer_pipeline.data.leakage as leakage

    monkeypatch.setattr(leakage, "BLOCK", 7)
    rng = np.random.default_rng(0)
    prints = leakage.Fingerprints(
        rng.integers(0, 2**63, 40, dtype=np.uint64) & np.uint64(0xFF),  # 8 bits: many near pairs
        rng.integers(0, 2**63, 40, dtype=np.uint64),
        [str(i) for i in range(40)],
        [str(i) for i in range(40)],
    )
    got = near_pairs(prints, threshold=2, mirrored=False)
    h = prints.hashes
    want = [
        (i, j, int(np.bitwise_count(h[i] ^ h[j])))
        for i in range(40)
        for j in range(i + 1, 40)
        if np.bitwise_count(h[i] ^ h[j]) <= 2
    ]
    assert sorted(got) == want


@pytest.mark.slow
def test_split_stage_reports_and_drops_planted_duplicates(project):
    run_module("prepare", cwd=project)
    run_module("crop", cwd=project)
    run_module("split", cwd=project)
    manifest = (project / "data/split/manifest.csv").read_text().splitlines()[1:]
    rows = [line.split(",") for line in manifest]
    train = next(r for r in rows if r[3] == "train")
    test = next(r for r in rows if r[3] == "test" and r[2] == train[2])
    # Plant: overwrite a test face with a re-encoded copy of a train face of the same class.
    face = cv2.imread(str(project / "data/faces" / train[0]), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(project / "data/faces" / test[0]), jpeg(face, 70))

    # By default the stage splits the synthetic set itself, so it keeps the pair in one split.
    run_module("split", cwd=project)
    together = dict(
        line.split(",")[0::3]
        for line in (project / "data/split/manifest.csv").read_text().splitlines()[1:]
    )
    assert together[train[0]] == together[test[0]]

    # Splitting without regard to duplicates (as the first run did) leaks; the report finds it.
    loose = "split.leakage.keep_groups_together=false"
    out = run_module("split", loose, cwd=project).stdout
    report = json.loads((project / "data/split/leakage.json").read_text())
    assert report["pairs"]["train-test"] >= 1
    assert {(p["a"], p["b"]) for p in report["examples"]} >= {(train[0], test[0])}
    assert "near-duplicate pairs across splits" in out

    run_module("split", loose, "split.leakage.action=drop", cwd=project)
    card = json.loads((project / "data/split/card.json").read_text())
    kept = (project / "data/split/manifest.csv").read_text()
    assert test[0] not in kept and train[0] in kept
    assert card["leakage"]["changed"] >= 1
    assert card["images"] == len(rows) - card["leakage"]["changed"]


def test_every_pair_counted_is_listed_with_its_labels(tmp_path):
    faces = [np.random.default_rng(i).integers(0, 256, (48, 48), dtype=np.uint8) for i in range(3)]
    images = [faces[0], faces[0].copy(), faces[1], faces[1].copy(), faces[2]]
    splits = ["train", "train", "train", "test", "val"]
    labels = [3, 4, 2, 2, 0]  # the within-train pair disagrees on its label
    paths = []
    for k, image in enumerate(images):
        paths.append(tmp_path / f"{k}.png")
        cv2.imwrite(str(paths[-1]), image)
    prints, pairs = find_duplicates(paths, 4, True)
    rels = [p.name for p in paths]
    _, summary, listed = leakage_report(prints, pairs, rels, splits, labels=labels, threshold=4)
    assert [(p["a"], p["b"], p["kind"], p["label_conflict"]) for p in listed] == [
        ("2.png", "3.png", "train-test", False),
        ("0.png", "1.png", "within train", True),
    ]
    assert summary["cross_split_pairs"] == 1 and summary["within_split_pairs"]["train"] == 1
    assert summary["pairs_with_different_labels"] == sum(p["label_conflict"] for p in listed)
