"""Face detectors behind one interface: ``detect_batch(images) -> [[Detection, ...], ...]``.

- ``haar``: one of OpenCV's frontal-face Haar cascades (``alt2`` by default), with the eye cascade
  for the eye centres. Ships with opencv-python 4.x, so it works offline out of the box.
- ``mtcnn``: facenet-pytorch's MTCNN (boxes, scores, 5 landmarks); its weights are inside the
  package, so it too works offline.
- ``retinaface``: retinaface-pytorch's RetinaFace-ResNet50 (boxes, scores, 5 landmarks), batched.
  Its weights come from ``weights_path``, the torch hub cache or the download URL; a missing file
  offline stops at start, naming the file and where to put it.

Detections are in the input image's pixel coordinates, clipped to it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_pipeline.errors import PipelineError


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    landmarks: np.ndarray | None = None  # (5, 2) RetinaFace order, or (2, 2) eye centres
    # the box before it was clipped to the image (a face cut by the frame): what verification
    # compares the landmarks with; None when it was not clipped
    full_box: tuple[float, float, float, float] | None = None

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])

    def xywh(self, factor: float = 1.0) -> tuple[float, float, float, float]:
        """The box as ``x, y, w, h``, times ``factor``, to 0.1 px (what reports show)."""
        x1, y1, x2, y2 = (v * factor for v in self.box)
        return round(x1, 1), round(y1, 1), round(x2 - x1, 1), round(y2 - y1, 1)


def search_copy(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """``image`` scaled down (never up) so its longer side is at most ``max_side``, and the scale
    (1.0: the image itself). Detectors search the copy and divide what they find by the scale."""
    h, w = image.shape[:2]
    scale = 1.0 if max_side is None else min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return image, scale
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def to_rgb(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image


EYE_FACE_WIDTH = 120  # px: faces are scaled to this width for the eye cascade
EYE_UPSCALE = 3.0  # at most: a 24 px face is searched for eyes at 72 px
CASCADES = ("alt2", "alt", "default")  # OpenCV's haarcascade_frontalface_<name>.xml


def cascade_file(cascade: str) -> Path:
    """The XML file of ``cascade``: one of :data:`CASCADES` (in opencv-python's data folder) or
    the path of a cascade file."""
    if cascade in CASCADES:
        return Path(cv2.data.haarcascades) / f"haarcascade_frontalface_{cascade}.xml"
    path = Path(cascade).expanduser()
    if not path.is_file():
        raise PipelineError(
            f"face.haar.cascade {cascade!r} is neither one of {', '.join(CASCADES)} nor a file"
        )
    return path


class HaarDetector:
    """OpenCV Haar cascades: faces, then the two eyes inside each face's upper half.

    The defaults (``alt2``, step 1.15, 3 neighbours) came out of benchmarks/face_photos.py: on its
    generated photos twice as fast as ``default`` at step 1.1 with 5 neighbours, with fewer non-faces
    found (docs/faces.md#measured)."""

    name = "haar"

    def __init__(
        self,
        cascade: str = "alt2",
        scale_factor: float = 1.15,
        min_neighbors: int = 3,
        min_face: int = 24,
        max_side: int | None = 640,
    ):
        path = cascade_file(cascade)
        self.face = cv2.CascadeClassifier(str(path))
        self.eye = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_eye.xml"))
        if self.face.empty() or self.eye.empty():
            raise PipelineError(
                f"OpenCV cannot read the Haar cascade {path} or the eye cascade beside it "
                "(opencv-python 5.x dropped them; install opencv-python-headless 4.x)"
            )
        if max_side is not None and max_side < 2 * min_face:
            raise PipelineError(
                f"face.haar.max_side {max_side} must be at least twice face.haar.min_face "
                f"({min_face}), or null (detect at full size)"
            )
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_side = min_face  # smaller images are too small for the cascade
        self.max_side = max_side

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Detection]]:
        return [self.detect(image) for image in images]

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces on a copy whose longer side is at most ``max_side`` (the cascade's cost grows
        with the pixels), boxes mapped back; eyes in each face cut from the full image."""
        gray = to_gray(image)
        h, w = gray.shape
        small, scale = search_copy(gray, self.max_side)
        boxes, _, weights = self.face.detectMultiScale3(
            cv2.equalizeHist(small),
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_side, self.min_side),
            outputRejectLevels=True,
        )
        found = []
        for (sx, sy, sw, sh), weight in zip(boxes, np.ravel(weights), strict=True):
            x, y = int(sx / scale), int(sy / scale)
            fw, fh = min(round(sw / scale), w - x), min(round(sh / scale), h - y)
            # Eyes in the face's upper part, equalised on its own (finds more eyes than the whole
            # image's equalisation).
            upper = cv2.equalizeHist(gray[y : y + fh // 2 + fh // 10, x : x + fw])
            eyes = self._eyes(upper, fw)
            landmarks = None if eyes is None else eyes + np.array([x, y], float)
            box = (float(x), float(y), float(x + fw), float(y + fh))
            found.append(Detection(box, float(weight), landmarks))
        return found

    def _eyes(self, upper: np.ndarray, width: int) -> np.ndarray | None:
        """Centres of the left and right eye in ``upper`` (the face's top half), or None. The face
        is searched at :data:`EYE_FACE_WIDTH` px wide: wider ones scaled down, narrower ones up (at
        most :data:`EYE_UPSCALE` times; the eye cascade's window is 20 px, the eyes of a 40 px face
        are ~8)."""
        scale = min(EYE_UPSCALE, EYE_FACE_WIDTH / width)
        if scale != 1.0:
            size = (max(1, round(upper.shape[1] * scale)), max(1, round(upper.shape[0] * scale)))
            area = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            upper = cv2.resize(upper, size, interpolation=area)
        width = round(width * scale)
        side = max(8, width // 8)
        eyes = self.eye.detectMultiScale(upper, 1.1, 3, minSize=(side, side))
        left = [e for e in eyes if e[0] + e[2] / 2 < width / 2]
        right = [e for e in eyes if e[0] + e[2] / 2 >= width / 2]
        if not left or not right:
            return None
        pick = [max(group, key=lambda e: e[2] * e[3]) for group in (left, right)]
        return np.array([[x + w / 2, y + h / 2] for x, y, w, h in pick], float) / scale


class MTCNNDetector:
    """facenet-pytorch's MTCNN (three small CNNs; weights inside the package, so it works offline):
    boxes, probabilities and 5 landmarks (eyes, nose, mouth corners, as RetinaFace's). Faces are
    searched on a copy whose longer side is at most ``max_side``, boxes mapped back."""

    name = "mtcnn"

    def __init__(
        self,
        min_face: int = 20,
        max_side: int | None = 480,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.9),
        device: str = "cpu",
    ):
        from facenet_pytorch import MTCNN

        self.net = MTCNN(
            min_face_size=min_face, thresholds=list(thresholds), keep_all=True, device=device,
            post_process=False,
        )  # fmt: skip
        self.min_side = min_face  # smaller images are "too_small"
        self.max_side = max_side

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Detection]]:
        return [self.detect(image) for image in images]

    def detect(self, image: np.ndarray) -> list[Detection]:
        import torch

        h, w = image.shape[:2]
        rgb, scale = search_copy(to_rgb(image), self.max_side)
        with torch.inference_mode():
            boxes, probs, points = self.net.detect(rgb, landmarks=True)
        if boxes is None:
            return []
        found = []
        for box, prob, pts in zip(boxes, probs, points, strict=True):
            full = tuple(float(v) / scale for v in box)
            x1, y1, x2, y2 = full
            box = (max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2))
            found.append(Detection(box, float(prob), np.asarray(pts, float) / scale, full))
        return found


RETINAFACE_URL = (
    "https://github.com/ternaus/retinaface/releases/download/0.01/"
    "retinaface_resnet50_2020-07-20-f168fae3c.zip"
)


def mtcnn_available() -> bool:
    """Whether facenet-pytorch (MTCNN and its weights) is installed: ``auto``'s second choice."""
    import importlib.util

    return importlib.util.find_spec("facenet_pytorch") is not None


def hub_checkpoint(url: str | None = None) -> Path:
    """Where torch hub caches ``url``: ``$TORCH_HOME/hub/checkpoints/<file>`` (torch.hub's rule,
    without importing torch)."""
    url = url or RETINAFACE_URL
    torch_home = os.getenv(
        "TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch")
    )
    hub = os.getenv("TORCH_HUB") or os.path.join(torch_home, "hub")
    return Path(hub).expanduser() / "checkpoints" / os.path.basename(url)


def weights_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a torch weights file (both torch.save's format and torch hub's
    legacy archives are zip files), or None; reads only the file's end."""
    if not path.is_file():
        return "no such file"
    if not zipfile.is_zipfile(path):
        return f"not a weights file: not a zip archive ({path.stat().st_size} bytes)"
    return None


def retinaface_weights_present(weights_path: str | None = None) -> bool:
    """Whether usable-looking RetinaFace weights are on this machine (``weights_path`` or the hub
    cache): ``auto`` chooses RetinaFace only then."""
    path = Path(weights_path).expanduser() if weights_path else hub_checkpoint()
    return weights_problem(path) is None


def _load_weights(path: Path, url: str, cached: bool) -> dict:
    import torch

    problem = weights_problem(path)
    if problem is None:
        try:
            if cached:  # torch hub's own loader: it unpacks its legacy zip archives
                return torch.hub.load_state_dict_from_url(
                    url, model_dir=str(path.parent), map_location="cpu", progress=False,
                    weights_only=True,
                )  # fmt: skip
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - unpickling, zip and tensor errors alike
            problem = " ".join(f"{type(err).__name__}: {err}".split())[:200]
    raise PipelineError(
        f"RetinaFace weights file {path} cannot be loaded ({problem}); delete it and put the "
        f"file from {url} there, or set face.retinaface.weights_path, or use face.detector=haar"
    )


def load_retinaface_weights(weights_path: str | None, url: str | None = None) -> dict:
    """The RetinaFace state dict: from ``weights_path``, else the hub cache, else downloaded
    into the hub cache. Any failure is one line naming the file."""
    import torch

    url = url or RETINAFACE_URL
    if weights_path:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise PipelineError(f"face.retinaface.weights_path {path} does not exist")
        return _load_weights(path, url, cached=False)
    cached = hub_checkpoint(url)
    if not cached.is_file():
        with tempfile.TemporaryDirectory() as tmp:  # nothing is left in the cache on failure
            part = Path(tmp) / cached.name
            try:
                torch.hub.download_url_to_file(url, str(part), progress=sys.stderr.isatty())
            except Exception as err:  # noqa: BLE001 - offline: URLError, socket, HTTP errors
                reason = " ".join(str(getattr(err, "reason", err)).split())
                raise PipelineError(
                    f"RetinaFace weights {cached.name} are not in {cached.parent} and could not "
                    f"be downloaded ({reason}): download {url} and put it there, or set "
                    "face.retinaface.weights_path, or use face.detector=haar"
                ) from None
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(part), cached)
    return _load_weights(cached, url, cached=True)


