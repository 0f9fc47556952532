"""The train entry point's command line: Hydra's own flags, and values that cannot train refused in
one line before anything starts (in-process, in a tiny project without data)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from fer_pipeline import evaluate, train
from tests.conftest import free_port, run_module


def test_cfg_job_prints_the_composed_config_from_the_command_line(project):
    result = run_module("train", "--cfg", "job", "optimizer.lr=0.123", cwd=project)
    config = yaml.safe_load(result.stdout)
    assert config["model"]["name"] == "resnet34"  # params.yaml's choice (tests' tiny params)
    assert config["optimizer"]["lr"] == 0.123 and config["trainer"]["max_epochs"] == 1
    assert "hydra" not in config


@pytest.mark.parametrize(
    "args,expected",
    [
        (["-c", "job", "model=fusion"], "name: fusion"),
        (["--cfg", "hydra"], "sweep:"),
        (["--info"], "Hydra"),
        (["--info", "config"], "Config search path"),
        (["--help"], "== Configuration groups =="),
        (["--hydra-help"], "Hydra (1."),
        (["-cn", "config", "--cfg", "job"], "optimizer:"),
        (["-sc", "install=bash"], "hydra_bash_completion"),
    ],
)
def test_hydra_flags_work_as_hydra_documents_them(project, call_main, args, expected):
    code, out, err = call_main(train.main, *args)
    assert code == 0, err
    assert expected in out


def test_resolved_config_shows_params_yaml_choices(project, call_main):
    code, out, _ = call_main(train.main, "--cfg", "job", "--resolve")
    assert code == 0 and "_target_: torch.optim.SGD" in out  # params.yaml: optimizer sgdm


@pytest.mark.parametrize(
    "args,message",
    [
        (["trainer.max_epochs=0"], "trainer.max_epochs must be an integer >= 1, got 0"),
        (["optimizer.lr=-1"], "optimizer.lr must be a number > 0, got -1"),
        (["loader.batch_size=0"], "loader.batch_size must be an integer >= 1, got 0"),
        (["-m", "loader.source=packed,bogus"], "loader.source must be one of"),
        (["-m", "optimizer.lr=0.1,-0.1"], "optimizer.lr must be a number > 0, got -0.1"),
        (["resume=/nowhere/last.ckpt"], "/nowhere/last.ckpt does not exist"),
        (["--cfg", "job", "-m"], "only one of --run, --multirun, --cfg"),
    ],
)
def test_values_that_cannot_train_are_one_line_errors(project, call_main, args, message):
    code, _, err = call_main(train.main, *args)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (project / "mlflow.db").exists() and not (project / "models").exists()


def test_unreachable_tracking_server_fails_at_once_naming_it(
    prepared_project, call_main, monkeypatch
):
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    code, _, err = call_main(train.main, "trainer.max_epochs=1")
    assert code == 2 and err.count("\n") == 1
    assert f"tracking URI {uri} cannot be reached" in err
    assert not (prepared_project / "checkpoints").exists()


def test_a_run_refuses_data_other_than_it_names(prepared_project, call_main):
    """The split holds the synthetic set; training or testing on FER2013 stops before any work."""
    runs = [(train.main, ["data=fer2013"]), (train.main, ["-m", "data=fer2013"]),
            (evaluate.main, ["data=fer2013"])]  # fmt: skip
    for stage, args in runs:
        code, _, err = call_main(stage, *args)
        assert code == 2 and err.count("\n") == 1, err
        assert "data/split holds 'synthetic'" in err and "this run's data is 'fer2013'" in err
        assert "python -m fer_pipeline.prepare data=fer2013" in err
    assert not (prepared_project / "checkpoints").exists()
    assert not any((prepared_project / p).exists() for p in ("mlflow.db", "models"))


def test_a_run_without_prepared_data_says_how_to_prepare_it(project, call_main):
    code, _, err = call_main(train.main)
    assert code == 2 and err.count("\n") == 1
    assert "no prepared data: data/split/card.json is missing" in err


HEAVY = "print('HEAVY', [m for m in ('torch', 'pytorch_lightning', 'mlflow') if m in sys.modules])"


@pytest.mark.parametrize(
    "module,args,expected,exit_code",
    [
        ("train", ["--help"], "== Configuration groups ==", 0),
        ("train", ["--cfg", "job"], "optimizer:", None),  # returns: Hydra printed the config
        ("prepare", ["--help"], "Stage ``prepare``", 0),
        ("crop", ["-h"], "Stage ``crop``", 0),
        ("split", ["--help"], "Stage ``split``", 0),
        ("evaluate", ["--help"], "Stage ``evaluate``", 0),
        ("predict", ["--help"], "usage: python -m fer_pipeline.predict", 0),
        ("compare", ["--help"], "usage: python -m fer_pipeline.compare", 0),
        ("find_lr", ["--help"], "learning-rate range test", 0),
        ("app.__main__", ["--help"], "usage: python -m fer_pipeline.app", 0),
        ("evaluate", ["evaluation.tta=bogus"], "evaluation.tta must be one of", 2),
        ("train", ["optimizer.lr=-1"], "optimizer.lr must be a number > 0, got -1", 2),
        ("train", ["-m", "loader.batch_size=32,0"], "loader.batch_size must be an integer", 2),
        ("fit", ["trainer.max_epochs=0"], "trainer.max_epochs must be an integer >= 1", 2),
        ("fit", ["--help"], "== Configuration groups ==", 0),
        ("package", ["--help"], "Stage ``package``", 0),
    ],
)
def test_every_command_answers_help_and_bad_config_without_the_heavy_stack(
    project, module, args, expected, exit_code
):
    """Each answers in well under a second (torch, Lightning and MLflow take seconds to import;
    benchmarks/startup.py and docs/results/ have the times)."""
    code = (
        f"import sys\nfrom fer_pipeline.{module} import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit as stop:\n    print('EXIT', stop.code)\n"
        + HEAVY
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    out = result.stdout + result.stderr
    assert expected in out, out[-2000:]
    exits = re.findall(r"^EXIT (\S+)$", result.stdout, re.M)
    assert exits == ([] if exit_code is None else [str(exit_code)]), out[-2000:]
    assert "HEAVY []" in result.stdout, out[-2000:]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_gpu_trainers_on_a_machine_without_one_are_a_one_line_error(project, call_main):
    for trainer in ("trainer=ddp", "trainer=gpu"):
        code, _, err = call_main(train.main, trainer)
        assert code == 2 and err.count("\n") == 1, err
        assert "trainer.accelerator=gpu but this machine has no CUDA GPU: use trainer=cpu" in err


def test_hydra_shell_completion_completes_the_training_command_in_bash(project):
    """`eval "$(fer-train -sc install=bash)"`, then Tab: config groups and their choices."""
    bin_dir = Path(sys.executable).parent
    script = (
        'eval "$(fer-train -sc install=bash)"\n'
        "for word in optimi optimizer=; do\n"
        '  COMP_LINE="fer-train $word"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()\n'
        "  COMP_WORDS=(fer-train $word); COMP_CWORD=1\n"
        '  hydra_bash_completion; echo "got: ${COMPREPLY[*]}"\n'
        "done\n"
    )
    result = subprocess.run(
        ["bash", "-c", script], cwd=project, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
    )  # fmt: skip
    assert result.stdout.splitlines() == [
        "got: optimizer=",
        "got: optimizer=adam optimizer=rmsprop optimizer=sgdm",
    ], result.stderr[-2000:]
