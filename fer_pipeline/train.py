"""Stage ``train``: fit the configured model on train/val, checkpoint it, record an MLflow run.

    python -m fer_pipeline.train [hydra overrides]              # one run (the DVC stage)
    python -m fer_pipeline.train -m optimizer=sgdm,adam,rmsprop  # a sweep: one run per value,
                                                                 # grouped under a parent run
    python -m fer_pipeline.train --cfg job                      # Hydra's own flags work as usual

A single run trains into ``paths.checkpoints`` (``best.ckpt``: weights only; ``last.ckpt``: the
full training state, for resuming) and, when it is done, replaces ``paths.models`` with them and
writes ``reports/train.json`` (the MLflow run id and best validation accuracy). An interrupted run
is resumed by the same command (``resume=auto``). A sweep's jobs write into their Hydra job
folders and, with ``evaluate_after_fit`` (the default), test themselves into their own MLflow runs;
a failing job is reported and the others still run.

``params.yaml`` holds the experiment's choices; they are applied as the first overrides of the
command line, so every Hydra flag (``--cfg``, ``--info``, ``--help``, ``-cn``, ``-m``) sees them.
"""

from __future__ import annotations

import os
import sys
import traceback

from hydra._internal.utils import _run_hydra, get_args_parser
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from fer_pipeline import config as config_lib
from fer_pipeline.data.card import check_prepared
from fer_pipeline.dvc_outputs import restore_outputs
from fer_pipeline.errors import PipelineError, exit_on_error
from fer_pipeline.quiet import quiet_libraries
from fer_pipeline.ranks import is_leader
from fer_pipeline.tracking import PARENT_RUN_ENV


def _one_line(err: BaseException) -> str:
    text = str(err) if isinstance(err, PipelineError) else f"{type(err).__name__}: {err}"
    return " ".join(text.split())


def task(cfg: DictConfig):
    """Hydra's task function. One run: errors end the process (one line for a PipelineError). A
    sweep job: an error is printed and returned (a ``JobFailed``), so the remaining jobs still run."""
    from fer_pipeline.fit import train
    from fer_pipeline.tracking.sweep import JobFailed

    if HydraConfig.get().mode != RunMode.MULTIRUN:
        return exit_on_error(train)(cfg)
    try:
        return train(cfg)
    except Exception as err:  # noqa: BLE001 - one job's failure must not end the sweep
        if not isinstance(err, PipelineError):
            traceback.print_exc()
        job = HydraConfig.get().job
        message = f"{_one_line(err)} ({' '.join(job.override_dirname.split(','))})"
        print(f"error: sweep job {job.num} failed: {message}", file=sys.stderr)
        return JobFailed(message)


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    """Hydra's command line, with ``params.yaml`` applied first; checks the config (every swept
    value too) before any job starts."""
    if is_leader():  # DDP's other ranks replay this command line while rank 0 trains
        restore_outputs()
    parser = get_args_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    overrides = list(args.overrides)
    informational = any(
        (args.help, args.hydra_help, args.cfg, args.info, args.shell_completion, args.resolve)
    )
    if not informational:
        experiment = config_lib.chosen_experiment(overrides)
        if experiment and not args.multirun:
            given = {config_lib.override_key(o) for o in overrides}
            if missing := [k for k in config_lib.experiment_sweep(experiment) if k not in given]:
                raise PipelineError(
                    f"experiment={experiment} sweeps {', '.join(missing)}: run it with -m "
                    f"(python -m fer_pipeline.train -m experiment={experiment})"
                )
        from fer_pipeline.fit import check_train_config, relaunches_itself
        from fer_pipeline.tracking.server import check_tracking_uri

        experiments, data = set(), set()  # (tracking URI, experiment), (split folder, data.name)
        submitit = any(o.startswith("hydra/launcher=submitit") for o in overrides)

        def check(cfg: DictConfig) -> None:
            check_train_config(cfg)
            experiments.add((cfg.logger.tracking_uri, cfg.logger.experiment_name))
            data.add((cfg.paths.split, cfg.data.name))
            if args.multirun and relaunches_itself(cfg) and not submitit:
                raise PipelineError(
                    f"trainer.strategy={cfg.trainer.strategy} with trainer.devices="
                    f"{cfg.trainer.devices} cannot run inside a -m sweep started as one process "
                    "(Lightning starts each rank by replaying the command line); run each setting "
                    "on its own, under torchrun/srun, or with hydra/launcher=submitit_slurm"
                )

        config_lib.check_sweep(overrides, check=check)
        for uri in sorted({uri for uri, _ in experiments}):
            check_tracking_uri(uri)
        for split, name in sorted(data):  # the data each run names is the data prepared
            check_prepared(split, name)
    modes = [args.run, args.multirun, args.cfg, args.info, args.shell_completion]
    if sum(bool(m) for m in modes) > 1:  # Hydra's own rule, said in one line
        raise PipelineError("only one of --run, --multirun, --cfg, --info and -sc can be given")
    if not args.hydra_help:  # Hydra's help composes its own config only: no experiment choices
        args.overrides = config_lib.with_params(overrides)
    own_folder = any(o.startswith("hydra.sweep.dir=") for o in overrides)
    if args.multirun and not informational and len(experiments) == 1 and not own_folder:
        from fer_pipeline.tracking.sweep import continue_sweep

        ((uri, experiment),) = experiments
        if folder := continue_sweep(uri, experiment, args.overrides):
            args.overrides.append(f"hydra.sweep.dir={folder}")
    quiet_libraries()
    if not informational:
        from fer_pipeline.models.interrupt import install_interrupt_handlers

        install_interrupt_handlers()  # Ctrl-C, SIGTERM: checkpoints kept, run KILLED
    try:
        _run_hydra(
            args=args,
            args_parser=parser,
            task_function=task,
            config_path=str(config_lib.conf_dir()),  # the project's conf/, not the package's
            config_name="config",
        )
    except BaseException as err:
        if os.environ.get(PARENT_RUN_ENV):  # a sweep stopped midway: its parent run ends too
            from fer_pipeline.tracking.sweep import end_parent_run

            status = "KILLED" if isinstance(err, KeyboardInterrupt | SystemExit) else "FAILED"
            end_parent_run(status)
        raise
    if args.multirun:
        from fer_pipeline.tracking.sweep import FAILED_JOBS  # collected at the sweep's end

        if FAILED_JOBS:
            raise PipelineError(
                f"{len(FAILED_JOBS)} sweep job(s) failed ({'; '.join(FAILED_JOBS)}); the table "
                "covers the jobs that finished"
            )


if __name__ == "__main__":
    # The importable module's main: its task function pickles by reference, so launchers that run
    # sweep jobs in other processes (hydra/launcher=joblib, submitit) can send it there.
    from fer_pipeline.train import main as importable_main

    importable_main()
