"""The Python API: every kind of input, one row per face, preprocessing from the checkpoint."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_pipeline.errors import PipelineError
from fer_pipeline.inference import Recognizer, columns
from tests.conftest import CLASSES, png_bomb, two_faces


@pytest.fixture(scope="module")
def recognizer(checkpoint, tmp_path_factory):
    """The checkpoint's own detector choice (``auto``: its data shipped annotations), with no
    RetinaFace weights on this machine, so ``auto`` detects with Haar wherever the suite runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
        recognizer = Recognizer.load(checkpoint, device="cpu")
    assert recognizer.cropper.detector == "auto" and "using mtcnn" in recognizer.cropper.note
    return recognizer


def probabilities(table):
    return table[[f"p_{c}" for c in CLASSES]].to_numpy(float)


def test_photo_folder_and_video_give_a_row_per_face_and_frame(recognizer, inputs):
    table = recognizer.predict([inputs["photo"], inputs["crops"], inputs["video"]], 3)
    assert list(table.columns) == columns(CLASSES)
    photo = table[table.input == str(inputs["photo"])]
    assert list(photo.face) == [0, 1] and set(photo.outcome) == {"aligned"}
    assert ((photo.x >= 0) & (photo.x + photo.w <= 500) & (photo.y + photo.h <= 300)).all()
    crops = table[table.input.str.contains("crops")]
    assert len(crops) == 3 and set(crops.outcome) == {"already_cropped"}  # no false "no face"
    video = table[table.input == str(inputs["video"])]
    assert sorted(set(video.frame)) == [0, 3, 6] and len(video) == 6  # 2 faces x 3 frames
    assert list(video.drop_duplicates("frame").time_s) == pytest.approx([0.0, 0.3, 0.6])
    assert np.allclose(probabilities(table).sum(axis=1), 1.0, atol=1e-5)
    best = probabilities(table).argmax(axis=1)
    assert list(table.predicted) == [CLASSES[i] for i in best]


def test_arrays_pil_images_and_bytes_predict_as_the_file_does(recognizer, inputs):
    image = two_faces()
    encoded = inputs["photo"].read_bytes()
    decoded = cv2.cvtColor(cv2.imread(str(inputs["photo"])), cv2.COLOR_BGR2RGB)
    table = recognizer.predict([inputs["photo"], decoded, Image.fromarray(decoded), encoded])
    assert list(table.input) == [str(inputs["photo"])] * 2 + [
        "array[0]", "array[0]", "image[0]", "image[0]", "bytes[0]", "bytes[0]",
    ]  # fmt: skip
    p = probabilities(table).reshape(4, 2, -1)
    for other in p[1:]:
        assert np.allclose(other, p[0], atol=1e-5)
    assert len(recognizer.predict(image)) == 2  # one array alone; its own JPEG-free pixels
    wide = recognizer.predict([decoded.astype(np.uint16) * 257, decoded / 255.0])  # 16 bit, float
    assert np.allclose(probabilities(wide).reshape(2, 2, -1), p[:2], atol=1e-5)


def test_inputs_that_are_not_images_are_rows_that_say_why(recognizer, tmp_path):
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    bomb = png_bomb(tmp_path / "bomb.png")  # declares 40,000 x 40,000 pixels
    blank = np.full((200, 200, 3), 90, np.uint8)
    table = recognizer.predict(
        [tmp_path / "notes.txt", tmp_path / "empty", tmp_path / "broken.png",
         tmp_path / "broken.mp4", tmp_path / "gone.jpg", blank, np.zeros((2, 2, 7)), bomb,
         bomb.read_bytes()]
    )  # fmt: skip
    assert list(table.outcome) == [
        "not_an_image", "empty_folder", "unreadable", "unreadable_video", "missing", "no_face",
        "not_an_image", "too_large", "too_large",
    ]  # fmt: skip
    assert table.predicted.isna().all() and table.face.isna().all()


def test_preprocessing_comes_from_the_checkpoint(recognizer):
    assert recognizer.input_size == 40  # the checkpoint's loader.input_size, not conf/'s 48
    assert recognizer.cropper.size == 44  # its face.size, not conf/'s 48
    assert recognizer.explain(np.full((48, 48), 128, np.uint8))["face"].shape == (44, 44)
    assert recognizer.tta == ("none", 0.875)


def test_explain_gives_the_occlusion_map_of_a_face(recognizer, inputs):
    explained = recognizer.explain(inputs["photo"], face=1)
    assert explained["map"].shape == (40, 40) and np.isfinite(explained["map"]).all()
    assert explained["predicted"] in CLASSES
    assert sum(explained["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(PipelineError, match="no face 5"):
        recognizer.explain(inputs["photo"], face=5)
    with pytest.raises(PipelineError, match="one readable image, got 3 images"):
        recognizer.explain(inputs["crops"])


def test_bad_model_and_device_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a folder without models/, whatever the checkout holds
    with pytest.raises(PipelineError, match="no trained model at models/best.ckpt"):
        Recognizer.load("models/best.ckpt")
    with pytest.raises(PipelineError, match="not a checkpoint file"):
        Recognizer.load(str(tmp_path / "nothing.ckpt"))
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    with pytest.raises(PipelineError, match="junk.ckpt is not a readable checkpoint"):
        Recognizer.load(tmp_path / "junk.ckpt")


def test_predicting_does_not_import_lightning():
    code = "import sys, fer_pipeline.predict, fer_pipeline.inference; "
    code += "print('pytorch_lightning' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_run_logged_before_mlflow_models_loads_by_id_or_checkpoint_uri(
    checkpoint, inputs, tmp_path, monkeypatch, recognizer
):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(uri)
    experiment = client.create_experiment("fer", artifact_location=str(tmp_path / "artifacts"))
    run_id = client.create_run(experiment).info.run_id
    client.log_artifact(run_id, str(checkpoint), "best")  # how runs kept it before model/
    expected = probabilities(recognizer.predict(inputs["photo"]))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # auto: Haar, as the fixture
    for model in (run_id, f"runs:/{run_id}/best/best.ckpt"):
        loaded = Recognizer.load(model, device="cpu")
        assert np.allclose(probabilities(loaded.predict(inputs["photo"])), expected, atol=1e-5)
    with pytest.raises(PipelineError, match=f"model {'0' * 32} could not be loaded from MLflow"):
        Recognizer.load("0" * 32)


def test_bf16_is_close_to_fp32_and_other_precisions_are_refused(checkpoint, inputs):
    fast = Recognizer.load(checkpoint, device="cpu", precision="bf16", detector="haar")
    exact = Recognizer.load(checkpoint, device="cpu", detector="haar")
    a = probabilities(fast.predict(inputs["photo"]))
    b = probabilities(exact.predict(inputs["photo"]))
    assert a.shape == b.shape == (2, len(CLASSES)) and np.allclose(a, b, atol=0.02)
    assert np.allclose(a.sum(axis=1), 1, atol=1e-5)
    with pytest.raises(PipelineError, match="precision must be one of fp32, bf16, got fp16"):
        Recognizer.load(checkpoint, precision="fp16")


def test_large_photos_come_in_smaller_chunks():
    from fer_pipeline.inference.inputs import Item, chunks

    photo = np.zeros((2000, 3000), np.uint8)  # 6 MP
    items = [Item(f"p{i}", photo) for i in range(5)] + [Item("bad", None, error="missing")]
    assert [len(c) for c in chunks(items, 64, max_pixels=16_000_000)] == [3, 3]
    assert [len(c) for c in chunks(items, 2)] == [2, 2, 2]
