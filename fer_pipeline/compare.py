"""Compare tracked runs: the paper's Table 1 (one row per setting, mean +- std over seeds, 95 % CI,
significance of the best setting) as Markdown, CSV and a bar chart.

    python -m fer_pipeline.compare                         # every finished training run
    python -m fer_pipeline.compare --parent latest         # the newest sweep's runs
    python -m fer_pipeline.compare --parent <run id> --by optimizer
    python -m fer_pipeline.compare --tag fer.model=fusion --by optimizer,seed ...
    python -m fer_pipeline.compare --run <run id> --run <run id> ... --by model   # chosen runs

Writes ``<paths.reports>/<compare.name>/table.{md,csv,png}`` (or ``--out``) and, for a sweep, logs
them to its parent run under ``compare/``. Points the registered model's alias ``champion`` at the
best setting's best run. Defaults come from the ``compare`` config node.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_pipeline.config import load_config
from fer_pipeline.errors import PipelineError, exit_on_error
from fer_pipeline.quiet import quiet_libraries


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fer_pipeline.compare", description=__doc__)
    parser.add_argument("--parent", help="a sweep's parent run id, or 'latest'")
    parser.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--run", action="append", default=[], metavar="RUN_ID",
        help="compare these runs (repeat it; e.g. runs of several sweeps), not --parent/--tag",
    )  # fmt: skip
    parser.add_argument("--by", help="config keys that make a setting, comma-separated")
    parser.add_argument("--metric", help="picks the best setting (default: compare.metric)")
    parser.add_argument("--alpha", type=float, help="significance level (default: compare.alpha)")
    parser.add_argument("--out", help="output folder (default: <paths.reports>/<compare.name>)")
    parser.add_argument("--experiment", help="MLflow experiment (default: logger.experiment_name)")
    return parser.parse_args(argv)


def parse_tags(pairs: list[str]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PipelineError(f"--tag {pair!r}: expected KEY=VALUE")
        tags[key] = value
    return tags


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Imported after the arguments parse: --help answers without loading MLflow and scipy.
    from mlflow.tracking import MlflowClient

    from fer_pipeline.tracking.compare_runs import compare_runs
    from fer_pipeline.tracking.registry import crown_best
    from fer_pipeline.tracking.runs import find_runs, given_runs, runs_of
    from fer_pipeline.tracking.sweep import setting_keys

    quiet_libraries()  # no MLflow download bar per run compared
    cfg = load_config([])
    client = MlflowClient(cfg.logger.tracking_uri)
    experiment = args.experiment or cfg.logger.experiment_name
    if args.run and (args.parent or args.tag):
        raise PipelineError("--run names the runs itself: use it without --parent and --tag")
    if args.run:
        runs, parent, description = given_runs(client, args.run), None, "the runs given"
    else:
        runs, parent = find_runs(client, experiment, args.parent, parse_tags(args.tag))
        description = runs_of(parent) if parent else f"experiment '{experiment}'"
    by = setting_keys(args.by or cfg.compare.by, parent)
    out = Path(args.out) if args.out else Path(cfg.paths.reports) / cfg.compare.name
    result = compare_runs(
        client,
        runs,
        by,
        out,
        metric=args.metric or cfg.compare.metric,
        alpha=args.alpha if args.alpha is not None else cfg.compare.alpha,
        parent=parent,
        description=description,
    )
    print(result["paths"][0].read_text())
    print(f"compare: {', '.join(str(p) for p in result['paths'])}")
    best = result["best_run"]
    print(crown_best(client, best.run_id, best.name))


if __name__ == "__main__":
    main()
