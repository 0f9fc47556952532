"""Stage ``split``: assign each face to train/val/test into ``paths.split``/manifest.csv.

The manifest has one row per face: ``path`` (relative to ``paths.faces``), ``label``, ``class``,
``split``; ``summary.json`` holds the counts per split and class.

    python -m fer_pipeline.split [hydra overrides, e.g. split.seed=1]
"""

from __future__ import annotations

import json
import sys

from fer_pipeline.config import load_config
from fer_pipeline.data.image_folder import read_image_folder
from fer_pipeline.data.split import (
    SPLITS,
    assign_splits,
    split_counts,
    write_manifest,
)
from fer_pipeline.errors import PipelineError, exit_on_error
from fer_pipeline.io import atomic_dir


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    cfg = load_config(sys.argv[1:] if argv is None else argv)
    faces = read_image_folder(cfg.paths.faces)
    splits = assign_splits(faces, cfg.split.val, cfg.split.test, cfg.split.seed)
    for split in SPLITS:
        if split not in splits:
            raise PipelineError(
                f"split '{split}' of {cfg.paths.faces} is empty ({len(splits)} images, "
                f"val={cfg.split.val}, test={cfg.split.test}): use more images or larger fractions"
            )
    with atomic_dir(cfg.paths.split) as tmp:
        write_manifest(tmp / "manifest.csv", faces, splits)
        counts = split_counts([item.label for item in faces.items], splits, faces.classes)
        summary = {
            "dataset": faces.name,
            "official_split": faces.has_official_split,
            "counts": counts,
            "totals": {s: sum(c.values()) for s, c in counts.items()},
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"split: {summary['totals']} in {cfg.paths.split}/manifest.csv")


if __name__ == "__main__":
    main()
