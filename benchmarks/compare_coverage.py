"""How often the comparison's 95 % interval holds the true difference, by simulation.

Each simulated experiment trains two settings with a few seeds each and tests every run on the same
sample of test faces. A run gets face ``f`` right with probability ``mu + seed effect + face
effect``: the setting's true accuracy ``mu``, the seed's ``N(0, seed_sd)`` and the face's difficulty
(uniform, shared by every run, with an interaction of each setting with the face). So the true
difference of expected accuracy is ``mu_a - mu_b``, and a 95 % interval should hold it in 95 % of
the experiments. Compared: ours (:func:`fer_pipeline.evaluation.compare_stats.difference`), a
two-level bootstrap (seeds within each setting, then the shared faces) and McNemar's test pooled over
seeds (the previous method), whose rate of "significant" when there is no difference is shown.

    python benchmarks/compare_coverage.py                    # 1,000 experiments, 3 seeds each
    python benchmarks/compare_coverage.py --seeds 2 --experiments 500
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy import stats

from fer_pipeline.evaluation.compare_stats import (
    FaceBootstrap,
    Row,
    RunRecord,
    difference,
    macro_scores,
)

CLASSES = [str(i) for i in range(7)]


def simulated_runs(
    rng: np.random.Generator,
    setting: str,
    mu: float,
    seeds: int,
    face_effect: np.ndarray,
    labels: np.ndarray,
    seed_sd: float,
) -> list[RunRecord]:
    """``seeds`` runs of one setting on the faces whose difficulty is ``face_effect``."""
    runs = []
    for seed in range(seeds):
        p = np.clip(mu + rng.normal(0, seed_sd) + face_effect, 0, 1)
        right = rng.random(len(labels)) < p
        predicted = np.where(right, labels, (labels + 1 + rng.integers(0, 6, len(labels))) % 7)
        predictions = {
            f"test/{i}.png": (CLASSES[a], CLASSES[b])
            for i, (a, b) in enumerate(zip(labels, predicted, strict=True))
        }
        confusion = np.zeros((1, 7, 7))
        np.add.at(confusion, (0, labels, predicted), 1)
        metrics = {k: float(v[0]) for k, v in macro_scores(confusion).items()}
        runs.append(RunRecord(f"{setting}{seed}", f"{setting} seed{seed}", (setting,), str(seed),
                              metrics, {}, predictions))  # fmt: skip
    return runs


def experiment(
    rng: np.random.Generator,
    mu_a: float,
    mu_b: float,
    seeds: int,
    faces: int,
    seed_sd: float,
    interaction_sd: float = 0.05,
    resamples: int = 300,
) -> tuple[Row, Row, FaceBootstrap]:
    """One simulated comparison: the two settings' rows and the face bootstrap of their faces."""
    difficulty = rng.uniform(-0.25, 0.25, faces)
    labels = rng.integers(0, 7, faces)
    rows = []
    for name, mu in (("a", mu_a), ("b", mu_b)):
        effect = difficulty + rng.normal(0, interaction_sd, faces)  # setting x face interaction
        rows.append(Row((name,), simulated_runs(rng, name, mu, seeds, effect, labels, seed_sd)))
    for row in rows:
        row.mean["accuracy"] = float(np.mean([r.metrics["accuracy"] for r in row.runs]))
    bootstrap = FaceBootstrap(
        sorted(rows[0].runs[0].predictions), resamples, int(rng.integers(1 << 30))
    )
    return rows[0], rows[1], bootstrap


def two_level_bootstrap(a: Row, b: Row, faces: FaceBootstrap, rng, level=0.95) -> tuple:
    """Percentile interval of the difference: seeds resampled within each setting, faces shared."""
    scores_a = np.array([faces.scores(r, "accuracy") for r in a.runs])  # (n, B)
    scores_b = np.array([faces.scores(r, "accuracy") for r in b.runs])
    resamples = scores_a.shape[1]
    pick_a = rng.integers(0, len(a.runs), (resamples, len(a.runs)))
    pick_b = rng.integers(0, len(b.runs), (resamples, len(b.runs)))
    cols = np.arange(resamples)[:, None]
    diffs = scores_a[pick_a, cols].mean(axis=1) - scores_b[pick_b, cols].mean(axis=1)
    return tuple(np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2]))


def pooled_mcnemar_p(a: Row, b: Row) -> float:
    only_a = only_b = 0
    for ra, rb in zip(a.runs, b.runs, strict=True):
        ca, cb = ra.correct, rb.correct
        only_a += sum(ca[k] and not cb[k] for k in ca)
        only_b += sum(cb[k] and not ca[k] for k in ca)
    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def coverage(
    experiments: int, seeds: int, faces: int, seed_sd: float, diff: float, seed: int = 0,
    baselines: bool = True,
) -> dict:  # fmt: skip
    """Share of experiments whose interval holds the true difference, for each method."""
    rng = np.random.default_rng(seed)
    held = {"ours": 0, "two_level_bootstrap": 0}
    significant = {"ours": 0, "pooled_mcnemar": 0}
    for _ in range(experiments):
        a, b, faces_bs = experiment(rng, 0.6 + diff, 0.6, seeds, faces, seed_sd)
        ours = difference(a, b, "accuracy", faces_bs)
        held["ours"] += ours["ci"][0] <= diff <= ours["ci"][1]
        significant["ours"] += ours["p"] < 0.05
        if baselines:
            low, high = two_level_bootstrap(a, b, faces_bs, rng)
            held["two_level_bootstrap"] += low <= diff <= high
            significant["pooled_mcnemar"] += pooled_mcnemar_p(a, b) < 0.05
    if not baselines:  # only ours was counted
        held, significant = {"ours": held["ours"]}, {"ours": significant["ours"]}
    return {
        "coverage": {k: v / experiments for k, v in held.items()},
        "significant": {k: v / experiments for k, v in significant.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=3, help="runs per setting")
    parser.add_argument("--faces", type=int, default=2000, help="shared test faces")
    parser.add_argument("--seed-sd", type=float, default=0.01, help="accuracy's sd over seeds")
    parser.add_argument("--difference", type=float, default=0.0, help="true difference")
    args = parser.parse_args()
    result = coverage(args.experiments, args.seeds, args.faces, args.seed_sd, args.difference)
    print(json.dumps({"settings": vars(args), **result}, indent=2))


if __name__ == "__main__":
    main()
