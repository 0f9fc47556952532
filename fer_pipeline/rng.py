"""Random number generator states as plain Python values, so a checkpoint that holds them loads
with ``torch.load(weights_only=True)`` and a resumed run draws the same numbers as an unbroken one."""

from __future__ import annotations

import random

import numpy as np
import torch


def global_rng_state() -> dict:
    """torch (CPU and every CUDA device), NumPy's legacy global and Python's ``random`` states."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": random.getstate(),
    }


def set_global_rng_state(state: dict) -> None:
    """Undo :func:`global_rng_state`: every generator continues where the state was taken."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
