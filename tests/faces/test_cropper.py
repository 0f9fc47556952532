"""FaceCropper: alignment undoes rotation; detectors and options."""

from __future__ import annotations

import numpy as np
import pytest

from fer_pipeline.data.layout import FaceAnnotation
from fer_pipeline.data.synthetic import render_face
from fer_pipeline.errors import PipelineError
from fer_pipeline.faces import FaceCropper
from fer_pipeline.faces.cropper import similarity_transform


def aligned_landmarks(cropper: FaceCropper, face) -> np.ndarray:
    """Where the face's landmarks land in the crop (the same transform the cropper applies)."""
    matrix = similarity_transform(face.annotation.landmarks, cropper.template)
    points = np.c_[face.annotation.landmarks, np.ones(5)]
    return points @ matrix.T


def test_alignment_makes_the_eye_line_horizontal():
    cropper = FaceCropper("annotations", size=48)
    angles = []
    for i in range(30):
        face = render_face(i, i % 7)
        left, right = aligned_landmarks(cropper, face)[:2]
        angles.append(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))
        assert cropper(face.image, face.annotation).face.shape == (48, 48)
    rotations = [abs(render_face(i, i % 7).rotation_deg) for i in range(30)]
    assert max(rotations) > 15  # the scenes really were rotated
    # All 5 points are fitted, so an asymmetric mouth (disgust's sneer) tilts the fit a little.
    assert max(abs(a) for a in angles) < 3.0
    assert np.mean(np.abs(angles)) < 1.0


def test_aligned_face_is_centred_in_the_crop():
    cropper = FaceCropper("annotations", size=64, margin=0.15)
    face = render_face(3, 3)
    points = aligned_landmarks(cropper, face)
    centre = points.mean(axis=0)
    assert abs(centre[0] - 32) < 4 and abs(centre[1] - 36) < 6


def test_rotated_face_pixels_are_upright():
    """The crop of a face rotated by 25 degrees matches the crop of the same face upright."""
    cropper = FaceCropper("annotations", size=48)
    image = np.zeros((100, 100), np.uint8)
    image[40:44, 30:40] = 255  # left eye
    image[40:44, 60:70] = 255  # right eye
    lm = np.array([[35, 42], [65, 42], [50, 55], [40, 70], [60, 70]], float)
    upright = cropper(image, FaceAnnotation((20, 20, 80, 85), lm)).face
    import cv2

    rot = cv2.getRotationMatrix2D((50, 50), 25, 1.0)
    rotated_image = cv2.warpAffine(image, rot, (100, 100))
    rotated_lm = np.c_[lm, np.ones(5)] @ rot.T
    turned = cropper(rotated_image, FaceAnnotation((0, 0, 100, 100), rotated_lm)).face
    assert np.abs(upright.astype(int) - turned.astype(int)).mean() < 6


def test_none_detector_resizes_whole_image():
    result = FaceCropper("none", size=32)(np.full((48, 48), 7, np.uint8))
    assert result.outcome == "already_cropped" and result.face.shape == (32, 32)


def test_missing_annotation_falls_back_to_centre_crop_or_is_dropped():
    result = FaceCropper("annotations", size=32)(np.zeros((60, 100, 3), np.uint8))
    assert (result.outcome, result.action) == ("no_annotation", "center_crop")
    assert result.face.shape == (32, 32)
    dropped = FaceCropper("annotations", on_failure="drop")(np.zeros((60, 100), np.uint8))
    assert (dropped.outcome, dropped.action, dropped.faces) == ("no_annotation", "dropped", [])


def test_rgb_output_and_equalisation():
    image = np.random.default_rng(0).integers(100, 120, (50, 50), dtype=np.uint8)
    face = FaceCropper("none", size=24, grayscale=False, equalize=True)(image).face
    assert face.shape == (24, 24, 3)
    assert face.max() - face.min() > 200  # equalisation stretched a narrow histogram


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"detector": "dlib"}, "dlib"),
        ({"size": 4}, "size 4"),
        ({"margin": 1.5}, "margin 1.5"),
        ({"multiple": "first"}, "face.multiple 'first'"),
        ({"on_failure": "skip"}, "face.on_failure 'skip'"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(PipelineError, match=match):
        FaceCropper(**kwargs)


def test_every_kind_of_image_a_user_passes_gives_the_same_crop(tmp_path):
    import cv2
    from PIL import Image
    from skimage import data as samples

    rgb = samples.astronaut()
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cropper = FaceCropper("haar", size=48)
    expected = cropper(rgb)
    assert expected.outcome == "aligned"
    same = {
        "path": cropper(path),
        "str": cropper(str(path)),
        "PIL": cropper(Image.fromarray(rgb)),
        "cv2.imread, bgr=True": cropper(cv2.imread(str(path)), bgr=True),
        "RGBA": cropper(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])),
        "16-bit": cropper(rgb.astype(np.uint16) * 257),
    }
    for kind, result in same.items():
        assert np.array_equal(result.face, expected.face), kind
    floats = cropper(rgb / 255.0)  # [0, 1] floats: the same pixels up to rounding
    assert np.abs(floats.face.astype(int) - expected.face).max() <= 1


def test_photos_are_cropped_upright_whatever_their_exif_orientation(tmp_path):
    from PIL import Image, ImageOps
    from skimage import data as samples

    from fer_pipeline.data.decode import read_image

    upright = Image.fromarray(samples.astronaut())
    # Stored pixels such that a viewer applying the orientation shows the upright photo.
    stored = {
        1: upright,
        2: ImageOps.mirror(upright),
        3: upright.rotate(180),
        4: ImageOps.flip(upright),
        5: upright.transpose(Image.Transpose.TRANSPOSE),
        6: upright.rotate(90, expand=True),
        7: upright.transpose(Image.Transpose.TRANSVERSE),
        8: upright.rotate(-90, expand=True),
    }
    for orientation, image in stored.items():
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.jpg"
        image.save(path, quality=95, exif=exif)
        shown = np.asarray(ImageOps.exif_transpose(Image.open(path)))
        read = read_image(path, grayscale=False)
        assert read.shape == shown.shape == (512, 512, 3), orientation
        assert np.abs(read.astype(int) - shown).mean() < 2, orientation  # decoders differ a little
        result = FaceCropper("haar", size=48)(path)
        assert result.outcome == "aligned", orientation
        as_shown = FaceCropper("haar", size=48)(shown).face  # what a viewer shows, cropped
        assert np.abs(result.face.astype(int) - as_shown).mean() < 3, orientation


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (42, r"image\[0\]: expected a path, a PIL image or a numpy array, got int"),
        (
            np.zeros((40, 40, 2), np.uint8),
            r"expected an \(H, W\) or \(H, W, 3\|4\) image, got \(40, 40, 2\)",
        ),
        (np.full((40, 40), np.nan), "has NaN or infinite pixels"),
        (np.zeros((40, 40), dtype=object), "pixel type object is not a number"),
        ("no/such/photo.jpg", "cannot read image no/such/photo.jpg"),
    ],
)
def test_what_is_not_an_image_is_a_one_line_error(image, match):
    with pytest.raises(PipelineError, match=match):
        FaceCropper("haar", size=48)(image)
