"""Cropping many images: batches for the detector, worker processes for the CPU-bound detectors,
a progress bar, and one report row per image. The crop stage is a thin wrapper around
:func:`crop_all`; workers live here so they can be pickled however the stage is launched."""

from __future__ import annotations

import sys
from multiprocessing import get_context
from pathlib import Path

import cv2
from tqdm import tqdm

from fer_pipeline.data.image_folder import FaceAnnotation
from fer_pipeline.data.images import read_image
from fer_pipeline.errors import PipelineError
from fer_pipeline.faces.cropper import CropResult, FaceCropper

REPORT_FIELDS = ["source", "path", "outcome", "action", "detector", "found", "score"]
CHUNK = 64  # images per batch / per task for a worker

_worker: dict = {}


def crop_items(
    cropper: FaceCropper,
    root: Path,
    out: Path,
    paths: list[str],
    annotations: dict[str, FaceAnnotation],
) -> list[dict]:
    """Crop the raw images ``paths`` (relative to ``root``) into ``out``; return report rows."""
    gray = cropper.grayscale and not cropper.uses_torch
    images, readable, rows = [], [], {}
    for rel in paths:
        try:
            images.append(read_image(root / rel, grayscale=gray))
            readable.append(rel)
        except PipelineError:
            rows[rel] = report_row(rel, [], cropper.unreadable())
    results = cropper.crop_batch(images, [annotations.get(rel) for rel in readable])
    for rel, result in zip(readable, results, strict=True):
        stem = Path(rel).with_suffix("")
        names = (
            [f"{stem}.png"]
            if len(result.faces) == 1
            else [f"{stem}_face{k}.png" for k in range(len(result.faces))]
        )
        for name, face in zip(names, result.faces, strict=True):
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / name), face if face.ndim == 2 else face[..., ::-1])
        rows[rel] = report_row(rel, names, result)
    return [rows[rel] for rel in paths]


def report_row(rel: str, written: list[str], result: CropResult) -> dict:
    return {
        "source": rel,
        "path": ";".join(written),
        "outcome": result.outcome,
        "action": result.action,
        "detector": result.detector,
        "found": result.found,
        "score": "" if result.score is None else f"{result.score:.3f}",
    }


def _init_worker(face: dict, root: str, out: str, annotations: dict) -> None:
    cv2.setNumThreads(1)
    _worker.update(
        cropper=FaceCropper.from_config(face), root=Path(root), out=Path(out), ann=annotations
    )


def _crop_chunk(paths: list[str]) -> list[dict]:
    return crop_items(_worker["cropper"], _worker["root"], _worker["out"], paths, _worker["ann"])


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

    ``face`` is the face config as a dict, for the worker processes' own croppers. RetinaFace runs
    in this process (torch uses the cores itself); the other detectors in ``workers`` processes.
    """
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    workers = 1 if cropper.uses_torch else max(1, min(workers, len(chunks)))
    rows: list[dict] = []
    with tqdm(total=len(paths), unit="img", desc="crop", disable=not sys.stderr.isatty()) as bar:
        if workers == 1:
            results = (crop_items(cropper, root, out, chunk, annotations) for chunk in chunks)
        else:
            face = {**face, "auto_detector": cropper.model.name if cropper.model else None}
            pool = get_context("spawn").Pool(
                workers, _init_worker, (face, str(root), str(out), annotations)
            )
            results = pool.imap(_crop_chunk, chunks)
        try:
            for chunk_rows in results:
                rows += chunk_rows
                bar.update(len(chunk_rows))
        finally:
            if workers > 1:
                pool.close()
                pool.join()
    return rows
