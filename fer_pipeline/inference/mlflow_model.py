"""A training run's MLflow model: an ``mlflow.pyfunc`` model around :class:`Recognizer`, so
``mlflow.pyfunc.load_model``, ``mlflow models serve`` and the model registry give the same per-face
table as the Python API and the predict command.

    import mlflow
    model = mlflow.pyfunc.load_model("models:/fer-pipeline@champion")
    table = model.predict(model_input(["photo.jpg", array]))   # one row per face

Input: a DataFrame with a binary column ``image`` (encoded image bytes: PNG, JPEG, ...; or a numpy
array saved with ``numpy.save``) and an optional string column ``name`` that becomes the table's
``input`` (default ``image[i]``). Over HTTP the bytes travel base64-encoded
(``{"dataframe_split": {"columns": ["image"], "data": [["<base64>"]]}}``, see :func:`request_body`).
Output: the table of :meth:`Recognizer.predict` (see :func:`columns`).

The model folder holds the run's ``best.ckpt`` (``artifacts/best.ckpt``); the code that reads it is
this package, so the model loads where ``fer_pipeline`` is installed (``--env-manager local`` from
the project's environment).
"""

from __future__ import annotations

import base64
import io
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel, save_model
from mlflow.types import ColSpec, Schema

from fer_pipeline.inference.recognizer import CHECKPOINT_IN_MODEL, KEY_COLUMNS, columns
from fer_pipeline.quiet import no_integer_schema_hint

MODEL_ARTIFACT = "model"  # the run's artifact folder of the MLflow model
# What the model's own code needs (the MLmodel's requirements; fer_pipeline itself is this project).
REQUIREMENTS = (
    "torch", "torchvision", "numpy", "pandas", "pillow", "omegaconf", "albumentations",
    "opencv-python-headless", "mlflow",
)  # fmt: skip
INTEGER_COLUMNS = ("frame", "face")
STRING_COLUMNS = ("input", "predicted", "outcome")


class FERModel(PythonModel):
    """``predict(DataFrame[image, name?]) -> per-face DataFrame``, through :class:`Recognizer`."""

    def load_context(self, context) -> None:
        from fer_pipeline.inference.recognizer import Recognizer

        self.recognizer = Recognizer.load(context.artifacts["checkpoint"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        if "image" not in frame.columns:
            raise ValueError(f"the input needs a column 'image', got {list(frame.columns)}")
        images = [_as_bytes(value) for value in frame["image"]]
        given = frame["name"].fillna("").astype(str) if "name" in frame else [""] * len(images)
        names = [name or f"image[{i}]" for i, name in enumerate(given)]
        return self.recognizer.predict(images, names=names)


def _as_bytes(value) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):  # base64 text that did not go through the signature's decoding
        return base64.b64decode(value)
    raise ValueError(f"column 'image' holds {type(value).__name__}, expected bytes")


def encode(image) -> bytes:
    """Bytes for the ``image`` column: a file's bytes as they are; an array or PIL image as
    ``numpy.save`` bytes (exact pixels, any dtype the predict path takes)."""
    if isinstance(image, str | Path):
        return Path(image).read_bytes()
    if isinstance(image, bytes | bytearray):
        return bytes(image)
    array = np.asarray(image.convert("RGB")) if hasattr(image, "convert") else np.asarray(image)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def model_input(images, names: list[str] | None = None) -> pd.DataFrame:
    """The model's input for a list of paths, arrays, PIL images or bytes."""
    images = list(images)
    names = names or [str(i) if isinstance(i, str | Path) else f"image[{k}]"
                      for k, i in enumerate(images)]  # fmt: skip
    return pd.DataFrame({"image": [encode(i) for i in images], "name": names})


def request_body(images, names: list[str] | None = None) -> str:
    """The JSON body of ``POST /invocations`` of a served model for ``images``."""
    frame = model_input(images, names)
    data = [
        [base64.b64encode(image).decode("ascii"), name]
        for image, name in zip(frame["image"], frame["name"], strict=True)
    ]
    return json.dumps({"dataframe_split": {"columns": ["image", "name"], "data": data}})


def signature(classes: list[str]) -> ModelSignature:
    inputs = Schema([ColSpec("binary", "image"), ColSpec("string", "name", required=False)])
    outputs = []
    for name in columns(classes):
        if name in INTEGER_COLUMNS:
            kind = "long"
        elif name in STRING_COLUMNS:
            kind = "string"
        else:
            kind = "double"
        outputs.append(ColSpec(kind, name, required=name in ("input", "outcome")))
    return ModelSignature(inputs=inputs, outputs=Schema(outputs))


def requirements() -> list[str]:
    found = []
    for name in REQUIREMENTS:
        try:
            found.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            found.append(name)
    return found


def save(
    checkpoint: Path, path: Path, classes: list[str], example=None, preprocessing=None
) -> Path:
    """Write the MLflow model of ``checkpoint`` into the new folder ``path``; ``example`` (an image,
    see :func:`encode`) becomes its input example; ``preprocessing`` (the checkpoint's record, see
    :mod:`fer_pipeline.models.preprocessing`) goes into its metadata."""
    example_frame = None
    if example is not None:
        example_frame = model_input([example], ["example"])
    with no_integer_schema_hint():  # validating the input example
        save_model(
            path=str(path),
            python_model=str(Path(__file__).with_name("mlflow_entry.py")),
            artifacts={"checkpoint": str(checkpoint)},
            signature=signature(classes),
            input_example=example_frame,
            pip_requirements=requirements(),
            metadata={
                "fer_pipeline": {
                    "classes": list(classes),
                    "key_columns": list(KEY_COLUMNS),
                    **({"preprocessing": preprocessing.to_dict()} if preprocessing else {}),
                }
            },  # fmt: skip
        )
    if not (path / CHECKPOINT_IN_MODEL).is_file():  # Recognizer.load finds it there
        raise RuntimeError(f"{path}: the model keeps its checkpoint elsewhere than "
                           f"{CHECKPOINT_IN_MODEL}")  # fmt: skip
    return path


def log_model(client, run_id: str, folder: Path) -> str:
    """Log the saved model ``folder`` (see :func:`save`) as an MLflow 3 logged model named
    ``model`` whose source is the run (the run page's "Logged models", the experiment's Models
    tab); returns its id (``m-...``). ``models:/<id>`` and ``runs:/<run id>/model`` both load it."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    experiment = client.get_run(run_id).info.experiment_id
    model = client.create_logged_model(experiment, name=MODEL_ARTIFACT, source_run_id=run_id)
    try:
        client.log_model_artifacts(model.model_id, str(folder))
    except BaseException:
        client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, 0)])  # the run's page lists it
    return model.model_id


def example_face(image: np.ndarray) -> bytes:
    """A face (grey or RGB uint8) as PNG bytes, for the input example."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, png = cv2.imencode(".png", array)
    if not ok:
        raise ValueError(f"cannot encode an example face of shape {array.shape}")
    return png.tobytes()


__all__ = ["FERModel", "encode", "log_model", "model_input", "request_body", "save"]
