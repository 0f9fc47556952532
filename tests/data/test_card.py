"""Dataset cards: counts per split and class as in the source, image stats, content digest."""

from __future__ import annotations

from collections import Counter

import cv2

from fer_pipeline.data.card import card_markdown, source_card, split_card
from fer_pipeline.data.classes import FER2013_CLASSES
from tests.data.test_fer2013 import ROWS, prepare, write_csv

USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def test_source_card_counts_match_the_csv_rows(tmp_path):
    dataset, origin = prepare(write_csv(tmp_path / "fer2013.csv"), tmp_path)
    dataset.info["origin"] = origin
    card = source_card(dataset)
    expected = Counter((USAGE[u], FER2013_CLASSES[e]) for e, u in ROWS)
    for split, row in card["counts"].items():
        assert row == {c: expected[(split, c)] for c in FER2013_CLASSES}
    assert card["totals"] == {"train": 4, "val": 2, "test": 2}
    assert card["images"]["width"] == {"min": 48, "median": 48.0, "max": 48}
    assert card["images"]["modes"] == {"L": len(ROWS)}
    assert card["origin"]["md5"] == origin["md5"]
    text = card_markdown(card)
    assert "| train | 1 | 0 | 0 | 2 | 0 | 0 | 1 | 4 |" in text and origin["md5"] in text


def test_digest_changes_with_one_pixel_and_with_the_split(tmp_path):
    dataset, _ = prepare(write_csv(tmp_path / "fer2013.csv"), tmp_path)
    before = source_card(dataset)["digest"]
    assert source_card(dataset)["digest"] == before  # deterministic
    splits = [item.split for item in dataset.items]
    assert split_card(dataset, splits, {})["digest"] == before
    moved = ["train"] + splits[1:] if splits[0] != "train" else ["val"] + splits[1:]
    assert split_card(dataset, moved, {})["digest"] != before
    path = dataset.root / dataset.items[0].path
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    image[0, 0] ^= 1
    cv2.imwrite(str(path), image)
    assert source_card(dataset)["digest"] != before


def test_split_card_leaves_dropped_images_out(tmp_path):
    dataset, _ = prepare(write_csv(tmp_path / "fer2013.csv"), tmp_path)
    splits = [item.split for item in dataset.items]
    splits[-1] = None
    card = split_card(dataset, splits, {"name": "src"})
    assert card["images"] == len(ROWS) - 1
    assert sum(card["totals"].values()) == len(ROWS) - 1
    assert card["source_card"] == {"name": "src"}


def test_split_card_digest_from_the_leakage_check_equals_reading_the_files(tmp_path):
    """The split stage passes the file MD5s the leakage check computed; same digest as rereading."""
    from fer_pipeline.data.leakage import fingerprint

    dataset, _ = prepare(write_csv(tmp_path / "fer2013.csv"), tmp_path)
    splits = [item.split for item in dataset.items]
    prints = fingerprint([dataset.root / item.path for item in dataset.items])
    assert (
        split_card(dataset, splits, {}, file_md5s=prints.files)["digest"]
        == split_card(dataset, splits, {})["digest"]
    )
