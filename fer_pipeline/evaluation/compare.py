"""The paper's Table 1 from tracked runs: one row per setting (e.g. optimizer), mean +- std over
seeds with a 95 % confidence interval, a bar chart, and whether the best setting is significantly
better than each other one.

Significance: McNemar's exact test on the same test faces (a face counts when exactly one of the two
settings gets it right), discordant faces pooled over the seeds both settings ran (for 1:1 matched
pairs that is the Mantel-Haenszel test over seeds), Holm-corrected over the comparisons. A paired
t-test over seeds on the metric is reported next to it when both settings have two or more seeds.
"""

from __future__ import annotations

import csv
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no global backend, safe in notebooks
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from scipy import stats

from fer_pipeline.errors import PipelineError
from fer_pipeline.io import atomic_file
from fer_pipeline.tracking.runs import describe, read_predictions, setting_value

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


def cell(row: Row, column: str) -> str:
    low, high = row.ci[column]
    spread = f" ± {row.std[column]:.4f}" if len(row.runs) > 1 else ""
    return f"{row.mean[column]:.4f}{spread} [{low:.4f}, {high:.4f}]"


def markdown(rows: list[Row], by: list[str], sig: dict, context: str) -> str:
    head = [" / ".join(by), "seeds", *COLUMNS]
    lines = [
        f"# Test metrics by {' / '.join(by)}",
        "",
        context,
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in rows:
        cells = [row.label, ", ".join(row.seeds), *(cell(row, c) for c in COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    methods = sorted({r.ci_method for r in rows})
    lines += [
        "",
        "Cells: mean ± std over seeds [95 % CI]. Precision, recall, specificity and F1 are macro "
        f"averages over classes. CI: {'; '.join(methods)} (clipped to [0, 1]).",
        "",
        "## Significance",
        "",
        sig["statement"],
        "",
    ]
    return "\n".join(lines)


def write_csv(path: Path, rows: list[Row], by: list[str]) -> None:
    with atomic_file(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        stats_cols = [f"{c}_{s}" for c in COLUMNS for s in ("mean", "std", "ci_low", "ci_high")]
        writer.writerow([*by, "n_seeds", "seeds", "run_ids", *stats_cols, "ci_method"])
        for row in rows:
            values = []
            for c in COLUMNS:
                values += [row.mean[c], row.std[c], *row.ci[c]]
            writer.writerow(
                [
                    *row.setting,
                    len(row.runs),
                    " ".join(row.seeds),
                    " ".join(r.run_id for r in row.runs),
                    *(f"{v:.6f}" for v in values),
                    row.ci_method,
                ]
            )


def plot_bars(path: Path, rows: list[Row], by: list[str], title: str) -> None:
    """Grouped bars: one group per metric, one bar per setting, 95 % CI as error bars."""
    columns = list(COLUMNS)
    width = 0.8 / len(rows)
    fig = Figure(figsize=(2.0 + 1.4 * len(columns), 4.0), layout="tight")
    ax = fig.subplots()
    for i, row in enumerate(rows):
        x = np.arange(len(columns)) + (i - (len(rows) - 1) / 2) * width
        means = np.array([row.mean[c] for c in columns])
        lows = np.array([row.ci[c][0] for c in columns])
        highs = np.array([row.ci[c][1] for c in columns])
        errors = np.nan_to_num(np.vstack([means - lows, highs - means]))
        ax.bar(x, means, width, yerr=errors, capsize=3, label=row.label)
    ax.set_xticks(range(len(columns)), columns)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test score (mean over seeds, 95 % CI)")
    ax.legend(title=" / ".join(by), fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=110, format="png")


def write_comparison(
    rows: list[Row], by: list[str], sig: dict, context: str, out_dir: Path
) -> list[Path]:
    """``table.md``, ``table.csv`` and ``table.png`` in ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"table.{ext}" for ext in ("md", "csv", "png")]
    with atomic_file(paths[0]) as tmp:
        tmp.write_text(markdown(rows, by, sig, context))
    write_csv(paths[1], rows, by)
    with atomic_file(paths[2]) as tmp:
        plot_bars(tmp, rows, by, context.split("\n")[0])
    return paths


def collect_records(
    client: MlflowClient, runs: list[Run], by: list[str], folder: Path
) -> tuple[list[RunRecord], str]:
    """A :class:`RunRecord` per MLflow run (predictions downloaded into ``folder``), and a
    description of their common data. Refuses (naming the runs) runs without a value for a ``by``
    key or without a test metric, and runs of different datasets or class lists."""
    columns = COLUMNS
    lacking: dict[str, list[Run]] = {}
    for run in runs:
        for key in by:
            if setting_value(run, key) is None:
                what = f"config key {key!r} (no tag fer.{key}, no param {key})"
                lacking.setdefault(what, []).append(run)
        for metric in columns.values():
            if f"test/{metric}" not in run.data.metrics:
                lacking.setdefault(f"metric test/{metric} (not tested?)", []).append(run)
    if lacking:
        problems = [
            f"{'all ' if len(bad) == len(runs) else ''}{len(bad)} of {len(runs)} runs lack "
            f"{what}: {', '.join(describe(r) for r in bad)}"
            for what, bad in lacking.items()
        ]
        raise PipelineError("cannot compare: " + "; ".join(problems))
    data: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        key = (run.data.tags.get("data.digest", "?"), run.data.tags.get("data.classes", "?"))
        data.setdefault(key, []).append(run)
    if len(data) > 1:
        groups = "; ".join(
            f"data {run_list[0].data.tags.get('data.name', '?')} digest {digest[:12]} classes "
            f"{classes}: runs {', '.join(describe(r) for r in run_list)}"
            for (digest, classes), run_list in data.items()
        )
        raise PipelineError(
            f"cannot compare runs of different data or class lists ({groups}); "
            f"select one with --tag data.digest=<digest> or --parent"
        )
    records = []
    for i, run in enumerate(runs):
        metrics = {c: run.data.metrics[f"test/{m}"] for c, m in columns.items()}
        ci = {
            c: (run.data.metrics[f"test_ci/{m}_low"], run.data.metrics[f"test_ci/{m}_high"])
            for c, m in columns.items()
            if f"test_ci/{m}_low" in run.data.metrics
        }
        records.append(
            RunRecord(
                run_id=run.info.run_id,
                name=run.info.run_name,
                setting=tuple(setting_value(run, k) for k in by),
                seed=run.data.params.get("seed", "?"),
                metrics=metrics,
                ci=ci,
                correct=read_predictions(client, run, folder / str(i)),
            )
        )
    ((digest, _),) = data
    return records, f"{runs[0].data.tags.get('data.name', '?')} (digest {digest[:12]})"


def compare_runs(
    client: MlflowClient,
    runs: list[Run],
    by: list[str],
    out_dir: Path,
    metric: str = "accuracy",
    alpha: float = 0.05,
    parent=None,
    description: str = "",
) -> dict:
    """The whole comparison for MLflow ``runs``: records, rows, significance, the three files in
    ``out_dir``, and (with ``parent``) the files logged to the parent run under ``compare/``.
    Returns ``{"rows", "significance", "paths", "best_run"}`` (the best setting's best run's
    :class:`RunRecord`)."""
    if metric not in COLUMNS:
        raise PipelineError(f"compare.metric {metric!r} is not one of {', '.join(COLUMNS)}")
    with tempfile.TemporaryDirectory() as tmp:
        records, data = collect_records(client, runs, by, Path(tmp))
    rows = rows_by_setting(records)
    sig = significance(rows, metric, alpha)
    faces = next((len(r.correct) for r in records if r.correct), None)
    context = (
        f"{len(records)} runs{f' of {description}' if description else ''}; data {data}"
        + (f", {faces} test faces" if faces else "")
        + "."
    )
    paths = write_comparison(rows, by, sig, context, out_dir)
    if parent is not None:
        for path in paths:
            client.log_artifact(parent.info.run_id, str(path), "compare")
    best_row = max(rows, key=lambda r: r.mean[metric])
    best_run = max(best_row.runs, key=lambda r: r.metrics[metric])
    return {"rows": rows, "significance": sig, "paths": paths, "best_run": best_run}
