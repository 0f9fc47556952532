"""Detectors on real photographs available offline (scikit-image's sample images), RetinaFace's
loading / preprocessing / decoding with locally created weights, and the auto and failure rules."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import data as samples

import fer_pipeline.faces.cropper as cropper_module
import fer_pipeline.faces.detectors as detectors
from fer_pipeline.errors import PipelineError
from fer_pipeline.faces import FaceCropper
from fer_pipeline.faces.cropper import is_verified
from fer_pipeline.faces.detectors import (
    HaarDetector,
    MTCNNDetector,
    RetinaFaceDetector,
    load_retinaface_weights,
)
from tests.conftest import closed_port_url, two_faces

# The astronaut's face in skimage.data.astronaut() (512 x 512): between the ears and from the
# hairline to the chin, measured on the image.
ASTRONAUT_FACE = (170, 60, 280, 170)
# OpenCV's `default` cascade at its usual settings (this project's defaults before alt2): it takes
# coins and the moon for faces, which is what the verification tests need.
LOOSE = {"cascade": "default", "scale_factor": 1.1, "min_neighbors": 5}


def test_haar_finds_the_face_and_its_eyes():
    (detection,) = HaarDetector().detect(samples.astronaut())
    x1, y1, x2, y2 = detection.box
    fx1, fy1, fx2, fy2 = ASTRONAUT_FACE
    assert fx1 <= (x1 + x2) / 2 <= fx2 and fy1 <= (y1 + y2) / 2 <= fy2
    left, right = detection.landmarks
    assert left[0] < right[0] and abs(left[1] - right[1]) < 10  # two eyes, about level


def test_haar_on_a_large_photo_searches_a_small_copy_and_maps_the_face_back():
    big = cv2.resize(samples.astronaut(), (2048, 2048), interpolation=cv2.INTER_CUBIC)
    (detection,) = HaarDetector(max_side=480).detect(big)
    x1, y1, x2, y2 = np.array(detection.box) / 4  # back to the 512 px image's pixels
    fx1, fy1, fx2, fy2 = ASTRONAUT_FACE
    assert fx1 <= (x1 + x2) / 2 <= fx2 and fy1 <= (y1 + y2) / 2 <= fy2
    assert 0.6 < (x2 - x1) / (fx2 - fx1) < 1.4
    left, right = detection.landmarks / 4  # eyes searched in the full-resolution face
    assert left[0] < right[0] and abs(left[1] - right[1]) < 10
    (small,) = HaarDetector().detect(samples.astronaut())
    assert np.allclose(left, small.landmarks[0], atol=6) and np.allclose(
        right, small.landmarks[1], atol=6
    )
    with pytest.raises(PipelineError, match="face.haar.max_side 40 must be at least twice"):
        HaarDetector(max_side=40)


def test_haar_crop_is_centred_on_the_face():
    cropper = FaceCropper("haar", size=96, margin=0.15)
    result = cropper(samples.astronaut())
    assert (result.outcome, result.action, result.found) == ("aligned", "kept", 1)
    # The eye centres land on the template's eye points, so the face sits in the middle.
    left, right = result.detections[0].landmarks
    matrix = cv2.estimateAffinePartial2D(np.array([left, right]), cropper.template[:2])[0]
    centre = np.array([(ASTRONAUT_FACE[0] + ASTRONAUT_FACE[2]) / 2, 115.0, 1.0]) @ matrix.T
    assert abs(centre[0] - 48) < 10 and abs(centre[1] - 48) < 14


@pytest.mark.parametrize("name", ["chelsea", "rocket", "camera"])
def test_no_face_is_reported_and_kept_or_dropped_as_asked(name):
    image = getattr(samples, name)()
    kept = FaceCropper("haar", size=48)(image)
    assert (kept.outcome, kept.action, len(kept.faces)) == ("no_face", "center_crop", 1)
    dropped = FaceCropper("haar", size=48, on_failure="drop")(image)
    assert (dropped.outcome, dropped.action, dropped.faces) == ("no_face", "dropped", [])


def test_several_faces_policy():
    image = two_faces()
    detections = [d for d in HaarDetector().detect(image) if d.landmarks is not None]
    assert len(detections) == 2  # the eyes of both; anything else is rejected by verification
    big, small = sorted(detections, key=lambda d: -d.area)
    assert big.area > 2 * small.area and big.box[0] < 250 <= small.box[0]  # left face is larger
    assert big.score != small.score
    largest = FaceCropper("haar", size=48, multiple="largest")(image)
    assert largest.found == 3 and len(largest.faces) == 1 and len(largest.rejected) == 1
    assert largest.score == big.score  # the score in the crop report is the kept face's
    confident = FaceCropper("haar", size=48, multiple="most_confident")(image)
    assert confident.score == max(big.score, small.score)
    every = FaceCropper("haar", size=48, multiple="all")(image)
    assert len(every.faces) == 2
    assert np.array_equal(every.faces[0], largest.face)  # ordered left to right


def test_auto_takes_small_images_as_crops_and_detects_in_photos(monkeypatch, tmp_path):
    monkeypatch.setattr(detectors, "RETINAFACE_URL", closed_port_url("w.zip"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no RetinaFace weights: auto takes MTCNN
    cropper = FaceCropper("auto", size=48)
    assert "using mtcnn" in cropper.note
    fer_face = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    crop, photo = cropper.crop_batch([fer_face, samples.astronaut()])
    assert (crop.outcome, crop.action) == ("already_cropped", "kept")
    assert (photo.outcome, photo.detector) == ("aligned", "mtcnn")
    monkeypatch.setattr(cropper_module, "mtcnn_available", lambda: False)  # no facenet-pytorch
    assert "and no facenet-pytorch (MTCNN), using haar" in FaceCropper("auto").note


def test_a_face_cut_by_the_frame_is_verified_by_its_landmarks_as_detected():
    face = samples.astronaut()[40:200, 150:300]  # her face, the left third cut off below
    cut = np.ascontiguousarray(face[:, 45:])
    (detection,) = MTCNNDetector().detect(cut)
    assert detection.box[0] == 0 and detection.full_box[0] < 0  # clipped to the image
    assert is_verified(detection)
    assert len(FaceCropper("mtcnn", multiple="all")(cut).faces) == 1


def test_too_small_for_the_detector_is_an_outcome():
    result = FaceCropper("haar", size=48, haar={"min_face": 24})(np.zeros((16, 16), np.uint8))
    assert (result.outcome, result.action) == ("too_small", "center_crop")


def retinaface_net():
    """The real RetinaFace-ResNet50 network class, with random weights."""
    from retinaface.network import RetinaFace

    torch.manual_seed(0)
    return RetinaFace(
        name="Resnet50",
        pretrained=False,
        return_layers={"layer2": 1, "layer3": 2, "layer4": 3},
        in_channels=256,
        out_channels=256,
    )


@pytest.fixture(scope="module")
def retinaface_state() -> dict:
    """A state dict saved from the real network class, as a user's weights file would hold."""
    return retinaface_net().state_dict()


