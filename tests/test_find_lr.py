"""`python -m fer_pipeline.find_lr`: one learning-rate range test for any optimizer."""

from __future__ import annotations

import json

from fer_pipeline import find_lr
from tests.conftest import run_module


def test_range_test_writes_the_suggestion_and_its_curve(prepared_project):
    # tiny, noisy batches: no early stop, so the curve has every point
    args = (
        "optimizer=rmsprop",
        "scheduler=onecycle",
        "lr_find.steps=20",
        "lr_find.early_stop=null",
    )
    result = run_module("find_lr", *args, cwd=prepared_project)
    found = json.loads((prepared_project / "reports/lr_find/rmsprop.json").read_text())
    assert found["optimizer"] == "rmsprop" and found["steps"] == 20
    assert 1e-6 <= found["suggested_lr"] <= 1.0
    assert len(found["lr"]) == len(found["loss"]) == 20 and found["lr"] == sorted(found["lr"])
    assert (prepared_project / "reports/lr_find/rmsprop.png").read_bytes()[:4] == b"\x89PNG"
    assert f"++tuned_lr.rmsprop={found['suggested_lr']:.4g}" in result.stdout
    assert not (prepared_project / "mlflow.db").exists()  # a look, not a run


def test_bad_range_and_other_data_are_one_line_errors(prepared_project, call_main):
    for args, message in (
        (["lr_find.min_lr=0.1", "lr_find.max_lr=0.01"], "lr_find needs 0 < min_lr < max_lr"),
        (["lr_find.steps=3"], "lr_find.steps must be an integer >= 10, got 3"),
        (["data=fer2013"], "data/split holds 'synthetic'"),
    ):
        code, _, err = call_main(find_lr.main, *args)
        assert code == 2 and err.count("\n") == 1 and message in err, err
