"""Packed splits: every face of a split in one uint8 array file, so an epoch reads no image files.

The split stage writes, next to ``manifest.csv``::

    packed/train.npy, val.npy, test.npy   uint8 (N, H, W) gray or (N, H, W, 3) RGB, in manifest order
    packed/info.json                      shape, count per split, the manifest's MD5

Row ``i`` of ``<split>.npy`` is the ``i``-th manifest row of that split, bit for bit the image file;
labels and paths stay in the manifest. Arrays are opened memory-mapped (FER2013 is ~83 MB in all).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fer_pipeline.data.decode import read_image
from fer_pipeline.data.split import SPLITS
from fer_pipeline.errors import PipelineError
from fer_pipeline.hashing import file_md5
from fer_pipeline.io import write_json

PACKED_DIR = "packed"
INFO = "info.json"


def pack_splits(
    faces_dir: Path, rows: list[dict], grayscale: bool, out_dir: Path, manifest_md5: str
) -> dict:
    """Write one array per split of ``rows`` (manifest rows) into ``out_dir``; return the info.

    Faces of different sizes cannot share an array: then nothing is packed and the info says why
    (``loader.source=files`` still trains on them).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    info: dict = {"manifest_md5": manifest_md5, "grayscale": grayscale, "splits": {}}
    shape = None
    for split in SPLITS:
        chosen = [row for row in rows if row["split"] == split]
        array = None
        for i, row in enumerate(chosen):
            image = read_image(faces_dir / row["path"], grayscale)
            if shape is None:
                shape = image.shape
            if image.shape != shape:
                for name in SPLITS:
                    (out_dir / f"{name}.npy").unlink(missing_ok=True)
                info["unpacked_reason"] = (
                    f"faces differ in size: {faces_dir / row['path']} is {image.shape}, "
                    f"others {shape}"
                )
                write_json(out_dir / INFO, info)
                return info
            if array is None:
                array = np.lib.format.open_memmap(
                    out_dir / f"{split}.npy", mode="w+", dtype=np.uint8, shape=(len(chosen), *shape)
                )
            array[i] = image
        if array is not None:
            array.flush()
            del array
        info["splits"][split] = len(chosen)
    info["shape"] = list(shape or ())
    write_json(out_dir / INFO, info)
    return info


def load_packed(split_dir: Path, split: str, manifest: Path) -> np.ndarray:
    """The packed faces of ``split`` (memory-mapped), after checking they belong to ``manifest``."""
    folder = Path(split_dir) / PACKED_DIR
    hint = "rerun the split stage (dvc repro split), or train from the image files: loader.source=files"
    if not (folder / INFO).is_file():
        raise PipelineError(f"{folder / INFO} is missing: {hint}")
    info = json.loads((folder / INFO).read_text())
    if "unpacked_reason" in info:
        raise PipelineError(f"{folder} holds no packed faces ({info['unpacked_reason']}): {hint}")
    if info["manifest_md5"] != file_md5(manifest):
        raise PipelineError(f"{folder} was packed from another {manifest}: {hint}")
    path = folder / f"{split}.npy"
    try:
        images = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as err:
        raise PipelineError(f"cannot read packed faces {path} ({err}): {hint}") from None
    if images.dtype != np.uint8 or len(images) != info["splits"][split]:
        raise PipelineError(
            f"{path} holds {len(images)} {images.dtype} faces, info.json says "
            f"{info['splits'][split]} uint8: {hint}"
        )
    return images
