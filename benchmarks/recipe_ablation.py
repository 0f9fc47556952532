"""Measure the FER2013 recipe's choices on the validation split: train the recipe and variants that
each undo one choice, then score the recipe's best checkpoint on val with each test-time
augmentation. Prints one JSON object (val accuracy per epoch and best, per variant; val accuracy
per TTA mode) and writes it to --out. Every training run is an MLflow run as usual.

Run it in a project whose data stages ran on FER2013 (docs/training.md, "The FER2013 recipe"):

    python benchmarks/recipe_ablation.py                         # the full runs (GPU)
    python benchmarks/recipe_ablation.py --cpu --epochs 3 --train-batches 50 --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from mlflow.tracking import MlflowClient

from fer_pipeline.config import load_config
from fer_pipeline.data.datamodule import build_datamodule
from fer_pipeline.evaluation.settings import TTA_MODES
from fer_pipeline.evaluation.tta import predict_proba
from fer_pipeline.models.module import load_trained

# Each variant undoes one choice of conf/experiment/fer2013_hybrid.yaml.
VARIANTS = {
    "recipe": [],
    "imagenet_stem": ["model.net.stem=imagenet"],
    "no_label_smoothing": ["loss.label_smoothing=0.0"],
    "light_augment": [
        "loader.augment.shift=0.05",
        "loader.augment.scale=0.05",
        "loader.augment.erase=0.0",
    ],  # fmt: skip
    "sgd_nesterov": ["optimizer=sgdm", "optimizer.lr=0.05", "+optimizer.nesterov=true"],
}


def train(name: str, overrides: list[str], out: Path) -> dict:
    """One training run; its best val accuracy, val accuracy per epoch, and wall time."""
    folder = out / name
    args = [*overrides, f"paths.models={folder}/models", f"paths.reports={folder}"]
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "fer_pipeline.train", *args], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{name} failed: {result.stderr.strip().splitlines()[-1]}")
    summary = json.loads((folder / "train.json").read_text())
    history = MlflowClient(summary["tracking_uri"]).get_metric_history(
        summary["mlflow_run_id"], "val/acc"
    )
    return {
        "overrides": overrides,
        "val_acc_best": round(summary["val_acc_best"], 4),
        "val_acc_by_epoch": [round(m.value, 4) for m in sorted(history, key=lambda m: m.step)],
        "seconds": round(seconds, 1),
        "mlflow_run_id": summary["mlflow_run_id"],
        "checkpoint": str(folder / "models/best.ckpt"),
    }


@torch.no_grad()
def tta_accuracy(checkpoint: str, overrides: list[str], device: str, every: int) -> dict:
    """Val accuracy of ``checkpoint`` for each test-time augmentation mode, on every ``every``-th
    val face (the manifest is sorted by class, so that is a systematic sample of each class)."""
    module = load_trained(checkpoint).to(device)
    datamodule = build_datamodule(load_config(overrides))
    datamodule.setup("validate")
    val = datamodule.splits["val"]
    subset = torch.utils.data.Subset(val, range(0, len(val), every))
    loader = torch.utils.data.DataLoader(subset, batch_size=datamodule.eval_batch_size)
    scores: dict = {"faces": len(subset)}
    for mode in TTA_MODES:
        right = total = 0
        for x, y in loader:
            probs = predict_proba(module, x.to(device), mode)
            right += int((probs.argmax(1).cpu() == y).sum())
            total += len(y)
        scores[mode] = round(right / total, 4)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--cpu", action="store_true", help="trainer=cpu (keeps bf16-mixed)")
    parser.add_argument("--epochs", type=int, help="trainer.max_epochs (default: the recipe's)")
    parser.add_argument("--train-batches", type=int, help="trainer.limit_train_batches per epoch")
    parser.add_argument("--batch-size", type=int, help="loader.batch_size")
    parser.add_argument("--tta-every", type=int, default=1, help="TTA on every n-th val face")
    parser.add_argument("--out", default="reports/recipe_ablation")
    args = parser.parse_args()

    common = ["experiment=fer2013_hybrid", "evaluate_after_fit=false"]
    if args.cpu:
        common += ["trainer=cpu", "trainer.precision=bf16-mixed", "trainer.channels_last=true"]
    if args.epochs:
        common.append(f"trainer.max_epochs={args.epochs}")
    if args.train_batches:
        common.append(f"trainer.limit_train_batches={args.train_batches}")
    if args.batch_size:
        common.append(f"loader.batch_size={args.batch_size}")
    out = Path(args.out)
    results: dict = {"common_overrides": common, "variants": {}}
    device = "cpu" if args.cpu or not torch.cuda.is_available() else "cuda"
    for name in args.variants.split(","):
        results["variants"][name] = train(name, [*common, *VARIANTS[name]], out)
        print(name, json.dumps(results["variants"][name]), flush=True)
        if name == "recipe":
            checkpoint = results["variants"]["recipe"]["checkpoint"]
            tta = tta_accuracy(checkpoint, common, device, args.tta_every)
            results["recipe_val_acc_by_tta"] = tta
            print("tta", json.dumps(tta), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
