"""One training run, as the ``train`` stage runs it: fit, checkpoint, publish, log, register and
test (see :mod:`fer_pipeline.train` for the command line). Heavy (torch, Lightning, MLflow), so the
command line imports it only when it trains."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

from fer_pipeline import config as config_lib
from fer_pipeline.data.card import CARD_NAME, read_card
from fer_pipeline.data.datamodule import FERDataModule, build_datamodule, loader_choice_problems
from fer_pipeline.errors import PipelineError
from fer_pipeline.evaluation.report import write_test_report
from fer_pipeline.evaluation.settings import check_evaluation
from fer_pipeline.hashing import file_md5
from fer_pipeline.inference.mlflow_model import MODEL_ARTIFACT, example_face, log_model
from fer_pipeline.inference.mlflow_model import save as save_model
from fer_pipeline.io import atomic_dir, clean_stale, write_json
from fer_pipeline.models.checkpoint import build_net, read_checkpoint
from fer_pipeline.models.history import EpochHistory
from fer_pipeline.models.interrupt import StopOnSignal, between_batches
from fer_pipeline.models.log_progress import LogProgress
from fer_pipeline.models.module import FERModule
from fer_pipeline.progress import on_terminal
from fer_pipeline.ranks import is_leader
from fer_pipeline.tracking import PARENT_RUN_ENV
from fer_pipeline.tracking.dataset import log_dataset
from fer_pipeline.tracking.experiment import ensure_experiment
from fer_pipeline.tracking.provenance import dvc_hashes, flat_params, git_commit
from fer_pipeline.tracking.registry import REGISTERED_MODEL, register
from fer_pipeline.tracking.server import ResilientMLFlowLogger
from fer_pipeline.tracking.sweep import FINGERPRINT_TAG, finished_job
from fer_pipeline.tracking.system_metrics import SystemMetrics
from fer_pipeline.tracking.test_report import log_test_report

CHOICE_GROUPS = ("data", "model", "optimizer", "scheduler", "trainer")
# Keys of the trainer config that FERModule takes; the rest are pytorch_lightning.Trainer arguments.
MODULE_SPEED_KEYS = ("channels_last", "compile", "compile_backend")
# Keys of the logger config that are ours, not the MLflow logger's.
LOGGER_OWN_KEYS = ("_target_", "log_model", "system_metrics_s")
CURVES = "train_curves.csv"  # per-epoch losses, accuracies and lr (a DVC plot)
RUN_FILE = "run.json"  # beside an unfinished run's checkpoints: its MLflow run and fingerprint
# Keys that do not change what is trained: a run may resume across a change of these.
NOT_TRAINING = ("resume", "evaluate_after_fit", "evaluation", "compare", "hydra")


def check_train_config(cfg: DictConfig) -> None:
    """Refuse values that cannot train, in one line, before anything is read or logged."""
    trainer, loader, optimizer = cfg.trainer, cfg.loader, cfg.optimizer
    problems = []
    if not isinstance(trainer.max_epochs, int) or trainer.max_epochs < 1:
        problems.append(f"trainer.max_epochs must be an integer >= 1, got {trainer.max_epochs}")
    if not isinstance(optimizer.get("lr"), int | float) or optimizer.lr <= 0:
        problems.append(f"optimizer.lr must be a number > 0, got {optimizer.get('lr')}")
    if optimizer.get("weight_decay", 0) < 0:
        problems.append(f"optimizer.weight_decay must be >= 0, got {optimizer.weight_decay}")
    if not 0 <= optimizer.get("momentum", 0) < 1:
        problems.append(f"optimizer.momentum must be in [0, 1), got {optimizer.momentum}")
    for key in ("batch_size", "eval_batch_size", "input_size"):
        if not isinstance(loader[key], int) or loader[key] < 1:
            problems.append(f"loader.{key} must be an integer >= 1, got {loader[key]}")
    problems += loader_choice_problems(loader.source, loader.augmentation)
    if not 0 <= cfg.loss.label_smoothing < 1:
        problems.append(f"loss.label_smoothing must be in [0, 1), got {cfg.loss.label_smoothing}")
    if not isinstance(trainer.accumulate_grad_batches, int) or trainer.accumulate_grad_batches < 1:
        problems.append(
            f"trainer.accumulate_grad_batches must be an integer >= 1, "
            f"got {trainer.accumulate_grad_batches}"
        )
    if str(trainer.get("accelerator")) in ("gpu", "cuda") and not torch.cuda.is_available():
        problems.append(
            f"trainer.accelerator={trainer.accelerator} but this machine has no CUDA GPU: use "
            f"trainer=cpu, or trainer.accelerator=cpu (DDP over CPU processes with gloo)"
        )
    resume = str(cfg.resume)
    if resume not in ("auto", "never") and not Path(resume).is_file():
        problems.append(f"resume must be auto, never or a checkpoint file; {resume} does not exist")
    if problems:
        raise PipelineError("; ".join(problems))
    check_evaluation(cfg)  # a bad occlusion window fails now, not after training


def class_weights(labels: list[int], num_classes: int) -> torch.Tensor:
    """Balanced loss weights ``N / (K * n_k)`` from training labels; 0 for a class never seen."""
    counts = torch.bincount(torch.tensor(labels), minlength=num_classes).float()
    return torch.where(counts > 0, counts.sum() / (counts * len(counts)), torch.zeros_like(counts))


def run_tags(
    cfg: DictConfig, datamodule: FERDataModule, choices: dict[str, str], card: dict
) -> dict[str, str]:
    """The run's tags: choices, git commit, and what data it read (``card``: the split's card)."""
    manifest = Path(cfg.paths.split) / "manifest.csv"
    tags = {f"fer.{group}": str(choices.get(group, "")) for group in CHOICE_GROUPS}
    tags |= {
        "fer.kind": "train",
        "git.commit": git_commit(),
        "data.name": datamodule.dataset_name,
        "data.classes": ",".join(datamodule.classes),
        **{f"data.size.{split}": str(n) for split, n in card["totals"].items()},
        "data.manifest_md5": file_md5(manifest),
        "data.digest": card["digest"],
    }
    for path, digest in dvc_hashes([cfg.paths.faces, cfg.paths.split]).items():
        tags[f"data.dvc_md5.{path}"] = digest
    if os.environ.get(PARENT_RUN_ENV):
        tags["mlflow.parentRunId"] = os.environ[PARENT_RUN_ENV]
    return tags


def version_tags(cfg: DictConfig, choices: dict[str, str], card: dict) -> dict[str, str]:
    """Tags of the run's registered model version (its test accuracy is added once tested)."""
    return {
        "model": str(choices.get("model", cfg.model.name)),
        "optimizer": str(choices.get("optimizer", "")),
        "seed": str(cfg.seed),
        "data.name": str(card.get("name", "")),
        "data.digest": card["digest"],
    }


