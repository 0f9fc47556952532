"""Benchmark training and inference throughput: our trainer against a plain PyTorch loop.

In one process, on the same faces, model, batch size and optimizer (SGD with momentum):

- **ours**: the pipeline's FERDataModule over the packed arrays with batched augmentation on the
  training device, FERModule in a Lightning Trainer with the speed options below;
- **plain**: a standard ``Dataset`` that opens each image file with PIL, torchvision transforms of the
  same kinds (flip, affine, brightness/contrast, erasing), a ``DataLoader``, and a hand-written fp32
  loop.

For each model mode (fusion, ensemble, resnet50, resnet34) and input size it times training batches
after a warm-up and reports images/s of each and their ratio, the time one epoch of the training
faces takes at that speed, the model's training FLOPs per image (forward + backward, counted by
``torch.utils.flop_counter``) and, given the device's peak, the model FLOPs utilisation (MFU =
FLOPs per image x images/s / peak); on a GPU, each model's peak memory. Then inference faces/s by
batch size (fusion); and the peak memory (CPU resident set, or GPU allocated). Prints one JSON object
(also written to ``--out``) and logs it to MLflow (experiment ``benchmarks``: metrics, and the JSON
as an artifact).

    python benchmarks/train_throughput.py                          # CPU, 48 and 96 px
    python benchmarks/train_throughput.py --device cuda --batch-size 256 --batches 30
    python benchmarks/train_throughput.py --data data              # the project's faces and split
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms as T

from fer_pipeline.config import load_config
from fer_pipeline.data.datamodule import FERDataModule
from fer_pipeline.data.packed import PACKED_DIR, pack_splits
from fer_pipeline.data.split import read_manifest
from fer_pipeline.hashing import file_md5
from fer_pipeline.models.checkpoint import build_net
from fer_pipeline.models.module import FERModule

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
MODES = ("fusion", "ensemble", "resnet50", "resnet34")
AUGMENT = {
    "hflip": 0.5,
    "rotate": 10,
    "shift": 0.1,
    "scale": 0.1,
    "brightness_contrast": 0.2,
    "erase": 0.5,
}


def synthetic_faces(root: Path, count: int, side: int = 48) -> None:
    """``count`` random gray faces as PNG files with a manifest and packed arrays, like the split
    stage writes (throughput does not depend on what the faces show)."""
    rng = np.random.default_rng(0)
    (root / "faces").mkdir(parents=True)
    (root / "faces/dataset.json").write_text(json.dumps({"name": "bench", "classes": CLASSES}))
    rows = []
    for i in range(count):
        label = i % len(CLASSES)
        path = f"{CLASSES[label]}/{i:05d}.png"
        (root / "faces" / path).parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(
            root / "faces" / path
        )
        rows.append({"path": path, "label": label, "split": "train" if i % 8 else "val"})
    split = root / "split"
    split.mkdir()
    with (split / "manifest.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "class", "split"])
        writer.writerows([r["path"], r["label"], CLASSES[r["label"]], r["split"]] for r in rows)
    rows = read_manifest(split / "manifest.csv", CLASSES)
    pack_splits(root / "faces", rows, True, split / PACKED_DIR, file_md5(split / "manifest.csv"))


class ImageFiles(Dataset):
    """The plain baseline: one image file opened and transformed per item."""

    def __init__(self, faces: Path, rows: list[dict], transform):
        self.items = [(faces / r["path"], r["label"]) for r in rows if r["split"] == "train"]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        path, label = self.items[i]
        return self.transform(Image.open(path).convert("L")), label


def plain_transform(size: int) -> T.Compose:
    return T.Compose(
        [
            T.Resize((size, size)),
            T.RandomHorizontalFlip(),
            T.RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
            T.ColorJitter(brightness=0.2, contrast=0.2),
            T.ToTensor(),
            T.Normalize([0.449], [0.226]),
            T.RandomErasing(p=0.5, scale=(0.01, 0.09), value=0),
        ]
    )


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def optimizer_factory(params):
    return torch.optim.SGD(params, lr=0.01, momentum=0.9)


def plain_loop(net, loader, device: str, batches: int, warmup: int) -> float:
    """Images/s of a hand-written fp32 training loop over ``loader``, after ``warmup`` batches."""
    net = net.to(device).train()
    optimizer = optimizer_factory(net.parameters())
    seen, start = 0, None
    for step, (x, y) in enumerate(loader):
        if step == warmup:
            sync(device)
            start, seen = time.perf_counter(), 0
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(y)
        if step + 1 == warmup + batches:
            break
    sync(device)
    return seen / (time.perf_counter() - start)


class Timer(pl.Callback):
    """Images/s of the training batches after ``warmup``."""

    def __init__(self, warmup: int, device: str):
        self.warmup, self.device, self.start, self.seen = warmup, device, None, 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if batch_idx == self.warmup:
            sync(self.device)
            self.start, self.seen = time.perf_counter(), 0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.start is not None:
            self.seen += len(batch[1])

    def on_train_end(self, trainer, module):
        sync(self.device)
        self.images_per_s = self.seen / (time.perf_counter() - self.start)


def our_trainer(net, datamodule, args, batches: int, warmup: int) -> float:
    module = FERModule(
        net,
        optimizer=optimizer_factory,
        classes=CLASSES,
        channels_last=args.channels_last,
        compile=args.compile,
    )
    timer = Timer(warmup, args.device)
    trainer = pl.Trainer(
        accelerator="gpu" if args.device.startswith("cuda") else "cpu",
        devices=1,
        max_epochs=1,
        limit_train_batches=warmup + batches,
        limit_val_batches=0,
        precision=args.precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module, datamodule=datamodule)
    return timer.images_per_s


def train_flops_per_image(net, size: int, device: str) -> float:
    """FLOPs of one training step (forward and backward) per image, counted on a batch of 2."""
    net = net.to(device).train()
    x = torch.randn(2, 1, size, size, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        net(x).sum().backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 2


def peak_tflops(args) -> float | None:
    """The device's peak for MFU: --peak-tflops, else 790 (H100/H200 dense bf16) on CUDA."""
    if args.peak_tflops is not None:
        return args.peak_tflops
    return 790.0 if args.device.startswith("cuda") else None


