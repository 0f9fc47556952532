"""``Recognizer``: a trained model on new images, folders and video; the one inference path that the
predict command, the MLflow model and the app all use.

    from fer_pipeline.inference import Recognizer
    recognizer = Recognizer.load("models:/fer-pipeline@champion")   # or a .ckpt path, a run id
    table = recognizer.predict(["photo.jpg", "faces/", "clip.mp4"])  # one row per face and frame

Everything that shapes the input comes from the checkpoint's preprocessing record
(:mod:`fer_pipeline.models.preprocessing`), never from ``conf/``: the face crop (size, margin, grey/RGB, equalisation, detector settings), the network input size and
normalisation, and the test-time augmentation. The detector is the checkpoint's when it is one
(``haar``, ``mtcnn``, ``retinaface``, ``auto``); a model trained on shipped annotations or ready crops
(``annotations``, ``none``) detects with ``auto``, which takes small images (longer side at most
``face.auto_max_side``) as faces already and finds the faces in larger ones.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from fer_pipeline.data.transforms import build_transform
from fer_pipeline.devices import resolve_device
from fer_pipeline.errors import PipelineError
from fer_pipeline.evaluation.occlusion import occlusion_sensitivity
from fer_pipeline.evaluation.tta import predict_proba
from fer_pipeline.faces import FaceCropper
from fer_pipeline.faces.cropper import CropResult
from fer_pipeline.inference.inputs import INPUT_ERRORS, Item, chunks, expand
from fer_pipeline.models.checkpoint import load_net
from fer_pipeline.models.preprocessing import Preprocessing

DEFAULT_MODEL = "models/best.ckpt"
CHECKPOINT_IN_MODEL = "artifacts/best.ckpt"  # where the MLflow model keeps its checkpoint
KEY_COLUMNS = ("input", "frame", "time_s", "face", "x", "y", "w", "h", "face_score")
END_COLUMNS = ("predicted", "outcome")
PRECISIONS = ("fp32", "bf16")
DETECTORS_FOR_NEW_IMAGES = {"annotations": "auto", "none": "auto"}


DEMO_DATASETS = {"synthetic"}  # built-in data of drawn faces: models of it are demos


def trained_on(dataset: str | None) -> str:
    """How predict and the app name a model's training data; a model of the built-in synthetic
    set says it is a demo that never saw a real face."""
    if dataset in DEMO_DATASETS:
        return (
            f"{dataset} (a demo model: trained on drawn faces, never on a real one; for real "
            f"photos train on FER2013, see the README's FER2013 section)"
        )
    return dataset or "unknown data"


def columns(classes: list[str]) -> list[str]:
    """The per-face table's columns, in order."""
    return [*KEY_COLUMNS, *(f"p_{c}" for c in classes), *END_COLUMNS]


def tracking_uri() -> str:
    """The tracking store MLflow URIs are read from when none is given: ``$MLFLOW_TRACKING_URI``,
    else ``mlflow.db`` in the working directory (what training writes)."""
    return os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")


@contextmanager
def local_checkpoint(model: str | Path, store: str | None = None) -> Iterator[Path]:
    """:func:`resolve_checkpoint`, with a downloaded copy removed at the end of the block."""
    with tempfile.TemporaryDirectory(prefix="fer-model-") as tmp:
        yield resolve_checkpoint(model, Path(tmp), store)


def resolve_checkpoint(
    model: str | Path, downloads: Path | None = None, store: str | None = None
) -> Path:
    """A local checkpoint for ``model``: a ``.ckpt`` path; an MLflow model folder or URI
    (``models:/fer-pipeline@champion``, ``models:/fer-pipeline/3``, ``runs:/<id>/model``), which
    keeps it in ``artifacts/best.ckpt``; an MLflow URI of a checkpoint file; or a training run id
    (its ``model``, or the ``best/best.ckpt`` of runs logged before models were). MLflow URIs are
    read from the tracking store ``store`` (default :func:`tracking_uri`)."""
    store = store or tracking_uri()
    text = str(model)
    path = Path(text)
    if path.is_file():
        return path
    if path.is_dir() and (path / CHECKPOINT_IN_MODEL).is_file():
        return path / CHECKPOINT_IN_MODEL
    if _is_run_id(text):
        try:
            return _download(f"runs:/{text}/model", text, downloads, store)
        except PipelineError:
            return _download(f"runs:/{text}/best/best.ckpt", text, downloads, store)
    if text.startswith(("models:/", "runs:/")):
        return _download(text, text, downloads, store)
    if text == DEFAULT_MODEL:
        raise PipelineError(
            f"no trained model at {DEFAULT_MODEL}: run `make demo` (or `dvc repro`), or pass "
            "--model with a checkpoint or a training run id"
        )
    raise PipelineError(
        f"model {text} is not a checkpoint file, an MLflow URI (runs:/, models:/) or a run id"
    )


