"""One device resolver for training, testing and inference."""

from __future__ import annotations

import pytest
import torch

from fer_pipeline.devices import resolve_device
from fer_pipeline.errors import PipelineError

GPU = torch.cuda.is_available()


def test_auto_and_accelerator_names_resolve_to_torch_devices():
    assert resolve_device(None).type == resolve_device("auto").type == ("cuda" if GPU else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("gpu", fallback=True).type == ("cuda" if GPU else "cpu")


def test_a_bad_name_is_one_line_naming_it():
    with pytest.raises(PipelineError, match="device 'tpu9' is not a torch device"):
        resolve_device("tpu9")


@pytest.mark.skipif(GPU, reason="this machine has a CUDA GPU")
def test_a_gpu_asked_for_where_there_is_none():
    for name in ("cuda", "gpu", "cuda:1"):
        with pytest.raises(PipelineError, match=f"device '{name}': no CUDA GPU here"):
            resolve_device(name)
        assert resolve_device(name, fallback=True) == torch.device("cpu")
