"""Dataset archives (``.zip``, ``.tar.gz``, ``.tgz``, ``.tar``): recognising and unpacking them."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

from fer_pipeline.errors import PipelineError

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def extract(archive: Path, into: Path) -> Path:
    """Unpack ``archive`` into ``into``; refuses members that would land outside it."""
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    target = (into / member).resolve()
                    if not target.is_relative_to(into.resolve()):
                        raise PipelineError(f"{archive}: member '{member}' would land outside it")
                zf.extractall(into)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(into, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise PipelineError(f"cannot unpack {archive} ({err})") from None
    return into
