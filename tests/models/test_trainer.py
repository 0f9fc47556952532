"""What fits a model (fer_pipeline.models.trainer), as a user sees it through the config."""

from __future__ import annotations

import pytest
import torch

from fer_pipeline.config import load_config
from fer_pipeline.data.datamodule import build_datamodule, keep_batch
from fer_pipeline.errors import PipelineError
from fer_pipeline.models import trainer as trainer_lib
from fer_pipeline.models.module import FERModule
from fer_pipeline.models.trainer import build_module, build_trainer, class_weights, native_bf16


def test_class_weights_balance_the_loss():
    weights = class_weights([0, 0, 0, 1], num_classes=3)
    assert weights.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])
    # Each seen class then carries the same total weight in the loss.
    assert 3 * weights[0] == pytest.approx(1 * weights[1])


# Every speed option and data path composes through the config and trains on CPU; two runs cover
# them all (one training each keeps the suite short). The inductor compile itself (minutes on 2 CPU
# cores) runs in benchmarks/train_throughput.py --compile default; here Dynamo traces with aot_eager.
SPEED_OPTIONS = {
    "fast": [
        "trainer.precision=bf16-mixed",
        "trainer.channels_last=true",
        "trainer.accumulate_grad_batches=2",
        "trainer.compile=default",
        "trainer.compile_backend=aot_eager",
        "loader.eval_batch_size=4",
        "loader.augmentation=batched",
        "loader.augment.erase=0.5",
    ],
    "files_small_stem": [
        "loader.source=files",
        "loader.augmentation=albumentations",
        "model.net.stem=small",
        "model.net.maxpool=false",
    ],
}


@pytest.mark.parametrize("option", SPEED_OPTIONS)
def test_speed_option_composes_and_trains_a_step(split_project, option, monkeypatch):
    monkeypatch.chdir(split_project)
    cfg = load_config([*SPEED_OPTIONS[option], "model=resnet34"])
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    before = [p.detach().clone() for p in module.net.parameters()]
    trainer = build_trainer(cfg, logger=False, enable_checkpointing=False, max_epochs=1,
                            limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    assert any(not torch.equal(a, b) for a, b in zip(before, module.net.parameters(), strict=True))
    assert trainer.callback_metrics["val/acc"] >= 0
    conv1 = module.net.backbone.net.conv1
    if option == "fast":
        assert trainer.global_step == 1  # 2 batches, accumulated into 1 optimizer step
        assert trainer.precision == "bf16-mixed"
        assert conv1.weight.is_contiguous(memory_format=torch.channels_last)
        assert module.net._compiled_call_impl is not None
        assert datamodule.val_dataloader().batch_size == 4
        assert datamodule.train_dataloader().collate_fn is keep_batch  # uint8 batches to the device
    else:
        assert trainer.global_step == 2
        assert conv1.kernel_size == (3, 3) and conv1.in_channels == 1
        assert isinstance(module.net.backbone.net.maxpool, torch.nn.Identity)


def test_unknown_compile_mode_is_one_clear_error():
    with pytest.raises(PipelineError, match="trainer.compile must be false or one of"):
        FERModule(torch.nn.Linear(2, 2), classes=["a", "b"], compile="fastest")


@pytest.mark.parametrize(
    "flags,native",
    [
        ("fpu avx512f avx512_bf16 avx512_vnni", True),  # Zen 4, Cooper Lake
        ("fpu avx512f amx_bf16 amx_tile", True),  # Sapphire Rapids
        ("fpu avx2 avx512f avx512bw", False),  # AVX-512 without bf16: oneDNN would emulate it
    ],
)
def test_bf16_on_cpu_only_where_it_is_native(tmp_path, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert native_bf16(str(cpuinfo)) is native
    assert native_bf16(str(tmp_path / "absent")) is False


def test_a_cpu_without_native_bf16_trains_in_fp32_and_says_so(split_project, monkeypatch, capsys):
    monkeypatch.chdir(split_project)
    monkeypatch.setattr(trainer_lib, "native_bf16", lambda: False)
    cfg = load_config(["model=resnet34"])
    assert cfg.trainer.precision == "bf16-mixed"  # trainer=cpu's default
    trainer = build_trainer(cfg, logger=False, enable_checkpointing=False)
    assert trainer.precision == "32-true"
    assert "no native bf16" in capsys.readouterr().out


@pytest.mark.gpu
def test_trainer_gpu_trains_a_step_on_the_gpu_with_batched_augmentation(split_project, monkeypatch):
    monkeypatch.chdir(split_project)
    cfg = load_config(["trainer=gpu", "model=resnet34", "loader.augmentation=batched"])
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    trainer = build_trainer(cfg, logger=False, enable_checkpointing=False, max_epochs=1,
                            limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == 2 and next(module.parameters()).is_cuda
    assert trainer.precision == "bf16-mixed"