def build_module(cfg: DictConfig, datamodule: FERDataModule) -> FERModule:
    """The configured net in a FERModule (loss, optimizer, speed options); sets up ``fit`` data.
    A missing ImageNet weights file fails here, before any image is loaded."""
    in_channels = 1 if datamodule.grayscale else 3
    net = build_net(cfg.model, datamodule.num_classes, in_channels)
    datamodule.setup("fit")
    return FERModule(
        net,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.scheduler else None,
        classes=datamodule.classes,
        label_smoothing=cfg.loss.label_smoothing,
        class_weights=(
            class_weights(datamodule.splits["train"].labels, datamodule.num_classes)
            if cfg.loss.class_weights
            else None
        ),
        config=OmegaConf.to_container(cfg, resolve=True),
        in_channels=in_channels,
        **{key: cfg.trainer[key] for key in MODULE_SPEED_KEYS if key in cfg.trainer},
    )


def native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bf16 natively (x86 AVX512-BF16 or AMX-BF16, Arm BF16), read from
    ``cpuinfo``'s flags; ``False`` where there is no such file."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags |= set(line.split(":", 1)[-1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def build_trainer(cfg: DictConfig, **kwargs) -> pl.Trainer:
    """``pytorch_lightning.Trainer`` from the ``trainer`` config, less the keys FERModule takes."""
    trainer_cfg = {k: v for k, v in cfg.trainer.items() if k not in MODULE_SPEED_KEYS}
    precision = str(trainer_cfg.get("precision", ""))
    if precision.startswith("bf16") and trainer_cfg.get("accelerator") == "cpu":
        if not native_bf16():  # emulated bf16 is slower than fp32
            print(f"train: this CPU has no native bf16 (AVX512-BF16, AMX or Arm BF16): "
                  f"trainer.precision={precision} -> 32-true")  # fmt: skip
            trainer_cfg["precision"] = "32-true"
    if trainer_cfg.get("sync_batchnorm") and trainer_cfg.get("accelerator") == "cpu":
        # torch's SyncBatchNorm runs on GPUs only; CPU processes keep their own batch statistics
        print("train: trainer.sync_batchnorm is for GPUs; off with trainer.accelerator=cpu")
        trainer_cfg["sync_batchnorm"] = False
    return instantiate(trainer_cfg, **kwargs)


