"""File and folder fingerprints (MD5, as DVC computes them), used by every layer."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_md5(path: Path | str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_md5(root: Path | str, files: list[Path] | None = None) -> str:
    """One MD5 for a folder: over each file's relative path and MD5, in sorted order.

    ``files`` restricts it to those files (all files under ``root`` otherwise).
    """
    root = Path(root)
    files = sorted(files if files is not None else (p for p in root.rglob("*") if p.is_file()))
    digest = hashlib.md5()
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\t{file_md5(path)}\n".encode())
    return digest.hexdigest()
