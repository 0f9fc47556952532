"""Benchmark what resuming costs: the size of ``last.ckpt`` (full training state) against
``best.ckpt`` (weights only), and the time to write each, for every optimizer.

Builds the configured model (random weights: sizes and times do not depend on them), trains
--steps steps on random faces so the optimizer has its state, then saves both kinds of checkpoint
--repeats times through Lightning, as the train stage does after each epoch. Prints one JSON object.

    python benchmarks/checkpoint_cost.py                    # fusion, sgdm/adam/rmsprop, 48 px
    python benchmarks/checkpoint_cost.py --model resnet34 --optimizers adam
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from fer_pipeline.config import load_config
from fer_pipeline.models.checkpoint import build_net
from fer_pipeline.models.module import FERModule

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def measure(model: str, optimizer: str, size: int, steps: int, repeats: int) -> dict:
    cfg = load_config([f"model={model}", f"optimizer={optimizer}"])
    module = FERModule(
        build_net(cfg.model, len(CLASSES), 1),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.scheduler else None,
        classes=CLASSES,
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    data = TensorDataset(torch.randn(8 * steps, 1, size, size), torch.randint(0, 7, (8 * steps,)))
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(module, DataLoader(data, batch_size=8))
    result = {"model": model, "optimizer": optimizer}
    with tempfile.TemporaryDirectory() as tmp:
        for name, weights_only in (("best", True), ("last", False)):
            path = Path(tmp) / f"{name}.ckpt"
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                trainer.save_checkpoint(path, weights_only=weights_only)
                times.append(time.perf_counter() - start)
            result[f"{name}_mb"] = round(path.stat().st_size / 1e6, 1)
            result[f"{name}_save_s"] = round(min(times), 3)
    result["extra_mb"] = round(result["last_mb"] - result["best_mb"], 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fusion", help="conf/model/<name> (default fusion)")
    parser.add_argument("--optimizers", default="sgdm,adam,rmsprop")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="saves per kind (the fastest)")
    args = parser.parse_args()
    rows = [
        measure(args.model, name, args.size, args.steps, args.repeats)
        for name in args.optimizers.split(",")
    ]
    print(json.dumps({
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "checkpoints": rows,
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
