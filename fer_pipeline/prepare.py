"""Stage ``prepare``: materialise the raw dataset under ``paths.raw`` (``data/raw``).

python -m fer_pipeline.prepare [hydra overrides, e.g. data.num_images=700]
"""

from __future__ import annotations

import sys

from fer_pipeline.config import load_config
from fer_pipeline.data.image_folder import read_image_folder
from fer_pipeline.data.sources import get_source
from fer_pipeline.errors import exit_on_error
from fer_pipeline.io import atomic_dir


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    cfg = load_config(sys.argv[1:] if argv is None else argv)
    source = get_source(cfg.data.source)
    with atomic_dir(cfg.paths.raw) as tmp:
        source.materialise(cfg.data, tmp)
        dataset = read_image_folder(tmp)  # the next stage must be able to read what we wrote
    print(f"prepare: {len(dataset.items)} images of '{dataset.name}' in {cfg.paths.raw}")
    print("  " + ", ".join(f"{c} {n}" for c, n in dataset.class_counts().items()))


if __name__ == "__main__":
    main()
