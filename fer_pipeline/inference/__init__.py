"""Use a trained model: :class:`Recognizer` (Python API), shared by ``python -m
fer_pipeline.predict``, the MLflow model and the app."""

from fer_pipeline.inference.recognizer import Recognizer, columns

__all__ = ["Recognizer", "columns"]
