"""Choose each optimizer's learning rate from a grid of finished training runs, on validation.

The grid's runs are the finished training runs whose ``compare.name`` is ``--grid`` (an experiment
such as conf/experiment/fer2013_lr_grid.yaml sets it); they must share every param but the
optimizer's and the seed. Each optimizer gets the rate with the highest mean ``val/acc_best``
(fer_pipeline/tracking/lr_grid.py); the test split plays no part.

    python -m fer_pipeline.choose_lr                        # the fer2013_lr_grid runs
    python -m fer_pipeline.choose_lr --grid my_grid --metric val/acc_best

Writes ``<paths.reports>/<grid>/lr_choice.md`` (the grid and the ``tuned_lr`` block to put in the
experiment that uses the rates) and prints it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_pipeline.config import load_config
from fer_pipeline.errors import PipelineError, exit_on_error
from fer_pipeline.quiet import quiet_libraries


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fer_pipeline.choose_lr", description=__doc__)
    parser.add_argument("--grid", default="fer2013_lr_grid", help="the runs' compare.name")
    parser.add_argument("--metric", default="val/acc_best", help="a validation metric")
    parser.add_argument("--out", help="output folder (default: <paths.reports>/<grid>)")
    parser.add_argument("--experiment", help="MLflow experiment (default: logger.experiment_name)")
    return parser.parse_args(argv)


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not args.metric.startswith("val/"):
        raise PipelineError(f"--metric {args.metric}: rates are chosen on validation (val/...)")
    # Imported after the arguments parse: --help answers without loading MLflow.
    from mlflow.tracking import MlflowClient

    from fer_pipeline.io import atomic_file
    from fer_pipeline.tracking.lr_grid import check_same_budget, choose, grid_points, render
    from fer_pipeline.tracking.runs import find_runs

    quiet_libraries()
    cfg = load_config([])
    client = MlflowClient(cfg.logger.tracking_uri)
    experiment = args.experiment or cfg.logger.experiment_name
    runs, _ = find_runs(client, experiment, params={"compare.name": args.grid})
    check_same_budget(runs)
    points = grid_points(runs, args.metric)
    chosen = choose(points)
    context = (
        f"{len(runs)} runs of grid '{args.grid}' (experiment '{experiment}'); each optimizer's "
        f"rate with the highest mean {args.metric} is chosen (ties: the smaller rate)."
    )
    text = render(points, chosen, args.metric, context)
    out = Path(args.out) if args.out else Path(cfg.paths.reports) / args.grid
    out.mkdir(parents=True, exist_ok=True)
    with atomic_file(out / "lr_choice.md") as tmp:
        tmp.write_text(text)
    print(text, end="")
    print(f"choose_lr: {out / 'lr_choice.md'}")


if __name__ == "__main__":
    main()
