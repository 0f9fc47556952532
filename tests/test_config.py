"""Config composition: every group combination, params.yaml as the one place for choices."""

from __future__ import annotations

import itertools

import pytest
import yaml
from omegaconf import OmegaConf

from fer_pipeline.config import config_choices, load_config, params_overrides, with_params
from fer_pipeline.errors import PipelineError
from tests.conftest import ROOT


def group_combinations() -> list[list[str]]:
    """Each option of each group once (the others at their first option), and every model with
    every optimizer: the combinations that interact."""
    groups = config_choices()
    first = {g: f"{g}={opts[0]}" for g, opts in groups.items()}
    combos = [
        list({**first, group: f"{group}={option}"}.values())
        for group, opts in groups.items()
        for option in opts
    ]
    combos += [
        list({**first, "model": f"model={m}", "optimizer": f"optimizer={o}"}.values())
        for m, o in itertools.product(groups["model"], groups["optimizer"])
    ]
    return combos


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_every_group_combination_composes():
    choices = config_choices()
    assert set(choices["model"]) == {"fusion", "ensemble", "resnet50", "resnet34"}
    assert set(choices["optimizer"]) == {"sgdm", "adam", "rmsprop"}
    assert {"cpu", "gpu", "ddp"} <= set(choices["trainer"])
    combos = group_combinations()
    assert len(combos) >= 4 * 3 + sum(len(options) for options in choices.values())
    for overrides in combos:
        cfg = load_config(overrides)
        assert cfg.model.net._target_.startswith("fer_pipeline.models.hybrid.")
        assert cfg.optimizer._partial_ is True
        assert cfg.trainer.max_epochs >= 1
        assert OmegaConf.missing_keys(cfg) == set()


