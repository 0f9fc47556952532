"""``python -m fer_pipeline.predict``: one CSV for photos, folders and videos, annotated copies,
bad inputs counted without stopping the batch, and a bad model that leaves the old CSV alone."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from fer_pipeline import predict


@pytest.fixture
def no_retinaface(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def test_one_csv_for_photo_folder_and_video_with_pictures(
    checkpoint, inputs, tmp_path, call_main, no_retinaface
):
    out, seen = tmp_path / "out" / "predictions.csv", tmp_path / "seen"
    code, stdout, stderr = call_main(
        predict.main, str(inputs["photo"]), str(inputs["crops"]), str(inputs["video"]),
        str(tmp_path / "gone.png"), "--model", str(checkpoint), "--out", str(out),
        "--annotate", str(seen), "--every-n-frames", "4", "--batch-size", "5",
    )  # fmt: skip
    assert code == 1  # one input could not be read; every other one was predicted
    # what the model is: the test checkpoint trained on the synthetic set, a demo
    assert (
        f"model: {checkpoint}, trained on synthetic (a demo model: trained on drawn faces" in stderr
    )
    assert "11 faces in 7 images/frames (0 without a face); 1 inputs could not be read" in stdout
    rows = list(csv.DictReader(out.open()))
    assert [r["outcome"] for r in rows].count("already_cropped") == 3
    assert [(r["frame"], r["face"]) for r in rows if r["input"].endswith("clip.mp4")] == [
        ("0", "0"), ("0", "1"), ("4", "0"), ("4", "1"), ("8", "0"), ("8", "1"),
    ]  # fmt: skip
    assert rows[-1]["outcome"] == "missing" and rows[-1]["predicted"] == ""
    assert not list(out.parent.glob("*.part"))
    # The annotated photo has coloured boxes where the faces are, the rest as it was.
    original = cv2.imread(str(inputs["photo"]))
    drawn = cv2.imread(str(seen / "two_faces.png"))
    changed = np.abs(drawn.astype(int) - original.astype(int)).sum(axis=2) > 60
    face = next(r for r in rows if r["input"] == str(inputs["photo"]))
    x, y, w = (int(float(face[k])) for k in ("x", "y", "w"))
    assert changed[y + w // 2, x - 1 : x + 2].any()  # the box's left edge
    assert not changed[250:, 400:].any()  # far from every face: untouched
    video = cv2.VideoCapture(str(seen / "clip.mp4"))
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 3


def test_a_bad_model_is_one_line_and_keeps_the_old_csv(tmp_path, call_main, inputs):
    out = tmp_path / "predictions.csv"
    out.write_text("kept\n")
    code, _, err = call_main(
        predict.main, str(inputs["photo"]), "--model", str(tmp_path / "none.ckpt"),
        "--out", str(out),
    )  # fmt: skip
    assert code == 2 and err.strip().startswith("error: model ") and len(err.splitlines()) == 1
    assert out.read_text() == "kept\n"
    code, _, err = call_main(predict.main, "x.png", "--every-n-frames", "0")
    assert code == 2 and "--every-n-frames must be >= 1" in err