def test_retinaface_runs_end_to_end_from_a_weights_file(tmp_path, retinaface_state):
    path = tmp_path / "retinaface.pth"
    torch.save(retinaface_state, path)
    detector = RetinaFaceDetector(
        weights_path=str(path), max_size=128, confidence=0.0, batch_size=2
    )
    photo = cv2.resize(samples.astronaut(), (200, 160))
    tiny = np.full((40, 30), 90, np.uint8)  # grey, smaller than max_size: not upscaled
    results = detector.detect_batch([photo, tiny, photo])
    assert len(results) == 3 and all(results)  # confidence 0: every prior survives until NMS
    for image, found in zip([photo, tiny, photo], results, strict=True):
        h, w = image.shape[:2]
        for d in found:
            x1, y1, x2, y2 = d.box
            assert 0 <= x1 < x2 <= w - 1 and 0 <= y1 < y2 <= h - 1  # clipped to the image
            assert d.landmarks.shape == (5, 2) and 0.0 <= d.score <= 1.0
    # Same image, same confident detections, whatever its place in the batch. Scores differ by
    # float noise (~1e-6) between batch positions, so among the hundreds of near-tied boxes that
    # confidence 0 lets through NMS may keep different ones; greedy NMS keeps a box only for what
    # scores higher, so the boxes above a well-separated score are the same set.
    first, again = (sorted((d for d in r if d.score > 0.8), key=lambda d: -d.score) for r in
                    (results[0], results[2]))  # fmt: skip
    assert len(first) == len(again) >= 1
    for a, b in zip(first, again, strict=True):
        assert np.allclose(a.box, b.box, atol=1e-3) and abs(a.score - b.score) < 1e-4
    cropper = FaceCropper(
        "retinaface",
        size=32,
        retinaface={"weights_path": str(path), "max_size": 128, "confidence": 0.0},
    )
    result = cropper(photo)
    assert result.outcome == "aligned" and result.face.shape == (32, 32)


