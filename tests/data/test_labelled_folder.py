"""Any labelled image folder: layouts, class mapping, odd images and the skip-and-report option."""

from __future__ import annotations

import csv
import zipfile
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from fer_pipeline.data.card import source_card
from fer_pipeline.data.layout import read_image_folder
from fer_pipeline.data.sources import get_source
from fer_pipeline.errors import PipelineError

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def data_cfg(path: Path, **changes):
    cfg = {
        "source": "folder",
        "name": "mine",
        "path": str(path),
        "classes": CLASSES,
        "class_map": {},
        "grayscale": True,
        "min_size": 8,
        "on_bad_image": "fail",
        "download": {"url": None, "md5": None, "cache": None},
    }
    return OmegaConf.create({**cfg, **changes})


def prepare(cfg, tmp_path: Path):
    out = tmp_path / "raw"
    out.mkdir(parents=True)
    get_source("folder").materialise(cfg, out)
    return read_image_folder(out)


def face(seed: int, size: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)


def odd_images(folder: Path) -> dict[str, np.ndarray]:
    """One image per common format and mode; returns the 8-bit grey each must become."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    g = face(1)
    Image.fromarray(g).save(folder / "grey.png")
    expected["grey"] = g
    wide = face(2).astype(np.uint16) * 257  # 16-bit: 8-bit value v stored as v * 257
    cv2.imwrite(str(folder / "sixteen.png"), wide)
    expected["sixteen"] = face(2)
    rgba = np.dstack([np.repeat(face(3)[..., None], 3, 2), np.full((40, 40), 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "alpha.png")
    expected["alpha"] = face(3)
    Image.fromarray(face(4)).convert("P").save(folder / "palette.gif")
    expected["palette"] = np.asarray(Image.open(folder / "palette.gif").convert("L"))
    Image.fromarray(face(5)).save(folder / "tiff.tif")
    expected["tiff"] = face(5)
    Image.fromarray(face(6)).save(folder / "bitmap.bmp")
    expected["bitmap"] = face(6)
    Image.fromarray(np.repeat(face(7)[..., None], 3, 2)).save(folder / "photo.jpg", quality=95)
    expected["photo"] = np.asarray(Image.open(folder / "photo.jpg").convert("L"))
    return expected


def bad_images(folder: Path) -> set[str]:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.repeat(face(8, 64)[..., None], 3, 2)).save(folder / "whole.jpg")
    data = (folder / "whole.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    Image.fromarray(face(9, 1)).save(folder / "tiny.png")
    (folder / "notes.jpg").write_text("not an image")
    return {"truncated.jpg", "tiny.png", "notes.jpg"}


def test_odd_formats_and_modes_become_8_bit_grey(tmp_path):
    expected = odd_images(tmp_path / "src" / "happy")
    dataset = prepare(data_cfg(tmp_path / "src"), tmp_path)
    assert len(dataset.items) == len(expected)
    for item in dataset.items:
        image = cv2.imread(str(dataset.root / item.path), cv2.IMREAD_UNCHANGED)
        assert image.dtype == np.uint8 and image.ndim == 2
        assert np.array_equal(image, expected[Path(item.path).stem]), item.path
    origin = dataset.info["origin"]
    assert origin["modes"]["I;16"] == 1 and origin["modes"]["RGBA"] == 1
    assert origin["skipped"] == 0 and len(origin["md5"]) == 32


def test_rgb_is_kept_when_asked(tmp_path):
    folder = tmp_path / "src" / "sad"
    folder.mkdir(parents=True)
    colour = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(colour).save(folder / "c.png")
    dataset = prepare(data_cfg(tmp_path / "src", grayscale=False), tmp_path)
    written = cv2.imread(str(dataset.root / dataset.items[0].path))[..., ::-1]
    assert np.array_equal(written, colour)


def test_class_map_labels_by_name_and_leaves_out_null(tmp_path):
    src = tmp_path / "src"
    for i, name in enumerate(["Anger", "happiness", "sad", "contempt"]):
        (src / name).mkdir(parents=True)
        for j in range(i + 1):
            Image.fromarray(face(10 * i + j)).save(src / name / f"{j}.png")
    cfg = data_cfg(src, class_map={"anger": "angry", "happiness": "happy", "contempt": None})
    dataset = prepare(cfg, tmp_path)
    assert dataset.class_counts() == {**dict.fromkeys(CLASSES, 0), "angry": 1, "happy": 2, "sad": 3}
    assert dataset.info["origin"]["left_out_folders"] == ["contempt"]
    assert not dataset.has_official_split


def test_unmapped_folder_says_how_to_map_it(tmp_path):
    (tmp_path / "src" / "happiness").mkdir(parents=True)
    with pytest.raises(PipelineError, match=r"'happiness' .* is not in data.classes.*class_map"):
        prepare(data_cfg(tmp_path / "src"), tmp_path)
    cfg = data_cfg(tmp_path / "src", class_map={"happiness": "joy"})
    with pytest.raises(PipelineError, match="maps 'happiness' to 'joy', which is not in"):
        prepare(cfg, tmp_path / "b")


def test_split_folders_in_a_wrapped_zip(tmp_path):
    """RAF-DB-like: DATASET/{train,validation,test}/<number>/, zipped, numbers mapped to names."""
    src = tmp_path / "src" / "DATASET"
    layout = {"train": {"1": 3, "4": 2}, "validation": {"1": 1, "4": 1}, "test": {"1": 1, "4": 2}}
    for split, classes in layout.items():
        for name, n in classes.items():
            (src / split / name).mkdir(parents=True)
            for j in range(n):
                Image.fromarray(face(hash((split, name, j)) % 1000)).save(
                    src / split / name / f"{split}_{j}.jpg"
                )
    archive = tmp_path / "rafdb.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(src.rglob("*.jpg")):
            zf.write(path, path.relative_to(tmp_path / "src").as_posix())
    cfg = data_cfg(archive, class_map={"1": "surprise", "4": "happy"})
    dataset = prepare(cfg, tmp_path)
    counts = Counter((item.split, dataset.classes[item.label]) for item in dataset.items)
    assert counts == {
        ("train", "surprise"): 3,
        ("train", "happy"): 2,
        ("val", "surprise"): 1,
        ("val", "happy"): 1,
        ("test", "surprise"): 1,
        ("test", "happy"): 2,
    }
    assert dataset.info["origin"]["file"] == "rafdb.zip"
    card = source_card(dataset)
    assert card["totals"] == {"train": 5, "val": 2, "test": 3}


def test_bad_images_stop_prepare_naming_the_file(tmp_path):
    bad_images(tmp_path / "src" / "fear")
    with pytest.raises(PipelineError, match="on_bad_image=skip") as err:
        prepare(data_cfg(tmp_path / "src"), tmp_path)
    assert "fear/notes.jpg" in str(err.value) and "\n" not in str(err.value)


def test_bad_images_skipped_and_reported(tmp_path):
    bad = bad_images(tmp_path / "src" / "fear")
    odd_images(tmp_path / "src" / "happy")
    dataset = prepare(data_cfg(tmp_path / "src", on_bad_image="skip"), tmp_path)
    with (dataset.root / "skipped.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {Path(r["path"]).name for r in rows} == bad
    reasons = {Path(r["path"]).name: r["reason"] for r in rows}
    assert "truncated" in reasons["truncated.jpg"]
    assert "1x1, smaller than 8 px" in reasons["tiny.png"]
    assert dataset.class_counts()["fear"] == 1  # whole.jpg
    assert dataset.info["origin"]["skipped"] == 3


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda root: (root / "train" / "happy").mkdir(parents=True), "needs train/ and test/"),
        (
            lambda root: [(root / d / "happy").mkdir(parents=True) for d in ("train", "test", "x")],
            r"mixes split folders with other folders \['x'\]",
        ),
        (lambda root: root.mkdir(), "has no class folders"),
    ],
)
def test_bad_layouts(tmp_path, make, match):
    make(tmp_path / "src")
    with pytest.raises(PipelineError, match=match):
        prepare(data_cfg(tmp_path / "src"), tmp_path)


def test_missing_folder_says_what_to_put_where(tmp_path):
    with pytest.raises(PipelineError, match=f"no image folder at {tmp_path / 'nope'}: put"):
        prepare(data_cfg(tmp_path / "nope"), tmp_path)