def test_params_yaml_holds_exactly_the_open_choices_of_conf():
    """One source of truth: each value params.yaml sets is `???` in conf/, and nothing else is."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        # Groups left open in the defaults list make compose fail; fill them with any option.
        anyone = [f"{g}={opts[0]}" for g, opts in config_choices().items() if g != "logger"]
        open_values = OmegaConf.missing_keys(compose("config", overrides=anyone))
    defaults = (ROOT / "conf" / "config.yaml").read_text()
    open_groups = {g for g in config_choices() if f"- {g}: ???" in defaults}
    given = {o.split("=")[0] for o in params_overrides(ROOT / "params.yaml")}
    assert given == open_values | open_groups


def test_params_yaml_sets_values_beside_choices_and_null_leaves_conf(tmp_path):
    """What `dvc exp run -S` writes: a group's option and values changed in it; nulls are conf/'s."""
    params = tmp_path / "params.yaml"
    params.write_text(
        "model: resnet34\n"  # -S model=resnet34 replaces the group's mapping by its option
        "optimizer: {choice: sgdm, lr: 0.0003}\n"
        "trainer: {choice: cpu, max_epochs: 20}\n"
        "loader: {batch_size: null, augment: {erase: 0.25}}\n"
        "seed: 7\n"
    )
    assert params_overrides(params) == [
        "model=resnet34", "optimizer=sgdm", "optimizer.lr=0.0003", "trainer=cpu",
        "trainer.max_epochs=20", "loader.augment.erase=0.25", "seed=7",
    ]  # fmt: skip
    cfg = load_config(["data=synthetic", "face.detector=none", "scheduler=step"], params)
    assert (cfg.model.name, cfg.optimizer.lr, cfg.trainer.max_epochs) == ("resnet34", 0.0003, 20)
    assert cfg.loader.batch_size == 32 and cfg.loader.augment.erase == 0.25  # null: conf/'s
    # A group chosen on the command line takes its values from conf/, not params.yaml's.
    assert "trainer.max_epochs=20" not in with_params(["trainer=gpu"], params)
    given = ["data=synthetic", "face.detector=none", "scheduler=step", "trainer.max_epochs=3"]
    assert load_config(given, params).trainer.max_epochs == 3


def test_command_line_overrides_win_over_params():
    merged = with_params(["optimizer=adam", "optimizer.lr=0.1"])
    assert "optimizer=adam" in merged and "optimizer=sgdm" not in merged
    cfg = load_config(["optimizer=adam", "optimizer.lr=0.1"])
    assert cfg.optimizer._target_ == "torch.optim.Adam" and cfg.optimizer.lr == 0.1


def test_params_choose_the_experiment():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    cfg = load_config()
    assert cfg.model.name == params["model"]["choice"]
    assert cfg.face.detector == params["face"]["detector"]
    assert cfg.seed == params["seed"]


def test_unknown_group_value_is_a_one_line_error():
    with pytest.raises(PipelineError) as err:
        load_config(["model=resnet99"])
    message = str(err.value)
    assert "\n" not in message
    assert "model/resnet99" in message and "fusion" in message  # what, and what would do


def test_unknown_key_is_a_one_line_error():
    with pytest.raises(PipelineError, match="loader.batch_sise"):
        load_config(["loader.batch_sise=3"])


def test_missing_project_root_is_explained(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PipelineError, match="run from the project root"):
        load_config()


def test_dvc_stage_outputs_are_the_configured_paths():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    paths = load_config().paths
    assert stages["prepare"]["outs"] == [paths.raw]
    assert stages["crop"]["outs"] == [paths.faces]
    assert stages["split"]["outs"] == [paths.split]
    assert stages["train"]["outs"] == [paths.models, f"{paths.reports}/train_curves.csv"]
    assert stages["train"]["metrics"] == [f"{paths.reports}/train.json"]
    assert stages["evaluate"]["metrics"] == [f"{paths.reports}/scores.json"]
    assert f"{paths.reports}/metrics.json" in stages["evaluate"]["outs"]
    # Cached (no `cache: false`): a stage restores them from DVC's cache when it starts.
    assert not [o for s in stages.values() for o in s.get("metrics", []) + s.get("plots", [])
                if isinstance(o, dict)]  # fmt: skip


def test_dvc_stages_track_the_params_they_read():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    tracked = {p for stage in stages.values() for p in stage.get("params", [])}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert tracked == set(params)


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / "conf" / group).glob("*.yaml"))


@pytest.mark.parametrize("scheduler", options("scheduler"))
@pytest.mark.parametrize("optimizer", options("optimizer"))
def test_optimizer_and_scheduler_configs_build_what_train_uses(optimizer, scheduler):
    import torch
    from hydra.utils import instantiate

    from fer_pipeline.models.module import per_step

    cfg = load_config([f"optimizer={optimizer}", f"scheduler={scheduler}"])
    params = [torch.nn.Parameter(torch.ones(2))]
    opt = instantiate(cfg.optimizer)(params=params)
    assert type(opt).__name__ == {"sgdm": "SGD", "adam": "Adam", "rmsprop": "RMSprop"}[optimizer]
    factory = instantiate(cfg.scheduler) if cfg.scheduler else None
    steps = {"total_steps": 10} if per_step(factory) else {}  # FERModule gives the run's steps
    sched = factory(optimizer=opt, **steps) if factory else None
    assert (sched is None) == (scheduler == "none")


def test_an_experiment_sets_its_choices_over_params():
    """params.yaml's model, optimizer and seed would beat the experiment's on the command line:
    they are left out when the experiment sets or sweeps them."""
    merged = with_params(["experiment=paper_table1"])
    assert not [o for o in merged if o.split("=")[0] in ("model", "optimizer", "seed")]
    assert "data=synthetic" in merged and "trainer=cpu" in merged
    cfg = load_config(["experiment=paper_table1", "optimizer=rmsprop", "seed=2"])
    assert cfg.model.name == "fusion" and cfg.seed == 2
    assert cfg.compare.name == "paper_table1" and list(cfg.compare.by) == ["optimizer"]
    with pytest.raises(PipelineError, match="experiment/nothing"):
        load_config(["experiment=nothing"])


def test_the_fer2013_recipe_composes_for_gpu_and_for_a_cpu_look():
    cfg = load_config(["experiment=fer2013_hybrid"])
    assert (cfg.data.name, cfg.face.detector, cfg.model.name) == ("fer2013", "none", "fusion")
    assert cfg.model.net.stem == "small" and cfg.optimizer._target_ == "torch.optim.Adam"
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "bf16-mixed"
    assert cfg.loader.source == "packed" and cfg.evaluation.tta == "tencrop"
    assert cfg.loss.label_smoothing == 0.1
    cpu = load_config(["experiment=fer2013_hybrid", "trainer=cpu", "trainer.max_epochs=3"])
    assert cpu.trainer.accelerator == "cpu" and cpu.trainer.max_epochs == 3
    assert cpu.trainer.channels_last is True  # the recipe's choice survives the trainer swap


def test_a_class_map_can_be_given_on_the_command_line():
    cfg = load_config(["data=folder", "data.class_map={smiles: happy, frown: sad, other: null}"])
    assert OmegaConf.to_container(cfg.data.class_map) == {
        "smiles": "happy", "frown": "sad", "other": None,
    }  # fmt: skip
    assert load_config(["data=folder"]).data.class_map is None  # none given: folder names


def test_the_cpu_recipe_and_its_tables_compose_with_each_optimizer_at_its_own_rate():
    cfg = load_config(["experiment=fer2013_cpu"])
    assert (cfg.data.name, cfg.model.name, cfg.trainer.accelerator) == ("fer2013", "fusion", "cpu")
    assert cfg.scheduler._target_ == "torch.optim.lr_scheduler.OneCycleLR"
    assert cfg.scheduler.max_lr == cfg.optimizer.lr == 0.002 and cfg.trainer.max_time
    # an experiment that builds on the recipe keeps its choices over params.yaml's
    table = {o: load_config(["experiment=fer2013_table1", f"optimizer={o}", "seed=1"])
             for o in ("sgdm", "adam", "rmsprop")}  # fmt: skip
    for name, composed in table.items():
        assert composed.optimizer.lr == composed.tuned_lr[name] == composed.scheduler.max_lr
        assert (
            composed.scheduler._target_.endswith("OneCycleLR") and composed.data.name == "fer2013"
        )
    assert len({c.optimizer.lr for c in table.values()}) == 3
    # the published tables keep the augmentation they were measured with, whatever the recipe's
    heavier = {"hflip": 0.5, "rotate": 10, "shift": 0.1, "scale": 0.1, "brightness_contrast": 0.2,
               "erase": 0.0}  # fmt: skip
    for name in ("fer2013_table1", "fer2013_lr_grid", "fer2013_models"):
        tables = load_config([f"experiment={name}"])
        assert dict(tables.loader.augment) == heavier and tables.loss.label_smoothing == 0.1, name
    assert cfg.loader.augment.rotate == 0 and cfg.loss.label_smoothing == 0  # the recipe's, lighter
    assert load_config(["optimizer=sgdm"]).optimizer.lr == 0.05  # no tuned_lr: the file's default
    assert load_config(["optimizer=sgdm", "++tuned_lr.sgdm=0.01"]).optimizer.lr == 0.01
    models = load_config(["experiment=fer2013_models", "model=resnet34", "seed=1"])
    assert models.model.name == "resnet34" and models.trainer.max_epochs == 1  # Table 1's budget
    assert models.scheduler.cycle_momentum is False  # as Table 1