class RetinaFaceDetector:
    """retinaface-pytorch's RetinaFace-ResNet50, run on batches of images.

    Images are scaled down (never up: the package's own resize blows tiny images up to
    ``max_size``, which invents faces in 48 px crops) so the longer side fits ``max_size``, padded
    to a square, normalised as the network was trained, and decoded with the package's prior boxes,
    decoders and NMS.
    """

    name = "retinaface"

    def __init__(
        self,
        weights_path: str | None = None,
        max_size: int = 640,
        confidence: float = 0.7,
        nms: float = 0.4,
        batch_size: int = 8,
        min_image_side: int = 32,
        device: str = "cpu",
        state_dict: dict | None = None,
    ):
        import torch
        from retinaface.network import RetinaFace
        from retinaface.prior_box import priorbox

        state = state_dict if state_dict is not None else load_retinaface_weights(weights_path)
        self.net = RetinaFace(
            name="Resnet50",
            pretrained=False,
            return_layers={"layer2": 1, "layer3": 2, "layer4": 3},
            in_channels=256,
            out_channels=256,
        )
        try:
            self.net.load_state_dict(state)
        except RuntimeError as err:
            raise PipelineError(
                f"RetinaFace weights do not fit the RetinaFace-ResNet50 network "
                f"({str(err).splitlines()[0]})"
            ) from None
        self.net.to(device).eval()
        self.device = device
        self.max_size = max_size
        self.confidence = confidence
        self.nms = nms
        self.batch_size = batch_size
        self.min_side = min_image_side  # smaller images are too small to detect in
        self.priors = priorbox(
            min_sizes=[[16, 32], [64, 128], [256, 512]],
            steps=[8, 16, 32],
            clip=False,
            image_size=(max_size, max_size),
        ).to(device)
        self.mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1) * 255

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Detection]]:
        results = []
        for start in range(0, len(images), self.batch_size):
            results += self._detect(images[start : start + self.batch_size])
        return results

    def _detect(self, images: list[np.ndarray]) -> list[list[Detection]]:
        import torch
        from retinaface.box_utils import decode, decode_landm
        from torchvision.ops import nms

        batch = np.zeros((len(images), self.max_size, self.max_size, 3), np.float32)
        scales = []
        for i, image in enumerate(images):
            rgb = to_rgb(image)
            scale = min(1.0, self.max_size / max(rgb.shape[:2]))
            if scale < 1.0:
                rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            batch[i, : rgb.shape[0], : rgb.shape[1]] = rgb
            scales.append(scale)
        x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2)
        x = (x - self.mean) / self.std
        with torch.no_grad():
            loc, conf, land = self.net(x)
        conf = torch.softmax(conf, dim=-1)[..., 1]
        variance = [0.1, 0.2]
        found = []
        for i, image in enumerate(images):
            h, w = image.shape[:2]
            boxes = decode(loc[i], self.priors, variance) * self.max_size / scales[i]
            points = decode_landm(land[i], self.priors, variance) * self.max_size / scales[i]
            keep = torch.where(conf[i] > self.confidence)[0]
            boxes, points, scores = boxes[keep], points[keep], conf[i][keep]
            keep = nms(boxes, scores, self.nms)
            detections = []
            for box, pts, score in zip(boxes[keep], points[keep], scores[keep], strict=True):
                full = tuple(float(v) for v in box.tolist())
                x1, x2 = np.clip([full[0], full[2]], 0, w - 1)  # boxes may reach outside
                y1, y2 = np.clip([full[1], full[3]], 0, h - 1)
                if x2 - x1 < 2 or y2 - y1 < 2:
                    continue
                landmarks = pts.view(5, 2).cpu().numpy().astype(float)
                box = (float(x1), float(y1), float(x2), float(y2))
                detections.append(Detection(box, float(score), landmarks, full))
            found.append(detections)
        return found
