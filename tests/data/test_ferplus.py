"""FER+: FERPlus's majority vote on hand-made vote rows, 8 classes, aligned files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from fer_pipeline.data.ferplus import FERPLUS_CLASSES, FERPLUS_VOTES, ferplus_label, write_ferplus
from fer_pipeline.data.layout import read_image_folder, write_info
from fer_pipeline.errors import PipelineError
from tests.data.test_fer2013 import ROWS, write_csv

#            neu hap sur sad ang dis fea con unk NF
VOTES = [
    ([10, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0),  # unanimous neutral
    ([4, 5, 1, 0, 0, 0, 0, 0, 0, 0], 1),  # single vote dropped: 5 of the remaining 9 > 50 %
    ([4, 4, 2, 0, 0, 0, 0, 0, 0, 0], None),  # 4 of 10: no majority
    ([3, 6, 1, 0, 0, 0, 0, 0, 0, 0], 1),  # the single surprise vote is dropped: 6 of 9
    ([0, 0, 0, 0, 0, 0, 0, 7, 3, 0], 7),  # contempt, the class FER2013 lacks
    ([0, 0, 0, 0, 0, 0, 0, 0, 8, 2], None),  # winner unknown: dropped
    ([0, 0, 0, 0, 0, 0, 0, 0, 0, 10], None),  # not a face: dropped
    ([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], None),  # only single votes: nothing left
    ([5, 5, 0, 0, 0, 0, 0, 0, 0, 0], None),  # a tie is not a majority
]


@pytest.mark.parametrize("votes,label", VOTES)
def test_majority_vote_as_ferplus_does(votes, label):
    assert ferplus_label(votes) == label


def write_votes(path: Path, rows: list[tuple[str, str, list[int]]]) -> Path:
    lines = ["Usage,Image name," + ",".join(FERPLUS_VOTES)]
    lines += [f"{u},{n}," + ",".join(map(str, v)) for u, n, v in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def vote_rows() -> list[tuple[str, str, list[int]]]:
    """One vote row per FER2013 row of ROWS, in order; the 4th has no image, the 5th no majority."""
    rows = []
    for i, (_, usage) in enumerate(ROWS):
        votes = list(VOTES[[0, 3, 4, 0, 0, 5, 0, 3][i]][0])
        rows.append((usage, "" if i == 3 else f"fer{i:07d}.png", votes))
    return rows


def test_ferplus_dataset_has_8_classes_and_official_splits(tmp_path):
    out = tmp_path / "raw"
    out.mkdir()
    origin = write_ferplus(
        write_csv(tmp_path / "fer2013.csv"), write_votes(tmp_path / "new.csv", vote_rows()), out
    )
    write_info(out, "ferplus", list(FERPLUS_CLASSES))
    dataset = read_image_folder(out)
    assert dataset.classes[-1] == "contempt" and len(dataset.classes) == 8
    assert origin["dropped"] == {"no_image": 1, "no_majority": 1}
    counts = Counter((i.split, dataset.classes[i.label]) for i in dataset.items)
    assert counts == Counter(
        {("train", "neutral"): 1, ("train", "happiness"): 1, ("train", "contempt"): 1,
         ("val", "neutral"): 1, ("test", "neutral"): 1, ("test", "happiness"): 1}
    )  # fmt: skip
    assert (out / "train/contempt/fer0000002.png").is_file()


def test_misaligned_files_are_refused(tmp_path):
    csv = write_csv(tmp_path / "fer2013.csv")
    rows = vote_rows()
    short = write_votes(tmp_path / "short.csv", rows[:-1])
    with pytest.raises(PipelineError, match="differ in length"):
        write_ferplus(csv, short, tmp_path / "a")
    swapped = write_votes(tmp_path / "swapped.csv", [("PrivateTest", *rows[0][1:]), *rows[1:]])
    with pytest.raises(PipelineError, match="line 2: Usage 'PrivateTest' disagrees"):
        write_ferplus(csv, swapped, tmp_path / "b")


def test_missing_labels_file_says_what_to_put_where(tmp_path):
    with pytest.raises(PipelineError, match="put fer2013new.csv"):
        write_ferplus(write_csv(tmp_path / "fer2013.csv"), tmp_path / "nope.csv", tmp_path / "o")
