"""The comparison table's statistics on records whose answer is known."""

from __future__ import annotations

import pytest
from scipy import stats

from fer_pipeline.evaluation.compare_render import markdown, write_comparison
from fer_pipeline.evaluation.compare_stats import (
    COLUMNS,
    RunRecord,
    holm,
    mcnemar,
    rows_by_setting,
    significance,
)

FACES = [f"test/{i}.png" for i in range(100)]


def record(optimizer: str, seed: str, accuracy: float, right: set[int] | None = None, run="r"):
    correct = {face: i in right for i, face in enumerate(FACES)} if right is not None else None
    metrics = {column: accuracy for column in COLUMNS}
    return RunRecord(f"{run}{optimizer}{seed}", f"{optimizer} seed{seed}", (optimizer,), seed,
                     metrics, {c: (accuracy - 0.1, accuracy + 0.1) for c in COLUMNS}, correct)  # fmt: skip


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([0.9, 0.6]) == pytest.approx([1.0, 1.0])


def test_mcnemar_pools_discordant_faces_over_shared_seeds():
    # Seed 1: best right on 0..79, other on 0..59 and 80..84 -> 20 only-best, 5 only-other.
    # Seed 2: best right on 0..69, other on 0..69 -> no discordant face.
    best = [record("adam", "1", 0.8, set(range(80))), record("adam", "2", 0.7, set(range(70)))]
    other = [
        record("sgdm", "1", 0.65, set(range(60)) | set(range(80, 85))),
        record("sgdm", "2", 0.7, set(range(70))),
        record("sgdm", "3", 0.5, set(range(50))),  # no partner: left out of the pairing
    ]
    test = mcnemar(best, other)
    assert (test["only_best"], test["only_other"], test["seeds"]) == (20, 5, ["1", "2"])
    assert test["p"] == pytest.approx(stats.binomtest(20, 25, 0.5).pvalue)
    assert test["p"] < 0.01
    assert mcnemar(best, [record("sgdm", "1", 0.6)]) is None  # no saved predictions


def test_rows_keep_the_newest_run_per_seed_and_give_mean_std_and_t_interval():
    records = [
        record("adam", "1", 0.5, run="old"),
        record("adam", "1", 0.70, run="new"),
        record("adam", "2", 0.74),
        record("adam", "3", 0.72),
        record("sgdm", "1", 0.60),
    ]
    adam, sgdm = rows_by_setting(records)
    assert [r.run_id for r in adam.runs] == ["newadam1", "radam2", "radam3"]
    assert adam.mean["accuracy"] == pytest.approx(0.72)
    assert adam.std["accuracy"] == pytest.approx(0.02)
    half = stats.t.ppf(0.975, 2) * 0.02 / 3**0.5
    assert adam.ci["accuracy"] == pytest.approx((0.72 - half, 0.72 + half))
    assert "t interval over 3 seeds" in adam.ci_method
    # One seed: the run's own bootstrap interval, no std.
    assert sgdm.ci["accuracy"] == pytest.approx((0.5, 0.7)) and sgdm.std["accuracy"] == 0.0
    assert "bootstrap" in sgdm.ci_method


def test_significance_statement_names_the_test_and_the_verdicts(tmp_path):
    records = [
        record("adam", "1", 0.80, set(range(80))),
        record("adam", "2", 0.80, set(range(80))),
        record("sgdm", "1", 0.50, set(range(50))),
        record("sgdm", "2", 0.52, set(range(52))),
        record("rmsprop", "1", 0.79, set(range(79))),
        record("rmsprop", "2", 0.78, set(range(78))),
    ]
    rows = rows_by_setting(records)
    sig = significance(rows, "accuracy", 0.05)
    assert sig["best"] == "adam"
    verdicts = {c["other"]: c["significant"] for c in sig["comparisons"]}
    assert verdicts == {"sgdm": True, "rmsprop": False}
    assert "McNemar's exact test" in sig["statement"] and "Holm" in sig["statement"]
    assert "vs sgdm: significantly better" in sig["statement"]
    assert "vs rmsprop: not significantly better" in sig["statement"]
    table = markdown(rows, ["optimizer"], sig, "6 runs")
    assert "| adam | 1, 2 | 0.8000 ± 0.0000" in table
    paths = write_comparison(rows, ["optimizer"], sig, "6 runs", tmp_path / "out")
    assert [p.name for p in paths] == ["table.md", "table.csv", "table.png"]
    csv_lines = paths[1].read_text().splitlines()
    assert csv_lines[0].startswith("optimizer,n_seeds,seeds,run_ids,accuracy_mean,accuracy_std")
    assert len(csv_lines) == 4 and paths[2].read_bytes()[:4] == b"\x89PNG"
