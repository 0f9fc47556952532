"""``FaceCropper``: one face normalisation for training data and for inference alike.

A detector finds the face (box, and landmarks where it gives them); a similarity transform maps the
landmarks (5 points, or the two eye centres) onto a canonical template, which undoes in-plane
rotation, scale and position; the result is ``size`` x ``size``, grey or RGB, optionally
histogram-equalised.

Detectors (``face.detector``):

- ``annotations``: boxes and landmarks the dataset ships (the synthetic set, AffectNet, RAF-DB);
- ``none``: every image already is a face crop (FER2013's 48 px faces): only resize;
- ``haar``: OpenCV's Haar cascades, offline out of the box;
- ``mtcnn``: facenet-pytorch's MTCNN (5 landmarks; its weights ship in the package): for photos;
- ``retinaface``: RetinaFace-ResNet50 (needs its weights file);
- ``auto``: per image. Images whose longer side is at most ``auto_max_side`` are taken as crops
  already; otherwise the dataset's annotation if it has one, else RetinaFace if its weights are
  on this machine (``auto`` never downloads), else MTCNN, else Haar (without facenet-pytorch).

Every image gets an outcome: ``aligned`` (landmarks or eyes used), ``box`` (face box only),
``already_cropped``, or a failure: ``no_face``, ``unverified`` (detections, none of which passed
the verification), ``too_small`` (below the detector's minimum), ``no_annotation``,
``unreadable``, ``too_large`` (above ``max_pixels``, refused from its header).

A failure is kept as a centre crop or dropped (``on_failure``); the outcome says which, so
nothing is dropped in silence. With ``multiple: all``, an image where something was detected
(``unverified``) never becomes a centre crop: its detections are reported, rejected.

Verification (``verify: landmarks``, the default): a detection is a face only when the detector
also found its parts: both eyes in the box's upper part for Haar; for RetinaFace and MTCNN, five
landmarks in a face's layout (eyes above the nose, the nose above the mouth corners, the eyes
0.2-0.8 of the box's width apart, all inside the box; for a face cut by the image's border, the box
as detected, before clipping). Detections that fail are reported
(``CropResult.rejected``), never cropped; with ``multiple: largest`` or ``most_confident`` the
pick is among verified detections, and among all of them only when none is verified (a face too
small for its eyes to be found is still a face). ``verify: none`` keeps every detection.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer_pipeline.data.decode import MAX_PIXELS, as_image
from fer_pipeline.data.layout import FaceAnnotation
from fer_pipeline.errors import PipelineError
from fer_pipeline.faces.detectors import (
    Detection,
    HaarDetector,
    MTCNNDetector,
    RetinaFaceDetector,
    hub_checkpoint,
    mtcnn_available,
    retinaface_weights_present,
    weights_problem,
)

DETECTORS = ("annotations", "none", "haar", "mtcnn", "retinaface", "auto")
MULTIPLE = ("largest", "most_confident", "all")
VERIFY = ("landmarks", "none")
ON_FAILURE = ("keep", "drop")

# 5-point template (left eye, right eye, nose, left and right mouth corner) in a unit square,
# from the common 112x112 ArcFace alignment template.
TEMPLATE = (
    np.array([[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]])
    / 112.0
)


@dataclass(frozen=True)
class CropResult:
    # One crop per kept face, (size, size) or (size, size, 3) uint8; empty when dropped.
    faces: list[np.ndarray]
    # aligned | box | already_cropped | no_face | too_small | no_annotation | unreadable
    # | too_large
    outcome: str
    detector: str = ""  # the detector that decided (auto names the one it picked)
    found: int = 0  # faces the detector found
    score: float | None = None  # the kept face's detector score
    action: str = "kept"  # kept | center_crop | dropped
    detections: list[Detection] = field(default_factory=list, repr=False)
    kept: list[Detection] = field(default_factory=list, repr=False)  # the detection of each face
    rejected: list[Detection] = field(default_factory=list, repr=False)  # failed verification

    @property
    def face(self) -> np.ndarray:
        if not self.faces:
            raise PipelineError(f"no face to return: {self.outcome}, {self.action}")
        return self.faces[0]


def is_verified(detection: Detection) -> bool:
    """Did the detector find the face's parts where a face has them? (See the module doc.)"""
    points = detection.landmarks
    if points is None:
        return False
    x1, y1, x2, y2 = detection.full_box or detection.box  # a face cut by the frame: as found
    width, height = x2 - x1, y2 - y1
    if width <= 0 or height <= 0:
        return False
    inside = (
        (points[:, 0] >= x1 - 0.05 * width) & (points[:, 0] <= x2 + 0.05 * width)
        & (points[:, 1] >= y1 - 0.05 * height) & (points[:, 1] <= y2 + 0.05 * height)
    )  # fmt: skip
    left, right = points[0], points[1]
    spread = (right[0] - left[0]) / width
    if not inside.all() or not 0.2 <= spread <= 0.8:
        return False
    if len(points) == 2:  # Haar's eyes: in the upper part of the box
        return bool(max(left[1], right[1]) <= y1 + 0.6 * height)
    nose, mouth = points[2], points[3:5]
    eyes_y = (left[1] + right[1]) / 2
    return bool(eyes_y < nose[1] < mouth[:, 1].min())


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` to ``dst``.

    Both ``(N, 2)``, N >= 2; returns the ``(2, 3)`` matrix for ``cv2.warpAffine``.
    """
    x, y = src[:, 0], src[:, 1]
    ones, zeros = np.ones_like(x), np.zeros_like(x)
    # x' = a x - b y + tx ;  y' = b x + a y + ty
    A = np.concatenate(
        [np.stack([x, -y, ones, zeros], 1), np.stack([y, x, zeros, ones], 1)], axis=0
    )
    rhs = np.concatenate([dst[:, 0], dst[:, 1]])
    a, b, tx, ty = np.linalg.lstsq(A, rhs, rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])


class FaceCropper:
    """Detect, align and crop faces; the crop stage and inference both use it.

    Args:
        detector: one of :data:`DETECTORS`.
        size: output side in pixels.
        margin: extra context around the template, as a fraction of the output side per border.
        grayscale: output ``(size, size)`` gray instead of ``(size, size, 3)`` RGB.
        equalize: histogram-equalise the output (the luminance when RGB).
        multiple: with several faces, keep the ``largest``, the ``most_confident``, or ``all``.
        on_failure: ``keep`` a centre crop of an image without a usable face, or ``drop`` it.
        auto_max_side: ``auto`` takes images whose longer side is at most this as face crops.
        haar: options of :class:`HaarDetector`; retinaface: of :class:`RetinaFaceDetector`.
        auto_detector: ``auto`` uses this detector (``haar`` / ``retinaface``) without probing
            (the crop stage's workers take what the main process found).
        verify: ``landmarks``: keep only detections whose parts were found (see the module doc);
            ``none``: keep every detection.
    """

    def __init__(
        self,
        detector: str = "annotations",
        size: int = 48,
        margin: float = 0.15,
        grayscale: bool = True,
        equalize: bool = False,
        multiple: str = "largest",
        on_failure: str = "keep",
        auto_max_side: int = 64,
        haar: dict | None = None,
        retinaface: dict | None = None,
        mtcnn: dict | None = None,
        auto_detector: str | None = None,
        verify: str = "landmarks",
        max_pixels: int | None = MAX_PIXELS,
    ):
        for name, value, allowed in (
            ("detector", detector, DETECTORS),
            ("multiple", multiple, MULTIPLE),
            ("on_failure", on_failure, ON_FAILURE),
            ("verify", verify, VERIFY),
        ):
            if value not in allowed:
                raise PipelineError(f"unknown face.{name} '{value}' (choose from {allowed})")
        if size < 8:
            raise PipelineError(f"face size {size} is too small (at least 8 px)")
        if not 0 <= margin < 1:
            raise PipelineError(f"face margin {margin} must be in [0, 1)")
        self.detector = detector
        self.size = size
        self.margin = margin
        self.grayscale = grayscale
        self.equalize = equalize
        self.multiple = multiple
        self.on_failure = on_failure
        self.auto_max_side = auto_max_side
        self.verify = verify
        self.max_pixels = max_pixels  # larger images are refused from their header: too_large
        self.template = (0.5 + (TEMPLATE - 0.5) / (1 + 2 * margin)) * size
        # The detector network / cascade, built now so a missing file fails here.
        self.face_detector = None
        self.note = ""
        if detector in ("haar", "mtcnn", "retinaface", "auto"):
            chosen = auto_detector if detector == "auto" and auto_detector else detector
            options = {"haar": haar, "retinaface": retinaface, "mtcnn": mtcnn}
            self.face_detector = self._build_detector(
                chosen, {k: dict(v or {}) for k, v in options.items()}
            )

    @classmethod
    def from_config(cls, face) -> FaceCropper:
        """From the ``face`` config node (``conf/face.yaml``); stage-only keys are ignored."""
        keys = inspect.signature(cls).parameters
        return cls(**{k: face[k] for k in keys if k in face})

    def _build_detector(self, detector: str, options: dict[str, dict]):
        haar, retinaface = options["haar"], options["retinaface"]
        if detector == "haar":
            return HaarDetector(**haar)
        if detector == "mtcnn":
            return MTCNNDetector(**options["mtcnn"])
        if detector == "retinaface":
            return RetinaFaceDetector(**retinaface)
        # auto: the best detector whose weights are here; it never downloads. RetinaFace, else
        # MTCNN (its weights ship in facenet-pytorch's wheel), else Haar.
        if retinaface_weights_present(retinaface.get("weights_path")):
            return RetinaFaceDetector(**retinaface)
        path = Path(retinaface.get("weights_path") or hub_checkpoint()).expanduser()
        missing = f"auto: no RetinaFace weights ({path}: {weights_problem(path)})"
        if mtcnn_available():
            self.note = f"{missing}, using mtcnn for images that need a detector"
            return MTCNNDetector(**options["mtcnn"])
        self.note = f"{missing} and no facenet-pytorch (MTCNN), using haar for images that need one"
        return HaarDetector(**haar)

    @property
    def uses_torch(self) -> bool:
        """RetinaFace and MTCNN run in one process, torch using the cores itself (MTCNN: 12.0-12.2
        photos/s against 9.4 in two single-threaded workers, benchmarks/face_photos.py)."""
        return isinstance(self.face_detector, RetinaFaceDetector | MTCNNDetector)

    @property
    def needs_color(self) -> bool:
        """The detector reads RGB (the CNNs), not grey (Haar)."""
        return isinstance(self.face_detector, RetinaFaceDetector | MTCNNDetector)

    def decode_side(self) -> int | None:
        """How long a photo's longer side must stay when it is decoded at reduced scale for Haar or
        MTCNN (which search a copy at most ``max_side`` long): long enough that the smallest face
        they find is still ``size`` px. None: decode at full size."""
        if (
            not isinstance(self.face_detector, HaarDetector | MTCNNDetector)
            or self.face_detector.max_side is None
        ):
            return None
        return math.ceil(
            self.face_detector.max_side * max(1.0, self.size / self.face_detector.min_side)
        )

    def min_side(self) -> int:
        """The smallest image side the detector accepts (1 without a detector)."""
        return self.face_detector.min_side if self.face_detector is not None else 1

    def __call__(
        self, image, annotation: FaceAnnotation | None = None, bgr: bool = False
    ) -> CropResult:
        """Crop the faces of one image: a path (read upright, EXIF applied), a PIL image, or an
        array ``(H, W)`` / ``(H, W, 3|4)`` of uint8, 16-bit or float pixels, RGB unless ``bgr``
        (``cv2.imread``'s order). Anything else is a one-line :class:`PipelineError`."""
        return self.crop_batch([image], [annotation], bgr=bgr)[0]

    def crop_batch(
        self,
        images: list,
        annotations: list[FaceAnnotation | None] | None = None,
        bgr: bool = False,
    ) -> list[CropResult]:
        """Crop a batch (the detector sees the images that need it in one call); each image as
        :meth:`__call__` takes it."""
        images = [as_image(image, bgr, f"image[{i}]") for i, image in enumerate(images)]
        annotations = annotations or [None] * len(images)
        results: list[CropResult | None] = [None] * len(images)
        pending = []
        name = self.face_detector.name if self.face_detector is not None else self.detector
        for i, (image, annotation) in enumerate(zip(images, annotations, strict=True)):
            h, w = image.shape[:2]
            if self.detector == "none" or (
                self.detector == "auto" and max(h, w) <= self.auto_max_side
            ):
                face = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
                results[i] = CropResult([self._finish(face)], "already_cropped", self.detector)
            elif self.detector in ("annotations", "auto") and annotation is not None:
                face = self._align(image, np.asarray(annotation.landmarks, float), self.template)
                results[i] = CropResult([face], "aligned", "annotations", found=1)
            elif self.detector == "annotations":
                results[i] = self._failure(image, "no_annotation", "annotations")
            elif min(h, w) < self.min_side():
                results[i] = self._failure(image, "too_small", name)
            else:
                pending.append(i)
        if pending:
            found = self.face_detector.detect_batch([images[i] for i in pending])
            for i, detections in zip(pending, found, strict=True):
                results[i] = self._from_detections(images[i], detections, name)
        return results

    def _from_detections(self, image, detections: list[Detection], name: str) -> CropResult:
        if not detections:
            return self._failure(image, "no_face", name)
        passed = [self.verify == "none" or is_verified(d) for d in detections]
        faces_found = [d for d, ok in zip(detections, passed, strict=True) if ok]
        rejected = [d for d, ok in zip(detections, passed, strict=True) if not ok]
        if not faces_found and self.multiple == "all":
            # Something was found: never a centre crop standing in for faces (a detection that
            # failed verification is reported, and the summary counts these images).
            return CropResult([], "unverified", name, len(detections), action="dropped",
                              detections=detections, rejected=rejected)  # fmt: skip
        if not faces_found:  # one face wanted: the best detection, unverified (small faces' eyes
            faces_found, rejected = detections, []  # are too small for the eye cascade)
        if self.multiple == "all":
            chosen = sorted(faces_found, key=lambda d: (d.box[0], d.box[1]))
        elif self.multiple == "largest":
            chosen = [max(faces_found, key=lambda d: d.area)]
        else:
            chosen = [max(faces_found, key=lambda d: d.score)]
        faces = [self._crop_detection(image, d) for d in chosen]
        outcome = "aligned" if chosen[0].landmarks is not None else "box"
        return CropResult(
            faces, outcome, name, len(detections), chosen[0].score, detections=detections,
            kept=chosen, rejected=rejected,
        )  # fmt: skip

    def _crop_detection(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        if detection.landmarks is not None:
            points = detection.landmarks
            return self._align(image, points, self.template[: len(points)])
        x1, y1, x2, y2 = detection.box
        side = max(x2 - x1, y2 - y1) * (1 + 2 * self.margin)
        scale = self.size / side
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        shift = self.size / 2
        return self._warp(
            image, np.array([[scale, 0, shift - scale * cx], [0, scale, shift - scale * cy]])
        )

    def _align(self, image: np.ndarray, points: np.ndarray, template: np.ndarray) -> np.ndarray:
        return self._warp(image, similarity_transform(points, template))

    def _warp(self, image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        face = cv2.warpAffine(
            image,
            matrix,
            (self.size, self.size),
            flags=cv2.INTER_AREA,
            borderMode=cv2.BORDER_REPLICATE,
        )
        return self._finish(face)

    def _failure(self, image: np.ndarray, outcome: str, name: str) -> CropResult:
        if self.on_failure == "drop":
            return CropResult([], outcome, name, action="dropped")
        h, w = image.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = image[top : top + side, left : left + side]
        face = cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return CropResult([self._finish(face)], outcome, name, action="center_crop")

    def unreadable(self, outcome: str = "unreadable") -> CropResult:
        """The result for an image that could not be read (``unreadable``) or was refused
        (``too_large``): recorded, nothing to keep."""
        return CropResult([], outcome, self.detector, action="dropped")

    def _finish(self, face: np.ndarray) -> np.ndarray:
        if self.grayscale and face.ndim == 3:
            face = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
        elif not self.grayscale and face.ndim == 2:
            face = cv2.cvtColor(face, cv2.COLOR_GRAY2RGB)
        if self.equalize:
            if face.ndim == 2:
                face = cv2.equalizeHist(face)
            else:
                yuv = cv2.cvtColor(face, cv2.COLOR_RGB2YUV)
                yuv[..., 0] = cv2.equalizeHist(yuv[..., 0])
                face = cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB)
        return face
