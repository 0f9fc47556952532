"""A training run's MLflow record: its tags and name, opening (or reopening) it, ending it when the
fit does not finish, and what an interrupted run resumes from (its checkpoints and its run)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from fer_pipeline import config as config_lib
from fer_pipeline.data.datamodule import FERDataModule
from fer_pipeline.hashing import file_md5
from fer_pipeline.io import write_json
from fer_pipeline.outputs import LAST, MANIFEST, RUN_FILE
from fer_pipeline.tracking import tags as tags_lib
from fer_pipeline.tracking.dataset import log_dataset
from fer_pipeline.tracking.experiment import ensure_experiment
from fer_pipeline.tracking.provenance import dvc_hashes, flat_params, git_commit
from fer_pipeline.tracking.server import ResilientMLFlowLogger
from fer_pipeline.tracking.system_metrics import SystemMetrics
from fer_pipeline.tracking.tags import CHOICE_GROUPS

# Keys of the logger config that are ours, not the MLflow logger's.
LOGGER_OWN_KEYS = ("_target_", "log_model", "system_metrics_s")
# Keys that do not change what is trained: a run may resume across a change of these.
NOT_TRAINING = ("resume", "evaluate_after_fit", "evaluation", "compare", "hydra")


def run_tags(
    cfg: DictConfig, datamodule: FERDataModule, choices: dict[str, str], card: dict,
    parent: str | None = None,
) -> dict[str, str]:  # fmt: skip
    """The run's tags: choices, git commit, what data it read (``card``: the split's card), and
    its sweep's ``parent`` run."""
    tags = {tags_lib.choice(group): str(choices.get(group, "")) for group in CHOICE_GROUPS}
    tags |= {
        tags_lib.KIND: "train",
        "git.commit": git_commit(),
        tags_lib.DATA_NAME: datamodule.dataset_name,
        tags_lib.DATA_CLASSES: ",".join(datamodule.classes),
        **{f"data.size.{split}": str(n) for split, n in card["totals"].items()},
        "data.manifest_md5": file_md5(Path(cfg.paths.split) / MANIFEST),
        tags_lib.DATA_DIGEST: card["digest"],
    }
    for path, digest in dvc_hashes([cfg.paths.faces, cfg.paths.split]).items():
        tags[f"data.dvc_md5.{path}"] = digest
    if parent:
        tags[tags_lib.PARENT_RUN] = parent
    return tags


