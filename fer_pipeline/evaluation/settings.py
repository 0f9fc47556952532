"""Checks of the ``evaluation`` config, light enough for a stage to run before it imports torch:
a bad value fails in a second, not after loading a model or training one."""

from __future__ import annotations

from fer_pipeline.errors import PipelineError

TTA_MODES = ("none", "hflip", "tencrop")


def check_tta(mode: str, crop: float) -> None:
    if mode not in TTA_MODES:
        raise PipelineError(f"evaluation.tta must be one of {TTA_MODES}, got '{mode}'")
    if not 0 < crop <= 1:
        raise PipelineError(f"evaluation.tta_crop must be in (0, 1], got {crop}")


def check_settings(window: int, stride: int, input_size: int) -> None:
    """Refuse a window that does not fit the face or a stride that would not move."""
    if stride < 1:
        raise PipelineError(f"evaluation.occlusion.stride must be >= 1, got {stride}")
    if window < 1:
        raise PipelineError(f"evaluation.occlusion.window must be >= 1, got {window}")
    if window > input_size:
        raise PipelineError(
            f"evaluation.occlusion.window {window} is larger than the {input_size} px faces "
            f"(loader.input_size)"
        )


def check_evaluation(cfg) -> None:
    """Refuse evaluation settings that cannot work, before any training or loading."""
    boot = cfg.evaluation.bootstrap
    if boot.resamples < 1 or not 0 < boot.level < 1:
        raise PipelineError(
            f"evaluation.bootstrap: resamples must be >= 1 and level in (0, 1), got "
            f"{boot.resamples} and {boot.level}"
        )
    check_tta(cfg.evaluation.tta, cfg.evaluation.tta_crop)
    occlusion = cfg.evaluation.occlusion
    if occlusion.enabled:
        check_settings(occlusion.window, occlusion.stride, cfg.loader.input_size)
        for key in ("faces_per_class", "examples_per_class", "batch_size"):
            value = occlusion[key]
            if value is not None and value < 1:
                raise PipelineError(f"evaluation.occlusion.{key} must be >= 1, got {value}")
