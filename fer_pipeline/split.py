"""Stage ``split``: assign each face to train/val/test, check for leakage, write the dataset card.

Writes into ``paths.split`` (``data/split``):

- ``manifest.csv``: one row per face, ``path`` (relative to ``paths.faces``), ``label``, ``class``,
  ``split``;
- ``leakage.json``, ``leakage_pairs.csv`` (every pair counted, within splits too),
  ``leakage.png``: near-duplicate faces across splits
  (``split.leakage``), with example pairs as a picture;
- ``packed/``: each split's faces in one uint8 array (``fer_pipeline/data/packed.py``), what
  training reads with ``loader.source=packed``;
- ``card.json`` / ``card.md``: the final counts per split and class, the leakage result and the
  source's card (file, checksum, counts as published).

    python -m fer_pipeline.split [hydra overrides, e.g. split.leakage.action=reassign]
"""

from __future__ import annotations

from fer_pipeline.config import load_config, stage_args
from fer_pipeline.data.card import SOURCE_CARD, read_card, split_card, write_card
from fer_pipeline.data.layout import read_image_folder
from fer_pipeline.data.leakage import (
    duplicate_groups,
    find_duplicates,
    leakage_report,
    plot_examples,
    write_pairs,
)
from fer_pipeline.data.packed import PACKED_DIR, pack_splits
from fer_pipeline.data.split import SPLITS, assign_splits, read_manifest, write_manifest
from fer_pipeline.dvc_outputs import restore_outputs
from fer_pipeline.errors import PipelineError, exit_on_error
from fer_pipeline.hashing import file_md5
from fer_pipeline.io import atomic_dir, write_json
from fer_pipeline.outputs import MANIFEST


def check_nonempty(splits: list[str | None], cfg, when: str = "") -> None:
    for split in SPLITS:
        if split not in splits:
            raise PipelineError(
                f"split '{split}' of {cfg.paths.faces} is empty{when} ({len(splits)} images, "
                f"val={cfg.split.val}, test={cfg.split.test}): use more images or larger fractions"
            )


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    restore_outputs()  # under `dvc repro`: a failed run leaves the previous outputs
    cfg = load_config(stage_args(argv, __doc__))
    faces = read_image_folder(cfg.paths.faces)
    source = read_card(faces.root / SOURCE_CARD)
    leak = cfg.split.leakage
    paths = [faces.root / item.path for item in faces.items]
    prints, pairs = find_duplicates(paths, leak.threshold, leak.mirrored)
    # Where this stage chooses splits (val carved from train, or no official split), a group of
    # near-duplicates goes to one split: otherwise our own split would leak.
    groups = duplicate_groups(pairs, len(paths)) if leak.keep_groups_together else None
    splits = assign_splits(faces, cfg.split.val, cfg.split.test, cfg.split.seed, groups)
    check_nonempty(splits, cfg)
    final, leakage, pairs = leakage_report(
        prints,
        pairs,
        [item.path for item in faces.items],
        splits,
        labels=[item.label for item in faces.items],
        threshold=leak.threshold,
        action=leak.action,
        mirrored=leak.mirrored,
    )
    leakage["groups_kept_together"] = bool(leak.keep_groups_together)
    check_nonempty(final, cfg, when=f" after split.leakage.action={leak.action}")
    with atomic_dir(cfg.paths.split) as tmp:
        write_manifest(tmp / MANIFEST, faces, final)
        manifest_md5 = file_md5(tmp / MANIFEST)
        packed = pack_splits(
            faces.root,
            read_manifest(tmp / MANIFEST, faces.classes),
            faces.info.get("grayscale", True),
            tmp / PACKED_DIR,
            manifest_md5,
        )
        cross = [p for p in pairs if not p["kind"].startswith("within")]
        write_json(tmp / "leakage.json", {**leakage, "examples": cross[:20]})
        write_pairs(tmp / "leakage_pairs.csv", pairs)  # every pair counted, within splits too
        plot_examples(tmp / "leakage.png", faces.root, cross, leakage, leak.examples)
        card = split_card(
            faces,
            final,
            source,
            file_md5s=prints.files,
            official_split=faces.has_official_split,
            leakage=leakage,
            manifest_md5=manifest_md5,
        )
        write_card(tmp, card)
    print(f"split: {card['totals']} in {cfg.paths.split}/{MANIFEST}")
    print(
        f"  packed: {cfg.paths.split}/{PACKED_DIR}/"
        + (
            "{train,val,test}.npy"
            if "shape" in packed
            else f" nothing ({packed['unpacked_reason']})"
        )
    )
    print(
        f"  leakage: {leakage['cross_split_pairs']} near-duplicate pairs across splits "
        f"({leakage['exact_cross_split_pairs']} exact, {leakage['pairs']}); "
        f"action {leak.action}, {leakage['changed']} images changed -> {cfg.paths.split}/leakage.png"
    )


if __name__ == "__main__":
    main()