@torch.inference_mode()
def inference(net, size: int, args) -> dict:
    """Faces/s by batch size, ours (precision autocast, channels_last) and plain fp32."""
    net = net.to(args.device).eval()
    out = {}
    for batch_size in (int(b) for b in args.infer_batch_sizes.split(",")):
        x = torch.randn(batch_size, 1, size, size, device=args.device)
        row = {}
        for name, fast in (("plain", False), ("ours", True)):
            model = net.to(memory_format=torch.channels_last if fast else torch.contiguous_format)
            dtype = torch.bfloat16 if fast and "bf16" in args.precision else None
            device_type = "cuda" if args.device.startswith("cuda") else "cpu"
            if args.device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            times = []
            for _ in range(args.infer_repeats + 1):
                sync(args.device)
                start = time.perf_counter()
                with torch.autocast(device_type, dtype=dtype or torch.float32, enabled=bool(dtype)):
                    model(
                        x.contiguous(
                            memory_format=torch.channels_last if fast else torch.contiguous_format
                        )
                    )
                sync(args.device)
                times.append(time.perf_counter() - start)
            row[name] = round(batch_size / min(times[1:]), 1)
            if args.device.startswith("cuda"):
                row[f"{name}_peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        out[str(batch_size)] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--sizes", default="48,96", help="input sizes, px")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=6, help="timed training batches")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches first")
    parser.add_argument("--workers", type=int, default=0, help="plain loop's DataLoader workers")
    parser.add_argument("--precision", default="bf16-mixed", help="ours: Lightning precision")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--compile", default=False, help="ours: torch.compile mode (default off)")
    parser.add_argument("--infer-batch-sizes", default="1,16,64,256")
    parser.add_argument("--infer-repeats", type=int, default=3)
    parser.add_argument("--data", help="a data/ folder with faces/ and split/ (else synthetic)")
    parser.add_argument("--images", type=int, default=1024, help="synthetic faces")
    parser.add_argument(
        "--peak-tflops", type=float, help="the device's peak for MFU (default: 790 on CUDA)"
    )
    parser.add_argument("--out", help="also write the JSON to this file")
    args = parser.parse_args()
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp)
        if not args.data:
            synthetic_faces(data, args.images)
        manifest = data / "split/manifest.csv"
        rows = read_manifest(manifest, CLASSES)
        train = {}
        for size in (int(s) for s in args.sizes.split(",")):
            datamodule = FERDataModule(
                str(data / "faces"),
                str(manifest),
                input_size=size,
                batch_size=args.batch_size,
                augment=AUGMENT,
                source="packed",
                augmentation="batched",
                pin_memory=args.device.startswith("cuda"),
            )
            plain_loader = DataLoader(
                ImageFiles(data / "faces", rows, plain_transform(size)),
                batch_size=args.batch_size,
                shuffle=True,
                num_workers=args.workers,
                pin_memory=args.device.startswith("cuda"),
                drop_last=True,
            )
            train_faces = sum(r["split"] == "train" for r in rows)
            peak = peak_tflops(args)
            for mode in args.modes.split(","):
                model_cfg = load_config([f"model={mode}"]).model
                flops = train_flops_per_image(build_net(model_cfg, 7, 1), size, args.device)
                torch.manual_seed(0)
                plain = plain_loop(
                    build_net(model_cfg, 7, 1), plain_loader, args.device, args.batches, args.warmup
                )
                if args.device.startswith("cuda"):
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                torch.manual_seed(0)
                ours = our_trainer(
                    build_net(model_cfg, 7, 1), datamodule, args, args.batches, args.warmup
                )
                row = {
                    "ours_images_per_s": round(ours, 1),
                    "plain_images_per_s": round(plain, 1),
                    "ratio": round(ours / plain, 2),
                    "epoch_s": round(train_faces / ours, 2),
                    "train_gflops_per_image": round(flops / 1e9, 3),
                }
                if peak:
                    row["mfu"] = round(flops * ours / (peak * 1e12), 4)
                if args.device.startswith("cuda"):
                    row["ours_peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
                train[f"{mode}/{size}"] = row
                print(mode, size, json.dumps(train[f"{mode}/{size}"]), flush=True)
        smallest = min(int(s) for s in args.sizes.split(","))
        infer = inference(build_net(load_config(["model=fusion"]).model, 7, 1), smallest, args)

    result = {
        "device": args.device,
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "timed_batches": args.batches,
        "train_faces": train_faces,
        "peak_tflops": peak_tflops(args),
        "ours": {
            "data": "packed arrays, batched augmentation on the device",
            "precision": args.precision,
            "channels_last": args.channels_last,
            "compile": args.compile,
        },
        "plain": {
            "data": "PIL image files + torchvision transforms",
            "precision": "32",
            "workers": args.workers,
        },
        "train": train,
        "inference_fusion_faces_per_s": {f"{smallest}px": infer},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if args.device.startswith("cuda"):
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    log_to_mlflow(result)
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


def log_to_mlflow(result: dict) -> None:
    mlflow.set_tracking_uri(load_config([]).logger.tracking_uri)
    mlflow.set_experiment("benchmarks")
    with mlflow.start_run(run_name=f"train_throughput {result['device']}"):
        mlflow.log_params(
            {"device": result["device"], "batch_size": result["batch_size"]}
            | {f"ours.{k}": v for k, v in result["ours"].items()}
        )
        for key, values in result["train"].items():
            mlflow.log_metrics({f"train/{key}/{k}": v for k, v in values.items()})
        mlflow.log_metric("peak_rss_mb", result["peak_rss_mb"])
        mlflow.log_dict(result, "train_throughput.json")


if __name__ == "__main__":
    main()
