"""A trained-model stand-in: a checkpoint as the train stage writes it (random resnet34 weights, the
project's composed config), and the inputs a user passes: a photo with two faces, a folder of
48 px face crops, a short video."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from skimage import data as samples

from fer_pipeline.config import load_config
from fer_pipeline.models.checkpoint import build_net
from tests.conftest import two_faces

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    # Face and input sizes unlike conf/'s 48: what predicts must be the checkpoint's.
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
    version = register(client, run_id, source, {"model": "resnet34"})
    return {"uri": uri, "run_id": run_id, "version": version, "folder": folder}