def progress_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """Progress lines in a log (:class:`LogProgress`) when stdout is no terminal, where
    Lightning's bar shows nothing until an epoch ends; none when ``trainer.enable_progress_bar``
    is off."""
    if on_terminal() or not cfg.trainer.get("enable_progress_bar", True):
        return []
    return [LogProgress()]


def checkpoint_callbacks(folder: Path) -> tuple[ModelCheckpoint, ModelCheckpoint]:
    """``best.ckpt``: the weights of the best val/acc epoch (what is used); ``last.ckpt``: the
    whole training state after each epoch (optimizer, scheduler, loops, RNGs: what resumes)."""
    best = ModelCheckpoint(
        dirpath=folder,
        filename="best",
        monitor="val/acc",
        mode="max",
        save_weights_only=True,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    last = ModelCheckpoint(  # no monitor, top 1: the newest epoch, replacing the one before
        dirpath=folder, filename="last", save_top_k=1, enable_version_counter=False
    )
    return best, last


def fingerprint(cfg: DictConfig, data_digest: str) -> str:
    """What a run trains: its config (less :data:`NOT_TRAINING`) and the data's digest."""
    tree = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_TRAINING:
        tree.pop(key, None)
    tree["data_digest"] = data_digest
    return hashlib.md5(json.dumps(tree, sort_keys=True, default=str).encode()).hexdigest()


def relaunches_itself(cfg: DictConfig) -> bool:
    """Whether Lightning would start the DDP ranks itself, by running this command line again in
    new processes (not when torchrun or SLURM started one process per rank already)."""
    strategy, devices = str(cfg.trainer.get("strategy", "auto")), cfg.trainer.get("devices", 1)
    external = any(key in os.environ for key in ("TORCHELASTIC_RUN_ID", "SLURM_NTASKS"))
    return strategy.startswith("ddp") and str(devices) not in ("1", "[0]") and not external


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
    record_path, last = folder / RUN_FILE, folder / "last.ckpt"
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


def publish(checkpoints: Path, models_dir: Path) -> None:
    """Replace ``models_dir`` with the finished run's checkpoints, in one rename."""
    with atomic_dir(models_dir) as tmp:
        for name in ("best.ckpt", "last.ckpt"):
            try:
                os.link(checkpoints / name, tmp / name)  # same file system: no copy
            except OSError:
                shutil.copy2(checkpoints / name, tmp / name)


def run_name(cfg: DictConfig, choices: dict) -> str:
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
    if parent := os.environ.get(PARENT_RUN_ENV):
        where = f"sweep {parent[:8]} #{hydra_cfg.job.num}"
    else:
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        where = f"dvc {now}" if os.environ.get("DVC_STAGE") else now
    return " ".join([head, *extra, "·", where])


def open_run(
    cfg: DictConfig, choices: dict, datamodule: FERDataModule, card: dict, resume: Resume,
    ckpt_dir: Path, trains: str,
) -> ResilientMLFlowLogger:  # fmt: skip
    """The run's MLflow logger: the resumed run reopened, or a new run with its params and
    dataset; its id recorded beside the checkpoints (rank 0 only: the one MLflow client)."""
    tags = run_tags(cfg, datamodule, choices, card) | {FINGERPRINT_TAG: trains}
    logger_cfg = {k: v for k, v in cfg.logger.items() if k not in LOGGER_OWN_KEYS}
    ensure_experiment(MlflowClient(cfg.logger.tracking_uri), cfg.logger.experiment_name)
    logger = ResilientMLFlowLogger(
        **logger_cfg, run_name=run_name(cfg, choices), tags=tags, run_id=resume.run_id
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


def train(cfg: DictConfig) -> float:
    """Fit, checkpoint, log; return the best validation accuracy (what a sweeper maximises)."""
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    choices = dict(hydra_cfg.runtime.choices)
    # main() has checked every value (of every sweep job) and the tracking URI before any job.
    job_dir = Path(hydra_cfg.runtime.output_dir)
    if multirun:
        models_dir, reports_dir, ckpt_dir = (
            job_dir / n for n in ("models", "reports", "checkpoints")
        )
    else:
        models_dir, reports_dir = Path(cfg.paths.models), Path(cfg.paths.reports)
        ckpt_dir = Path(cfg.paths.checkpoints)
    leader = is_leader()
    if leader:
        clean_stale(models_dir)
    card = read_card(Path(cfg.paths.split) / CARD_NAME)
    trains = fingerprint(cfg, card["digest"])
    if multirun and (done := finished_job(cfg.logger.tracking_uri, trains)):
        # a rerun of an interrupted sweep: this job finished before, into the same parent run
        print(f"train: sweep job {hydra_cfg.job.num} finished before (run {done.info.run_id}); "
              "skipped")  # fmt: skip
        return float(done.data.metrics.get("val/acc_best", 0.0))
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")  # bad data fails here, before any run is opened or dropped
    resume = plan_resume(cfg, ckpt_dir, trains, leader)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = build_module(cfg, datamodule)
    logger = open_run(cfg, choices, datamodule, card, resume, ckpt_dir, trains) if leader else None
    with ends_run(logger):
        best_cb, last_cb = checkpoint_callbacks(ckpt_dir)
        history = EpochHistory()
        trainer = build_trainer(
            cfg,
            logger=logger or False,  # DDP's other ranks: no MLflow client at all
            callbacks=[best_cb, last_cb, history, StopOnSignal(), *system_metrics(cfg, resume)]
            + progress_callbacks(cfg),
            default_root_dir=str(job_dir),
            **({} if on_terminal() else {"enable_progress_bar": False}),
        )
        with between_batches():  # Ctrl-C stops at a batch end, never inside a write
            trainer.fit(
                module, datamodule=datamodule, ckpt_path=resume.checkpoint, weights_only=True
            )
        best_score = float(best_cb.best_model_score or 0.0)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # DDP is over: rank 0 publishes, logs and tests alone (torchmetrics would otherwise
            # wait for the other ranks to sync), and they return
            torch.distributed.destroy_process_group()
        if not leader:
            return best_score
        if trainer.world_size > 1:
            print(f"train: trained in {trainer.world_size} processes ({cfg.trainer.strategy})")
        best = read_checkpoint(ckpt_dir / "best.ckpt")
        client = logger.experiment  # an MlflowClient for the run's store
        publish(ckpt_dir, models_dir)
        # A sweep keeps its checkpoints in MLflow only (see the end); a single run in paths.models.
        model_uri = None
        if cfg.logger.get("log_model", True):
            with tempfile.TemporaryDirectory() as tmp:
                folder = save_model(
                    models_dir / "best.ckpt", Path(tmp) / MODEL_ARTIFACT, datamodule.classes,
                    example_face(datamodule.splits["val"].images[0]),
                )  # fmt: skip
                model_uri = logger.safely(
                    "log the MLflow model", lambda: log_model(client, logger.run_id, folder)
                )
        if model_uri:
            version = logger.safely(
                "register the model",
                lambda: register(
                    client, logger.run_id, model_uri, version_tags(cfg, choices, card)
                ),
            )
            if version:
                print(f"train: registered {REGISTERED_MODEL} version {version} ({model_uri})")
        best_path = (
            f"runs:/{logger.run_id}/{MODEL_ARTIFACT}" if multirun else str(models_dir / "best.ckpt")
        )
        logger.safely(
            "tag the checkpoint", lambda: client.set_tag(logger.run_id, "fer.checkpoint", best_path)
        )
        summary = {
            "mlflow_run_id": logger.run_id,
            "mlflow_experiment_id": logger.experiment_id,
            "tracking_uri": cfg.logger.tracking_uri,
            "best_checkpoint": best_path,
            "best_epoch": int(best["epoch"]),
            "val_acc_best": best_score,  # = the run's last val/acc_best metric
        }
        history.write(reports_dir / CURVES)
        write_json(reports_dir / "train.json", summary)
        print(f"train: best val/acc {best_score:.4f} (epoch {best['epoch']}), run {logger.run_id}")

        if cfg.evaluate_after_fit:
            module.load_state_dict(best["state_dict"])
            metrics = write_test_report(
                module.eval(), datamodule, reports_dir, cfg.evaluation,
                accelerator=cfg.trainer.accelerator,
            )  # fmt: skip
            logger.safely(
                "log the test report",
                lambda: log_test_report(client, logger.run_id, metrics, reports_dir),
            )
            print(f"test: accuracy {metrics['test']['accuracy']:.4f} -> {reports_dir}/metrics.json")
    logger.report_unsent(reports_dir)
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # finished: nothing left to resume
    if multirun:  # the run's artifacts hold the checkpoints; keep one copy of each, not two
        shutil.rmtree(models_dir, ignore_errors=True)
        shutil.rmtree(job_dir / "lightning_logs", ignore_errors=True)
    return best_score
