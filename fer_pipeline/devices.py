"""The one place a device name becomes a torch device: for training and testing (Lightning's
accelerator names) and for inference (``--device``)."""

from __future__ import annotations

import torch

from fer_pipeline.errors import PipelineError


def resolve_device(name: str | None = None, fallback: bool = False) -> torch.device:
    """The torch device for ``name``: a torch device (``cpu``, ``cuda``, ``cuda:1``), a Lightning
    accelerator (``gpu``, ``cuda``, ``cpu``), or ``auto``/None (a CUDA GPU when there is one). A
    GPU asked for where there is none: the CPU with ``fallback``, else a one-line error."""
    text = str(name or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device("cuda" if text == "gpu" else text)
    except RuntimeError:
        raise PipelineError(f"device '{name}' is not a torch device (cpu, cuda, cuda:1)") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        if fallback:
            return torch.device("cpu")
        raise PipelineError(f"device '{name}': no CUDA GPU here")
    return chosen