def _download(uri: str, given: str, downloads: Path | None, store: str) -> Path:
    import mlflow  # only for MLflow URIs: importing it costs seconds

    from fer_pipeline.tracking.registry import default_store

    dst = None if downloads is None else str(downloads)
    try:
        # A registered version's source, models:/<logged model id>, is resolved in MLflow's
        # default store, whatever the call's tracking_uri: make that ``store`` for the call.
        with default_store(store):
            local = mlflow.artifacts.download_artifacts(uri, dst_path=dst, tracking_uri=store)
        local = Path(local)
    except Exception as err:  # noqa: BLE001 - MLflow raises many kinds for "not there"
        reason = " ".join(str(err).split())[:300]
        raise PipelineError(
            f"model {given} could not be loaded from MLflow at {store} ({reason})"
        ) from None
    if local.is_file():
        return local
    if (local / CHECKPOINT_IN_MODEL).is_file():
        return local / CHECKPOINT_IN_MODEL
    raise PipelineError(f"model {given} holds no fer-pipeline checkpoint ({CHECKPOINT_IN_MODEL})")


def _is_run_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


class Recognizer:
    """A trained net with the preprocessing it was trained with. Build with :meth:`load`."""

    def __init__(
        self,
        net: torch.nn.Module,
        preprocessing: Preprocessing,
        config: DictConfig | None = None,
        source: str = "",
        detector: str | None = None,
        device: str | None = None,
        batch_size: int = 64,
        precision: str = "fp32",
    ):
        if batch_size < 1:
            raise PipelineError(f"batch size must be >= 1, got {batch_size}")
        if precision not in PRECISIONS:
            raise PipelineError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {precision}"
            )
        self.precision = precision
        self.preprocessing, self.config, self.source = preprocessing, config, source
        self.classes = list(preprocessing.classes)
        self.dataset = preprocessing.dataset or None  # what it trained on
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.batch_size = batch_size
        face = dict(preprocessing.face)
        chosen = detector or DETECTORS_FOR_NEW_IMAGES.get(face["detector"], face["detector"])
        face.update(detector=chosen, multiple="all", on_failure="drop")
        self.cropper = FaceCropper.from_config(face)
        self.input_size = preprocessing.input_size
        self.transform = build_transform(self.input_size, preprocessing.mean, preprocessing.std)
        self.tta = (preprocessing.tta, preprocessing.tta_crop)
        evaluation = (config.get("evaluation") if config is not None else None) or {}
        occlusion = evaluation.get("occlusion") or {}
        self.occlusion = {
            "window": int(occlusion.get("window", 8)),
            "stride": int(occlusion.get("stride", 4)),
            "fill": float(occlusion.get("fill", 0.0)),
        }

    @classmethod
    def load(
        cls,
        model: str | Path = DEFAULT_MODEL,
        detector: str | None = None,
        device: str | None = None,
        batch_size: int = 64,
        precision: str = "fp32",
        tracking_uri: str | None = None,
    ) -> Recognizer:
        """From a checkpoint path, an MLflow model folder or URI, or a run id (see
        :func:`resolve_checkpoint`; MLflow URIs from ``tracking_uri``, default
        ``$MLFLOW_TRACKING_URI`` or ``mlflow.db``)."""
        with local_checkpoint(model, tracking_uri) as checkpoint:
            net, config, _, _, preprocessing = load_net(checkpoint)
            if preprocessing is None:
                raise PipelineError(
                    f"model {model}: its checkpoint holds no preprocessing record and no loader "
                    "config (not a fer-pipeline training checkpoint)"
                )
        return cls(net, preprocessing, config, str(model), detector, device, batch_size, precision)

    def _autocast(self):
        """bf16: the net's matrix products in bfloat16 (about 1.8x the faces/s of fp32 on CPUs
        with bf16 instructions; probabilities within about 0.01 of fp32's)."""
        return torch.autocast(self.device.type, torch.bfloat16, enabled=self.precision == "bf16")

    # -- predictions -----------------------------------------------------------------------
    def predict(
        self, inputs, every_n_frames: int = 1, names: list[str] | None = None
    ) -> pd.DataFrame:
        """One row per (input, frame, face): see :func:`columns`. An input with no face, or that
        could not be read, is one row whose ``outcome`` says so and whose probabilities are
        empty. ``names``: the ``input`` of each input that is not a path (see :func:`expand`)."""
        found = self.iter_predictions(inputs, every_n_frames, names)
        rows = [row for _, batch in found for row in batch]
        table = pd.DataFrame(rows, columns=columns(self.classes))
        for name in ("frame", "face"):
            table[name] = table[name].astype("Int64")
        return table

    def iter_predictions(
        self, inputs, every_n_frames: int = 1, names: list[str] | None = None
    ) -> Iterator[tuple[Item, list[dict]]]:
        """Each input image or frame with its rows of :meth:`predict`, as they are made."""
        try:
            items = expand(inputs, every_n_frames, names, self.cropper.max_pixels)
        except ValueError as err:
            raise PipelineError(str(err)) from None
        for chunk in chunks(items, self.batch_size):
            for item, rows, _ in self._predict_chunk(chunk):
                yield item, rows

    def probabilities(self, faces: list[np.ndarray]) -> np.ndarray:
        """Class probabilities ``(N, K)`` of face crops as the cropper makes them."""
        if not faces:
            return np.zeros((0, len(self.classes)), np.float32)
        x = torch.stack([self.transform(image=face)["image"] for face in faces])
        out = []
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(x), self.batch_size):
                batch = x[start : start + self.batch_size].to(self.device)
                out.append(predict_proba(self.net, batch, *self.tta).cpu())
        return torch.cat(out).numpy()

    def _predict_chunk(self, chunk: list[Item]) -> list[tuple[Item, list[dict], list]]:
        """Each item with its rows and its face crops."""
        readable = [item for item in chunk if item.error is None]
        found = self.cropper.crop_batch([i.image for i in readable])
        crops = dict(zip(map(id, readable), found, strict=True))
        faces = [face for item in readable for face in crops[id(item)].faces]
        probs = iter(self.probabilities(faces))
        out = []
        for item in chunk:
            base = {"input": item.input, "frame": item.frame, "time_s": item.time_s}
            if item.error is not None:
                out.append((item, [self._row(base, outcome=item.error)], []))
                continue
            result = crops[id(item)]
            if not result.faces:
                out.append((item, [self._row(base, outcome=result.outcome)], []))
                continue
            rows = []
            for index, box in enumerate(face_boxes(result, item.image)):
                p = next(probs)
                rows.append(self._row(base, index, box, p, result.outcome))
            out.append((item, rows, result.faces))
        return out

    def _row(self, base, face=None, box=None, p=None, outcome="") -> dict:
        row = {**base, "face": face, "outcome": outcome}
        row.update(dict(zip(("x", "y", "w", "h", "face_score"), box or (None,) * 5, strict=True)))
        for k, name in enumerate(self.classes):
            row[f"p_{name}"] = None if p is None else float(p[k])
        row["predicted"] = None if p is None else self.classes[int(np.argmax(p))]
        return row

    # -- explanations ----------------------------------------------------------------------
    def analyze(self, image) -> tuple[list[dict], list[dict]]:
        """One image (a path, array, PIL image or bytes): its rows of :meth:`predict`, and for
        each face the occlusion-sensitivity map of its predicted class (see :meth:`explain`)."""
        items = list(expand(image, max_pixels=self.cropper.max_pixels))
        if len(items) != 1:
            raise PipelineError(f"takes one readable image, got {len(items)} images")
        [(_, rows, faces)] = self._predict_chunk(items)
        return rows, [self._occlusion(crop, row) for crop, row in zip(faces, rows, strict=False)]

    def explain(self, image, face: int = 0) -> dict:
        """The occlusion-sensitivity map of face ``face`` of one image (a path, array, PIL image
        or bytes), for its predicted class, with the evaluation's window, stride and fill from the
        checkpoint's config. Returns ``face`` (the crop the net saw, uint8), ``map`` (``(S, S)``
        drop in the predicted class's probability when a window over the pixel is hidden, at the
        network input size ``S``), ``predicted``, ``probabilities`` and ``box``."""
        rows, explained = self.analyze(image)
        if rows[0]["outcome"] in INPUT_ERRORS:
            raise PipelineError(f"explain takes one readable image, got {rows[0]['outcome']}")
        if face >= len(explained):
            raise PipelineError(f"the image has {len(explained)} face(s): no face {face}")
        return explained[face]

    def _occlusion(self, crop: np.ndarray, row: dict) -> dict:
        probs = np.array([row[f"p_{c}"] for c in self.classes])
        predicted = int(np.argmax(probs))
        x = self.transform(image=crop)["image"][None]
        with self._autocast():
            maps = occlusion_sensitivity(
                self.net, x.to(self.device), torch.tensor([predicted]), **self.occlusion
            )
        return {
            "face": crop,
            "map": maps.drop[0].numpy(),
            "predicted": self.classes[predicted],
            "probabilities": dict(zip(self.classes, map(float, probs), strict=True)),
            "box": tuple(row[k] for k in ("x", "y", "w", "h", "face_score")),
        }


def face_boxes(result: CropResult, image: np.ndarray) -> list[tuple]:
    """``(x, y, w, h, score)`` of each face of ``result`` in ``image``'s pixels; a whole image taken
    as a face is its own box (score None)."""
    if result.kept:
        return [
            (*d.xywh(), None if d.score is None or math.isnan(d.score) else round(d.score, 4))
            for d in result.kept
        ]
    h, w = image.shape[:2]
    return [(0.0, 0.0, float(w), float(h), None)] * len(result.faces)
