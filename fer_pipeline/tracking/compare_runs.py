"""The comparison of tracked runs (the paper's Table 1): collect MLflow runs as records (their test
metrics, bootstrap intervals and per-face predictions), compute the rows and significance
(:mod:`fer_pipeline.evaluation.compare_stats`), write the files
(:mod:`fer_pipeline.evaluation.compare_render`) and log them to a sweep's parent run."""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

from mlflow.entities import Metric, Run, RunTag
from mlflow.tracking import MlflowClient

from fer_pipeline.errors import PipelineError
from fer_pipeline.evaluation.compare_render import write_comparison
from fer_pipeline.evaluation.compare_stats import (
    COLUMNS,
    Row,
    RunRecord,
    rows_by_setting,
    shared_faces,
    significance,
)
from fer_pipeline.tracking import tags as tag_keys
from fer_pipeline.tracking.runs import describe, read_predictions, setting_value


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
        key = (
            run.data.tags.get(tag_keys.DATA_DIGEST, "?"),
            run.data.tags.get(tag_keys.DATA_CLASSES, "?"),
        )
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
                predictions=read_predictions(client, run, folder / str(i)),
                lr=run.data.params.get("optimizer.lr"),
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
    ``out_dir``, and (with ``parent``) the files logged to the parent run under ``compare/``, with
    the best setting (:func:`log_best_setting`).
    Returns ``{"rows", "significance", "paths", "best_run"}`` (the best setting's best run's
    :class:`RunRecord`)."""
    if metric not in COLUMNS:
        raise PipelineError(f"compare.metric {metric!r} is not one of {', '.join(COLUMNS)}")
    with tempfile.TemporaryDirectory() as tmp:
        records, data = collect_records(client, runs, by, Path(tmp))
    faces = shared_faces(records)
    rows = rows_by_setting(records, faces=faces)
    sig = significance(rows, metric, alpha, faces)
    context = (
        f"{len(records)} runs{f' of {description}' if description else ''}; data {data}"
        + (f", {len(faces.faces)} test faces" if faces else "")
        + "."
        + learning_rates(rows)
    )
    paths = write_comparison(rows, by, sig, context, out_dir)
    best_row = max(rows, key=lambda r: r.mean[metric])
    best_run = max(best_row.runs, key=lambda r: r.metrics[metric])
    if parent is not None:
        for path in paths:
            client.log_artifact(parent.info.run_id, str(path), "compare")
        log_best_setting(client, parent.info.run_id, best_row, best_run)
    return {"rows": rows, "significance": sig, "paths": paths, "best_run": best_run}


def learning_rates(rows: list[Row]) -> str:
    """`` Learning rate: adam 0.002, sgdm 0.05.``: each setting's ``optimizer.lr`` (several when
    its runs differ), so a reader sees at which rate each optimizer was compared."""
    parts = []
    for row in rows:
        values = sorted({r.lr for r in row.runs if r.lr is not None}, key=float)
        if values:
            parts.append(f"{row.label} {' / '.join(values)}")
    return f" Learning rate (optimizer.lr): {', '.join(parts)}." if parts else ""


def log_best_setting(client: MlflowClient, parent_id: str, best: Row, best_run: RunRecord) -> None:
    """The parent run carries its best setting: ``test/<metric>`` as the mean over that setting's
    seeds (the same names as its children's, so the runs table lines up), ``test_std/<metric>``,
    and tags naming the setting and its best run."""
    now = int(time.time() * 1000)
    values = {f"test/{m}": best.mean[c] for c, m in COLUMNS.items()}
    values |= {f"test_std/{m}": best.std[c] for c, m in COLUMNS.items()}
    client.log_batch(
        parent_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in values.items() if math.isfinite(v)],
        tags=[
            RunTag(tag_keys.BEST_SETTING, best.label),
            RunTag(tag_keys.BEST_SEEDS, ",".join(best.seeds)),
            RunTag(tag_keys.BEST_RUN, best_run.run_id),
        ],
    )
