"""What a run records about where it came from: flat config, git commit, DVC data hashes."""

from __future__ import annotations

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
