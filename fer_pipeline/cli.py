"""The command line of the training commands (``python -m fer_pipeline.train`` and
``python -m fer_pipeline.fit``): Hydra's own, through its public ``hydra.main``, with two additions:

- ``params.yaml``'s choices are applied as the first overrides, so every Hydra flag (``--cfg``,
  ``--info``, ``--help``, ``-cn``, ``-m``) sees them;
- every value, of every job of a sweep, is checked before any job starts, here, without torch: a
  bad value is refused in a second (``check_train_config``); then the tracking URI and the
  prepared data.

A sweep job that fails is reported and the others still run (:func:`run_job`); a rerun of an
interrupted sweep continues it (:func:`fer_pipeline.tracking.sweep.continue_sweep`).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig

from fer_pipeline import config as config_lib
from fer_pipeline.data.card import check_prepared
from fer_pipeline.data.loader_settings import loader_choice_problems
from fer_pipeline.dvc_outputs import restore_outputs
from fer_pipeline.errors import JobFailed, PipelineError, exit_on_error, one_line
from fer_pipeline.evaluation.settings import check_evaluation
from fer_pipeline.ranks import is_leader, relaunches_itself

INFO_CHOICES = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")


def hydra_parser() -> argparse.ArgumentParser:
    """The flags of Hydra's command line (``hydra.main``'s, Hydra 1.3), to read a command line
    before Hydra runs it."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--help", "-h", action="store_true")
    parser.add_argument("--hydra-help", action="store_true")
    parser.add_argument("--version", action="store_true")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--cfg", "-c", choices=["job", "hydra", "all"])
    parser.add_argument("--resolve", action="store_true")
    parser.add_argument("--package", "-p")
    parser.add_argument("--run", "-r", action="store_true")
    parser.add_argument("--multirun", "-m", action="store_true")
    parser.add_argument("--shell-completion", "-sc", action="store_true")
    parser.add_argument("--config-path", "-cp")
    parser.add_argument("--config-name", "-cn")
    parser.add_argument("--config-dir", "-cd")
    parser.add_argument("--experimental-rerun")
    parser.add_argument("--info", "-i", nargs="?", const="all", choices=INFO_CHOICES)
    return parser


def hydra_argv(args: argparse.Namespace, overrides: list[str]) -> list[str]:
    """``args`` (see :func:`hydra_parser`) as a command line again, with ``overrides``."""
    argv = [flag for flag, on in (
        ("--help", args.help), ("--hydra-help", args.hydra_help), ("--version", args.version),
        ("--resolve", args.resolve), ("--run", args.run), ("--multirun", args.multirun),
        ("--shell-completion", args.shell_completion),
    ) if on]  # fmt: skip
    for flag, value in (
        ("--cfg", args.cfg), ("--package", args.package), ("--config-path", args.config_path),
        ("--config-name", args.config_name), ("--config-dir", args.config_dir),
        ("--experimental-rerun", args.experimental_rerun), ("--info", args.info),
    ):  # fmt: skip
        if value is not None:
            argv += [flag, value]
    return argv + list(overrides)


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
    if str(trainer.get("accelerator")) in ("gpu", "cuda"):
        import torch  # only asked when a GPU is: the other checks stay light

        if not torch.cuda.is_available():
            problems.append(
                f"trainer.accelerator={trainer.accelerator} but this machine has no CUDA GPU: "
                f"use trainer=cpu, or trainer.accelerator=cpu (DDP over CPU processes with gloo)"
            )
    resume = str(cfg.resume)
    if resume not in ("auto", "never") and not Path(resume).is_file():
        problems.append(f"resume must be auto, never or a checkpoint file; {resume} does not exist")
    if problems:
        raise PipelineError("; ".join(problems))
    check_evaluation(cfg)  # a bad occlusion window fails now, not after training


def run_job(work: Callable[[DictConfig], float], cfg: DictConfig, multirun: bool):
    """Run one job: a single run's error ends the process (one line for a PipelineError); a sweep
    job's error is printed and returned as a :class:`JobFailed`, so the remaining jobs still run."""
    from hydra.core.hydra_config import HydraConfig

    if not multirun:
        return exit_on_error(work)(cfg)
    try:
        return work(cfg)
    except Exception as err:  # noqa: BLE001 - one job's failure must not end the sweep
        if not isinstance(err, PipelineError):
            traceback.print_exc()
        job = HydraConfig.get().job
        message = f"{one_line(err)} ({' '.join(job.override_dirname.split(','))})"
        print(f"error: sweep job {job.num} failed: {message}", file=sys.stderr)
        return JobFailed(message)


