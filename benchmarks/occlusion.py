"""Benchmark occlusion sensitivity: seconds per face, as the evaluate stage computes it.

Builds the configured network (random weights unless --checkpoint is given: speed does not depend on
the weights), occludes --faces faces of --size px with a --window square every --stride px, and
prints one JSON object: seconds per face for each --batch-sizes value, windows per face, occluded
images per second, the device and the number of CPU threads.

    python benchmarks/occlusion.py                                 # hybrid (fusion), 48 px, 8/4
    python benchmarks/occlusion.py --model ensemble --batch-sizes 64,128,256
    python benchmarks/occlusion.py --checkpoint models/best.ckpt --device cuda
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from fer_pipeline.config import load_config
from fer_pipeline.evaluation.occlusion import occlusion_masks, occlusion_sensitivity
from fer_pipeline.models.checkpoint import build_net
from fer_pipeline.models.module import load_trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fusion", help="conf/model/<name> (default fusion)")
    parser.add_argument("--checkpoint", help="a trained checkpoint instead of random weights")
    parser.add_argument("--faces", type=int, default=14)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--batch-sizes", default="64,128,256")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per batch size (best)")
    args = parser.parse_args()

    if args.checkpoint:
        net = load_trained(args.checkpoint).net
        model_name = f"checkpoint {args.checkpoint}"
    else:
        net = build_net(load_config([f"model={args.model}"]).model, 7, in_channels=1)
        model_name = args.model
    net = net.to(args.device).eval()
    generator = torch.Generator().manual_seed(0)
    faces = torch.randn(args.faces, 1, args.size, args.size, generator=generator)
    labels = torch.randint(0, 7, (args.faces,), generator=generator)
    windows = occlusion_masks(args.size, args.size, args.window, args.stride).shape[0]
    occlusion_sensitivity(net, faces[:1], labels[:1], args.window, args.stride)  # warm-up

    results = {}
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        times = []
        for _ in range(args.repeats):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            occlusion_sensitivity(
                net, faces, labels, args.window, args.stride, batch_size=batch_size
            )
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        best = min(times)
        results[str(batch_size)] = {
            "seconds_per_face": round(best / args.faces, 4),
            "occluded_images_per_s": round(args.faces * windows / best, 1),
        }
    print(
        json.dumps(
            {
                "model": model_name,
                "input": f"1x{args.size}x{args.size}",
                "window": args.window,
                "stride": args.stride,
                "windows_per_face": windows,
                "faces": args.faces,
                "device": args.device,
                "torch_threads": torch.get_num_threads(),
                "cpu": platform.processor() or platform.machine(),
                "by_batch_size": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
