"""A procedural facial-expression dataset, generated deterministically from a seed.

Each image is a grayscale scene larger than the face. The face sits at a random position, scale and
in-plane rotation, under an illumination gradient, with noise, blur, background clutter and sometimes
an occluder. Its expression is drawn from facial geometry (brow height and tilt, eye opening, mouth
curve, opening, width and asymmetry). Each class has a prototype, and every face shows it at a
random intensity between nearly neutral and exaggerated, plus per-feature noise. That makes the
pairs FER2013 also confuses (fear/surprise, angry/disgust, sad/neutral) overlap, so accuracy is
informative rather than trivially 100 %.

Every image comes with its face box and 5 landmarks in RetinaFace order (left eye, right eye, nose,
left mouth corner, right mouth corner; "left" is image-left on the upright face).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from fer_pipeline.data.classes import FER2013_CLASSES, FER2013_TRAIN_SHARE
from fer_pipeline.data.layout import FaceAnnotation

# Expression prototypes: brow raise, brow tilt (+ = inner ends down), eye opening, mouth curve
# (+ = corners up), mouth opening, mouth half-width, sneer (one corner raised).
PARAMS = (
    "brow_raise",
    "brow_tilt",
    "eye_open",
    "mouth_curve",
    "mouth_open",
    "mouth_width",
    "sneer",
)
NEUTRAL = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.38, 0.0])
PROTOTYPES: dict[str, np.ndarray] = {
    "angry": np.array([-1.0, 1.0, 0.75, -0.3, 0.0, 0.33, 0.0]),
    "disgust": np.array([-0.7, 0.7, 0.6, -0.6, 0.1, 0.36, 0.9]),
    "fear": np.array([0.9, -0.6, 1.6, -0.4, 0.45, 0.46, 0.0]),
    "happy": np.array([0.0, 0.0, 0.8, 1.1, 0.3, 0.47, 0.0]),
    "sad": np.array([0.2, -0.9, 0.7, -0.8, 0.0, 0.36, 0.0]),
    "surprise": np.array([1.3, 0.0, 1.7, 0.0, 0.9, 0.30, 0.0]),
    "neutral": NEUTRAL,
}
# Per-feature noise, in the units of PARAMS.
NOISE = np.array([0.3, 0.3, 0.2, 0.25, 0.12, 0.04, 0.25])

SUPERSAMPLE = 2  # draw at 2x and shrink with area averaging, for smooth sub-pixel features
SHIFT = 4  # cv2 drawing with 4 fractional bits


@dataclass(frozen=True)
class SyntheticFace:
    image: np.ndarray  # (size, size) uint8
    label: int
    annotation: FaceAnnotation
    rotation_deg: float


def class_counts(num_images: int, classes=FER2013_CLASSES, min_per_class: int = 8) -> list[int]:
    """Images per class with FER2013's training imbalance, at least ``min_per_class`` each."""
    shares = np.array([FER2013_TRAIN_SHARE[c] for c in classes])
    counts = np.maximum(np.floor(shares * num_images).astype(int), min_per_class)
    # Give what rounding left over to the largest classes, so the total is exact.
    order = np.argsort(-shares)
    i = 0
    while counts.sum() < num_images:
        counts[order[i % len(order)]] += 1
        i += 1
    while counts.sum() > num_images:
        j = order[i % len(order)]
        if counts[j] > min_per_class:
            counts[j] -= 1
        i += 1
    return counts.tolist()


def labels_for(num_images: int) -> list[int]:
    """The label of each image index, in a fixed order (class blocks)."""
    return [label for label, n in enumerate(class_counts(num_images)) for _ in range(n)]


def expression_params(label: int, rng: np.random.Generator) -> np.ndarray:
    """Sample one face's geometry: the class prototype at a random intensity, plus noise."""
    prototype = PROTOTYPES[FER2013_CLASSES[label]]
    intensity = rng.uniform(0.45, 1.15)
    params = NEUTRAL + intensity * (prototype - NEUTRAL) + rng.normal(0.0, NOISE)
    params[2] = max(params[2], 0.25)  # eyes never fully closed
    params[4] = max(params[4], 0.0)
    params[5] = float(np.clip(params[5], 0.24, 0.56))
    return params


