"""The comparison table's files: ``table.md`` (Markdown, with the significance statement),
``table.csv`` and ``table.png`` (grouped bars with 95 % intervals), from
:mod:`fer_pipeline.evaluation.compare_stats`' rows."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no global backend, safe in notebooks

from fer_pipeline.evaluation.compare_stats import COLUMNS, Row
from fer_pipeline.io import atomic_file


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
        plot_bars(tmp, rows, by, context.split(" Learning rate")[0])
    return paths
