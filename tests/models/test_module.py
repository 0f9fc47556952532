"""FERModule: training through Lightning, and checkpoints that rebuild their own network."""

from __future__ import annotations

import functools

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from fer_pipeline.errors import PipelineError
from fer_pipeline.models.checkpoint import build_net
from fer_pipeline.models.module import FERModule, load_trained

CLASSES = ["angry", "happy", "sad"]
MODEL_CFG = {
    "name": "resnet34",
    "net": {
        "_target_": "fer_pipeline.models.hybrid.SingleNet",
        "backbone": "resnet34",
        "pretrained": False,
        "gray_to_rgb": True,
        "dropout": 0.0,
    },
}


def tiny_loader() -> DataLoader:
    torch.manual_seed(0)
    x, y = torch.randn(8, 1, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    return DataLoader(TensorDataset(x, y), batch_size=4)


def make_module() -> FERModule:
    cfg = OmegaConf.create({"model": MODEL_CFG})
    return FERModule(
        build_net(cfg.model, len(CLASSES), 1),
        optimizer=functools.partial(torch.optim.SGD, lr=0.01, momentum=0.9),
        scheduler=functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1),
        classes=CLASSES,
        label_smoothing=0.1,
        class_weights=torch.tensor([1.0, 2.0, 1.0]),
        config={"model": MODEL_CFG},
    )


def trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def test_training_changes_the_weights_and_logs_metrics():
    module = make_module()
    before = module.net.head[-1].weight.detach().clone()
    fit = trainer(max_epochs=2)
    fit.fit(module, tiny_loader(), tiny_loader())
    assert not torch.equal(before, module.net.head[-1].weight)
    for name in ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best"):
        assert name in fit.callback_metrics
    assert fit.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.01 * 0.1**2)  # StepLR ran


def test_checkpoint_rebuilds_its_network_and_predictions(tmp_path):
    module = make_module()
    fit = trainer(max_steps=2)
    fit.fit(module, tiny_loader())
    path = tmp_path / "best.ckpt"
    fit.save_checkpoint(path, weights_only=True)
    loaded = load_trained(path)
    module.eval()
    x = next(iter(tiny_loader()))[0]
    with torch.no_grad():
        assert torch.allclose(loaded(x), module(x), atol=1e-5)
    assert loaded.hparams.classes == CLASSES


def test_missing_or_foreign_checkpoint(tmp_path):
    with pytest.raises(PipelineError, match="missing"):
        load_trained(tmp_path / "none.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(PipelineError, match="not a fer-pipeline checkpoint"):
        load_trained(tmp_path / "foreign.ckpt")


def test_bad_net_config_is_one_line():
    cfg = OmegaConf.create({"model": {"net": {**MODEL_CFG["net"], "backbone": "vgg16"}}})
    with pytest.raises(PipelineError) as err:
        build_net(cfg.model, 3, 1)
    assert "vgg16" in str(err.value) and "\n" not in str(err.value)


def test_sanity_check_cannot_set_a_false_best():
    """The sanity check sees the first 2 val batches: here all of the class the untrained net
    always picks (accuracy 1.0). The real validation epoch is mostly other classes: val/acc_best
    must be that epoch's accuracy, as the best checkpoint's score is, never the sanity check's."""
    module = make_module()
    with torch.no_grad():  # always "angry": a head whose bias dominates
        module.net.head[-1].weight.zero_()
        module.net.head[-1].bias.copy_(torch.tensor([10.0, 0.0, 0.0]))
    torch.manual_seed(0)
    x = torch.randn(16, 1, 32, 32)
    y = torch.tensor([0] * 8 + [1] * 4 + [2] * 4)  # in class order: sanity batches are all angry
    val = DataLoader(TensorDataset(x, y), batch_size=4)
    module.optimizer_factory = functools.partial(torch.optim.SGD, lr=0.0)  # weights stay
    fit = trainer(max_epochs=1, num_sanity_val_steps=2)
    fit.fit(module, DataLoader(TensorDataset(x, y), batch_size=8), val)
    assert float(fit.callback_metrics["val/acc"]) == pytest.approx(0.5)
    assert float(fit.callback_metrics["val/acc_best"]) == pytest.approx(0.5)


def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "best.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": Payload()}, path)
    with pytest.raises(PipelineError) as err:
        load_trained(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message and "could run code" in message
    assert not marker.exists()


def test_weights_that_do_not_fit_are_refused_naming_the_file(tmp_path):
    module = make_module()
    fit = trainer(max_steps=1)
    fit.fit(module, tiny_loader())
    path = tmp_path / "best.ckpt"
    fit.save_checkpoint(path, weights_only=True)
    state = torch.load(path, weights_only=True)
    state["state_dict"].pop(next(iter(state["state_dict"])))
    torch.save(state, path)
    with pytest.raises(PipelineError) as err:
        load_trained(path)
    assert str(path) in str(err.value) and "Missing key" in str(err.value)
    assert "\n" not in str(err.value)


def test_one_cycle_is_stepped_every_batch_over_the_whole_run():
    data = TensorDataset(torch.randn(40, 1, 8, 8), torch.randint(0, 2, (40,)))
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    module = FERModule(
        net,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9),
        scheduler=functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.1),
        classes=["a", "b"],
    )
    rates = []

    class Rates(pl.Callback):
        def on_train_batch_start(self, trainer, *args):
            rates.append(trainer.optimizers[0].param_groups[0]["lr"])

    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, callbacks=[Rates()],
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(module, DataLoader(data, batch_size=8))
    scheduler = trainer.lr_scheduler_configs[0]
    assert scheduler.interval == "step" and scheduler.scheduler.total_steps == 10
    assert len(rates) == 10  # 5 batches x 2 epochs, each at its own rate
    assert rates[0] == pytest.approx(0.1 / 25) and max(rates) == pytest.approx(0.1, rel=0.05)
    assert rates[-1] < 0.1 / 1000  # the last batch trains at the annealed rate
