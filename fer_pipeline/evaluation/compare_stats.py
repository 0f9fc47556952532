"""The statistics of the paper's Table 1: one row per setting (e.g. optimizer), mean +- std over
seeds with a 95 % confidence interval, and whether the best setting is significantly better than
each other one (:mod:`fer_pipeline.tracking.compare_runs` collects the runs from MLflow).

A setting's score varies for two reasons, and both count (Bouthillier et al., MLSys 2021):

- **test faces**: another sample of faces would give another score. Measured by a paired bootstrap
  over the shared test faces: each resample draws the same faces for every run of both settings and
  recomputes the seed-averaged score, so the variance of the difference is the faces' share.
- **seeds**: another seed (initialisation, data order, augmentation) trains another model. Measured
  by the spread of each setting's per-seed scores: ``s_A^2 / n_A + s_B^2 / n_B``.

The difference of mean scores gets a t interval with both variances added and Welch-Satterthwaite
degrees of freedom (the faces' share counted as exact), ``P(A > B)`` from the same t distribution,
and a two-sided p-value; the comparisons are Holm-corrected, and a difference is significant only
when its Holm-adjusted interval excludes 0. With 2 or 3 seeds a bootstrap over seeds has only 3 or
10 distinct resamples and its intervals are too narrow, which is why the seed part is a t interval
(``benchmarks/compare_coverage.py`` measures both). Runs of one setting whose test predictions are
identical are counted once: a copy of a run is not another seed. When both settings have one run,
seed variation cannot be measured: McNemar's exact test on the faces the two runs disagree on is
used, and the statement says that it covers the test faces only.
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
RESAMPLES = 1000  # bootstrap resamples of the test faces
BOOTSTRAP_SEED = 0  # the resamples are drawn from a fixed seed: the same runs give the same table


@dataclass
class RunRecord:
    """What the table needs from one training run."""

    run_id: str
    name: str
    setting: tuple[str, ...]
    seed: str
    metrics: dict[str, float]  # column -> value
    ci: dict[str, tuple[float, float]]  # column -> bootstrap interval (may be empty)
    predictions: dict[str, tuple[str, str]] | None = None  # test face -> (label, predicted)
    lr: str | None = None  # the run's optimizer.lr param: the table's caption names it

    @property
    def correct(self) -> dict[str, bool] | None:
        """Test face -> predicted correctly (``None`` without saved predictions)."""
        if self.predictions is None:
            return None
        return {face: label == predicted for face, (label, predicted) in self.predictions.items()}


@dataclass
class Row:
    setting: tuple[str, ...]
    runs: list[RunRecord]
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    ci_method: str = ""
    duplicates: list[RunRecord] = field(default_factory=list)  # copies of a run, not counted

    @property
    def seeds(self) -> list[str]:
        return [r.seed for r in self.runs]

    @property
    def label(self) -> str:
        return " / ".join(self.setting)


def distinct_runs(runs: list[RunRecord]) -> tuple[list[RunRecord], list[RunRecord]]:
    """``(kept, copies)``: a run whose test predictions equal an earlier run's is a copy."""
    kept, copies, seen = [], [], []
    for run in runs:
        if run.predictions is not None and run.predictions in seen:
            copies.append(run)
            continue
        if run.predictions is not None:
            seen.append(run.predictions)
        kept.append(run)
    return kept, copies


class FaceBootstrap:
    """Resamples of the shared test faces, and any column's score of a run on each of them.

    One set of ``resamples`` draws (with replacement) is used for every run, so settings are
    compared on the same resampled faces (a paired bootstrap)."""

    def __init__(self, faces: list[str], resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED):
        self.faces = faces
        rng = np.random.default_rng(seed)
        self.draws = rng.integers(0, len(faces), size=(resamples, len(faces)))
        self._scores: dict[tuple[str, str], np.ndarray] = {}

    def scores(self, run: RunRecord, column: str) -> np.ndarray:
        """``(resamples,)``: ``column`` of ``run`` on each resample of the faces."""
        key = (run.run_id, column)
        if key not in self._scores:
            self._scores[key] = resampled_scores(run, self.faces, self.draws, column)
        return self._scores[key]


