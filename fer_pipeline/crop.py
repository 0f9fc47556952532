"""Stage ``crop``: detect, align and crop every raw image into ``paths.faces`` (``data/faces``).

Writes the faces in the same layout as the raw data, and

- ``crop_report.csv``: one row per detection (``face``, box ``x y w h``, ``score``, ``verified``,
  ``action`` kept / rejected / skipped, ``path`` of the face written), or one row for an image
  without detections (``action`` kept / center_crop / dropped); each row has the image's
  ``source``, ``outcome``, ``detector`` and ``found``;
- ``crop_summary.json``: images, faces and files written, outcomes per image, actions per row
  (logged to MLflow with every run);
- ``dataset.json`` and ``source_card.json`` (prepare's dataset card, passed on to the split stage).

    python -m fer_pipeline.crop [hydra overrides, e.g. face.detector=haar face.workers=2]
"""

from __future__ import annotations

import csv
import shutil
import sys
from collections import Counter

from omegaconf import OmegaConf

from fer_pipeline.config import load_config, stage_args
from fer_pipeline.data.card import CARD_NAME, SOURCE_CARD, read_card
from fer_pipeline.data.layout import (
    read_annotations,
    read_image_folder,
    write_info,
)
from fer_pipeline.dvc_outputs import restore_outputs
from fer_pipeline.errors import PipelineError, exit_on_error
from fer_pipeline.faces import FaceCropper
from fer_pipeline.faces.runner import REPORT_FIELDS, crop_all
from fer_pipeline.io import atomic_dir, write_json


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    restore_outputs()  # under `dvc repro`: a failed run leaves the previous outputs
    cfg = load_config(stage_args(argv, __doc__))
    raw = read_image_folder(cfg.paths.raw)
    read_card(raw.root / CARD_NAME)  # fails early, naming the file, if prepare did not write it
    annotations = read_annotations(raw.root)
    if cfg.face.detector == "annotations" and not annotations:
        raise PipelineError(
            f"face.detector=annotations, but {raw.root} ships no face annotations: use "
            f"face.detector=mtcnn (or auto) for photos, or none for images that are face crops"
        )
    cropper = FaceCropper.from_config(cfg.face)  # a missing detector weights file fails here
    if cropper.note:
        print(cropper.note, file=sys.stderr)
    paths = [item.path for item in raw.items]
    face = OmegaConf.to_container(cfg.face, resolve=True)
    with atomic_dir(cfg.paths.faces) as tmp:
        rows = crop_all(cropper, face, raw.root, tmp, paths, annotations, int(cfg.face.workers))
        per_image = {r["source"]: r["outcome"] for r in rows}  # one outcome per image
        outcomes = Counter(per_image.values())
        actions = Counter(r["action"] for r in rows)
        written = sum(bool(r["path"]) for r in rows)  # one file per row at most
        if not written:
            raise PipelineError(
                f"crop: no face kept from {len(per_image)} images of {raw.root} "
                f"({dict(outcomes)}); try another face.detector or face.on_failure=keep"
            )
        with (tmp / "crop_report.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, REPORT_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        summary = {
            "detector": cfg.face.detector,
            "note": cropper.note,
            "images": len(per_image),
            "files_written": written,  # faces kept, and centre crops of images without one
            "faces_written": sum(bool(r["path"]) and r["action"] == "kept" for r in rows),
            "outcomes": dict(sorted(outcomes.items())),  # per image
            "actions": dict(sorted(actions.items())),  # per report row: face or image
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
    print(
        f"crop: {summary['faces_written']} faces from {len(per_image)} images ({detail}) "
        f"in {cfg.paths.faces}"
    )
    if actions.get("rejected") or actions.get("skipped"):
        print(
            f"  detections not cropped: {actions.get('rejected', 0)} failed verification "
            f"(face.verify), {actions.get('skipped', 0)} not picked (face.multiple="
            f"{cfg.face.multiple})"
        )
    if outcomes.get("unverified"):
        print(
            f"  images whose detections all failed verification: {outcomes['unverified']} "
            f"({'no centre crop, ' if cfg.face.multiple == 'all' else ''}outcome unverified)"
        )
    if actions.get("dropped") or actions.get("center_crop"):
        print(
            f"  images without a face: {actions.get('center_crop', 0)} kept as centre crops, "
            f"{actions.get('dropped', 0)} dropped (see {cfg.paths.faces}/crop_report.csv)"
        )


if __name__ == "__main__":
    main()
