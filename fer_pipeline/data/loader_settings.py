"""The loader's choices and their checks, light (no torch): the command line refuses a bad value
before anything heavy is imported."""

from __future__ import annotations

SOURCES = ("packed", "files")
AUGMENTATIONS = ("albumentations", "batched", "auto")  # auto: resolved by FERDataModule.setup


def loader_choice_problems(source: str, augmentation: str) -> list[str]:
    """What is wrong with ``loader.source`` and ``loader.augmentation``, one message each."""
    problems = []
    if source not in SOURCES:
        problems.append(f"loader.source must be one of {SOURCES}, got '{source}'")
    if augmentation not in AUGMENTATIONS:
        problems.append(f"loader.augmentation must be one of {AUGMENTATIONS}, got '{augmentation}'")
    return problems
