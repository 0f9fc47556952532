"""The MLflow model: the same per-face table from ``mlflow.pyfunc.load_model`` and from
``mlflow models serve`` as from the Python API, loaded as ``models:/fer-pipeline@champion``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_pipeline.inference import Recognizer
from fer_pipeline.inference.mlflow_model import model_input, request_body
from tests.conftest import CLASSES, free_port, two_faces

CHAMPION = "models:/fer-pipeline@champion"
P_COLUMNS = [f"p_{c}" for c in CLASSES]
BOX = ["x", "y", "w", "h"]


@pytest.fixture
def store(registered, tmp_path, monkeypatch):
    """The registered model's store as $MLFLOW_TRACKING_URI; no RetinaFace weights, so the
    checkpoint's ``auto`` detector finds faces with Haar wherever the suite runs."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered["uri"])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return registered


def same_faces(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert len(got) == len(expected)
    assert list(got["outcome"]) == list(expected["outcome"])
    faces = expected["face"].notna().to_numpy()
    for columns in (P_COLUMNS, BOX):
        a = got[columns].to_numpy(float)[faces]
        b = expected[columns].to_numpy(float)[faces]
        assert np.allclose(a, b, atol=1e-5), f"{columns}: {np.abs(a - b).max()}"
    assert list(got["predicted"].fillna("")) == list(expected["predicted"].fillna(""))


def test_pyfunc_model_gives_the_apis_table(store, inputs):
    import mlflow

    crops = sorted(Path(inputs["crops"]).rglob("*.png"))
    images = [inputs["photo"], two_faces(), *crops, b"not an image"]
    expected = Recognizer.load(CHAMPION, device="cpu").predict(images)
    model = mlflow.pyfunc.load_model(CHAMPION)
    table = model.predict(model_input(images, names=["photo", "array", "c0", "c1", "c2", "bad"]))
    assert list(table.columns) == list(expected.columns)
    same_faces(table, expected)
    # Two faces in each photo, one per 48 px crop (never a false "no face"), the bad bytes a row.
    assert list(table["input"]) == ["photo"] * 2 + ["array"] * 2 + ["c0", "c1", "c2", "bad"]
    assert table["outcome"].iloc[-1] == "not_an_image"
    assert np.allclose(table[P_COLUMNS].iloc[:-1].sum(axis=1), 1, atol=1e-5)
    signature = model.metadata.get_input_schema().to_dict()
    assert [c["name"] for c in signature] == ["image", "name"]
    assert model.metadata.get_output_schema().input_names() == list(expected.columns)


def test_a_run_id_loads_the_runs_model(store, inputs):
    expected = Recognizer.load(store["folder"], device="cpu").predict(inputs["photo"])
    for model in (store["run_id"], f"runs:/{store['run_id']}/model", "models:/fer-pipeline/1"):
        same_faces(Recognizer.load(model, device="cpu").predict(inputs["photo"]), expected)


def post(url: str, body: str) -> dict:
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_served_model_answers_invocations_with_the_table(store, inputs, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", CHAMPION]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).close()
                break
            except (urllib.error.URLError, OSError):
                assert server.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "the model server did not start in 120 s"
                time.sleep(0.5)
        images = [inputs["photo"], b"not an image"]
        answer = post(f"http://127.0.0.1:{port}/invocations", request_body(images, ["photo", "x"]))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        log.close()
    table = pd.DataFrame(answer["predictions"])
    expected = Recognizer.load(CHAMPION, device="cpu").predict(images)
    same_faces(table, expected)
    assert list(table["input"]) == ["photo", "photo", "x"]
