"""Composing an experiment's config: ``conf/`` + the choices in ``params.yaml`` + command-line overrides.

``conf/`` holds every value and marks the experiment's choices ``???``; ``params.yaml`` fills them in.
Command-line overrides win over both. Both are read from the project root, which is the working
directory (DVC runs every stage there).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fer_pipeline.errors import PipelineError, one_line

CONF_DIR = Path("conf")
PARAMS_FILE = Path("params.yaml")
CHOICE = "choice"  # params.yaml: a config group's option, beside the values changed in it
OPTIONAL_GROUPS = ("experiment",)  # chosen on the command line only, none by default


def conf_dir() -> Path:
    """The absolute ``conf/`` of the project root (the working directory)."""
    if not (CONF_DIR / "config.yaml").is_file():
        raise PipelineError(
            f"{(CONF_DIR / 'config.yaml').resolve()} not found: run from the project root"
        )
    return CONF_DIR.resolve()


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _format(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def params_overrides(path: Path = PARAMS_FILE) -> list[str]:
    """``params.yaml`` as Hydra overrides. A config group is ``{choice: <option>, <key>: <value>}``
    (or just ``<option>``): ``model: {choice: fusion}`` -> ``model=fusion``; its other keys, and
    every other key, dotted (``trainer.max_epochs=20``). A null leaf leaves conf/'s value: that is
    how params.yaml lists the values ``dvc exp run -S`` changes without changing them."""
    if not path.is_file():
        raise PipelineError(
            f"{path.resolve()} not found: run from the project root (where params.yaml is)"
        )
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise PipelineError(f"{path} is not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(tree, dict):
        raise PipelineError(f"{path} must be a mapping of config choices")
    overrides = []
    for key, value in tree.items():
        if isinstance(value, dict) and CHOICE in value:
            overrides.append(f"{key}={_format(value[CHOICE])}")
            values = _flatten({k: v for k, v in value.items() if k != CHOICE}, f"{key}.")
        else:
            values = _flatten({key: value})
        overrides += [f"{k}={_format(v)}" for k, v in values.items() if v is not None]
    return overrides


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def read_experiment(name: str) -> dict:
    """``conf/experiment/<name>.yaml`` as a tree (empty if there is none: composing reports it)."""
    path = conf_dir() / "experiment" / f"{name}.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def experiment_sweep(name: str) -> dict[str, str]:
    """The sweep ``conf/experiment/<name>.yaml`` declares (``hydra.sweeper.params``)."""
    sweeper = (read_experiment(name).get("hydra") or {}).get("sweeper") or {}
    return {key: str(value) for key, value in (sweeper.get("params") or {}).items()}


def experiment_keys(name: str) -> set[str]:
    """The keys ``conf/experiment/<name>.yaml`` sets: groups it overrides in its defaults list,
    keys it sweeps and values it sets (dotted), with those of the experiments it builds on (a
    plain entry of its defaults list, e.g. ``- fer2013_cpu``)."""
    tree = read_experiment(name)
    keys = set()
    for entry in tree.pop("defaults", []) or []:
        if isinstance(entry, dict):
            keys |= {k.removeprefix("override ").strip().lstrip("/") for k in entry}
        elif isinstance(entry, str) and entry != "_self_" and not entry.startswith("/"):
            keys |= experiment_keys(entry)
    sweeper = (tree.pop("hydra", None) or {}).get("sweeper") or {}
    return keys | set(sweeper.get("params") or {}) | set(_flatten(tree))


def chosen_experiment(overrides: list[str]) -> str | None:
    names = [o.split("=", 1)[1] for o in overrides if "=" in o and override_key(o) == "experiment"]
    return names[-1] if names else None


def with_params(overrides: list[str], params: Path = PARAMS_FILE) -> list[str]:
    """``params.yaml``'s overrides followed by ``overrides``. A key given in both keeps the latter;
    a key the chosen ``experiment=<name>`` sets is not taken from ``params.yaml`` (its choices are
    the experiment's point, and command-line values would beat them)."""
    given = {override_key(o) for o in overrides}
    if experiment := chosen_experiment(overrides):
        given |= experiment_keys(experiment)

    def taken(key: str) -> bool:  # the key, or a group or node above it, is set elsewhere
        parts = key.split(".")
        return any(".".join(parts[:i]) in given for i in range(1, len(parts) + 1))

    return [o for o in params_overrides(params) if not taken(override_key(o))] + list(overrides)


def stage_args(argv: list[str] | None, doc: str) -> list[str]:
    """A stage's command line (``sys.argv[1:]`` unless ``argv``): Hydra overrides. ``-h`` or
    ``--help`` prints the stage's ``doc`` and exits, before anything heavy is imported."""
    args = sys.argv[1:] if argv is None else list(argv)
    if {"-h", "--help"} & set(args):
        print(doc.strip())
        print("\nArguments: Hydra overrides, key=value ... (see docs/configuration.md).")
        raise SystemExit(0)
    return args


def load_config(overrides: list[str] = (), params: Path = PARAMS_FILE) -> DictConfig:
    """The composed config for ``overrides`` (Hydra syntax), resolved; errors are one line."""
    try:
        with initialize_config_dir(str(conf_dir()), version_base="1.3"):
            cfg = compose("config", overrides=with_params(list(overrides), params))
        OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException) as err:
        raise PipelineError(f"config error: {one_line(err, typed=False)}") from None
    return cfg


def check_sweep(
    overrides: list[str], params: Path = PARAMS_FILE, check: Callable[[DictConfig], None] = None
) -> None:
    """Compose every value of every swept key once, and pass each config to ``check`` (a stage's
    value checks), so a bad value fails before any job runs."""
    if experiment := chosen_experiment(overrides):  # its sweep, unless the command line sets a key
        given = {override_key(o) for o in overrides}
        sweep = experiment_sweep(experiment)
        overrides = [f"{k}={v}" for k, v in sweep.items() if k not in given] + list(overrides)
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        raise PipelineError(f"config error: {one_line(err, typed=False)}") from None
    choices = []
    for override in parsed:
        if override.is_sweep_override():
            values = list(override.sweep_string_iterator())
        else:
            values = [override.get_value_element_as_str()]
        choices.append([f"{override.get_key_element()}={v}" for v in values])
    firsts = [values[0] for values in choices]
    combos = [
        firsts[:i] + [v] + firsts[i + 1 :] for i, values in enumerate(choices) for v in values
    ]
    for combo in combos or [[]]:
        cfg = load_config(combo, params)
        if check is not None:
            check(cfg)


def config_choices() -> dict[str, list[str]]:
    """Available options per config group (file names in ``conf/<group>/``)."""
    return {
        group.name: sorted(p.stem for p in group.glob("*.yaml"))
        for group in sorted(conf_dir().iterdir())
        if group.is_dir() and group.name not in OPTIONAL_GROUPS
    }
