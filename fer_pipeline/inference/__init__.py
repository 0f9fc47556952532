"""Use a trained model: :class:`Recognizer` (Python API), shared by ``python -m
fer_pipeline.predict``, the MLflow model and the app.

``Recognizer`` and ``columns`` load on first use (PEP 562), so modules of this package that need no
torch (``inputs``, ``annotate``) import in a fraction of a second: ``predict --help`` stays fast."""

__all__ = ["Recognizer", "columns"]


def __getattr__(name: str):
    if name in __all__:
        from fer_pipeline.inference import recognizer

        return getattr(recognizer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
