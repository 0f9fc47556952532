"""Atomic outputs: a stage writes into a temporary sibling and renames it into place when done,
so a failed run never leaves a half-written output and never destroys the previous one."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

UMASK = os.umask(0o022)
os.umask(UMASK)
# Temporaries are named .<target>.<pid>.<random>.tmp, so a later run can tell a dead run's from a
# live one's.
TEMPORARY = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(target: str | Path) -> list[Path]:
    """Remove the temporaries that runs killed while writing ``target`` left beside it (a
    process that is still alive keeps its own); return what was removed."""
    target = Path(target)
    removed = []
    if not target.parent.is_dir():
        return removed
    old = target.with_name(f".{target.name}.old")  # killed while swapping: the previous output
    if old.exists() and not target.exists():
        old.rename(target)
    elif old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    for entry in target.parent.iterdir():
        match = TEMPORARY.match(entry.name)
        if match and match["target"] == target.name and not _alive(int(match["pid"])):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}."


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(target), suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp makes 0700; the result should be an ordinary folder
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path that replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    fd, name = tempfile.mkstemp(prefix=_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~UMASK)  # mkstemp makes 0600; the result should be an ordinary file
    tmp = Path(name)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def write_json(path: str | Path, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
