"""Any labelled image folder (RAF-DB, AffectNet or CK+ exports, your own faces) as a dataset.

Accepted at ``data.path`` (a folder, or a ``.zip`` / ``.tar.gz`` of one)::

    <root>/<class folder>/<image>                        no official split: split by seed later
    <root>/{train,val,test}/<class folder>/<image>       official split (val optional; ``validation``
                                                          and ``valid`` are read as val)

Class folders become the dataset's classes (``data.classes``, in label order) through
``data.class_map`` (folder name -> class; ``null`` leaves a folder out on purpose); a folder named
like a class needs no entry. Every image is decoded strictly (:func:`decode_image`) and written as an
8-bit PNG, so later stages never meet a 16-bit, RGBA or truncated file. A bad image stops ``prepare``
naming it, or with ``data.on_bad_image=skip`` is left out and listed in ``skipped.csv``.
"""

from __future__ import annotations

import csv
import tempfile
from collections import Counter
from pathlib import Path

import cv2
from omegaconf import DictConfig, OmegaConf

from fer_pipeline.data.archives import extract, is_archive
from fer_pipeline.data.decode import BadImage, decode_image
from fer_pipeline.data.layout import IMAGE_SUFFIXES
from fer_pipeline.errors import PipelineError
from fer_pipeline.hashing import file_md5, tree_md5

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
BAD_IMAGE_POLICIES = ("fail", "skip")
# Everything Pillow decodes that datasets ship; written out as PNG, so later stages read only PNG.
SUFFIXES = IMAGE_SUFFIXES | {".gif", ".pgm", ".ppm", ".pbm", ".jp2", ".jfif"}


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _images(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES]


def find_root(path: Path, scratch: Path) -> Path:
    """The folder holding the class (or split) folders: ``path``, an unpacked archive, or the single
    folder they are wrapped in."""
    if not path.exists():
        raise PipelineError(
            f"no image folder at {path}: put <class>/<image> folders (or train/ and test/ above "
            "them, or a .zip/.tar.gz of them) there, or set data.path"
        )
    if path.is_file():
        if not is_archive(path):
            raise PipelineError(f"{path} is neither a folder nor a .zip/.tar.gz archive")
        path = extract(path, scratch / path.name)
    while True:
        subdirs = _subdirs(path)
        if len(subdirs) == 1 and not _images(path) and subdirs[0].name.lower() not in SPLIT_NAMES:
            only = subdirs[0]
            if _subdirs(only) and not _images(only):  # a wrapper such as DATASET/
                path = only
                continue
        if not subdirs:
            raise PipelineError(f"{path} has no class folders (expected <root>/<class>/<image>)")
        return path


def class_folders(root: Path) -> list[tuple[str | None, Path]]:
    """``(official split or None, class folder)`` pairs under ``root``."""
    subdirs = _subdirs(root)
    names = [p.name.lower() for p in subdirs]
    if not any(n in SPLIT_NAMES for n in names):
        return [(None, p) for p in subdirs]
    others = [p.name for p in subdirs if p.name.lower() not in SPLIT_NAMES]
    if others:
        raise PipelineError(
            f"{root} mixes split folders with other folders {others}: use either "
            "<root>/<class>/ or <root>/{train,val,test}/<class>/"
        )
    splits = Counter(SPLIT_NAMES[n] for n in names)
    if any(n > 1 for n in splits.values()):
        raise PipelineError(f"{root}: two folders name the same split ({names})")
    if "train" not in splits or "test" not in splits:
        raise PipelineError(f"{root} has split folders {names}: it needs train/ and test/")
    return [(SPLIT_NAMES[s.name.lower()], p) for s in subdirs for p in _subdirs(s)]


def target_class(folder: Path, classes: list[str], class_map: dict) -> str | None:
    """The class a folder's images belong to; ``None`` when ``class_map`` leaves it out."""
    name = folder.name
    for key in (name, name.lower()):
        if key in class_map:
            target = class_map[key]
            if target is not None and target not in classes:
                raise PipelineError(
                    f"data.class_map maps '{key}' to '{target}', which is not in data.classes "
                    f"{classes}"
                )
            return target
    for key in (name, name.lower()):
        if key in classes:
            return key
    raise PipelineError(
        f"class folder '{name}' ({folder}) is not in data.classes {classes}: map it with "
        f"data.class_map (e.g. {name}: {classes[0]}), or to null to leave it out"
    )


def write_folder(cfg: DictConfig, source: Path, out: Path) -> dict:
    """Write the labelled folder (or archive) ``source`` into ``out`` as 8-bit PNGs, as ``cfg``
    (the ``data`` config) says; return provenance."""
    if cfg.on_bad_image not in BAD_IMAGE_POLICIES:
        raise PipelineError(
            f"data.on_bad_image={cfg.on_bad_image} (choose from {list(BAD_IMAGE_POLICIES)})"
        )
    classes = list(cfg.classes)
    mapping = OmegaConf.to_container(cfg.class_map) if cfg.class_map is not None else {}
    class_map = {str(k): v for k, v in mapping.items()}
    modes: Counter[str] = Counter()
    skipped: list[tuple[str, str]] = []
    left_out: list[str] = []
    other_files: list[str] = []  # not images by their suffix (notes, label files): counted
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="folder-", dir=out.parent) as scratch:
        root = find_root(source, Path(scratch))
        for split, folder in class_folders(root):
            name = target_class(folder, classes, class_map)
            if name is None:
                left_out.append(folder.relative_to(root).as_posix())
                continue
            target = out / split / name if split else out / name
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted(folder.iterdir()):
                if not path.is_file() or path.name.startswith("."):
                    continue
                if path.suffix.lower() not in SUFFIXES:
                    other_files.append(path.relative_to(root).as_posix())
                    continue
                written.append(path)
                try:
                    image, mode = decode_image(path, cfg.grayscale, cfg.min_size)
                except BadImage as err:
                    if cfg.on_bad_image == "fail":
                        raise PipelineError(
                            f"{err}; set data.on_bad_image=skip to leave such images out"
                        ) from None
                    skipped.append((path.relative_to(root).as_posix(), str(err)))
                    continue
                modes[mode] += 1
                dest = target / f"{path.stem}.png"
                if dest.exists():  # two source folders mapped to one class, same file name
                    dest = target / f"{folder.name}_{path.stem}.png"
                cv2.imwrite(str(dest), image if image.ndim == 2 else image[..., ::-1])
        digest = file_md5(source) if source.is_file() else tree_md5(root, written)
    if skipped:
        with (out / "skipped.csv").open("w", newline="") as f:
            csv.writer(f).writerows([("path", "reason"), *skipped])
    if not modes:
        raise PipelineError(f"no usable images under {source}")
    return {
        "format": "folder",
        "file": source.name,
        "md5": digest,
        "modes": dict(sorted(modes.items())),
        "skipped": len(skipped),
        "left_out_folders": left_out,
        "other_files": len(other_files),
        "other_files_first": other_files[:10],
    }
