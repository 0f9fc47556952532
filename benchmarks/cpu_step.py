"""Training-step speed of one model under each speed setting: the measurements behind trainer=cpu's
defaults and the CPU recipe (docs/results/2026-12-06-fer2013-cpu.md).

A forward and backward pass and an SGD step on random 1-channel faces, in this process, nothing
else (no data loading, no Lightning): images/s for each setting, after warm-up steps. Then the cost
per face of the two augmentation paths on uint8 48 px faces.

    python benchmarks/cpu_step.py                         # fusion: precision, layout, batch, stem, size
    python benchmarks/cpu_step.py --model resnet34 --steps 10
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from fer_pipeline.data.batch_augment import BatchAugment
from fer_pipeline.data.transforms import build_transform
from fer_pipeline.models.hybrid import EnsembleNet, FusionNet, SingleNet

SETTINGS = [  # (name, precision, channels_last, batch, stem, maxpool, size)
    ("fp32", "32", False, 64, "imagenet", True, 48),
    ("bf16", "bf16", False, 64, "imagenet", True, 48),
    ("bf16 + channels_last", "bf16", True, 64, "imagenet", True, 48),
    ("bf16 + channels_last, batch 128", "bf16", True, 128, "imagenet", True, 48),
    ("bf16 + channels_last, 64 px", "bf16", True, 64, "imagenet", True, 64),
    ("bf16 + channels_last, no max pooling (4x compute)", "bf16", True, 64, "imagenet", False, 48),
    ("bf16 + channels_last, small stem (4x compute)", "bf16", True, 64, "small", True, 48),
]
AUGMENT = {"hflip": 0.5, "rotate": 10, "shift": 0.1, "scale": 0.1, "brightness_contrast": 0.2}


def build(model: str, **kwargs) -> torch.nn.Module:
    if model == "fusion":
        return FusionNet(7, **kwargs)
    if model == "ensemble":
        return EnsembleNet(7, **kwargs)
    return SingleNet(7, model, **kwargs)


def step_speed(model, precision, channels_last, batch, stem, maxpool, size, steps, warmup) -> float:
    torch.manual_seed(0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    net = build(model, stem=stem, maxpool=maxpool).to(memory_format=layout).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 1, size, size).contiguous(memory_format=layout)
    y = torch.randint(0, 7, (batch,))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = torch.nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def augmentation_ms(faces: int = 128, repeats: int = 5) -> dict[str, float]:
    """Milliseconds per face: whole-batch (BatchAugment) and per-image (albumentations)."""
    x = np.random.default_rng(0).integers(0, 255, (faces, 48, 48), dtype=np.uint8)
    batched = BatchAugment(48, 0.449, 0.226, AUGMENT, 0)
    start = time.perf_counter()
    for _ in range(repeats):
        batched(torch.from_numpy(x), train=True)
    batched_ms = (time.perf_counter() - start) / repeats / faces * 1000
    per_image = build_transform(48, 0.449, 0.226, AUGMENT, 0)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.utils.data.default_collate([per_image(image=face)["image"] for face in x])
    per_image_ms = (time.perf_counter() - start) / repeats / faces * 1000
    return {"batched": round(batched_ms, 3), "albumentations": round(per_image_ms, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="fusion", help="fusion | ensemble | resnet50 | resnet34")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    result = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}",
        "model": args.model,
        "images_per_s": {},
    }
    for name, *setting in SETTINGS:
        speed = step_speed(args.model, *setting, args.steps, args.warmup)
        result["images_per_s"][name] = round(speed, 1)
        print(f"{name}: {speed:.1f} images/s", flush=True)
    result["augmentation_ms_per_face"] = augmentation_ms()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