def check_command(args: argparse.Namespace, overrides: list[str]) -> set[tuple[str, str]]:
    """Every job's config checked (values, then tracking URIs and prepared data); returns the
    (tracking URI, experiment) pairs the jobs log to."""
    experiment = config_lib.chosen_experiment(overrides)
    if experiment and not args.multirun:
        given = {config_lib.override_key(o) for o in overrides}
        if missing := [k for k in config_lib.experiment_sweep(experiment) if k not in given]:
            raise PipelineError(
                f"experiment={experiment} sweeps {', '.join(missing)}: run it with -m "
                f"(python -m fer_pipeline.train -m experiment={experiment})"
            )
    experiments, data = set(), set()  # (tracking URI, experiment), (split folder, data.name)
    submitit = any(o.startswith("hydra/launcher=submitit") for o in overrides)

    def check(cfg: DictConfig) -> None:
        check_train_config(cfg)
        experiments.add((cfg.logger.tracking_uri, cfg.logger.experiment_name))
        data.add((cfg.paths.split, cfg.data.name))
        if args.multirun and relaunches_itself(cfg.trainer) and not submitit:
            raise PipelineError(
                f"trainer.strategy={cfg.trainer.strategy} with trainer.devices="
                f"{cfg.trainer.devices} cannot run inside a -m sweep started as one process "
                "(Lightning starts each rank by replaying the command line); run each setting "
                "on its own, under torchrun/srun, or with hydra/launcher=submitit_slurm"
            )

    config_lib.check_sweep(overrides, check=check)
    from fer_pipeline.tracking.server import check_tracking_uri  # MLflow: after the light checks

    for uri in sorted({uri for uri, _ in experiments}):
        check_tracking_uri(uri)
    for split, name in sorted(data):  # the data each run names is the data prepared
        check_prepared(split, name)
    return experiments


@exit_on_error
def main(task: Callable[[DictConfig], object], argv: list[str] | None = None) -> None:
    """Run Hydra's command line ``argv`` (default ``sys.argv[1:]``) with the task function
    ``task`` (importable by reference, so launchers that run jobs in other processes can send it):
    checks first, ``params.yaml``'s choices applied, an unfinished sweep continued."""
    import hydra

    if is_leader():  # DDP's other ranks replay this command line while rank 0 trains
        restore_outputs()
    args = hydra_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    overrides = list(args.overrides)
    informational = any(
        (args.help, args.hydra_help, args.version, args.cfg, args.info, args.shell_completion,
         args.resolve)
    )  # fmt: skip
    modes = [args.run, args.multirun, args.cfg, args.info, args.shell_completion]
    if sum(bool(m) for m in modes) > 1:  # Hydra's own rule, said in one line
        raise PipelineError("only one of --run, --multirun, --cfg, --info and -sc can be given")
    experiments = set() if informational else check_command(args, overrides)
    if not (args.hydra_help or args.shell_completion):  # Hydra's own config: no experiment choices
        overrides = config_lib.with_params(overrides)
    own_folder = any(o.startswith("hydra.sweep.dir=") for o in overrides)
    if args.multirun and len(experiments) == 1 and not own_folder:
        from fer_pipeline.tracking.sweep import continue_sweep

        ((uri, experiment),) = experiments
        if folder := continue_sweep(uri, experiment, overrides):
            overrides.append(f"hydra.sweep.dir={folder}")
    from fer_pipeline.quiet import quiet_libraries

    quiet_libraries()
    if not informational:
        from fer_pipeline.models.interrupt import install_interrupt_handlers

        install_interrupt_handlers()  # Ctrl-C, SIGTERM: checkpoints kept, run KILLED
    original = sys.argv
    sys.argv = [original[0], *hydra_argv(args, overrides)]  # what hydra.main reads
    try:
        hydra.main(version_base="1.3", config_path=str(config_lib.conf_dir()),
                   config_name="config")(task)()  # fmt: skip
    finally:
        sys.argv = original