def fingerprint(cfg: DictConfig, data_digest: str) -> str:
    """What a run trains: its config (less :data:`NOT_TRAINING`) and the data's digest."""
    tree = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_TRAINING:
        tree.pop(key, None)
    tree["data_digest"] = data_digest
    return hashlib.md5(json.dumps(tree, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Resume:
    checkpoint: str | None = None  # last.ckpt to continue from
    run_id: str | None = None  # the MLflow run to continue


def plan_resume(cfg: DictConfig, folder: Path, digest: str, leader: bool = True) -> Resume:
    """What ``resume`` means here: the unfinished run in ``folder`` when it trains the same thing
    (``auto``), a given checkpoint, or a fresh start (an unfinished run left behind is marked
    KILLED in MLflow, so none stays RUNNING). Only the ``leader`` changes anything; the other DDP
    ranks come to the same answer from the same files."""
    choice = str(cfg.resume)
    if choice not in ("auto", "never"):
        record = Path(choice).with_name(RUN_FILE)
        run_id = json.loads(record.read_text()).get("run_id") if record.is_file() else None
        return Resume(choice, run_id)
    record_path, last = folder / RUN_FILE, folder / LAST
    record = json.loads(record_path.read_text()) if record_path.is_file() else None
    if record and choice == "auto" and last.is_file() and record["fingerprint"] == digest:
        if leader:
            print(f"train: resuming run {record['run_id']} from {last}")
        return Resume(str(last), record["run_id"])
    if not leader:
        return Resume()
    if record:
        why = {
            "never": "resume=never",
            "auto": "it trained another config or data"
            if last.is_file()
            else "it stopped before its first epoch ended",
        }[choice]
        print(f"train: starting over; the unfinished run {record['run_id']} in {folder} is "
              f"dropped ({why})")  # fmt: skip
        try:
            client = MlflowClient(record["tracking_uri"])
            if client.get_run(record["run_id"]).info.status == "RUNNING":
                client.set_terminated(record["run_id"], "KILLED")
        except Exception:  # noqa: BLE001 - another tracking store, or a deleted run
            pass
    shutil.rmtree(folder, ignore_errors=True)
    return Resume()


@contextmanager
def ends_run(logger: ResilientMLFlowLogger | None):
    """Mark the MLflow run KILLED (Ctrl-C, SIGTERM) or FAILED (an error) when the block does
    not finish, so no run stays RUNNING; the exception goes on. None: no run (a DDP rank > 0)."""
    try:
        yield
    except BaseException as err:
        if logger is None:
            raise
        stopped = isinstance(err, KeyboardInterrupt | SystemExit)
        status = "KILLED" if stopped else "FAILED"
        logger.safely(
            f"mark {status}",
            lambda: logger.experiment.set_terminated(logger.run_id, status),
            force=True,
        )
        raise


def run_name(cfg: DictConfig, choices: dict, parent: str | None = None) -> str:
    """``fusion adam seed42``, then the other training overrides of the command line or the sweep
    job (not params.yaml's), then where it ran: ``sweep <parent run> #<job>``, ``dvc <time>`` or
    ``<time>``, so no two runs share a name."""
    head = " ".join(str(choices.get(g)) for g in ("model", "optimizer")) + f" seed{cfg.seed}"
    hydra_cfg = HydraConfig.get()
    defaults = set(config_lib.params_overrides())  # params.yaml's choices: in the tags already
    extra = [
        o
        for o in hydra_cfg.overrides.task
        if o not in defaults
        and config_lib.override_key(o) not in ("model", "optimizer", "seed", "experiment")
        and config_lib.override_key(o).split(".")[0] not in NOT_TRAINING
    ]
    if parent:
        where = f"sweep {parent[:8]} #{hydra_cfg.job.num}"
    else:
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        where = f"dvc {now}" if os.environ.get("DVC_STAGE") else now
    return " ".join([head, *extra, "·", where])


def open_run(
    cfg: DictConfig, choices: dict, datamodule: FERDataModule, card: dict, resume: Resume,
    ckpt_dir: Path, trains: str, parent: str | None = None,
) -> ResilientMLFlowLogger:  # fmt: skip
    """The run's MLflow logger: the resumed run reopened, or a new run with its params and
    dataset (a child of the sweep's ``parent`` run, if any); its id recorded beside the
    checkpoints (rank 0 only: the one MLflow client)."""
    tags = run_tags(cfg, datamodule, choices, card, parent) | {tags_lib.FINGERPRINT: trains}
    logger_cfg = {k: v for k, v in cfg.logger.items() if k not in LOGGER_OWN_KEYS}
    ensure_experiment(MlflowClient(cfg.logger.tracking_uri), cfg.logger.experiment_name)
    logger = ResilientMLFlowLogger(
        **logger_cfg, run_name=run_name(cfg, choices, parent), tags=tags, run_id=resume.run_id
    )
    client = logger.experiment  # an MlflowClient for the run's store
    if resume.run_id:
        logger.safely("reopen the run", lambda: client.update_run(resume.run_id, "RUNNING"))
    else:
        logger.log_hyperparams(flat_params(cfg))
        logger.safely(
            "log the dataset",
            lambda: log_dataset(client, logger.run_id, card, cfg.paths.split, cfg.paths.faces),
        )
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    write_json(
        ckpt_dir / RUN_FILE,
        {"run_id": logger.run_id, "fingerprint": trains, "tracking_uri": cfg.logger.tracking_uri},
    )
    return logger


def system_metrics(cfg: DictConfig, resume: Resume) -> list[SystemMetrics]:
    """The system-metrics callback, unless ``logger.system_metrics_s`` is null."""
    interval = cfg.logger.get("system_metrics_s")
    if not interval:
        return []
    return [SystemMetrics(cfg.logger.tracking_uri, interval, resumed=bool(resume.run_id))]
