"""The crop stage's runner: one report row per detection, boxes in the file's pixels, large
JPEGs decoded at reduced scale."""

from __future__ import annotations

import cv2
import numpy as np
from skimage import data as samples

from fer_pipeline.data.images import read_photo, reduction
from fer_pipeline.faces import FaceCropper
from fer_pipeline.faces.runner import crop_items
from tests.faces.test_detectors import ASTRONAUT_FACE, planted_photo


def test_report_has_a_row_per_detection_in_the_photos_pixels(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "faces"
    (raw / "happy").mkdir(parents=True)
    big = cv2.resize(samples.astronaut(), (2048, 2048), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(raw / "happy/big.jpg"), big[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(raw / "happy/planted.png"), planted_photo()[..., ::-1])
    cv2.imwrite(str(raw / "happy/moon.png"), samples.moon())
    cropper = FaceCropper("haar", size=48, multiple="all", on_failure="keep")
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
    assert [(r["action"], r["outcome"]) for r in moon] == [
        ("rejected", "unverified"),
        ("center_crop", "unverified"),  # no face passed: the centre crop kept, as asked
    ]
    assert moon[1]["path"] and moon[0]["path"] == ""


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


def test_mtcnn_crops_photos_in_worker_processes(tmp_path):
    from fer_pipeline.faces.runner import CHUNK, crop_all

    raw, out = tmp_path / "raw", tmp_path / "faces"
    (raw / "happy").mkdir(parents=True)
    names = [f"happy/{k:03d}.png" for k in range(CHUNK + 1)]  # two chunks: two workers
    for name in names[:-1]:
        cv2.imwrite(str(raw / name), np.zeros((10, 10), np.uint8))  # too small: quick
    cv2.imwrite(str(raw / names[-1]), planted_photo()[..., ::-1])
    face = {"detector": "mtcnn", "multiple": "all", "size": 48}
    rows = crop_all(FaceCropper.from_config(face), face, raw, out, names, {}, 2)
    assert [r["outcome"] for r in rows[:CHUNK]] == ["too_small"] * CHUNK
    assert [r["action"] for r in rows[CHUNK:]] == ["kept", "kept"]
    assert len(list(out.rglob("*_face*.png"))) == 2
