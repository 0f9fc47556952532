"""Shared fixtures: a tiny copy of the project (conf/, params.yaml, dvc.yaml, the package) in a temp
folder, so stages, DVC and Hydra run for real on small data without touching the checkout."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

# Small enough for seconds per stage on 2 cores, big enough for every class in every split.
TINY_CONF = {
    "conf/data/synthetic.yaml": {"num_images": 84, "scene_size": 64},
    "conf/face.yaml": {"face": {"size": 32}},
    "conf/config.yaml": {"loader": {"input_size": 32, "batch_size": 16}},
    "conf/trainer/cpu.yaml": {"max_epochs": 1, "log_every_n_steps": 2},
    "conf/split.yaml": {"split": {"val": 0.25, "test": 0.25}},
}
TINY_PARAMS = {"model": {"choice": "resnet34"}, "optimizer": {"choice": "sgdm"}}


def deep_update(tree: dict, changes: dict) -> dict:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(tree.get(key), dict):
            deep_update(tree[key], value)
        else:
            tree[key] = value
    return tree


def edit_yaml(path: Path, changes: dict) -> None:
    tree = yaml.safe_load(path.read_text()) or {}
    path.write_text(yaml.safe_dump(deep_update(tree, changes), sort_keys=False))


def make_project(dest: Path, conf: dict | None = None, params: dict | None = None) -> Path:
    """Copy the project into ``dest`` with tiny settings; return ``dest``."""
    for name in ("conf", "fer_pipeline"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("params.yaml", "dvc.yaml", ".gitignore"):
        shutil.copy(ROOT / name, dest / name)
    (dest / "data/external").mkdir(parents=True)
    shutil.copy(ROOT / "data/external/README.md", dest / "data/external/README.md")
    for rel, changes in {**TINY_CONF, **(conf or {})}.items():
        edit_yaml(dest / rel, changes)
    edit_yaml(dest / "params.yaml", {**TINY_PARAMS, **(params or {})})
    return dest


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A tiny project as the working directory, with its own MLflow store."""
    root = make_project(tmp_path / "project")
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    return root


def png_bomb(path: Path, width: int = 40_000, height: int = 40_000) -> Path:
    """A small PNG whose header declares ``width`` x ``height`` pixels ("an image bomb"; its pixel
    data is a stub: nothing that checks the header first ever reads it)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    rows = zlib.compress(b"\0" * (width + 1) * 4)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )
    return path


def two_faces() -> np.ndarray:
    """A photo with two faces (RGB, 300 x 500): the astronaut of scikit-image's samples, at two
    sizes, on grey."""
    from skimage import data as samples

    big = samples.astronaut()[:300, 100:350]
    small = cv2.resize(big, None, fx=0.6, fy=0.6)
    canvas = np.full((300, 500, 3), 128, np.uint8)
    canvas[:, :250] = big
    canvas[50 : 50 + small.shape[0], 300 : 300 + small.shape[1]] = small
    return canvas


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (a server can take it; a client is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port_url(name: str) -> str:
    return f"http://127.0.0.1:{free_port()}/{name}"


def start_in_own_group(command: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """Start ``command`` in its own process group (as a terminal starts a job), output merged, so a
    test can send a signal to the whole group with ``os.killpg(process.pid, ...)``."""
    return subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_until(condition, process: subprocess.Popen, timeout: float = 300) -> None:
    """Poll ``condition()`` while ``process`` runs; fail with its output if it ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, f"timed out after {timeout} s"
        time.sleep(0.05)