def _pts(points: np.ndarray) -> np.ndarray:
    return np.round(points * SUPERSAMPLE * (1 << SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def _parabola(x0: float, x1: float, y_ends: tuple[float, float], y_mid: float, n: int = 15):
    """Points of a quadratic through (x0, y_ends[0]), (mid, y_mid), (x1, y_ends[1])."""
    xs = np.linspace(x0, x1, n)
    t = (xs - x0) / (x1 - x0)
    ya, yb = y_ends
    ys = (1 - t) ** 2 * ya + 2 * t * (1 - t) * (2 * y_mid - (ya + yb) / 2) + t**2 * yb
    return np.stack([xs, ys], axis=1)


def render_face(index: int, label: int, size: int = 112, seed: int = 0) -> SyntheticFace:
    """Render image ``index`` of class ``label`` as a ``size`` x ``size`` grayscale scene.

    Deterministic in (seed, index): any image can be regenerated on its own.
    """
    rng = np.random.default_rng([seed, index])
    brow_raise, brow_tilt, eye_open, curve, mouth_open, mouth_w, sneer = expression_params(
        label, rng
    )
    big = size * SUPERSAMPLE

    # Background and clutter.
    bg = rng.uniform(30, 220)
    canvas = np.full((big, big), bg, dtype=np.float32)
    for _ in range(rng.integers(2, 9)):
        level = float(rng.uniform(0, 255))
        a, b = rng.uniform(0, size, 2), rng.uniform(0, size, 2)
        kind = rng.integers(3)
        if kind == 0:
            cv2.line(
                canvas, _pts(a)[0, 0], _pts(b)[0, 0], level, 2 * SUPERSAMPLE, cv2.LINE_AA, SHIFT
            )
        elif kind == 1:
            cv2.rectangle(canvas, _pts(a)[0, 0], _pts(b)[0, 0], level, -1, cv2.LINE_AA, SHIFT)
        else:
            r = int(rng.uniform(3, size / 5) * SUPERSAMPLE * (1 << SHIFT))
            cv2.circle(canvas, _pts(a)[0, 0], r, level, -1, cv2.LINE_AA, SHIFT)

    # Face pose: half-width in pixels, centre, in-plane rotation.
    half_w = rng.uniform(0.17, 0.26) * size
    half_h = 1.3 * half_w
    angle = rng.uniform(-30.0, 30.0)
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    ext_x = math.hypot(half_w * cos, half_h * sin)
    ext_y = math.hypot(half_w * sin, half_h * cos)
    cx = rng.uniform(ext_x + 2, size - ext_x - 2)
    cy = rng.uniform(ext_y + 2, size - ext_y - 2)
    rot = np.array([[cos, -sin], [sin, cos]])

    def to_scene(points) -> np.ndarray:
        """Face coordinates (unit = half face width, y down) -> scene pixels."""
        return np.asarray(points, dtype=float) @ rot.T * half_w + (cx, cy)

    skin = rng.uniform(110, 235)
    if abs(skin - bg) < 35:
        skin = bg + 35 if bg < 150 else bg - 35
    ink = max(skin - rng.uniform(75, 110), 0.0)

    def ellipse(centre, axes, level, thickness=-1):
        c = _pts(to_scene([centre]))[0, 0]
        ax = (np.asarray(axes) * half_w * SUPERSAMPLE * (1 << SHIFT)).astype(int)
        cv2.ellipse(canvas, c, tuple(ax), angle, 0, 360, level, thickness, cv2.LINE_AA, SHIFT)

    def stroke(points, level, width):
        w = max(1, int(round(width * half_w * SUPERSAMPLE)))
        cv2.polylines(canvas, [_pts(to_scene(points))], False, level, w, cv2.LINE_AA, SHIFT)

    # Hair, head, ears.
    if rng.random() < 0.7:
        ellipse((0, -0.55), (1.08, 0.95), max(skin - rng.uniform(60, 140), 0.0))
    ellipse((-1.0, 0.0), (0.13, 0.25), skin)
    ellipse((1.0, 0.0), (0.13, 0.25), skin)
    ellipse((0, 0), (1.0, 1.3), skin)

    # Eyes (white, iris) and brows.
    eye_y, eye_x = -0.12, 0.38
    for side in (-1, 1):
        ellipse((side * eye_x, eye_y), (0.16, 0.075 * eye_open), min(skin + 25, 255))
        ellipse((side * eye_x, eye_y), (0.065, min(0.065, 0.07 * eye_open)), ink)
        brow_y = eye_y - (0.3 + 0.11 * brow_raise)
        inner = (side * 0.13, brow_y + 0.1 * brow_tilt)
        outer = (side * 0.6, brow_y - 0.03 * brow_tilt + 0.04)
        stroke([inner, ((inner[0] + outer[0]) / 2, brow_y - 0.04), outer], ink, 0.07)

    # Nose.
    stroke([(0.0, 0.0), (0.05, 0.2), (-0.04, 0.24)], ink, 0.035)

    # Mouth: corners move with curve and sneer, the lower lip drops with the opening.
    mouth_y = 0.58
    left_y = mouth_y - 0.14 * curve - 0.12 * sneer
    right_y = mouth_y - 0.14 * curve
    upper = _parabola(-mouth_w, mouth_w, (left_y, right_y), mouth_y - 0.04 * mouth_open)
    lower = _parabola(-mouth_w, mouth_w, (left_y, right_y), mouth_y + 0.3 * mouth_open)
    if mouth_open > 0.06:
        polygon = np.concatenate([upper, lower[::-1]])
        cv2.fillPoly(canvas, [_pts(to_scene(polygon))], max(ink - 20, 0.0), cv2.LINE_AA, SHIFT)
    stroke(upper, ink, 0.05)
    stroke(lower, ink, 0.05)

    # Occluder (a hand, a scarf, sunglasses) over part of the face.
    if rng.random() < 0.25:
        centre = to_scene([rng.uniform(-0.8, 0.8, 2)])[0]
        radius = rng.uniform(0.25, 0.5) * half_w
        r = int(radius * SUPERSAMPLE * (1 << SHIFT))
        cv2.circle(
            canvas, _pts(centre)[0, 0], r, float(rng.uniform(0, 255)), -1, cv2.LINE_AA, SHIFT
        )

    image = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)

    # Illumination gradient, blur, sensor noise.
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    direction = rng.uniform(0, 2 * math.pi)
    gain = 1.0 + rng.uniform(0.0, 0.7) * (xx * math.cos(direction) + yy * math.sin(direction))
    image = image * gain
    sigma = rng.uniform(0.0, 1.1)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image = image + rng.normal(0.0, rng.uniform(2.0, 10.0), image.shape)
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)

    landmarks = to_scene(
        [(-eye_x, eye_y), (eye_x, eye_y), (0.0, 0.22), (-mouth_w, left_y), (mouth_w, right_y)]
    )
    box = (cx - ext_x, cy - ext_y, cx + ext_x, cy + ext_y)
    return SyntheticFace(image, label, FaceAnnotation(box, landmarks), angle)
