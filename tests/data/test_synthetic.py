"""The embedded synthetic dataset: deterministic, FER2013-like balance, landmarks that fit."""

from __future__ import annotations

import numpy as np

from fer_pipeline.data.classes import FER2013_CLASSES
from fer_pipeline.data.synthetic import class_counts, labels_for, render_face


def test_same_seed_same_image_other_seed_other_image():
    a, b = render_face(17, 3, seed=5), render_face(17, 3, seed=5)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.annotation.landmarks, b.annotation.landmarks)
    c = render_face(17, 3, seed=6)
    assert not np.array_equal(a.image, c.image)


def test_images_are_independent_of_generation_order():
    forward = [render_face(i, i % 7).image for i in range(5)]
    backward = [render_face(i, i % 7).image for i in reversed(range(5))][::-1]
    assert all(np.array_equal(f, b) for f, b in zip(forward, backward, strict=True))


def test_class_balance_follows_fer2013():
    counts = dict(zip(FER2013_CLASSES, class_counts(2400), strict=True))
    assert sum(counts.values()) == 2400
    assert min(counts, key=counts.get) == "disgust"
    assert max(counts, key=counts.get) == "happy"
    assert counts["disgust"] < 0.03 * 2400 < counts["surprise"]
    # Canonical FER2013 label order: 0 angry ... 6 neutral.
    labels = labels_for(100)
    assert labels[0] == 0 and labels[-1] == 6 and sorted(labels) == labels


def test_every_class_present_in_small_sets():
    assert min(class_counts(56)) >= 8 and sum(class_counts(56)) == 56


def test_scene_is_larger_than_the_face_and_landmarks_are_in_the_box():
    for i in range(40):
        face = render_face(i, i % 7, size=112)
        assert face.image.shape == (112, 112) and face.image.dtype == np.uint8
        x1, y1, x2, y2 = face.annotation.box
        assert 0 <= x1 < x2 <= 112 and 0 <= y1 < y2 <= 112
        assert (x2 - x1) < 112 * 0.8  # the face does not fill the scene
        lm = face.annotation.landmarks
        assert lm.shape == (5, 2)
        assert ((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2)).all()


def test_landmarks_are_in_retinaface_order():
    """Left eye, right eye, nose, left and right mouth corner, on the upright face."""
    for i in range(20):
        face = render_face(i, i % 7)
        angle = np.radians(face.rotation_deg)
        upright = face.annotation.landmarks @ np.array(
            [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
        )  # undo the rotation (row vectors)
        left_eye, right_eye, nose, mouth_l, mouth_r = upright
        assert left_eye[0] < right_eye[0] and mouth_l[0] < mouth_r[0]
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_l[1], mouth_r[1])


def test_expression_changes_the_picture_not_the_scene():
    """Same index, other class: same scene and pose, different face."""
    a, b = render_face(0, 3), render_face(0, 4)  # happy, sad
    assert np.allclose(a.annotation.box, b.annotation.box)  # same draw of pose and scene
    assert np.abs(a.image.astype(float) - b.image.astype(float)).mean() > 0.5
