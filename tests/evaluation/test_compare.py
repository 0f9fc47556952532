"""The comparison table's statistics on records whose answer is known."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from fer_pipeline.evaluation.compare_render import markdown, write_comparison
from fer_pipeline.evaluation.compare_stats import (
    COLUMNS,
    FaceBootstrap,
    RunRecord,
    difference,
    holm,
    macro_scores,
    mcnemar,
    rows_by_setting,
    significance,
)

FACES = [f"test/{i}.png" for i in range(100)]
CLASSES = [str(k) for k in range(7)]


def record(optimizer: str, seed: str, accuracy: float, right: set[int] | None = None, run="r"):
    predictions = None
    if right is not None:
        predictions = {face: ("0", "0" if i in right else "1") for i, face in enumerate(FACES)}
    metrics = {column: accuracy for column in COLUMNS}
    return RunRecord(f"{run}{optimizer}{seed}", f"{optimizer} seed{seed}", (optimizer,), seed,
                     metrics, {c: (accuracy - 0.1, accuracy + 0.1) for c in COLUMNS}, predictions)  # fmt: skip


def realistic_runs(optimizer: str, accuracies: list[float], faces: int = 5000, seed0: int = 1):
    """Runs that share hard faces as real models do: each run gets right the faces of lowest
    difficulty + its own noise, as many as its accuracy says; metrics from its predictions."""
    difficulty = np.random.default_rng(0).random(faces)
    labels = np.random.default_rng(1).integers(0, 7, faces)
    runs = []
    for i, accuracy in enumerate(accuracies):
        rng = np.random.default_rng(hash((optimizer, i)) % 2**32)
        order = np.argsort(difficulty + rng.normal(0, 0.15, faces))
        right = np.zeros(faces, bool)
        right[order[: round(accuracy * faces)]] = True
        predicted = np.where(right, labels, (labels + 1) % 7)
        predictions = {
            f"test/{f}.png": (CLASSES[labels[f]], CLASSES[predicted[f]]) for f in range(faces)
        }
        confusion = np.zeros((1, 7, 7))
        np.add.at(confusion, (0, labels, predicted), 1)
        metrics = {k: float(v[0]) for k, v in macro_scores(confusion).items()}
        seed = str(seed0 + i)
        runs.append(RunRecord(f"{optimizer}{seed}", f"{optimizer} seed{seed}", (optimizer,),
                              seed, metrics, {}, predictions))  # fmt: skip
    return runs


def compared(records: list[RunRecord], alpha: float = 0.05) -> dict:
    faces = FaceBootstrap(sorted(records[0].predictions))
    return significance(rows_by_setting(records, faces=faces), "accuracy", alpha, faces)


def pooled_mcnemar_p(best: list[RunRecord], other: list[RunRecord]) -> float:
    """The previous method: discordant faces pooled over seeds as if they were new faces."""
    only_best = only_other = 0
    for b, o in zip(best, other, strict=True):
        only_best += sum(b.correct[k] and not o.correct[k] for k in b.correct)
        only_other += sum(o.correct[k] and not b.correct[k] for k in b.correct)
    return stats.binomtest(only_best, only_best + only_other, 0.5).pvalue


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([0.9, 0.6]) == pytest.approx([1.0, 1.0])


def test_mcnemar_compares_two_single_runs_on_their_discordant_faces():
    # best right on 0..79, other on 0..59 and 80..84 -> 20 only-best, 5 only-other
    best = [record("adam", "1", 0.8, set(range(80)))]
    other = [record("sgdm", "1", 0.65, set(range(60)) | set(range(80, 85)))]
    test = mcnemar(best, other)
    assert (test["only_best"], test["only_other"], test["faces"]) == (20, 5, 100)
    assert test["p"] == pytest.approx(stats.binomtest(20, 25, 0.5).pvalue)
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


def test_significance_statement_names_the_method_and_the_verdicts(tmp_path):
    records = [
        *realistic_runs("adam", [0.70, 0.71, 0.69]),
        *realistic_runs("sgdm", [0.55, 0.56, 0.54]),
        *realistic_runs("rmsprop", [0.70, 0.68, 0.71]),
    ]
    rows = rows_by_setting(records)
    sig = compared(records)
    assert sig["best"] == "adam"
    verdicts = {c["other"]: c["significant"] for c in sig["comparisons"]}
    assert verdicts == {"sgdm": True, "rmsprop": False}
    assert "Holm" in sig["statement"] and "5000 shared test faces" in sig["statement"]
    assert "vs sgdm: significantly better: +0.1500 [" in sig["statement"]
    assert "vs rmsprop: not significantly better" in sig["statement"]
    assert "McNemar" not in sig["statement"]  # seeds: not the single-run test
    table = markdown(rows, ["optimizer"], sig, "9 runs")
    assert "| adam | 1, 2, 3 | 0.7000 ± 0.0100" in table
    paths = write_comparison(rows, ["optimizer"], sig, "9 runs", tmp_path / "out")
    assert [p.name for p in paths] == ["table.md", "table.csv", "table.png"]
    csv_lines = paths[1].read_text().splitlines()
    assert csv_lines[0].startswith("optimizer,n_seeds,seeds,run_ids,accuracy_mean,accuracy_std")
    assert len(csv_lines) == 4 and paths[2].read_bytes()[:4] == b"\x89PNG"


def test_a_small_difference_that_changes_sign_over_seeds_is_not_significant():
    # Mean difference 0.01; per-seed differences +0.03, -0.02, +0.02 on 5,000 shared faces.
    best, other = realistic_runs("a", [0.63, 0.58, 0.62]), realistic_runs("b", [0.60] * 3)
    sig = compared(best + other)
    (c,) = sig["comparisons"]
    assert c["difference"] == pytest.approx(0.01)
    assert c["ci"][0] < 0 < c["ci"][1] and not c["significant"]
    assert 0.5 < c["p_greater"] < 0.9
    assert pooled_mcnemar_p(best, other) < 0.05  # what pooling the seeds' faces claimed


def test_a_difference_every_seed_agrees_on_is_significant():
    best, other = realistic_runs("a", [0.66, 0.64, 0.65]), realistic_runs("b", [0.60] * 3)
    (c,) = compared(best + other)["comparisons"]
    assert c["difference"] == pytest.approx(0.05)
    assert c["ci_holm"][0] > 0 and c["significant"] and c["p_greater"] > 0.99


def test_copies_of_runs_add_no_evidence():
    best, other = realistic_runs("a", [0.63, 0.61, 0.64]), realistic_runs("b", [0.60, 0.61, 0.59])
    (alone,) = compared(best + other)["comparisons"]
    copies = [
        RunRecord(
            r.run_id + "copy",
            f"a seed{int(r.seed) + 10}",
            r.setting,
            str(int(r.seed) + 10),
            r.metrics,
            r.ci,
            dict(r.predictions),
        )  # fmt: skip
        for r in best
    ]
    sig = compared(best + copies + other)
    (with_copies,) = sig["comparisons"]
    for key in ("difference", "ci", "p", "p_greater", "ci_holm"):
        assert with_copies[key] == pytest.approx(alone[key])
    assert with_copies["seeds"] == (3, 3)
    assert "Counted once" in sig["statement"] and "a seed11 (a)" in sig["statement"]


def test_single_runs_are_compared_by_mcnemar_and_say_seeds_are_not_covered():
    best, other = realistic_runs("a", [0.66]), realistic_runs("b", [0.60])
    sig = compared(best + other)
    (c,) = sig["comparisons"]
    assert c["mcnemar"] is not None and c["p"] == c["mcnemar"]["p"] and c["significant"]
    assert "McNemar's exact test" in sig["statement"]
    assert "seed variation not covered" in sig["statement"]


def test_the_interval_holds_a_known_difference_95_percent_of_the_time():
    path = Path(__file__).parents[2] / "benchmarks" / "compare_coverage.py"
    spec = importlib.util.spec_from_file_location("compare_coverage", path)
    simulation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(simulation)
    result = simulation.coverage(
        experiments=200, seeds=3, faces=1000, seed_sd=0.01, diff=0.0, baselines=False
    )
    # 200 experiments: 95 % +- 3.1 points is two binomial standard errors
    assert 0.919 <= result["coverage"]["ours"] <= 0.981


def test_difference_of_one_setting_with_itself_is_zero():
    runs = realistic_runs("a", [0.62, 0.60, 0.61])
    rows = rows_by_setting(runs)
    c = difference(rows[0], rows[0], "accuracy", FaceBootstrap(sorted(runs[0].predictions)))
    assert c["difference"] == 0 and c["ci"][0] < 0 < c["ci"][1] and c["p_greater"] == 0.5
