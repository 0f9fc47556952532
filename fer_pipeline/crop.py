"""Stage ``crop``: detect, align and crop every raw image into ``paths.faces`` (``data/faces``).

Writes the faces in the same layout as the raw data, and

- ``crop_report.csv``: one row per raw image: ``source``, ``path`` (the face written; empty when
  dropped), ``outcome``, ``action`` (kept / center_crop / dropped), ``detector``, ``found``, ``score``;
- ``crop_summary.json``: counts per outcome and action (logged to MLflow with every run);
- ``dataset.json`` and ``source_card.json`` (prepare's dataset card, passed on to the split stage).

    python -m fer_pipeline.crop [hydra overrides, e.g. face.detector=haar face.workers=2]
"""

from __future__ import annotations

import csv
import shutil
import sys
from collections import Counter
from multiprocessing import get_context
from pathlib import Path

import cv2
from omegaconf import OmegaConf
from tqdm import tqdm

from fer_pipeline.config import load_config
from fer_pipeline.data.card import CARD_NAME, SOURCE_CARD, read_card
from fer_pipeline.data.image_folder import (
    FaceAnnotation,
    read_annotations,
    read_image_folder,
    write_info,
)
from fer_pipeline.data.images import read_image
from fer_pipeline.errors import PipelineError, exit_on_error
from fer_pipeline.faces import FaceCropper
from fer_pipeline.io import atomic_dir, write_json

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


def report_row(rel: str, written: list[str], result) -> dict:
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


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    cfg = load_config(sys.argv[1:] if argv is None else argv)
    raw = read_image_folder(cfg.paths.raw)
    read_card(raw.root / CARD_NAME)  # fails early, naming the file, if prepare did not write it
    annotations = read_annotations(raw.root)
    cropper = FaceCropper.from_config(cfg.face)  # a missing detector weights file fails here
    if cropper.note:
        print(cropper.note, file=sys.stderr)
    paths = [item.path for item in raw.items]
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    workers = 1 if cropper.uses_torch else max(1, min(int(cfg.face.workers), len(chunks)))
    rows: list[dict] = []
    bar = tqdm(total=len(paths), unit="img", desc="crop", disable=not sys.stderr.isatty())
    with atomic_dir(cfg.paths.faces) as tmp:
        if workers == 1:
            results = (crop_items(cropper, raw.root, tmp, c, annotations) for c in chunks)
            for chunk_rows in results:
                rows += chunk_rows
                bar.update(len(chunk_rows))
        else:
            face = OmegaConf.to_container(cfg.face, resolve=True)
            face["auto_detector"] = cropper.model.name if cropper.model is not None else None
            initargs = (face, str(raw.root), str(tmp), annotations)
            with get_context("spawn").Pool(workers, _init_worker, initargs) as pool:
                for chunk_rows in pool.imap(_crop_chunk, chunks):
                    rows += chunk_rows
                    bar.update(len(chunk_rows))
        bar.close()
        written = sum(bool(r["path"]) for r in rows)
        outcomes = Counter(r["outcome"] for r in rows)
        actions = Counter(r["action"] for r in rows)
        if not written:
            raise PipelineError(
                f"crop: no face kept from {len(rows)} images of {raw.root} ({dict(outcomes)}); "
                "try another face.detector or face.on_failure=keep"
            )
        with (tmp / "crop_report.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, REPORT_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        summary = {
            "detector": cfg.face.detector,
            "note": cropper.note,
            "images": len(rows),
            "faces_written": written,
            "outcomes": dict(sorted(outcomes.items())),
            "actions": dict(sorted(actions.items())),
        }
        write_json(tmp / "crop_summary.json", summary)
        info = {k: v for k, v in raw.info.items() if k not in ("name", "classes", "grayscale")}
        write_info(
            tmp,
            raw.name,
            raw.classes,
            grayscale=cfg.face.grayscale,
            face=OmegaConf.to_container(cfg.face),
            raw=info,
        )
        shutil.copyfile(raw.root / CARD_NAME, tmp / SOURCE_CARD)
    detail = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    print(f"crop: {written} faces from {len(rows)} images ({detail}) in {cfg.paths.faces}")
    if actions.get("dropped") or actions.get("center_crop"):
        print(
            f"  not detected: {actions.get('center_crop', 0)} kept as centre crops, "
            f"{actions.get('dropped', 0)} dropped (see {cfg.paths.faces}/crop_report.csv)"
        )


if __name__ == "__main__":
    main()