@pytest.fixture
def hub_weights(tmp_path, monkeypatch, retinaface_state):
    """RetinaFace weights in a fresh torch hub cache, where torch.hub would have downloaded them
    (the download URL points at a closed local port: nothing is fetched)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(detectors, "RETINAFACE_URL", closed_port_url("retinaface_test.zip"))
    cached = tmp_path / "hub" / "checkpoints" / "retinaface_test.zip"
    cached.parent.mkdir(parents=True)
    torch.save(retinaface_state, cached)
    return cached


def test_retinaface_weights_from_the_torch_hub_cache(hub_weights, retinaface_state):
    state = load_retinaface_weights(None)
    assert state.keys() == retinaface_state.keys()


def test_retinaface_offline_without_weights_says_which_file_where(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = closed_port_url("retinaface_resnet50_2020-07-20-f168fae3c.zip")
    monkeypatch.setattr(detectors, "RETINAFACE_URL", url)
    with pytest.raises(PipelineError) as err:
        FaceCropper("retinaface")
    message = str(err.value)
    assert "\n" not in message
    assert capfd.readouterr() == ("", "")  # nothing printed before the one line
    assert not (tmp_path / "hub").exists()  # and no empty cache folder left behind
    assert (
        f"retinaface_resnet50_2020-07-20-f168fae3c.zip are not in {tmp_path}/hub/checkpoints"
        in message
    )
    assert (
        f"download {url} and put it there" in message and "face.retinaface.weights_path" in message
    )


def test_retinaface_weights_of_another_network_are_refused(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(PipelineError, match="do not fit the RetinaFace-ResNet50 network"):
        RetinaFaceDetector(weights_path=str(path))
    with pytest.raises(PipelineError, match="weights_path .*missing.pth does not exist"):
        RetinaFaceDetector(weights_path=str(tmp_path / "missing.pth"))


@pytest.mark.parametrize("content", [b"", b"<html>not found</html>", b"PK\x03\x04broken zip"])
def test_corrupt_retinaface_weights_are_one_line_and_auto_uses_haar(content, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / detectors.hub_checkpoint().name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(content)
    given = tmp_path / "given.pth"
    given.write_bytes(content)
    for make in (lambda: FaceCropper("retinaface"),
                 lambda: FaceCropper("retinaface", retinaface={"weights_path": str(given)})):  # fmt: skip
        with pytest.raises(PipelineError) as err:
            make()
        message = str(err.value)
        assert "\n" not in message and "cannot be loaded" in message
        assert str(cached) in message or str(given) in message
    auto = FaceCropper("auto")
    assert isinstance(auto.face_detector, MTCNNDetector)
    assert f"auto: no RetinaFace weights ({cached}: not a weights file" in auto.note


def test_a_truncated_weights_zip_is_one_line(retinaface_state, tmp_path):
    path = tmp_path / "cut.pth"
    torch.save(retinaface_state, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2] + path.read_bytes()[-2000:])
    with pytest.raises(PipelineError, match=f"RetinaFace weights file {path} cannot be loaded"):
        RetinaFaceDetector(weights_path=str(path))


def test_auto_uses_retinaface_when_its_weights_are_here(hub_weights):
    cropper = FaceCropper("auto", retinaface={"max_size": 128, "confidence": 0.0})
    assert cropper.face_detector.name == "retinaface" and cropper.note == ""
    photo, crop = cropper.crop_batch(
        [cv2.resize(samples.astronaut(), (200, 200)), np.zeros((48, 48), np.uint8)]
    )
    assert photo.detector == "retinaface" and crop.outcome == "already_cropped"


def planted_photo() -> np.ndarray:
    """Two real faces beside scikit-image's coins (x2), where Haar finds 9 faces that are not."""
    coins = cv2.cvtColor(cv2.resize(samples.coins(), None, fx=2, fy=2), cv2.COLOR_GRAY2RGB)
    canvas = np.full((606, 1268, 3), 120, np.uint8)
    canvas[:, :768] = coins
    canvas[150:450, 768:1268] = two_faces()
    return canvas


