"""What a run records about where it came from: flat config, git commit, DVC data hashes."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

MLFLOW_PARAM_LIMIT = 6000  # characters MLflow accepts in one param value


def flat_params(cfg: DictConfig) -> dict[str, str]:
    """The resolved config as ``{"optimizer.lr": "0.01", ...}`` for ``log_params``."""
    tree = OmegaConf.to_container(cfg, resolve=True)
    flat: dict[str, str] = {}

    def walk(node, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = str(node)[:MLFLOW_PARAM_LIMIT]

    walk(tree, "")
    return flat


def git_commit(cwd: Path | str = ".") -> str:
    """The checked-out commit, with ``-dirty`` if tracked files changed; ``unknown`` outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def file_md5(path: Path | str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dvc_hashes(paths: list[str], lock: Path | str = "dvc.lock") -> dict[str, str]:
    """DVC's recorded hash of each output path in ``dvc.lock`` (``md5``, ``.dir`` for folders).

    Paths DVC has not recorded (a run outside ``dvc repro``) are left out.
    """
    lock = Path(lock)
    if not lock.is_file():
        return {}
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    found: dict[str, str] = {}
    for stage in stages.values():
        for out in stage.get("outs", []):
            if out.get("path") in paths and "md5" in out:
                found[out["path"]] = out["md5"]
    return found


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
