"""Choosing each optimizer's learning rate from a grid of tracked runs, on validation only.

The procedure (the same for every optimizer, so no optimizer is favoured by its defaults): every
run of the grid trains at the same budget and settings, differing only in the optimizer and its
rate; a rate's score is the mean ``val/acc_best`` of its runs (over seeds, when there are several);
each optimizer gets its best-scoring rate (ties: the smaller rate). Test metrics play no part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlflow.entities import Run

from fer_pipeline.errors import PipelineError
from fer_pipeline.tracking.runs import describe, setting_value

# Params that may differ between the runs of one grid: what it varies (the optimizer, its rate,
# and one-cycle's peak, which is that rate), and the seed.
VARIED = ("optimizer.", "tuned_lr.", "scheduler.max_lr", "seed")
# Params that say where a run logs or writes, not what it trains.
ELSEWHERE = ("logger.", "paths.", "compare.", "resume", "evaluate_after_fit")


@dataclass
class GridPoint:
    """One optimizer at one rate: its runs' names and validation scores."""

    optimizer: str
    lr: str
    runs: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(self.scores) / len(self.scores)


def check_same_budget(runs: list[Run]) -> None:
    """Refuse, naming the first param that differs, grid runs trained otherwise than at one
    budget and setting (epochs, model, data, schedule ...): their scores are not comparable."""
    first = runs[0]
    for run in runs[1:]:
        keys = set(first.data.params) | set(run.data.params)
        for key in sorted(keys):
            if key.startswith(VARIED + ELSEWHERE):
                continue
            a, b = first.data.params.get(key), run.data.params.get(key)
            if a != b:
                raise PipelineError(
                    f"grid runs {describe(first)} and {describe(run)} differ in {key} ({a} vs "
                    f"{b}): a grid varies only the optimizer and its rate"
                )


def grid_points(runs: list[Run], metric: str) -> list[GridPoint]:
    """The grid's points (optimizer, rate), each with its runs' ``metric``, sorted by optimizer
    then rate. Refuses runs without the metric or without an optimizer and rate."""
    points: dict[tuple[str, str], GridPoint] = {}
    for run in runs:
        optimizer, lr = setting_value(run, "optimizer"), run.data.params.get("optimizer.lr")
        if not optimizer or lr is None:
            raise PipelineError(f"run {describe(run)} has no optimizer choice or optimizer.lr")
        if metric not in run.data.metrics:
            raise PipelineError(f"run {describe(run)} has no metric {metric} (not validated?)")
        point = points.setdefault((optimizer, lr), GridPoint(optimizer, lr))
        point.runs.append(run.info.run_name or run.info.run_id[:8])
        point.scores.append(run.data.metrics[metric])
    return sorted(points.values(), key=lambda p: (p.optimizer, float(p.lr)))


def choose(points: list[GridPoint]) -> dict[str, GridPoint]:
    """Each optimizer's best point: the highest score, the smaller rate on a tie. Refuses an
    optimizer tried at one rate only (that is no choice)."""
    chosen: dict[str, GridPoint] = {}
    for optimizer in sorted({p.optimizer for p in points}):
        own = [p for p in points if p.optimizer == optimizer]
        if len(own) < 2:
            raise PipelineError(
                f"optimizer {optimizer} was tried at one rate only ({own[0].lr}): a grid needs "
                f"two or more"
            )
        chosen[optimizer] = max(own, key=lambda p: (p.score, -float(p.lr)))
    return chosen


def at_edge(point: GridPoint, points: list[GridPoint]) -> bool:
    """Whether ``point``'s rate is its optimizer's smallest or largest: the best rate may lie
    outside the grid."""
    rates = sorted(float(p.lr) for p in points if p.optimizer == point.optimizer)
    return float(point.lr) in (rates[0], rates[-1])


def render(points: list[GridPoint], chosen: dict[str, GridPoint], metric: str, context: str) -> str:
    """The grid as Markdown: a row per point (its score, runs, whether chosen), the chosen rates
    as the ``tuned_lr`` block an experiment file takes, and a warning for a rate at a grid's edge."""
    lines = [
        f"| optimizer | optimizer.lr | {metric} (mean) | runs | chosen |",
        "|---|---|---|---|---|",
    ]
    for p in points:
        mark = "yes" if chosen[p.optimizer] is p else ""
        lines.append(
            f"| {p.optimizer} | {p.lr} | {p.score:.4f} | {len(p.runs)} ({', '.join(p.runs)}) "
            f"| {mark} |"
        )
    lines += ["", context, "", "```yaml", "tuned_lr:"]
    lines += [f"  {o}: {p.lr}" for o, p in chosen.items()]
    lines.append("```")
    edges = [o for o, p in chosen.items() if at_edge(p, points)]
    if edges:
        lines += ["", f"At the grid's edge (the best rate may lie beyond it): {', '.join(edges)}."]
    return "\n".join(lines) + "\n"
