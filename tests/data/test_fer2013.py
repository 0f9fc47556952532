"""FER2013 in its distributions: CSV, icml CSV, Kaggle folders, archives; checksums; bad rows."""

from __future__ import annotations

import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_pipeline.data.card import source_card
from fer_pipeline.data.classes import FER2013_CLASSES
from fer_pipeline.data.fer2013 import materialise_fer2013
from fer_pipeline.data.layout import read_image_folder, write_info
from fer_pipeline.errors import PipelineError
from tests.conftest import ROOT

# (emotion, usage) per row: every split, labels by canonical index.
ROWS = [(0, "Training"), (3, "Training"), (3, "Training"), (6, "Training"), (1, "PublicTest"),
        (5, "PublicTest"), (4, "PrivateTest"), (2, "PrivateTest")]  # fmt: skip


def pixels(i: int) -> np.ndarray:
    return np.random.default_rng(i).integers(0, 256, (48, 48), dtype=np.uint8)


def write_csv(path: Path, icml: bool = False, rows=ROWS, edit=None) -> Path:
    lines = ["emotion, Usage, pixels" if icml else "emotion,pixels,Usage"]
    for i, (emotion, usage) in enumerate(rows):
        px = " ".join(map(str, pixels(i).reshape(-1)))
        lines.append(f"{emotion},{usage},{px}" if icml else f"{emotion},{px},{usage}")
    if edit:
        lines = edit(lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_kaggle_folders(root: Path, private: bool = True) -> Path:
    """The Kaggle layout of ROWS: Training -> train/, PublicTest and PrivateTest -> test/, file names
    ``<usage>_<row>``. ``private=False``: without PrivateTest, like the shared development set."""
    for i, (emotion, usage) in enumerate(ROWS):
        split = {"Training": "train", "PublicTest": "test", "PrivateTest": "test"}[usage]
        if private or usage != "PrivateTest":
            folder = root / split / FER2013_CLASSES[emotion]
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{usage}_{i}.png"), pixels(i))
    return root


def prepare(source: Path, tmp_path: Path):
    out = tmp_path / "raw"
    out.mkdir(parents=True)
    origin = materialise_fer2013(source, out)
    write_info(out, "fer2013", list(FER2013_CLASSES))
    return read_image_folder(out), origin


def counts_by_split(dataset) -> Counter:
    return Counter((item.split, dataset.classes[item.label]) for item in dataset.items)


@pytest.mark.parametrize("icml", [False, True])
def test_csv_keeps_labels_usage_and_pixels(tmp_path, icml):
    dataset, origin = prepare(write_csv(tmp_path / "fer2013.csv", icml=icml), tmp_path)
    assert origin["format"] == "csv"
    expected = Counter(
        ({"Training": "train", "PublicTest": "val", "PrivateTest": "test"}[u], FER2013_CLASSES[e])
        for e, u in ROWS
    )
    assert counts_by_split(dataset) == expected
    image = cv2.imread(str(dataset.root / "val/surprise/PublicTest_5.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(image, pixels(5))


def test_csv_and_folders_give_the_same_faces(tmp_path):
    csv_set, _ = prepare(write_csv(tmp_path / "fer2013.csv"), tmp_path / "a")
    folder_set, origin = prepare(write_kaggle_folders(tmp_path / "kaggle"), tmp_path / "b")
    assert origin["format"] == "folders" and origin["split_from"].startswith("file names")
    # Kaggle's test/ mixes PublicTest and PrivateTest; the file names put each in its split.
    assert counts_by_split(folder_set) == counts_by_split(csv_set)
    assert len(folder_set.items) == len(csv_set.items) == len(ROWS)
    for item in folder_set.items:
        name = Path(item.path).name
        twin = next(i for i in csv_set.items if Path(i.path).name == name)
        assert (twin.label, twin.split) == (item.label, item.split)
        a = cv2.imread(str(folder_set.root / item.path), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(csv_set.root / twin.path), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(a, b)


def test_folders_without_private_test_keep_their_folders(tmp_path):
    """Like the shared development set: test/ holds PublicTest only, so test/ is the test split."""
    dataset, origin = prepare(write_kaggle_folders(tmp_path / "k", private=False), tmp_path)
    assert origin["split_from"] == "folders"
    assert {item.split for item in dataset.items} == {"train", "test"}
    assert sum(item.split == "test" for item in dataset.items) == 2


def test_archives_and_nested_folders(tmp_path):
    csv_path = write_csv(tmp_path / "fer2013.csv")
    with tarfile.open(tmp_path / "fer2013.tar.gz", "w:gz") as tf:
        tf.add(csv_path, arcname="fer2013/fer2013.csv")
    with zipfile.ZipFile(tmp_path / "icml.zip", "w") as zf:
        zf.write(write_csv(tmp_path / "icml_face_data.csv", icml=True), "icml_face_data.csv")
    kaggle = write_kaggle_folders(tmp_path / "k" / "fer2013")
    with tarfile.open(tmp_path / "kaggle.tgz", "w:gz") as tf:
        tf.add(kaggle, arcname="fer2013")
    for i, source in enumerate(
        [
            tmp_path / "fer2013.tar.gz",
            tmp_path / "icml.zip",
            tmp_path / "kaggle.tgz",
            tmp_path / "k",
        ]
    ):
        dataset, _ = prepare(source, tmp_path / f"out{i}")
        assert len(dataset.items) == len(ROWS)


def test_a_csv_saved_with_a_bom_is_read(tmp_path):
    path = write_csv(tmp_path / "fer2013.csv")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # as Excel and Windows tools save it
    dataset, _ = prepare(path, tmp_path)
    assert len(dataset.items) == len(ROWS)


def test_the_archive_is_recorded_however_it_was_given(tmp_path, capsys):
    csv_path = (
        write_csv(tmp_path / "src" / "fer2013.csv") if (tmp_path / "src").mkdir() is None else None
    )
    folder = tmp_path / "data"
    folder.mkdir()
    with tarfile.open(folder / "fer2013.tar.gz", "w:gz") as tf:
        tf.add(csv_path, arcname="fer2013/fer2013.csv")
    for i, given in enumerate([folder / "fer2013.tar.gz", folder]):  # the file, or its folder
        _, origin = prepare(given, tmp_path / f"out{i}")
        assert origin["archive"] == "fer2013.tar.gz" and len(origin["archive_md5"]) == 32
        err = (
            capsys.readouterr().err
        )  # the MD5 warning names the user's archive, not a scratch copy
        assert f"warning: fer2013.csv in {folder / 'fer2013.tar.gz'} has MD5" in err


def test_checksum_mismatch_warns_but_proceeds(tmp_path, capsys):
    prepare(write_csv(tmp_path / "fer2013.csv"), tmp_path)
    err = capsys.readouterr().err
    assert "warning:" in err and "f8428a1edbd21e88f42c73edd2a14f95" in err


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda ls: ls[:2] + [ls[2].replace(",", ",1 ", 1)] + ls[3:], "line 3: 2305 pixels"),
        (lambda ls: ls[:2] + ["x" + ls[2][1:]] + ls[3:], "line 3: emotion or pixels not integers"),
        (lambda ls: ls + ["7," + ls[2].split(",", 1)[1]], "line 10: emotion 7 is outside"),
        (lambda ls: ls + [ls[2].replace("Training", "Validation")], "line 10: unknown Usage"),
        (lambda ls: ["emotion,pixel,Usage"] + ls[1:], "header must name"),
        (lambda ls: ls[:2] + [ls[2].replace(" 1", " 300", 1)] + ls[3:], "outside 0..255"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, edit, match):
    with pytest.raises(PipelineError, match=match) as err:
        prepare(write_csv(tmp_path / "fer2013.csv", edit=edit), tmp_path)
    assert "fer2013.csv" in str(err.value) and "\n" not in str(err.value)


def test_missing_or_unrecognised_source_says_what_to_put_where(tmp_path):
    with pytest.raises(PipelineError, match=f"no FER2013 at {tmp_path / 'nope'}.*fer2013.csv"):
        prepare(tmp_path / "nope", tmp_path / "a")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PipelineError, match="no FER2013 found in .*Kaggle train/ and test/"):
        prepare(tmp_path / "empty", tmp_path / "b")


def test_unknown_class_folder(tmp_path):
    root = write_kaggle_folders(tmp_path / "kaggle")
    (root / "train" / "contempt").mkdir()
    with pytest.raises(PipelineError, match=r"\['contempt'\] are not FER2013 classes"):
        prepare(root, tmp_path)


SHARED = ROOT.parent / "shared" / "data" / "fer2013-dev.tar.gz"
# From ../shared/data/README.md.
SHARED_COUNTS = {
    "train": [3457, 377, 3637, 6283, 4291, 4233, 2751],
    "test": [728, 81, 723, 1371, 974, 921, 633],
}
SHARED_ORDER = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.is_file(), reason=f"{SHARED} is absent")
def test_shared_development_set_counts_match_its_card(tmp_path):
    dataset, origin = prepare(SHARED, tmp_path)
    dataset.info["origin"] = origin
    card = source_card(dataset)
    for split, row in SHARED_COUNTS.items():
        assert {c: card["counts"][split][c] for c in SHARED_ORDER} == dict(
            zip(SHARED_ORDER, row, strict=True)
        )
    assert card["totals"] == {"train": 25029, "test": 5431}
    assert card["origin"]["archive"] == SHARED.name and len(card["origin"]["archive_md5"]) == 32
    assert card["images"]["width"] == {"min": 48, "median": 48.0, "max": 48}
