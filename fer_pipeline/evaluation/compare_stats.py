"""The statistics of the paper's Table 1: one row per setting (e.g. optimizer), mean +- std over
seeds with a 95 % confidence interval, and whether the best setting is significantly better than
each other one (:mod:`fer_pipeline.tracking.compare_runs` collects the runs from MLflow).

Significance: McNemar's exact test on the same test faces (a face counts when exactly one of the two
settings gets it right), discordant faces pooled over the seeds both settings ran (for 1:1 matched
pairs that is the Mantel-Haenszel test over seeds), Holm-corrected over the comparisons. A paired
t-test over seeds on the metric is reported next to it when both settings have two or more seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from fer_pipeline.errors import PipelineError

# Table columns: the paper's four and F1, as test metrics of each run.
COLUMNS = {
    "accuracy": "accuracy",
    "precision": "precision_macro",
    "recall": "recall_macro",
    "specificity": "specificity_macro",
    "f1": "f1_macro",
}


@dataclass
class RunRecord:
    """What the table needs from one training run."""

    run_id: str
    name: str
    setting: tuple[str, ...]
    seed: str
    metrics: dict[str, float]  # column -> value
    ci: dict[str, tuple[float, float]]  # column -> bootstrap interval (may be empty)
    correct: dict[str, bool] | None = None  # test face -> predicted correctly


@dataclass
class Row:
    setting: tuple[str, ...]
    runs: list[RunRecord]
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    ci_method: str = ""

    @property
    def seeds(self) -> list[str]:
        return [r.seed for r in self.runs]

    @property
    def label(self) -> str:
        return " / ".join(self.setting)


def rows_by_setting(records: list[RunRecord], level: float = 0.95) -> list[Row]:
    """Group records by setting (one per seed: the newest wins), with mean, std and CI per column.

    CI: with n >= 2 seeds, Student's t interval of the mean over seeds, clipped to [0, 1] (with two
    seeds it is wide: t = 12.7); with one seed, that run's bootstrap interval over the test faces."""
    grouped: dict[tuple[str, ...], dict[str, RunRecord]] = {}
    for record in records:  # oldest first, so a newer run with the same seed replaces an older one
        grouped.setdefault(record.setting, {})[record.seed] = record
    rows = []
    for setting in sorted(grouped):
        row = Row(setting, sorted(grouped[setting].values(), key=lambda r: r.seed))
        n = len(row.runs)
        for column in COLUMNS:
            values = np.array([r.metrics[column] for r in row.runs])
            row.mean[column] = float(values.mean())
            row.std[column] = float(values.std(ddof=1)) if n > 1 else 0.0
            if n > 1:
                half = stats.t.ppf(0.5 + level / 2, n - 1) * row.std[column] / math.sqrt(n)
                low, high = row.mean[column] - half, row.mean[column] + half
                row.ci[column] = (max(0.0, low), min(1.0, high))  # scores live in [0, 1]
            else:
                row.ci[column] = row.runs[0].ci.get(column, (math.nan, math.nan))
        row.ci_method = (
            f"t interval over {n} seeds" if n > 1 else "bootstrap over the test faces (1 seed)"
        )
        rows.append(row)
    return rows


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment of ``pvalues`` (same order)."""
    order = sorted(range(len(pvalues)), key=pvalues.__getitem__)
    adjusted, running = [0.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def mcnemar(best: list[RunRecord], other: list[RunRecord]) -> dict | None:
    """McNemar's exact test of ``best`` vs ``other`` on their shared seeds, discordant faces
    pooled (two single runs are paired whatever their seeds). ``None`` when a run has no saved
    predictions or nothing can be paired."""
    by_seed = {r.seed: r for r in other}
    pairs = [(b, by_seed[b.seed]) for b in best if b.seed in by_seed]
    if not pairs and len(best) == len(other) == 1:  # settings that differ by seed, one run each
        pairs = [(best[0], other[0])]
    if not pairs or any(b.correct is None or o.correct is None for b, o in pairs):
        return None
    only_best = only_other = 0
    for b, o in pairs:
        if b.correct.keys() != o.correct.keys():
            raise PipelineError(
                f"runs '{b.name}' and '{o.name}' were tested on different faces: "
                f"compare runs of one dataset and split"
            )
        only_best += sum(b.correct[k] and not o.correct[k] for k in b.correct)
        only_other += sum(o.correct[k] and not b.correct[k] for k in b.correct)
    discordant = only_best + only_other
    p = stats.binomtest(only_best, discordant, 0.5).pvalue if discordant else 1.0
    return {
        "seeds": sorted({s for b, o in pairs for s in (b.seed, o.seed)}),
        "faces": len(pairs[0][0].correct),
        "only_best": only_best,
        "only_other": only_other,
        "p": float(p),
    }


def paired_t(best: Row, other: Row, column: str) -> float | None:
    """Paired t-test over the shared seeds on ``column``; ``None`` with fewer than 2 or no spread."""
    by_seed = {r.seed: r.metrics[column] for r in other.runs}
    pairs = [(r.metrics[column], by_seed[r.seed]) for r in best.runs if r.seed in by_seed]
    if len(pairs) < 2:
        return None
    p = stats.ttest_rel([a for a, _ in pairs], [b for _, b in pairs]).pvalue
    return None if math.isnan(p) else float(p)


def significance(rows: list[Row], metric: str = "accuracy", alpha: float = 0.05) -> dict:
    """Is the row with the best mean ``metric`` significantly better than each other row?"""
    best = max(rows, key=lambda r: r.mean[metric])
    others = [r for r in rows if r is not best]
    tests = [mcnemar(best.runs, r.runs) for r in others]
    usable = [t for t in tests if t is not None]
    adjusted = iter(holm([t["p"] for t in usable]))
    comparisons = []
    for row, test in zip(others, tests, strict=True):
        entry = {"other": row.label, "t_test_p": paired_t(best, row, metric)}
        if test is not None:
            test["p_holm"] = next(adjusted)
            entry |= {"mcnemar": test, "significant": test["p_holm"] < alpha}
        else:
            entry |= {"mcnemar": None, "significant": None}
        comparisons.append(entry)
    return {
        "metric": metric,
        "alpha": alpha,
        "best": best.label,
        "best_mean": best.mean[metric],
        "comparisons": comparisons,
        "statement": statement(best, comparisons, metric, alpha),
    }


def statement(best: Row, comparisons: list[dict], metric: str, alpha: float) -> str:
    if not comparisons:
        return f"Only one setting ({best.label}): nothing to compare."
    lines = [
        f"Best by mean {metric}: {best.label} ({best.mean[metric]:.4f} over "
        f"{len(best.runs)} seed{'s' if len(best.runs) > 1 else ''}). Test: McNemar's exact test "
        f"on the same test faces, discordant faces pooled over shared seeds, Holm-corrected "
        f"over {len(comparisons)} comparison{'s' if len(comparisons) > 1 else ''}, alpha {alpha}."
    ]
    for c in comparisons:
        t = f"; paired t-test over seeds p = {c['t_test_p']:.3g}" if c["t_test_p"] else ""
        test = c["mcnemar"]
        if test is None:
            lines.append(
                f"- vs {c['other']}: not tested (a run has no saved test predictions or no "
                f"shared seed){t}."
            )
            continue
        verdict = "significantly better" if c["significant"] else "not significantly better"
        lines.append(
            f"- vs {c['other']}: {verdict} (seeds {', '.join(test['seeds'])}: "
            f"{test['only_best']} faces right only with {best.label}, {test['only_other']} only "
            f"with {c['other']}; p = {test['p']:.3g}, Holm-adjusted {test['p_holm']:.3g}{t})."
        )
    if len(best.runs) < 2:
        lines.append("With one seed per setting, seed-to-seed variation is not covered.")
    return "\n".join(lines)
