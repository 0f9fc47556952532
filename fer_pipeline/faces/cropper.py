"""``FaceCropper``: one face normalisation for training data and for inference alike.

A detector finds the face (box and 5 landmarks); a similarity transform maps the landmarks onto a
canonical template, which undoes in-plane rotation, scale and position; the result is resized to
``size`` x ``size`` and optionally histogram-equalised.

Detectors here: ``annotations`` (boxes and landmarks the dataset ships, e.g. the synthetic set) and
``none`` (the image already is a face crop, e.g. FER2013's 48 px faces: only resize).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fer_pipeline.data.image_folder import FaceAnnotation
from fer_pipeline.errors import PipelineError

DETECTORS = ("annotations", "none")

# 5-point template (left eye, right eye, nose, left and right mouth corner) in a unit square,
# from the common 112x112 ArcFace alignment template.
TEMPLATE = (
    np.array([[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]])
    / 112.0
)


@dataclass(frozen=True)
class CropResult:
    face: np.ndarray  # (size, size) uint8, or (size, size, 3) when not grayscale
    outcome: str  # "aligned": landmarks used; "resized": whole image; "center_crop": fallback


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` to ``dst``.

    Both ``(N, 2)``; returns the ``(2, 3)`` matrix for ``cv2.warpAffine``.
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
    """Detect, align and crop one face per image.

    Args:
        detector: one of :data:`DETECTORS`.
        size: output side in pixels.
        margin: extra context around the template, as a fraction of the output side per border.
        grayscale: output ``(size, size)`` gray instead of ``(size, size, 3)`` RGB.
        equalize: histogram-equalise the output (per channel luminance when RGB).
    """

    def __init__(
        self,
        detector: str = "annotations",
        size: int = 48,
        margin: float = 0.15,
        grayscale: bool = True,
        equalize: bool = False,
    ):
        if detector not in DETECTORS:
            raise PipelineError(f"unknown face detector '{detector}' (choose from {DETECTORS})")
        if size < 8:
            raise PipelineError(f"face size {size} is too small (at least 8 px)")
        if not 0 <= margin < 1:
            raise PipelineError(f"face margin {margin} must be in [0, 1)")
        self.detector = detector
        self.size = size
        self.margin = margin
        self.grayscale = grayscale
        self.equalize = equalize
        self.template = (0.5 + (TEMPLATE - 0.5) / (1 + 2 * margin)) * size

    def __call__(self, image: np.ndarray, annotation: FaceAnnotation | None = None) -> CropResult:
        """Crop the face of ``image`` (``(H, W)`` or ``(H, W, 3)`` uint8)."""
        if self.detector == "annotations" and annotation is not None:
            matrix = similarity_transform(np.asarray(annotation.landmarks, float), self.template)
            face = cv2.warpAffine(
                image,
                matrix,
                (self.size, self.size),
                flags=cv2.INTER_AREA,
                borderMode=cv2.BORDER_REPLICATE,
            )
            outcome = "aligned"
        elif self.detector == "none":
            face = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
            outcome = "resized"
        else:
            h, w = image.shape[:2]
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            square = image[top : top + side, left : left + side]
            face = cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_AREA)
            outcome = "center_crop"
        return CropResult(self._finish(face), outcome)

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