def resampled_scores(
    run: RunRecord, faces: list[str], draws: np.ndarray, column: str
) -> np.ndarray:
    """``column`` (accuracy or a macro average over classes) on each row of face indices."""
    if run.predictions.keys() != set(faces):
        raise PipelineError(
            f"run '{run.name}' was tested on other faces than the runs it is compared with: "
            f"compare runs of one dataset and split"
        )
    classes = sorted({c for pair in run.predictions.values() for c in pair})
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    labels = np.array([index[run.predictions[f][0]] for f in faces])
    predicted = np.array([index[run.predictions[f][1]] for f in faces])
    codes = (labels * k + predicted)[draws]  # (B, N) cells of the confusion matrix
    offsets = np.arange(len(draws))[:, None] * k * k
    confusion = np.bincount((codes + offsets).ravel(), minlength=len(draws) * k * k)
    return macro_scores(confusion.reshape(len(draws), k, k).astype(float))[column]


def macro_scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy and macro precision / recall / specificity / F1 of ``(B, K, K)`` confusion
    matrices (rows true, columns predicted); a class with no prediction (or no face) scores 0."""
    total = confusion.sum(axis=(1, 2))
    tp = np.diagonal(confusion, axis1=1, axis2=2)
    predicted, actual = confusion.sum(axis=1), confusion.sum(axis=2)
    fp, fn = predicted - tp, actual - tp
    tn = total[:, None] - tp - fp - fn

    def ratio(a, b):
        return np.divide(a, b, out=np.zeros_like(a), where=b > 0)

    precision, recall = ratio(tp, predicted), ratio(tp, actual)
    return {
        "accuracy": tp.sum(axis=1) / total,
        "precision": precision.mean(axis=1),
        "recall": recall.mean(axis=1),
        "specificity": ratio(tn, tn + fp).mean(axis=1),
        "f1": ratio(2 * precision * recall, precision + recall).mean(axis=1),
    }


@dataclass
class Estimate:
    """A setting's mean score over seeds and the two variances of that mean."""

    mean: float
    n: int  # distinct runs (seeds)
    seed_var: float | None  # s^2 over seeds (None with one seed)
    face_scores: np.ndarray | None  # the seed-averaged score on each face resample
    run_noise: float = 0.0  # the runs' own face-by-face disagreement, in the face bootstrap twice


def estimate(runs: list[RunRecord], column: str, faces: FaceBootstrap | None) -> Estimate:
    """The mean over ``runs`` and its variances. Runs of one setting disagree on faces at random
    (one gets a face right, another wrong); that noise is in the spread over seeds already, and
    the face bootstrap of their average holds it again (``run_noise``, its share there, is
    estimated from the runs' own bootstrap variances and taken out once)."""
    values = np.array([r.metrics[column] for r in runs])
    face_scores, run_noise = None, 0.0
    if faces is not None:
        each = np.array([faces.scores(r, column) for r in runs])  # (n, resamples)
        face_scores = each.mean(axis=0)
        if len(runs) > 1:
            spread = each.var(axis=1, ddof=1).mean() - face_scores.var(ddof=1)
            run_noise = max(0.0, float(spread)) / (len(runs) - 1)
    seed_var = float(values.var(ddof=1)) if len(runs) > 1 else None
    return Estimate(float(values.mean()), len(runs), seed_var, face_scores, run_noise)


def t_interval(mean: float, parts: list[tuple[float, int]], level: float) -> tuple:
    """``(low, high, se, df)``: ``mean`` +- t * se, where ``parts`` are ``(variance, df)`` terms
    (``df`` ``math.inf`` for an exact variance), combined by Welch-Satterthwaite."""
    var = sum(v for v, _ in parts)
    se = math.sqrt(var)
    denominator = sum(v * v / d for v, d in parts if math.isfinite(d) and v > 0)
    df = var * var / denominator if denominator > 0 else math.inf
    half = half_width(se, df, level)
    return mean - half, mean + half, se, df


def half_width(se: float, df: float, level: float) -> float:
    return float(stats.t.ppf(0.5 + level / 2, df)) * se if se > 0 else 0.0


def seed_parts(*estimates: Estimate) -> list[tuple[float, int]]:
    """The seed-variance terms ``s^2 / n`` (``df = n - 1``). A setting with one seed borrows the
    spread of the others (pooled), as if it varied across seeds as much; with no setting of two or
    more seeds there is no seed term."""
    known = [e for e in estimates if e.seed_var is not None]
    if not known:
        return []
    pooled_df = sum(e.n - 1 for e in known)
    pooled = sum(e.seed_var * (e.n - 1) for e in known) / pooled_df
    return [
        (e.seed_var / e.n, e.n - 1) if e.seed_var is not None else (pooled / e.n, pooled_df)
        for e in estimates
    ]


