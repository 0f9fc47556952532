"""The on-disk dataset layout and its bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_pipeline.data.decode import read_image
from fer_pipeline.data.layout import read_image_folder
from fer_pipeline.errors import PipelineError
from tests.data.test_split import make_folder


def test_labels_come_from_class_names_not_folder_order(tmp_path):
    root = make_folder(tmp_path, {"zeta": 2, "alpha": 3}, classes=("zeta", "alpha"))
    dataset = read_image_folder(root)
    assert {item.path.split("/")[0]: item.label for item in dataset.items} == {
        "zeta": 0,
        "alpha": 1,
    }
    assert dataset.class_counts() == {"zeta": 2, "alpha": 3}


def test_missing_folder(tmp_path):
    with pytest.raises(PipelineError, match=f"{tmp_path / 'nope'} does not exist"):
        read_image_folder(tmp_path / "nope")


def test_empty_folder(tmp_path):
    (tmp_path / "dataset.json").write_text(json.dumps({"classes": ["a"]}))
    with pytest.raises(PipelineError, match="is empty"):
        read_image_folder(tmp_path)


def test_folder_without_description(tmp_path):
    with pytest.raises(PipelineError, match="dataset.json is missing"):
        read_image_folder(tmp_path)


def test_label_outside_class_list(tmp_path):
    root = make_folder(tmp_path, {"a": 1, "contempt": 1})
    with pytest.raises(PipelineError, match="label 'contempt'"):
        read_image_folder(root)


def test_empty_split_folder(tmp_path):
    root = make_folder(tmp_path, {"train/a": 2, "test/a": 0})
    with pytest.raises(PipelineError, match="holds no images"):
        read_image_folder(root)


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(PipelineError, match="broken.png"):
        read_image(bad)


def test_images_of_other_depths_and_modes_become_8_bit(tmp_path):
    import cv2

    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), np.full((4, 4), 65535, np.uint16))
    assert read_image(deep).max() == 255 and read_image(deep).dtype == np.uint8
    rgba = tmp_path / "rgba.png"
    cv2.imwrite(str(rgba), np.zeros((4, 4, 4), np.uint8))
    assert read_image(rgba).shape == (4, 4) and read_image(rgba, grayscale=False).shape == (4, 4, 3)
