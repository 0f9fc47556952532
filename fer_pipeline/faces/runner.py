"""Cropping many images: batches for the detector, worker processes for the CPU-bound detectors,
a progress bar, and one report row per image. The crop stage is a thin wrapper around
:func:`crop_all`; workers live here so they can be pickled however the stage is launched."""

from __future__ import annotations

from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from fer_pipeline.data.decode import TooLarge, read_image, read_photo
from fer_pipeline.data.layout import FaceAnnotation
from fer_pipeline.errors import PipelineError
from fer_pipeline.faces.cropper import CropResult, FaceCropper, is_verified
from fer_pipeline.progress import progress

REPORT_FIELDS = (
    "source", "face", "path", "outcome", "action", "detector", "found", "score", "verified",
    "x", "y", "w", "h",
)  # fmt: skip
CHUNK = 64  # images per task for a worker, at most
TASKS_PER_WORKER = 4  # tasks per worker at least, when there are fewer images than CHUNK x this
PIXEL_BUDGET = 4_000_000  # decoded pixels held at once per process (more: one photo at a time)

_worker: dict = {}


def crop_items(
    cropper: FaceCropper,
    root: Path,
    out: Path,
    paths: list[str],
    annotations: dict[str, FaceAnnotation],
) -> list[dict]:
    """Crop the raw images ``paths`` (relative to ``root``) into ``out``; return report rows.

    Images are decoded, cropped and let go in groups of at most :data:`PIXEL_BUDGET` pixels (a
    large photo alone), so memory does not grow with the photos' size."""
    gray = cropper.grayscale and not cropper.needs_color
    keep_side = cropper.decode_side()
    rows: dict[str, list[dict]] = {}
    group: list[tuple[str, np.ndarray, int]] = []
    pixels = 0
    for rel in paths:
        limit = cropper.max_pixels
        try:
            if rel in annotations:  # landmarks are in the file's own pixels
                image, factor = read_image(root / rel, grayscale=gray, max_pixels=limit), 1
            else:
                image, factor = read_photo(root / rel, gray, keep_side, limit)
        except TooLarge:
            rows[rel] = report_rows(rel, [], cropper.unreadable("too_large"))
            continue
        except PipelineError:
            rows[rel] = report_rows(rel, [], cropper.unreadable())
            continue
        group.append((rel, image, factor))
        pixels += image.size
        if pixels >= PIXEL_BUDGET:
            rows |= _crop_group(cropper, out, group, annotations)
            group, pixels = [], 0
    if group:
        rows |= _crop_group(cropper, out, group, annotations)
    return [row for rel in paths for row in rows[rel]]


def _crop_group(cropper, out: Path, group: list, annotations: dict) -> dict[str, list[dict]]:
    results = cropper.crop_batch([image for _, image, _ in group],
                                 [annotations.get(rel) for rel, _, _ in group])  # fmt: skip
    rows = {}
    for (rel, _, factor), result in zip(group, results, strict=True):
        stem = Path(rel).with_suffix("")
        names = (
            [f"{stem}.png"]
            if len(result.faces) == 1
            else [f"{stem}_face{k}.png" for k in range(len(result.faces))]
        )
        for name, face in zip(names, result.faces, strict=True):
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / name), face if face.ndim == 2 else face[..., ::-1])
        rows[rel] = report_rows(rel, names, result, factor)
    return rows


EMPTY_FACE = {"face": "", "score": "", "verified": "", "x": "", "y": "", "w": "", "h": ""}


def report_rows(rel: str, written: list[str], result: CropResult, factor: int = 1) -> list[dict]:
    """One row per detection: ``kept`` (``path``: the file written), ``rejected`` (failed the
    verification) or ``skipped`` (not the one ``face.multiple`` picks); one row for an image
    without detections, and one for the centre crop kept when no detection passed. Boxes are in
    the file's pixels (``factor``: how much smaller the decoded image was)."""
    base = {"source": rel, "outcome": result.outcome, "detector": result.detector,
            "found": result.found}  # fmt: skip
    rows = []
    files = dict(zip(map(id, result.kept), written, strict=False))
    rejected = {id(d) for d in result.rejected}
    for detection in sorted(result.detections, key=lambda d: (d.box[0], d.box[1])):
        key = id(detection)
        action = "kept" if key in files else "rejected" if key in rejected else "skipped"
        rows.append(base | dict(zip("xywh", detection.xywh(factor), strict=True)) | {
            "face": len(rows), "path": files.get(key, ""), "action": action,
            "score": f"{detection.score:.3f}",
            "verified": "yes" if is_verified(detection) else "no",
        })  # fmt: skip
    if not rows or result.action == "center_crop":  # at most one file: a crop or the centre crop
        rows.append(base | EMPTY_FACE | {"path": "".join(written), "action": result.action})
    return rows


def _init_worker(face: dict, root: str, out: str, annotations: dict) -> None:
    cv2.setNumThreads(1)  # the workers share the cores
    _worker.update(
        cropper=FaceCropper.from_config(face), root=Path(root), out=Path(out), ann=annotations
    )


def _crop_chunk(paths: list[str]) -> list[dict]:
    return crop_items(_worker["cropper"], _worker["root"], _worker["out"], paths, _worker["ann"])


def tasks(paths: list[str], workers: int) -> list[list[str]]:
    """``paths`` in chunks of at most :data:`CHUNK`, at least :data:`TASKS_PER_WORKER` per worker
    when there are that many paths (so that 100 photos keep two workers busy to the end)."""
    size = max(1, min(CHUNK, -(-len(paths) // (workers * TASKS_PER_WORKER))))
    return [paths[i : i + size] for i in range(0, len(paths), size)]


def crop_all(
    cropper: FaceCropper,
    face: dict,
    root: Path,
    out: Path,
    paths: list[str],
    annotations: dict[str, FaceAnnotation],
    workers: int,
) -> list[dict]:
    """Crop every image of ``paths`` into ``out``; report rows in the order of ``paths``.

    ``face`` is the face config as a dict, for the worker processes' own croppers. RetinaFace and
    MTCNN run in this process (torch uses the cores itself); the others in ``workers`` processes.
    """
    workers = 1 if cropper.uses_torch else max(1, workers)
    chunks = tasks(paths, workers)
    workers = min(workers, len(chunks))
    rows: list[dict] = []
    with progress("crop", total=len(paths), unit="images") as bar:
        if workers == 1:
            results = (crop_items(cropper, root, out, chunk, annotations) for chunk in chunks)
        else:
            face = {
                **face,
                "auto_detector": cropper.face_detector.name if cropper.face_detector else None,
            }
            pool = get_context("spawn").Pool(
                workers, _init_worker, (face, str(root), str(out), annotations)
            )
            results = pool.imap(_crop_chunk, chunks)
        try:
            for chunk, chunk_rows in zip(chunks, results, strict=True):
                rows += chunk_rows  # one row per face under multiple=all: count images
                bar.update(len(chunk))
        finally:
            if workers > 1:
                pool.close()
                pool.join()
    return rows
