"""Find a learning rate for the composed experiment's optimizer: Lightning's learning-rate range test.

One procedure for every optimizer, so an optimizer comparison does not favour the one whose default
happens to suit the data: train ``lr_find.steps`` batches from the experiment's initial weights with
the learning rate rising exponentially from ``lr_find.min_lr`` to ``lr_find.max_lr``, and take
Lightning's suggestion (the steepest fall of the smoothed training loss). The weights are put back
afterwards; nothing is logged to MLflow.

    python -m fer_pipeline.find_lr experiment=fer2013_cpu optimizer=sgdm    # one optimizer
    for o in sgdm adam rmsprop; do python -m fer_pipeline.find_lr experiment=fer2013_cpu optimizer=$o; done

Writes ``<paths.reports>/lr_find/<optimizer>.json`` (the suggestion, the settings and the curve) and
``<optimizer>.png`` (loss against learning rate), and prints the override that uses it:
``++tuned_lr.<optimizer>=<lr>`` (see conf/experiment/fer2013_table1.yaml).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fer_pipeline.config import load_config, stage_args
from fer_pipeline.data.card import check_prepared
from fer_pipeline.errors import PipelineError, exit_on_error
from fer_pipeline.quiet import quiet_libraries


def optimizer_choice(cfg) -> str:
    """The name of the composed optimizer in conf/optimizer/ (``sgdm``, ``adam``, ...): the file
    whose ``_target_`` is the config's."""
    import yaml

    from fer_pipeline.config import conf_dir

    target = cfg.optimizer._target_
    for path in sorted((conf_dir() / "optimizer").glob("*.yaml")):
        if (yaml.safe_load(path.read_text()) or {}).get("_target_") == target:
            return path.stem
    return str(target).rsplit(".", 1)[-1].lower()


def check_settings(settings) -> None:
    if not 0 < settings.min_lr < settings.max_lr:
        raise PipelineError(
            f"lr_find needs 0 < min_lr < max_lr, got {settings.min_lr} and {settings.max_lr}"
        )
    if not isinstance(settings.steps, int) or settings.steps < 10:
        raise PipelineError(f"lr_find.steps must be an integer >= 10, got {settings.steps}")


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    overrides = stage_args(argv, __doc__)
    cfg = load_config(overrides)
    check_settings(cfg.lr_find)
    check_prepared(cfg.paths.split, cfg.data.name)
    # Imported once the config is known to be good: --help and config errors answer at once.
    import pytorch_lightning as pl
    from matplotlib.figure import Figure
    from pytorch_lightning.tuner import Tuner

    from fer_pipeline.cli import check_train_config
    from fer_pipeline.data.datamodule import build_datamodule
    from fer_pipeline.io import atomic_file, write_json
    from fer_pipeline.models.trainer import build_module, build_trainer

    check_train_config(cfg)
    quiet_libraries()
    choice = optimizer_choice(cfg)
    settings = cfg.lr_find
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    with tempfile.TemporaryDirectory() as tmp:  # Lightning's copy of the initial weights
        trainer = build_trainer(  # lr_find stops after its steps, over as many epochs as it takes
            cfg, logger=False, default_root_dir=tmp, enable_checkpointing=False, max_epochs=-1,
            max_steps=settings.steps, max_time=None,
        )  # fmt: skip
        finder = Tuner(trainer).lr_find(
            module, datamodule=datamodule, min_lr=settings.min_lr, max_lr=settings.max_lr,
            num_training=settings.steps, early_stop_threshold=settings.early_stop,
            update_attr=False,
        )  # fmt: skip
    suggestion = finder.suggestion() if finder is not None else None
    if suggestion is None:
        raise PipelineError(
            f"lr_find: no suggestion for {choice} (the loss did not fall over {settings.steps} "
            f"steps from {settings.min_lr} to {settings.max_lr}); widen the range or add steps"
        )
    out = Path(cfg.paths.reports) / "lr_find"
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / f"{choice}.json",
        {
            "optimizer": choice,
            "suggested_lr": float(suggestion),
            "procedure": "Lightning Tuner.lr_find (exponential), steepest fall of the loss",
            "min_lr": settings.min_lr,
            "max_lr": settings.max_lr,
            "steps": settings.steps,
            "early_stop": settings.early_stop,
            "batch_size": cfg.loader.batch_size,
            "seed": cfg.seed,
            "overrides": overrides,
            "lr": [float(v) for v in finder.results["lr"]],
            "loss": [float(v) for v in finder.results["loss"]],
        },
    )
    fig = Figure(figsize=(5, 3.5), layout="tight")
    ax = fig.subplots()
    ax.plot(finder.results["lr"], finder.results["loss"])
    ax.axvline(suggestion, color="tab:red", linestyle="--", label=f"suggested {suggestion:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title(f"{choice}: learning-rate range test, {settings.steps} steps", fontsize=9)
    ax.legend()
    with atomic_file(out / f"{choice}.png") as tmp_png:
        fig.savefig(tmp_png, dpi=110, format="png")
    print(f"find_lr: {choice}: suggested lr {suggestion:.4g} -> {out / choice}.json; "
          f"use it with ++tuned_lr.{choice}={suggestion:.4g}")  # fmt: skip


if __name__ == "__main__":
    main()
