"""The GPU check (benchmarks/gpu_check.sh), tried here before a GPU machine sees it.

A GPU machine has Python 3.12 with PyTorch, Lightning, NumPy and the other packages of its image
(benchmarks/gpu/image.txt), no network, and only what the checkout carries. The dry run builds that
here: a fresh Python 3.12 virtual environment that sees a stand-in for the image (built once, from
image.txt, in the user cache) and nothing else, gets the carried wheels (benchmarks/gpu/wheels.txt,
downloaded by benchmarks/gpu/carry.sh) installed with --no-index, and runs the check on the CPU
(1 epoch of 2 batches) over a tiny FER2013 archive in the Kaggle layout. A wheel missing from the
list fails here, not on the GPU machine.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT

GPU = ROOT / "benchmarks/gpu"
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
CACHE = Path(os.environ.get("FER_PIPELINE_CACHE", "~/.cache/fer-pipeline")).expanduser()


def requirements(path: Path) -> dict[str, str]:
    """``name: version`` of each ``name==version`` line (comments and blank lines skipped)."""
    pins = {}
    for line in path.read_text().splitlines():
        spec = line.split("#")[0].strip()
        if spec:
            name, _, version = spec.partition("==")
            pins[name.lower()] = version
    return pins


def test_carried_wheels_are_the_locked_versions():
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"]}
    carried = requirements(GPU / "wheels.txt")
    assert carried, "benchmarks/gpu/wheels.txt lists no wheel"
    assert {n: v for n, v in carried.items() if locked.get(n) != v} == {}


def test_carried_wheels_leave_out_what_the_image_has():
    image = set(requirements(GPU / "image.txt"))
    assert image & set(requirements(GPU / "wheels.txt")) == set()


def test_the_check_refuses_bad_arguments_in_one_line(tmp_path):
    check = ROOT / "benchmarks/gpu_check.sh"
    bad = subprocess.run(
        ["bash", str(check), str(tmp_path / "out"), "--fast"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "unknown option --fast" in bad.stderr
    missing = subprocess.run(
        ["bash", str(check), str(tmp_path / "out")],
        capture_output=True, text=True, env={**os.environ, "CARRY": str(tmp_path / "none")},
    )  # fmt: skip
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0 and "make gpu-carry" in missing.stderr
    assert not (tmp_path / "out").exists()


def python312() -> str | None:
    candidates = [
        os.environ.get("PYTHON312"),
        shutil.which("python3.12"),
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12"))),
    ]
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run([candidate, "--version"], capture_output=True, text=True)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.startswith("Python 3.12"):
            return candidate
    return None


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, (
        f"{' '.join(map(str, cmd))}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


def image_environment(python: str) -> Path:
    """The stand-in for the GPU image: a Python 3.12 venv with image.txt installed, built once
    (several GB: PyPI's torch is a CUDA build) and brought up to date when the list changes."""
    env = CACHE / "gpu-image-py312"
    listed = (GPU / "image.txt").read_text()
    ready = env / "image.txt"  # the list it was last installed from
    if not (env / "bin/python").exists():
        run([python, "-m", "venv", str(env)])
    if not ready.exists() or ready.read_text() != listed:
        run([str(env / "bin/python"), "-m", "pip", "install", "-q", "-r", str(GPU / "image.txt")])
        ready.write_text(listed)
    return env


def carried_wheels(archive: Path) -> Path:
    """benchmarks/gpu/carry.sh's folder, downloaded once per version of wheels.txt (minutes: one
    index query per wheel), with ``archive`` beside the wheels."""
    key = hashlib.sha256((GPU / "wheels.txt").read_bytes()).hexdigest()[:12]
    carry = CACHE / f"gpu-carry-{key}"
    if not (carry / "wheels").is_dir():
        run(
            ["bash", str(GPU / "carry.sh"), str(archive)],
            env={**os.environ, "CARRY": str(carry), "PYTHON": sys.executable},
        )
    return carry


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3.12/site-packages"))


def tiny_fer2013(path: Path, train: int = 16, test: int = 4) -> Path:
    """A FER2013 archive in the Kaggle layout (train/<class>/*.png, test/<class>/*.png) of random
    48 px gray faces."""
    rng = np.random.default_rng(0)
    root = path.parent / "fer2013"
    for split, count in (("train", train), ("test", test)):
        for label in CLASSES:
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (48, 48), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{split}_{i:03d}.png")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(root / "train", arcname="train")
        tar.add(root / "test", arcname="test")
    return path


@pytest.mark.slow
def test_dry_run_in_a_fresh_python312_with_only_the_carried_wheels(tmp_path):
    python = python312()
    if python is None:
        pytest.skip("no Python 3.12 here (PYTHON312, python3.12 or ~/.pyenv/versions/3.12*)")
    image = image_environment(python)
    venv = tmp_path / "venv"
    run([python, "-m", "venv", str(venv)])
    # The image's packages, seen as if installed in the system: its site-packages on the path.
    (site_packages(venv) / "gpu_image.pth").write_text(f"{site_packages(image)}\n")
    archive = tiny_fer2013(tmp_path / "fer2013-tiny.tar.gz")
    carry = carried_wheels(archive)
    out = tmp_path / "out"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MLFLOW_TRACKING_URI")
    }
    env |= {
        "PYTHON": str(venv / "bin/python"),
        "CARRY": str(carry),
        "ARCHIVE": str(archive),
        "WORK": str(tmp_path / "work"),
    }
    run(
        ["bash", str(ROOT / "benchmarks/gpu_check.sh"), str(out), "--dry-run"],
        env=env,
        cwd=tmp_path,
    )

    names = {p.name for p in out.iterdir()}
    assert names == {
        "summary.md", "metrics.json", "train_curves.csv", "learning_curve.png",
        "confusion_matrix.png", "throughput.json", "log.txt",
    }  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_test_samples"] == 4 * len(CLASSES)
    assert 0 <= metrics["test"]["accuracy"] <= 1
    throughput = json.loads((out / "throughput.json").read_text())
    assert set(throughput["train"]) == {
        f"{m}/48" for m in ("fusion", "ensemble", "resnet50", "resnet34")
    }
    assert all(row["train_gflops_per_image"] > 0 for row in throughput["train"].values())
    summary = (out / "summary.md").read_text()
    assert "Test accuracy" in summary and "fusion/48" in summary
    # The stand-in image holds no package the wheels should have brought.
    log = (out / "log.txt").read_text()
    assert "cannot import" not in log
    # Nothing was written into the checkout.
    assert not (ROOT / "data/external/fer2013-tiny.tar.gz").exists()