@pytest.fixture
def mlflow_server(tmp_path):
    """``mlflow server`` with proxied artifacts on 127.0.0.1; yields (uri, process)."""
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server-artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2).read()
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "mlflow server down"
            time.sleep(0.5)
    yield uri, process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_module(
    module: str, *args: str, cwd: Path, check: bool = True, timeout: int = 600, env=None
):
    """Run ``python -m fer_pipeline.<module>`` in ``cwd`` as a user would; return the result."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", f"fer_pipeline.{module}", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{module} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="session")
def split_project(tmp_path_factory) -> Path:
    """A tiny project after `prepare`, `crop` and `split` (faces, manifest, packed arrays); tests
    read it and must not change it."""
    root = make_project(tmp_path_factory.mktemp("split") / "project")
    for stage in ("prepare", "crop", "split"):
        run_module(stage, cwd=root)
    return root


# Tiny evaluation settings for sweeps in tests: a few resamples, two faces per class for occlusion,
# a 16 px window every 8 px (9 occluded copies of each 32 px face).
TINY_EVALUATION = (
    "evaluation.bootstrap.resamples=100",
    "evaluation.occlusion.faces_per_class=2",
    "evaluation.occlusion.window=16",
    "evaluation.occlusion.stride=8",
)


@pytest.fixture
def prepared_project(split_project, tmp_path, monkeypatch) -> Path:
    """A copy of the tiny project after `split`, as the working directory, with its own MLflow
    store: for tests that train or change it."""
    root = tmp_path / "project"
    shutil.copytree(split_project, root, symlinks=True)
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    return root


@pytest.fixture
def call_main(capsys):
    """Run a stage's ``main(argv)`` in this process, as its command line would (much faster than
    a subprocess: no imports); returns ``(exit status, stdout, stderr)``. The signal handlers a
    stage installs, and the logging handlers Hydra sets up (on this test's captured stderr, closed
    after it), are put back afterwards."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    loggers = [logging.root, *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]
    handlers = {id(lg): (lg, list(lg.handlers), lg.level) for lg in loggers}

    def call(main, *args: str) -> tuple[int, str, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code or 0
        out = capsys.readouterr()
        return code, out.out, out.err

    yield call
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    signal.set_wakeup_fd(-1)
    for logger, before, level in handlers.values():
        logger.handlers[:] = before
        logger.setLevel(level)


@pytest.fixture(scope="session")
def paper_sweep(tmp_path_factory) -> Path:
    """A tiny project after `prepare`, `crop`, `split` and the paper's experiment (3 optimizers x 2
    seeds, one epoch each) with its own MLflow store: what the notebooks and compare read."""
    root = make_project(tmp_path_factory.mktemp("sweep") / "project")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    for stage in ("prepare", "crop", "split"):
        run_module(stage, cwd=root, env=env)
    result = run_module(
        "train", "-m", "experiment=paper_table1", *TINY_EVALUATION, cwd=root, env=env
    )
    (root / "sweep.log").write_text(result.stdout + result.stderr)
    return root


# A trained-model stand-in and what a user passes to it (the inference and app tests).
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    # Face and input sizes unlike conf/'s 48: what predicts must be the checkpoint's.
    import torch
    from omegaconf import OmegaConf

    from fer_pipeline.config import load_config
    from fer_pipeline.models.checkpoint import build_net

    cfg = load_config(["model=resnet34", "data=synthetic", "face.size=44", "loader.input_size=40"])
    cfg.model.net.pretrained = False
    torch.manual_seed(0)
    net = build_net(cfg.model, len(CLASSES), 1)
    path = tmp_path_factory.mktemp("model") / "best.ckpt"
    torch.save(
        {
            "epoch": 0,
            "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
            "hyper_parameters": {
                "config": OmegaConf.to_container(cfg, resolve=True),
                "classes": CLASSES,
                "in_channels": 1,
            },
        },
        path,
    )
    return path


@pytest.fixture(scope="session")
def inputs(tmp_path_factory) -> dict[str, Path]:
    from skimage import data as samples

    root = tmp_path_factory.mktemp("inputs")
    photo = root / "two_faces.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(two_faces(), cv2.COLOR_RGB2BGR))
    crops = root / "crops" / "happy"
    crops.mkdir(parents=True)
    face = cv2.cvtColor(samples.astronaut()[60:170, 170:280], cv2.COLOR_RGB2GRAY)
    for i in range(3):
        crop = cv2.resize(np.roll(face, 5 * i, axis=1), (48, 48), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(crops / f"{i:03d}.png"), crop)  # FER2013-like: 48 px grey crops
    video = root / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (500, 300))
    for i in range(9):
        writer.write(cv2.cvtColor(np.roll(two_faces(), 4 * i, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()
    return {"photo": photo, "crops": root / "crops", "video": video}


@pytest.fixture(scope="session")
def registered(checkpoint, tmp_path_factory) -> dict:
    """An MLflow store where a training run logged ``checkpoint`` as its MLflow model, registered
    as version 1 of ``fer-pipeline`` (so ``champion``), as the train stage does."""
    from mlflow.tracking import MlflowClient

    from fer_pipeline.inference.mlflow_model import example_face, log_model, save
    from fer_pipeline.tracking.registry import register

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("fer", artifact_location=str(root / "artifacts"))
    run_id = client.create_run(experiment).info.run_id
    example = example_face(np.full((48, 48), 128, np.uint8))
    folder = save(checkpoint, root / "saved" / "model", CLASSES, example)
    source = log_model(client, run_id, folder)
    tags = {
        "model": "resnet34",
        "optimizer": "adam",
        "test_accuracy": "0.3100",
        "data.name": "synthetic",
    }
    version = register(client, run_id, source, tags | {"test_accuracy_ci95": "0.2500-0.3700"})
    return {"uri": uri, "run_id": run_id, "version": version, "folder": folder}


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run only where torch sees a CUDA GPU."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in gpu_tests:
            item.add_marker(skip)
