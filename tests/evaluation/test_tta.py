"""Test-time augmentation: which views are averaged, and what averaging them does."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fer_pipeline.errors import PipelineError
from fer_pipeline.evaluation.settings import check_tta
from fer_pipeline.evaluation.tta import predict_proba, views


class LeftRight(torch.nn.Module):
    """Scores (mean of the left half, mean of the right half): a net that tells mirror images apart."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        return torch.stack([x[..., :half].mean((1, 2, 3)), x[..., half:].mean((1, 2, 3))], dim=1)


def test_views_per_mode_keep_the_input_shape():
    x = torch.randn(3, 1, 48, 48)
    for mode, count in (("none", 1), ("hflip", 2), ("tencrop", 10)):
        got = views(x, mode, crop=0.875)
        assert len(got) == count and all(v.shape == x.shape for v in got)
    assert torch.equal(views(x, "hflip")[1], x.flip(-1))


def test_tencrop_takes_the_corners_and_the_centre():
    x = torch.zeros(1, 1, 8, 8)
    x[..., :4, :4] = 1.0  # top-left quarter lit
    crops = views(x, "tencrop", crop=0.5)[:5]  # 4x4 crops: top-left, top-right, bottom-left, ...
    assert [float(c.mean()) for c in crops[:4]] == [1.0, 0.0, 0.0, 0.0]
    assert float(crops[4].mean()) == pytest.approx(0.25)  # the centre crop sees one quarter lit


def test_mirror_averaging_cancels_a_left_right_preference():
    x = torch.zeros(2, 1, 16, 16)
    x[..., :8] = 3.0  # bright left half: class 0 wins without TTA
    plain = predict_proba(LeftRight(), x, "none")
    assert plain[:, 0].min() > 0.9
    averaged = predict_proba(LeftRight(), x, "hflip")
    assert torch.allclose(averaged, torch.full_like(averaged, 0.5))
    assert torch.allclose(predict_proba(LeftRight(), x, "tencrop").sum(1), torch.ones(2))


@pytest.mark.parametrize(("mode", "crop"), [("fivecrop", 0.9), ("tencrop", 0.0), ("hflip", 1.5)])
def test_bad_tta_settings_are_refused(mode, crop):
    with pytest.raises(PipelineError, match="evaluation.tta"):
        check_tta(mode, crop)


TTA_VAL = Path(__file__).parents[2] / "benchmarks" / "tta_val.py"


def run_tta_val(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TTA_VAL), *args], capture_output=True, text=True, timeout=300
    )


def test_tta_val_scores_each_view_on_val_and_chooses_the_best(split_project, checkpoint, tmp_path):
    out = tmp_path / "tta.json"
    data = split_project / "data"
    result = run_tta_val(
        "--models", str(checkpoint.parent), "--split", str(data / "split"),
        "--faces", str(data / "faces"), "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert list(rows) == ["none", "hflip", "tencrop"]
    assert [rows[m]["views"] for m in rows] == [1, 2, 10]
    with (data / "split" / "manifest.csv").open() as f:
        val_faces = sum(row["split"] == "val" for row in csv.DictReader(f))
    assert all(rows[m]["val"]["faces"] == val_faces and "test" not in rows[m] for m in rows)
    # the paired difference is against the first view: none against itself is exactly 0
    assert rows["none"]["val_minus_first"]["difference"] == 0.0
    for m in ("hflip", "tencrop"):
        paired = rows[m]["val_minus_first"]["difference"]
        assert paired == pytest.approx(rows[m]["val"]["accuracy"] - rows["none"]["val"]["accuracy"])
    best = max(rows[m]["val"]["accuracy"] for m in rows)
    assert rows[report["chosen_on_val"]]["val"]["accuracy"] == best
    assert f"chosen on val: {report['chosen_on_val']}" in result.stdout


def test_tta_val_refuses_a_missing_model_in_one_line(tmp_path):
    out = tmp_path / "tta.json"
    result = run_tta_val("--models", str(tmp_path / "nowhere"), "--out", str(out))
    assert result.returncode == 2 and not out.exists()
    assert (
        result.stderr.strip()
        == f"error: checkpoint {tmp_path / 'nowhere' / 'best.ckpt'} is missing (run the train stage first)"
    )
