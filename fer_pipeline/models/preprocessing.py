"""What a trained model needs to run on new faces, as one typed record that travels with it (as
timm's ``pretrained_cfg`` and torchvision's weights carry their transforms): the face crop its
faces were made with, the net's input (size, channels, normalisation), its classes, and the
test-time augmentation it was tested with.

Every checkpoint holds it under :data:`PREPROCESSING_KEY`; the MLflow model's metadata holds it too.
:func:`preprocessing_of` reads it back, for evaluate, :class:`Recognizer` and the app alike;
checkpoints written before the record existed get it derived from the config they stored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from fer_pipeline.errors import PipelineError

PREPROCESSING_KEY = "fer_preprocessing"  # the checkpoint's key (beside Lightning's own)
VERSION = 1  # of the record's fields; a newer one is refused, not misread


@dataclass(frozen=True)
class Preprocessing:
    classes: tuple[str, ...]  # in label order
    input_size: int  # faces are resized to this side before the net
    channels: int  # 1: grey faces, 3: RGB
    mean: float  # (pixel / 255 - mean) / std
    std: float
    face: dict[str, Any] = field(default_factory=dict)  # conf/face.yaml as the faces were made
    tta: str = "none"  # test-time augmentation: none | hflip | tencrop
    tta_crop: float = 0.875  # tencrop's crop share
    dataset: str = ""  # what it trained on (data.name)
    version: int = VERSION

    @classmethod
    def from_config(cls, config, classes, channels: int) -> Preprocessing:
        """The record of a run's resolved config (a dict or DictConfig)."""
        loader = config["loader"]
        evaluation = config.get("evaluation") or {}
        face = config.get("face") or {}
        return cls(
            classes=tuple(str(c) for c in classes),
            input_size=int(loader["input_size"]),
            channels=int(channels),
            mean=float(loader["mean"]),
            std=float(loader["std"]),
            face=_plain(face),
            tta=str(evaluation.get("tta", "none")),
            tta_crop=float(evaluation.get("tta_crop", 0.875)),
            dataset=str((config.get("data") or {}).get("name", "")),
        )

    def to_dict(self) -> dict:
        return asdict(self) | {"classes": list(self.classes)}

    @classmethod
    def from_dict(cls, record: dict, where: str = "") -> Preprocessing:
        version = record.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise PipelineError(
                f"{where}: preprocessing record version {version} is newer than this code's "
                f"({VERSION}); update fer-pipeline"
            )
        try:
            return cls(**(record | {"classes": tuple(record["classes"])}))
        except (KeyError, TypeError) as err:
            raise PipelineError(f"{where}: unreadable preprocessing record ({err})") from None


def _plain(value):
    """A config subtree as plain dicts and lists (a DictConfig resolved, or a dict as it is)."""
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or type(value).__name__ == "ListConfig":
        return [_plain(v) for v in value]
    return value


def preprocessing_of(state: dict, where: str = "") -> Preprocessing:
    """The record of a checkpoint's content ``state``: its own, or, for a checkpoint written
    before records existed, derived from the config it stored (``where`` names the file)."""
    if PREPROCESSING_KEY in state:
        return Preprocessing.from_dict(state[PREPROCESSING_KEY], where)
    try:
        hparams = state["hyper_parameters"]
        return Preprocessing.from_config(
            hparams["config"], hparams["classes"], hparams.get("in_channels", 1)
        )
    except (KeyError, TypeError) as err:
        raise PipelineError(
            f"{where} holds no preprocessing record and no config to derive one from (no {err})"
        ) from None


def has_preprocessing(config) -> bool:
    """Whether a config (of a module or a checkpoint) says enough to make a record: a net built
    outside the pipeline, with only its model config, does not."""
    return bool(config) and "loader" in config