@pytest.mark.parametrize("max_side", [None, 640])
def test_several_faces_keeps_the_faces_and_rejects_what_is_not(max_side):
    photo = planted_photo()
    haar = LOOSE | {"max_side": max_side}
    checked = FaceCropper("haar", multiple="all", haar=haar)(photo)
    unchecked = FaceCropper("haar", multiple="all", verify="none", haar=haar)(photo)
    assert len(unchecked.kept) >= len(checked.kept) + 3  # coins taken for faces, unverified
    assert checked.rejected and all(d.landmarks is None for d in checked.rejected)
    for detection in checked.kept:  # every kept face is one of the two people, eyes found
        x1, y1, x2, y2 = detection.box
        assert x1 > 768 and detection.landmarks is not None
    assert len(checked.faces) == len(checked.kept) == (2 if max_side is None else 1)
    assert len(checked.detections) == len(checked.kept) + len(checked.rejected)


@pytest.mark.parametrize("max_side", [None, 640])
def test_the_default_cascade_keeps_both_faces_and_no_coin(max_side):
    result = FaceCropper("haar", multiple="all", haar={"max_side": max_side})(planted_photo())
    assert len(result.faces) == 2 and all(d.box[0] > 768 for d in result.kept)
    assert all(d.landmarks is None for d in result.rejected)


def test_an_unknown_cascade_is_one_line():
    with pytest.raises(PipelineError, match="face.haar.cascade 'alt3' is neither one of alt2"):
        HaarDetector(cascade="alt3")


def test_a_non_face_alone_is_unverified_not_a_face():
    moon = cv2.cvtColor(samples.moon(), cv2.COLOR_GRAY2RGB)
    result = FaceCropper("haar", multiple="all", on_failure="drop", haar=LOOSE)(moon)
    assert (result.outcome, result.action, result.faces) == ("unverified", "dropped", [])
    assert result.found == len(result.rejected) == 1
    # One face wanted: the best detection is still taken when none is verified (small faces'
    # eyes are too small to find), as before; the crop report says it is not verified.
    assert FaceCropper("haar", multiple="largest", haar=LOOSE)(moon).outcome == "box"


def test_mtcnn_finds_every_face_and_no_coin_offline():
    result = FaceCropper("mtcnn", multiple="all")(planted_photo())
    assert result.outcome == "aligned" and len(result.faces) == 2 and not result.rejected
    for detection in result.kept:
        assert detection.box[0] > 768 and detection.landmarks.shape == (5, 2)
    (face,) = FaceCropper("mtcnn", multiple="all")(samples.astronaut()).kept
    x1, y1, x2, y2 = face.box
    fx1, fy1, fx2, fy2 = ASTRONAUT_FACE
    assert fx1 <= (x1 + x2) / 2 <= fx2 and fy1 <= (y1 + y2) / 2 <= fy2
    left, right = face.landmarks[:2]
    assert left[0] < right[0] and abs(left[1] - right[1]) < 10
