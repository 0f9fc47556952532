"""The preprocessing record that travels with a model: written into every checkpoint, read back the
same way by evaluate, Recognizer and the MLflow model; checkpoints written before it existed get it
from the config they stored, and predict the same."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from fer_pipeline.config import load_config
from fer_pipeline.errors import PipelineError
from fer_pipeline.inference.recognizer import Recognizer
from fer_pipeline.models.checkpoint import build_net, read_checkpoint
from fer_pipeline.models.module import FERModule
from fer_pipeline.models.preprocessing import (
    PREPROCESSING_KEY,
    VERSION,
    Preprocessing,
    preprocessing_of,
)
from tests.conftest import CLASSES


def test_the_record_says_what_a_model_needs_and_round_trips():
    cfg = load_config(["face.size=44", "loader.input_size=40", "evaluation.tta=hflip"])
    record = Preprocessing.from_config(cfg, CLASSES, 1)
    assert (record.input_size, record.channels, record.tta) == (40, 1, "hflip")
    assert record.face["size"] == 44 and record.classes == tuple(CLASSES)
    assert record.dataset == "synthetic" and record.version == VERSION
    assert Preprocessing.from_dict(record.to_dict()) == record


def test_a_record_from_newer_code_is_refused_in_one_line():
    record = Preprocessing.from_config(load_config(), CLASSES, 1).to_dict()
    with pytest.raises(PipelineError, match="version 99 is newer than this code's"):
        Preprocessing.from_dict(record | {"version": 99}, "x.ckpt")


def test_every_checkpoint_holds_the_record_under_its_own_key(tmp_path):
    cfg = load_config(["model=resnet34", "loader.input_size=40"])
    config = OmegaConf.to_container(cfg, resolve=True)
    module = FERModule(build_net(cfg.model, len(CLASSES), 1), classes=CLASSES, config=config)
    weights_only = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(weights_only)  # best.ckpt: weights only, the record too
    assert (
        weights_only[PREPROCESSING_KEY] == Preprocessing.from_config(config, CLASSES, 1).to_dict()
    )
    assert "rng" not in weights_only


def test_a_checkpoint_from_before_the_record_loads_and_predicts_the_same(checkpoint, tmp_path):
    """``checkpoint`` is in the format the previous code wrote (config, classes, no record); the
    same weights with a record must give the same preprocessing and the same predictions."""
    old = read_checkpoint(checkpoint)
    assert PREPROCESSING_KEY not in old
    derived = preprocessing_of(old, str(checkpoint))
    assert derived.input_size == 40 and derived.face["size"] == 44  # its config's, not conf/'s
    new_path = tmp_path / "with_record.ckpt"
    torch.save(old | {PREPROCESSING_KEY: derived.to_dict()}, new_path)
    assert preprocessing_of(read_checkpoint(new_path)) == derived
    face = np.random.default_rng(0).integers(0, 256, (44, 44), dtype=np.uint8)
    tables = [Recognizer.load(p, detector="none").predict([face]) for p in (checkpoint, new_path)]
    assert tables[0].equals(tables[1]) and tables[0]["predicted"].notna().all()
