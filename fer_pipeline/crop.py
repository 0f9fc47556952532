"""Stage ``crop``: detect, align and crop every raw image into ``paths.faces`` (``data/faces``).

Writes the faces in the same layout as the raw data, ``dataset.json``, ``crop_report.csv`` (the
outcome per image: aligned, resized or center_crop) and ``source_card.json`` (prepare's dataset card,
passed on to the split stage's card).

    python -m fer_pipeline.crop [hydra overrides, e.g. face.size=64]
"""

from __future__ import annotations

import csv
import shutil
import sys
from collections import Counter
from pathlib import Path

import cv2
from omegaconf import OmegaConf

from fer_pipeline.config import load_config
from fer_pipeline.data.card import CARD_NAME, SOURCE_CARD, read_card
from fer_pipeline.data.image_folder import read_annotations, read_image_folder, write_info
from fer_pipeline.data.images import read_image
from fer_pipeline.errors import exit_on_error
from fer_pipeline.faces import FaceCropper
from fer_pipeline.io import atomic_dir


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    cfg = load_config(sys.argv[1:] if argv is None else argv)
    raw = read_image_folder(cfg.paths.raw)
    read_card(raw.root / CARD_NAME)  # fails early, naming the file, if prepare did not write it
    annotations = read_annotations(raw.root)
    cropper = FaceCropper(**cfg.face)
    outcomes: Counter[str] = Counter()
    with atomic_dir(cfg.paths.faces) as tmp:
        with (tmp / "crop_report.csv").open("w", newline="") as report:
            writer = csv.writer(report)
            writer.writerow(["path", "outcome"])
            for item in raw.items:
                image = read_image(raw.root / item.path, grayscale=cfg.face.grayscale)
                result = cropper(image, annotations.get(item.path))
                rel = Path(item.path).with_suffix(".png").as_posix()
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(
                    str(tmp / rel),
                    cv2.cvtColor(result.face, cv2.COLOR_RGB2BGR)
                    if result.face.ndim == 3
                    else result.face,
                )
                writer.writerow([rel, result.outcome])
                outcomes[result.outcome] += 1
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
    summary = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    print(f"crop: {len(raw.items)} faces ({summary}) in {cfg.paths.faces}")


if __name__ == "__main__":
    main()