def face_part(scores: np.ndarray | None, *estimates: Estimate) -> list[tuple[float, float]]:
    """The test faces' variance term: the bootstrap variance of ``scores`` (a setting's mean, or
    a difference of two), less the runs' own noise that the seed term counts already."""
    if scores is None:
        return []
    noise = sum(e.run_noise for e in estimates if e.seed_var is not None)
    return [(max(0.0, float(np.var(scores, ddof=1)) - noise), math.inf)]


def seed_order(record: RunRecord) -> tuple:
    """Seeds in numeric order (2 before 10), other names after them."""
    return (0, int(record.seed), "") if record.seed.isdigit() else (1, 0, record.seed)


def rows_by_setting(
    records: list[RunRecord], level: float = 0.95, faces: FaceBootstrap | None = None
) -> list[Row]:
    """Group records by setting (one per seed: the newest wins; copies of a run counted once),
    with mean, std and CI per column.

    CI: t interval of the mean over seeds, widened by the test faces' share when the runs saved
    their predictions (``faces``), clipped to [0, 1]; with one seed, that run's bootstrap
    interval over the test faces."""
    grouped: dict[tuple[str, ...], dict[str, RunRecord]] = {}
    for record in records:  # oldest first, so a newer run with the same seed replaces an older one
        grouped.setdefault(record.setting, {})[record.seed] = record
    rows = []
    for setting in sorted(grouped):
        runs, copies = distinct_runs(sorted(grouped[setting].values(), key=seed_order))
        row = Row(setting, runs, duplicates=copies)
        n = len(runs)
        for column in COLUMNS:
            est = estimate(runs, column, faces)
            row.mean[column] = est.mean
            row.std[column] = math.sqrt(est.seed_var) if n > 1 else 0.0
            if n > 1:
                parts = seed_parts(est) + face_part(est.face_scores, est)
                low, high, _, _ = t_interval(est.mean, parts, level)
                row.ci[column] = (max(0.0, low), min(1.0, high))  # scores live in [0, 1]
            else:
                row.ci[column] = runs[0].ci.get(column, (math.nan, math.nan))
        faces_note = " and the test faces" if faces is not None else ""
        row.ci_method = (
            f"t interval over {n} seeds{faces_note}"
            if n > 1
            else "bootstrap over the test faces (1 seed)"
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


def holm_levels(pvalues: list[float], alpha: float) -> list[float]:
    """Each comparison's interval level under Holm: ``1 - alpha / (m - rank)`` for the p-value of
    that rank (smallest first)."""
    order = sorted(range(len(pvalues)), key=pvalues.__getitem__)
    levels = [0.0] * len(pvalues)
    for rank, i in enumerate(order):
        levels[i] = 1 - alpha / (len(pvalues) - rank)
    return levels


def mcnemar(best: list[RunRecord], other: list[RunRecord]) -> dict | None:
    """McNemar's exact test of two single runs on the faces exactly one of them gets right
    (covers the test faces only, not seed variation). ``None`` without saved predictions."""
    if len(best) != 1 or len(other) != 1:
        raise PipelineError("McNemar's test compares two single runs; use difference() for seeds")
    b, o = best[0].correct, other[0].correct
    if b is None or o is None:
        return None
    if b.keys() != o.keys():
        raise PipelineError(
            f"runs '{best[0].name}' and '{other[0].name}' were tested on different faces: "
            f"compare runs of one dataset and split"
        )
    only_best = sum(b[k] and not o[k] for k in b)
    only_other = sum(o[k] and not b[k] for k in b)
    discordant = only_best + only_other
    p = stats.binomtest(only_best, discordant, 0.5).pvalue if discordant else 1.0
    return {"faces": len(b), "only_best": only_best, "only_other": only_other, "p": float(p)}


def difference(best: Row, other: Row, column: str, faces: FaceBootstrap | None, level=0.95) -> dict:
    """``best`` minus ``other`` on ``column``: the difference of mean scores over seeds, its t
    interval counting seeds and (with ``faces``) the shared test faces, ``P(best > other)`` and
    the two-sided p-value of no difference."""
    a, b = estimate(best.runs, column, faces), estimate(other.runs, column, faces)
    diff = a.mean - b.mean
    face_scores = None if faces is None else a.face_scores - b.face_scores
    seeds = seed_parts(a, b)
    low, high, se, df = t_interval(diff, seeds + face_part(face_scores, a, b), level)
    if se > 0:
        p_greater = float(stats.t.cdf(diff / se, df))
        p = float(2 * stats.t.sf(abs(diff) / se, df))
    else:
        p_greater, p = (0.5, 1.0) if diff == 0 else (float(diff > 0), 0.0)
    return {
        "difference": diff,
        "ci": (low, high),
        "se": se,
        "df": df,
        "p_greater": p_greater,
        "p": p,
        "seeds": (a.n, b.n),
        "counts_seeds": bool(seeds),
        "counts_faces": face_scores is not None,
    }


def shared_faces(runs: list[RunRecord]) -> FaceBootstrap | None:
    """The face bootstrap over the test faces every run saved; ``None`` when a run saved none."""
    if not runs or any(r.predictions is None for r in runs):
        return None
    return FaceBootstrap(sorted(runs[0].predictions))


def significance(
    rows: list[Row], metric: str = "accuracy", alpha: float = 0.05, faces=None
) -> dict:
    """Is the row with the best mean ``metric`` significantly better than each other row?
    ``faces``: the :class:`FaceBootstrap` of the runs' shared test faces (``None``: made here
    when every run saved its predictions)."""
    faces = faces if faces is not None else shared_faces([r for row in rows for r in row.runs])
    best = max(rows, key=lambda r: r.mean[metric])
    others = [r for r in rows if r is not best]
    comparisons = []
    for row in others:
        entry = {"other": row.label} | difference(best, row, metric, faces)
        entry["mcnemar"] = (
            mcnemar(best.runs, row.runs) if len(best.runs) == len(row.runs) == 1 else None
        )
        if entry["mcnemar"] is not None:  # single runs: the exact test on the faces decides
            entry["p"] = entry["mcnemar"]["p"]
        comparisons.append(entry)
    pvalues = [c["p"] for c in comparisons]
    for entry, p_holm, level in zip(
        comparisons, holm(pvalues), holm_levels(pvalues, alpha), strict=True
    ):
        entry["p_holm"] = p_holm
        entry["holm_level"] = level
        half = half_width(entry["se"], entry["df"], level)
        entry["ci_holm"] = (entry["difference"] - half, entry["difference"] + half)
        entry["significant"] = p_holm < alpha
    return {
        "metric": metric,
        "alpha": alpha,
        "best": best.label,
        "best_mean": best.mean[metric],
        "faces": len(faces.faces) if faces is not None else None,
        "resamples": len(faces.draws) if faces is not None else None,
        "comparisons": comparisons,
        "statement": statement(best, rows, comparisons, metric, alpha, faces),
    }


def statement(
    best: Row, rows: list[Row], comparisons: list[dict], metric: str, alpha: float, faces
) -> str:
    if not comparisons:
        return f"Only one setting ({best.label}): nothing to compare."
    n = len(comparisons)
    what = "seeds" + (f" and the {len(faces.faces)} shared test faces" if faces else "")
    lines = [
        f"Best by mean {metric}: {best.label} ({best.mean[metric]:.4f} over "
        f"{len(best.runs)} seed{'s' if len(best.runs) > 1 else ''}). Each difference of means is "
        f"given with its 95 % CI counting {what} (t interval, Welch over seeds"
        + (f", paired bootstrap of {len(faces.draws)} face resamples" if faces else "")
        + f"), P({best.label} better) and its Holm-adjusted interval over {n} comparison"
        f"{'s' if n > 1 else ''}: significant when that interval excludes 0 (alpha {alpha})."
    ]
    for c in comparisons:
        verdict = "significantly better" if c["significant"] else "not significantly better"
        low, high = c["ci"]
        hl, hh = c["ci_holm"]
        text = (
            f"- vs {c['other']}: {verdict}: {c['difference']:+.4f} [{low:+.4f}, {high:+.4f}], "
            f"Holm-adjusted ({c['holm_level']:.1%}) [{hl:+.4f}, {hh:+.4f}], "
            f"P(better) = {c['p_greater']:.3f}, p = {c['p']:.3g} (Holm {c['p_holm']:.3g})"
        )
        if c["mcnemar"] is not None:
            m = c["mcnemar"]
            text += (
                f"; one run each: McNemar's exact test on the test faces ({m['only_best']} right "
                f"only with {best.label}, {m['only_other']} only with {c['other']}) decides, "
                f"seed variation not covered"
            )
        elif not c["counts_seeds"]:
            text += "; one run each, seed variation not covered"
        lines.append(text + ".")
    copies = [(row, r) for row in rows for r in row.duplicates]
    if copies:
        lines.append(
            "Counted once (test predictions identical to another run of the setting): "
            + ", ".join(f"{r.name} ({row.label})" for row, r in copies)
            + "."
        )
    if all(len(row.runs) < 2 for row in rows):
        lines.append("With one seed per setting, seed-to-seed variation is not covered.")
    return "\n".join(lines)
