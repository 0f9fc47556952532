"""A parent MLflow run for each Hydra multirun, so a sweep's runs are grouped in the MLflow UI.

The sweep's state (its parent run, the jobs that failed) belongs to :class:`ParentRunCallback`.
Its jobs learn their parent run from ``FER_PIPELINE_PARENT_RUN_ID`` (:func:`parent_run_id`): an
environment variable, because launchers may run the jobs in other processes."""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from fer_pipeline.errors import JobFailed, PipelineError
from fer_pipeline.tracking import tags
from fer_pipeline.tracking.experiment import ensure_experiment
from fer_pipeline.tracking.registry import crown_best
from fer_pipeline.tracking.runs import find_runs, runs_of

SWEEP_KEYS_TAG, SWEEP_KEY_TAG, SWEEP_DIR_TAG = tags.SWEEP_KEYS, tags.SWEEP_KEY, tags.SWEEP_DIR
PARENT_RUN_ENV = "FER_PIPELINE_PARENT_RUN_ID"  # set while a sweep runs: its parent run's id
DEFAULT_BY = ("model", "optimizer")  # a setting, when nothing says otherwise
SUMMARY_METRICS = ("val/acc_best", "test/accuracy", "test/f1_macro", "test/specificity_macro")


def parent_run_id() -> str | None:
    """The parent run of the sweep this process runs a job of, or None (not a sweep job)."""
    return os.environ.get(PARENT_RUN_ENV) or None


# In a failed job's folder: launchers may run jobs in other processes.
FAILED_FILE = "job_failed.txt"


def sweep_key(experiment: str, task_overrides: list[str]) -> str:
    """The same ``-m`` command (its overrides, ``params.yaml``'s included, in their order) into
    the same MLflow experiment gives the same key."""
    text = json.dumps([experiment, [o for o in task_overrides if not o.startswith("hydra")]])
    return hashlib.md5(text.encode()).hexdigest()


def unfinished_sweep(client: MlflowClient, experiment: str, key: str) -> Run | None:
    """The newest sweep of ``key`` when it did not finish (stopped, killed, or failed jobs) and
    its folder is still there: a rerun of its command continues it."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.`{tags.KIND}` = 'sweep' and tags.`{SWEEP_KEY_TAG}` = '{key}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs or runs[0].info.status == "FINISHED":
        return None
    return runs[0] if Path(runs[0].data.tags.get(SWEEP_DIR_TAG, "")).is_dir() else None


def finished_job(tracking_uri: str, parent: str | None, fingerprint: str) -> Run | None:
    """The FINISHED training run of the sweep whose parent run is ``parent`` that trained
    ``fingerprint``, if any: a continued sweep skips that job."""
    if not parent:
        return None
    client = MlflowClient(tracking_uri)
    experiment = client.get_run(parent).info.experiment_id
    runs = client.search_runs(
        [experiment],
        filter_string=(
            f"tags.`{tags.PARENT_RUN}` = '{parent}' and tags.`{tags.FINGERPRINT}` = "
            f"'{fingerprint}' and attributes.status = 'FINISHED'"
        ),
        max_results=1,
    )
    return runs[0] if runs else None


def setting_keys(by: str | list[str] | None, parent) -> list[str]:
    """``--by`` or ``compare.by``; else the keys the parent sweep varied, seed aside; else
    model and optimizer."""
    if isinstance(by, str):
        by = [k.strip() for k in by.split(",") if k.strip()]
    if by:
        return list(by)
    if parent is not None and parent.data.tags.get(SWEEP_KEYS_TAG):
        swept = [k for k in parent.data.tags[SWEEP_KEYS_TAG].split(",") if k != "seed"]
        if swept:
            return swept
    return list(DEFAULT_BY)


def swept(overrides: list[str]) -> list[str]:
    """The overrides that sweep (``optimizer=sgdm,adam``), as the user wrote them."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [o.input_line for o in parsed if o.is_sweep_override()]


