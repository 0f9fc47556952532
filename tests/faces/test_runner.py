"""The crop stage's runner: one report row per detection, boxes in the file's pixels, large
JPEGs decoded at reduced scale."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data as samples

from fer_pipeline.data.decode import TooLarge, read_photo, reduction
from fer_pipeline.faces import FaceCropper
from fer_pipeline.faces.runner import CHUNK, crop_all, crop_items, tasks
from tests.conftest import png_bomb
from tests.faces.test_detectors import ASTRONAUT_FACE, LOOSE, planted_photo


def test_report_has_a_row_per_detection_in_the_photos_pixels(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "faces"
    (raw / "happy").mkdir(parents=True)
    big = cv2.resize(samples.astronaut(), (2048, 2048), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(raw / "happy/big.jpg"), big[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(raw / "happy/planted.png"), planted_photo()[..., ::-1])
    cv2.imwrite(str(raw / "happy/moon.png"), samples.moon())
    cropper = FaceCropper("haar", size=48, multiple="all", on_failure="keep", haar=LOOSE)
    rows = crop_items(
        cropper, raw, out, ["happy/big.jpg", "happy/planted.png", "happy/moon.png"], {}
    )

    (face,) = [r for r in rows if r["source"] == "happy/big.jpg"]
    assert (face["action"], face["verified"], face["outcome"]) == ("kept", "yes", "aligned")
    box = np.array([face["x"], face["y"], face["w"], face["h"]], float) / 4  # 512 px image's
    fx1, fy1, fx2, fy2 = ASTRONAUT_FACE
    assert fx1 <= box[0] + box[2] / 2 <= fx2 and fy1 <= box[1] + box[3] / 2 <= fy2
    assert (out / face["path"]).is_file()

    planted = [r for r in rows if r["source"] == "happy/planted.png"]
    kept = [r for r in planted if r["action"] == "kept"]
    rejected = [r for r in planted if r["action"] == "rejected"]
    assert len(kept) == 1 and float(kept[0]["x"]) > 768 and (out / kept[0]["path"]).is_file()
    assert len(rejected) >= 3 and all(r["path"] == "" and r["verified"] == "no" for r in rejected)
    assert [r["face"] for r in planted] == list(range(len(planted)))

    moon = [r for r in rows if r["source"] == "happy/moon.png"]
    # something was detected, nothing passed: reported, and no centre crop stands in for faces
    assert [(r["action"], r["outcome"], r["path"]) for r in moon] == [
        ("rejected", "unverified", "")
    ]


def test_large_jpegs_are_decoded_smaller_while_long_enough(tmp_path):
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), np.full((3000, 4000, 3), 90, np.uint8))
    assert reduction(4000, 1280) == 2 and reduction(4000, 480) == 8 and reduction(4000, None) == 1
    image, factor = read_photo(photo, grayscale=True, keep_side=900)
    assert factor == 4 and image.shape == (750, 1000)
    png = tmp_path / "photo.png"
    cv2.imwrite(str(png), np.full((3000, 4000), 90, np.uint8))
    assert read_photo(png, True, 900)[1] == 1  # only JPEG decoders can skip pixels
    assert FaceCropper("haar", size=48).decode_side() == 1280  # smallest face still 48 px
    assert FaceCropper("haar", size=48, haar={"max_side": None}).decode_side() is None


def test_images_above_the_pixel_limit_are_refused_from_their_header(tmp_path, capfd):
    raw, out = tmp_path / "raw", tmp_path / "faces"
    (raw / "happy").mkdir(parents=True)
    png_bomb(raw / "happy/bomb.png")  # 40,000 x 40,000: 1.6 billion pixels declared
    png_bomb(raw / "happy/wide.png", 10_000, 6_000)
    (raw / "happy/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    cropper = FaceCropper("haar", size=48)
    rows = crop_items(
        cropper, raw, out, ["happy/bomb.png", "happy/wide.png", "happy/broken.png"], {}
    )
    assert [(r["outcome"], r["action"]) for r in rows] == [
        ("too_large", "dropped"), ("too_large", "dropped"), ("unreadable", "dropped"),
    ]  # fmt: skip
    with pytest.raises(
        TooLarge, match=r"wide.png is 10000x6000 \(60 MP\), above the limit of 50 MP"
    ):
        read_photo(raw / "happy/wide.png", True, None)
    cv2.imwrite(str(raw / "small.png"), np.full((100, 80), 90, np.uint8))
    with pytest.raises(TooLarge, match=r"small.png is 80x100 \(0 MP\), above the limit of 0.005"):
        read_photo(raw / "small.png", True, None, max_pixels=5000)  # the limit is a setting
    assert read_photo(raw / "small.png", True, None, max_pixels=None)[0].shape == (100, 80)
    err = capfd.readouterr().err
    assert "WARN" not in err and "ERROR" not in err  # OpenCV's decoder logs stay off the terminal


def test_photos_are_shared_out_so_every_worker_has_some():
    paths = [f"{k}.jpg" for k in range(10)]
    chunks = tasks(paths, 2)
    assert len(chunks) >= 4 and sum(chunks, []) == paths  # not one chunk of 10 for one worker
    many = [f"{k}.png" for k in range(30_000)]
    assert {len(c) for c in tasks(many, 2)[:-1]} == {CHUNK}  # 48 px crops: full chunks


def test_haar_workers_write_every_face_and_rows_in_order(tmp_path, capsys):
    raw, out = tmp_path / "raw", tmp_path / "faces"
    (raw / "happy").mkdir(parents=True)
    names = [f"happy/{k}.png" for k in range(5)]
    for k, name in enumerate(names):  # photos and images too small for Haar, interleaved
        image = planted_photo() if k % 2 else np.zeros((10, 10, 3), np.uint8)
        cv2.imwrite(str(raw / name), image)
    face = {"detector": "haar", "multiple": "all", "size": 48, "on_failure": "drop"}
    rows = crop_all(FaceCropper.from_config(face), face, raw, out, names, {}, 2)
    kept = [r["source"] for r in rows if r["action"] == "kept"]
    assert kept == ["happy/1.png"] * 2 + ["happy/3.png"] * 2
    assert [r["source"] for r in rows] == sorted(r["source"] for r in rows)
    assert len(list(out.rglob("*_face*.png"))) == 4
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("crop: ")]
    assert lines and all("/5 images" in line for line in lines), lines  # images, not faces
    assert lines[-1].startswith("crop: 5/5 images (100 %)")


def test_mtcnn_crops_photos_in_this_process(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "faces"
    (raw / "happy").mkdir(parents=True)
    names = ["happy/small.png", "happy/photo.png"]
    cv2.imwrite(str(raw / names[0]), np.zeros((10, 10), np.uint8))
    cv2.imwrite(str(raw / names[1]), planted_photo()[..., ::-1])
    face = {"detector": "mtcnn", "multiple": "all", "size": 48}
    cropper = FaceCropper.from_config(face)
    assert cropper.uses_torch  # torch's threads use the cores: no worker processes
    rows = crop_all(cropper, face, raw, out, names, {}, 2)
    assert [r["outcome"] for r in rows] == ["too_small", "aligned", "aligned"]
    assert [r["action"] for r in rows[1:]] == ["kept", "kept"]
    assert len(list(out.rglob("*_face*.png"))) == 2
