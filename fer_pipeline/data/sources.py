"""Dataset sources: each turns its input into the image-folder layout of
:mod:`fer_pipeline.data.layout` under the ``prepare`` stage's output folder.

A source is selected by ``data.source`` in the ``data/`` config group. Adding a real dataset means
adding a class here and a config file: the crop, split and training stages do not change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
from omegaconf import DictConfig

from fer_pipeline.data.classes import FER2013_CLASSES
from fer_pipeline.data.download import ensure_local
from fer_pipeline.data.fer2013 import materialise_fer2013
from fer_pipeline.data.ferplus import FERPLUS_CLASSES, write_ferplus
from fer_pipeline.data.labelled_folder import write_folder
from fer_pipeline.data.layout import write_annotations, write_info
from fer_pipeline.data.synthetic import labels_for, render_face
from fer_pipeline.errors import PipelineError

PUT_FER2013 = (
    "put fer2013.csv, icml_face_data.csv, the Kaggle train/ and test/ folders, or a .zip/.tar.gz "
    "of them"
)
PUT_FER2013_CSV = "put fer2013.csv or icml_face_data.csv (or a .zip/.tar.gz of it)"
PUT_FOLDER = "put <class>/<image> folders (or a .zip/.tar.gz of them)"


class Source(Protocol):
    def materialise(self, cfg: DictConfig, out: Path) -> None:
        """Write the dataset described by ``cfg`` (the ``data`` config) into the empty ``out``."""


class SyntheticSource:
    """The procedural dataset of :mod:`fer_pipeline.data.synthetic`, generated from ``cfg.seed``."""

    def materialise(self, cfg: DictConfig, out: Path) -> None:
        if cfg.num_images < 8 * len(FER2013_CLASSES):
            raise PipelineError(
                f"data.num_images={cfg.num_images} is too small: the synthetic set needs at "
                f"least {8 * len(FER2013_CLASSES)} (8 per class)"
            )
        if cfg.scene_size < 48:
            raise PipelineError(f"data.scene_size={cfg.scene_size} is too small (at least 48)")
        for name in FER2013_CLASSES:
            (out / name).mkdir()
        annotations = {}
        for index, label in enumerate(labels_for(cfg.num_images)):
            face = render_face(index, label, size=cfg.scene_size, seed=cfg.seed)
            rel = f"{FER2013_CLASSES[label]}/{index:05d}.png"
            cv2.imwrite(str(out / rel), face.image)
            annotations[rel] = face.annotation
        write_annotations(out / "annotations.csv", annotations)
        write_info(
            out,
            cfg.name,
            list(FER2013_CLASSES),
            source="synthetic",
            grayscale=True,
            generator={
                "seed": cfg.seed,
                "num_images": cfg.num_images,
                "scene_size": cfg.scene_size,
            },
        )


class FER2013Source:
    """FER2013 from a local copy at ``cfg.path``, in any form :mod:`fer_pipeline.data.fer2013` reads."""

    def materialise(self, cfg: DictConfig, out: Path) -> None:
        path = ensure_local(cfg.path, cfg.get("download"), "FER2013", PUT_FER2013)
        provenance = materialise_fer2013(path, out)
        write_info(
            out,
            cfg.name,
            list(FER2013_CLASSES),
            source="fer2013",
            grayscale=True,
            origin=provenance,
        )


class FERPlusSource:
    """FER2013 pixels (``cfg.path``, the CSV) relabelled by FER+ votes (``cfg.labels_path``)."""

    def materialise(self, cfg: DictConfig, out: Path) -> None:
        pixels = ensure_local(cfg.path, cfg.get("download"), "FER2013", PUT_FER2013_CSV)
        labels = ensure_local(
            cfg.labels_path,
            {"url": cfg.get("labels_url"), "cache": cfg.get("download", {}).get("cache")},
            "FER+ labels",
            "put fer2013new.csv from github.com/microsoft/FERPlus",
        )
        provenance = write_ferplus(pixels, labels, out)
        write_info(
            out,
            cfg.name,
            list(FERPLUS_CLASSES),
            source="ferplus",
            grayscale=True,
            origin=provenance,
        )


class FolderSource:
    """Any labelled image folder at ``cfg.path`` (:mod:`fer_pipeline.data.labelled_folder`)."""

    def materialise(self, cfg: DictConfig, out: Path) -> None:
        path = ensure_local(cfg.path, cfg.get("download"), "images", PUT_FOLDER)
        provenance = write_folder(cfg, path, out)
        write_info(
            out,
            cfg.name,
            list(cfg.classes),
            source="folder",
            grayscale=bool(cfg.grayscale),
            origin=provenance,
        )


SOURCES: dict[str, Source] = {
    "synthetic": SyntheticSource(),
    "fer2013": FER2013Source(),
    "ferplus": FERPlusSource(),
    "folder": FolderSource(),
}


def get_source(name: str) -> Source:
    if name not in SOURCES:
        raise PipelineError(f"unknown data.source '{name}' (choose from {sorted(SOURCES)})")
    return SOURCES[name]