def sweep_overrides(config: DictConfig) -> list[str]:
    """What the sweep varies: the config's ``hydra.sweeper.params`` (an experiment's sweep) that the
    command line does not replace (``optimizer=sgdm`` replaces ``optimizer: sgdm,adam``, as in
    Hydra's sweeper), then the command line's sweeping overrides."""
    task = list(config.hydra.overrides.task)
    given = {key_of(o) for o in task}
    params = config.hydra.sweeper.get("params") or {}
    return [f"{k}={v}" for k, v in params.items() if key_of(k) not in given] + swept(task)


def key_of(override: str) -> str:
    """The config key an override sets: ``++tuned_lr.adam=0.1`` -> ``tuned_lr.adam``."""
    return override.split("=", 1)[0].lstrip("+~")


def summary_table(client: MlflowClient, parent_id: str, experiment: str) -> str:
    """A Markdown table of the parent's child runs: run name and their main metrics."""
    runs = client.search_runs(
        [experiment],
        filter_string=f"tags.`{tags.PARENT_RUN}` = '{parent_id}'",
        order_by=["attributes.start_time ASC"],
    )
    lines = [
        "| run | " + " | ".join(SUMMARY_METRICS) + " |",
        "|---" * (1 + len(SUMMARY_METRICS)) + "|",
    ]
    for run in runs:
        values = [run.data.metrics.get(m) for m in SUMMARY_METRICS]
        cells = ["" if v is None else f"{v:.4f}" for v in values]
        lines.append(f"| {run.info.run_name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


class ParentRunCallback(Callback):
    """Opens a parent run when a multirun starts and closes it when it ends.

    Each job's run is tagged ``mlflow.parentRunId`` with it (see :func:`parent_run_id`), which is
    how the MLflow UI nests runs. At the end the parent gets ``sweep_summary.md``, a table of its
    runs' metrics, also printed, and the comparison table; when jobs failed, the sweep ends with
    exit status 2 and one line naming them. A sweep that stops before its end (Ctrl-C, SIGTERM, an
    error) leaves its parent run KILLED, and the same command continues it.
    """

    def __init__(self) -> None:
        self.open: tuple[str, str] | None = None  # (tracking URI, parent run id) while running
        self.failed: list[str] = []  # the failed jobs' messages, once the sweep has ended

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        # HydraConfig is not set yet at this point; the multirun config carries the hydra node.
        client = MlflowClient(config.logger.tracking_uri)
        overrides = list(config.hydra.overrides.task)
        varied = sweep_overrides(config)
        key = sweep_key(config.logger.experiment_name, overrides)
        sweep_dir = str(config.hydra.sweep.dir)
        run = unfinished_sweep(client, config.logger.experiment_name, key)
        if run is not None and run.data.tags[SWEEP_DIR_TAG] == sweep_dir:  # see continue_sweep
            client.update_run(run.info.run_id, "RUNNING")
        else:
            run = client.create_run(
                ensure_experiment(client, config.logger.experiment_name),
                run_name="sweep " + " ".join(varied),
                tags={
                    tags.KIND: "sweep",
                    SWEEP_DIR_TAG: sweep_dir,
                    SWEEP_KEY_TAG: key,
                    SWEEP_KEYS_TAG: ",".join(key_of(o) for o in varied),
                },
            )
            client.log_param(run.info.run_id, "sweep.overrides", " ".join(overrides))
        os.environ[PARENT_RUN_ENV] = run.info.run_id  # for the jobs, wherever they run
        self.open = (config.logger.tracking_uri, run.info.run_id)
        self.failed = []
        atexit.register(self.end, "KILLED")  # Hydra calls on_multirun_end only when all ran
        for stale in Path(config.hydra.sweep.dir).glob(f"*/{FAILED_FILE}"):  # a reused folder
            stale.unlink()

    def end(self, status: str) -> None:
        """Mark the open parent run ``status``, if one is open (a sweep stopped midway)."""
        if self.open is None:
            return
        (uri, run_id), self.open = self.open, None
        os.environ.pop(PARENT_RUN_ENV, None)
        MlflowClient(uri).set_terminated(run_id, status)

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        # A job that raised would raise again on `return_value`; train returns JobFailed instead.
        # This runs in the job's process (another one under the joblib or submitit launchers).
        completed = job_return.status == JobStatus.COMPLETED
        value = job_return.return_value if completed else None
        if isinstance(value, JobFailed):
            failed = Path(config.hydra.runtime.output_dir) / FAILED_FILE
            failed.write_text(f"job {config.hydra.job.num}: {value.message}")

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        failed = [p.read_text() for p in Path(config.hydra.sweep.dir).glob(f"*/{FAILED_FILE}")]
        self.failed = sorted(failed, key=lambda text: int(text.split()[1].rstrip(":")))
        if self.open is None:
            return
        (uri, run_id), self.open = self.open, None
        os.environ.pop(PARENT_RUN_ENV, None)
        client = MlflowClient(uri)
        run = client.get_run(run_id)
        table = summary_table(client, run_id, run.info.experiment_id)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "sweep_summary.md"
            path.write_text(table)
            client.log_artifact(run_id, str(path))
        print(f"sweep {run_id}:\n{table}")
        self.compare(client, config, run)
        client.set_terminated(run_id, "FAILED" if self.failed else "FINISHED")
        if self.failed:  # the exit status says it; Hydra lets SystemExit through its callbacks
            print(f"error: {len(self.failed)} sweep job(s) failed ({'; '.join(self.failed)}); "
                  "the table covers the jobs that finished", file=sys.stderr)  # fmt: skip
            raise SystemExit(2)

    @staticmethod
    def compare(client: MlflowClient, config: DictConfig, parent) -> None:
        """The comparison table of the sweep's runs (see :mod:`fer_pipeline.compare`); a sweep
        whose runs cannot be compared still finishes, with the reason printed."""
        # Imported here: the statistics and plotting it needs (scipy, matplotlib) would otherwise
        # load in every sweep job, which imports this module for JobFailed.
        from fer_pipeline.tracking.compare_runs import compare_runs

        experiment = client.get_experiment(parent.info.experiment_id).name
        try:
            runs, _ = find_runs(client, experiment, parent.info.run_id)
            result = compare_runs(
                client,
                runs,
                setting_keys(config.compare.by, parent),
                Path(config.paths.reports) / config.compare.name,
                metric=config.compare.metric,
                alpha=config.compare.alpha,
                parent=parent,
                description=runs_of(parent),
            )
        except PipelineError as err:
            print(f"compare: not written: {err}", file=sys.stderr)
            return
        print(result["paths"][0].read_text())
        print(f"compare: {', '.join(str(p) for p in result['paths'])} (and on the parent run)")
        best = result["best_run"]
        print(crown_best(client, best.run_id, best.name))


def continue_sweep(tracking_uri: str, experiment: str, task_overrides: list[str]) -> str | None:
    """The folder of the unfinished sweep that ``task_overrides`` (a ``-m`` command line, with
    ``params.yaml``'s choices) started before, if any: rerun there, the sweep goes on where it
    stopped (finished jobs skipped, the cut one resumed from its checkpoints, into the same
    parent run). ``None``: a new sweep."""
    client = MlflowClient(tracking_uri)
    run = unfinished_sweep(client, experiment, sweep_key(experiment, task_overrides))
    if run is None:
        return None
    finished = client.search_runs(
        [run.info.experiment_id],
        filter_string=(
            f"tags.`{tags.PARENT_RUN}` = '{run.info.run_id}' and attributes.status = 'FINISHED'"
        ),
        max_results=10_000,
    )
    folder = run.data.tags[SWEEP_DIR_TAG]
    print(f"train: continuing sweep {run.info.run_id} ({run.info.status}) in {folder}: "
          f"{len(finished)} job(s) finished before")  # fmt: skip
    return folder
