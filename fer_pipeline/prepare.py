"""Stage ``prepare``: materialise the raw dataset under ``paths.raw`` (``data/raw``).

Writes the image-folder layout (:mod:`fer_pipeline.data.layout`) and the source's dataset card
(``card.json`` / ``card.md``: source file and checksum, counts per official split and class, image
sizes and modes, a content digest).

    python -m fer_pipeline.prepare [hydra overrides, e.g. data.num_images=700]
"""

from __future__ import annotations

import sys

from fer_pipeline.config import load_config, stage_args
from fer_pipeline.data.card import source_card, write_card
from fer_pipeline.data.layout import read_image_folder
from fer_pipeline.data.sources import get_source
from fer_pipeline.dvc_outputs import restore_outputs
from fer_pipeline.errors import exit_on_error
from fer_pipeline.io import atomic_dir


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    restore_outputs()  # under `dvc repro`: a failed run leaves the previous outputs
    cfg = load_config(stage_args(argv, __doc__))
    source = get_source(cfg.data.source)
    with atomic_dir(cfg.paths.raw) as tmp:
        source.materialise(cfg.data, tmp)
        dataset = read_image_folder(tmp)  # the next stage must be able to read what we wrote
        card = source_card(dataset)
        write_card(tmp, card)
    print(f"prepare: {len(dataset.items)} images of '{dataset.name}' in {cfg.paths.raw}")
    for split, counts in card["counts"].items():
        print(f"  {split}: " + ", ".join(f"{c} {n}" for c, n in counts.items()))
    origin = card["origin"]
    if origin.get("skipped"):
        print(
            f"warning: skipped {origin['skipped']} bad images (data.on_bad_image=skip); "
            f"they are listed in {cfg.paths.raw}/skipped.csv",
            file=sys.stderr,
        )
    if origin.get("other_files"):
        print(
            f"  ignored {origin['other_files']} files that are not images by their suffix "
            f"(first: {origin['other_files_first'][0]})"
        )
    if origin.get("left_out_folders"):
        print(f"  left out folders (data.class_map: null): {origin['left_out_folders']}")
    for key, value in (origin.get("dropped") or {}).items():
        if value:
            print(f"  dropped {value} rows ({key})")


if __name__ == "__main__":
    main()
