"""Benchmark the data stages (prepare, crop, split with its leakage check) on a real dataset.

Each stage runs as its own process, exactly as `dvc repro` runs it, writing into a temporary folder
(your data/ is not touched); the script prints one JSON object with the wall time and the peak
resident memory of every stage, and the image counts.

    python benchmarks/data_stages.py                       # ../shared/data/fer2013-dev.tar.gz
    python benchmarks/data_stages.py --data fer2013 --path data/external/fer2013.csv
    python benchmarks/data_stages.py --detector haar --stages prepare,crop   # crop throughput
    python benchmarks/data_stages.py --detector haar --stages prepare,crop face.haar.cascade=default
    python benchmarks/data_stages.py --data folder --path ~/rafdb.zip --detector annotations
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "fer2013-dev.tar.gz"

# Runs one stage in this process and reports its own peak RSS (ru_maxrss is in KiB on Linux).
LAUNCHER = """
import json, resource, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__")
finally:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest worker
    report = {"peak_rss_mb": round(peak / 1024, 1), "worker_peak_rss_mb": round(workers / 1024, 1)}
    print("BENCH " + json.dumps(report), file=sys.stderr)
"""


def run_stage(stage: str, overrides: list[str]) -> dict:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", LAUNCHER, f"fer_pipeline.{stage}", *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"error: stage {stage} failed: {result.stderr.strip().splitlines()[-1]}")
    bench = next(
        json.loads(line[6:]) for line in result.stderr.splitlines() if line.startswith("BENCH ")
    )
    return {"wall_s": round(wall, 2), **bench, "stdout": result.stdout.strip().splitlines()}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="fer2013", help="data config (conf/data/<name>.yaml)")
    parser.add_argument("--path", default=str(SHARED), help="data.path: the dataset to read")
    parser.add_argument("--detector", default="none", help="face.detector for the crop stage")
    parser.add_argument("--workers", type=int, default=2, help="face.workers for the crop stage")
    parser.add_argument("--stages", default="prepare,crop,split")
    parser.add_argument("--out", help="also write the JSON to this file")
    parser.add_argument(
        "overrides", nargs="*", help="more overrides, e.g. face.haar.cascade=default"
    )
    args = parser.parse_args()
    if not Path(args.path).exists():
        sys.exit(f"error: {args.path} does not exist (pass --path to a dataset file or folder)")

    with tempfile.TemporaryDirectory(prefix="fer-bench-") as tmp:
        overrides = [
            f"data={args.data}",
            f"data.path={Path(args.path).resolve()}",
            f"face.detector={args.detector}",
            f"face.workers={args.workers}",
            f"paths.raw={tmp}/raw",
            f"paths.faces={tmp}/faces",
            f"paths.split={tmp}/split",
            *args.overrides,
        ]
        stages = {s: run_stage(s, overrides) for s in args.stages.split(",")}
        tmp_path = Path(tmp)
        card = read_json(tmp_path / "split" / "card.json")
        raw_card = read_json(tmp_path / "raw" / "card.json")
        crop = read_json(tmp_path / "faces" / "crop_summary.json")
    result = {
        "benchmark": "data_stages",
        "data": args.data,
        "path": args.path,
        "detector": args.detector,
        "face_workers": args.workers,
        "overrides": args.overrides,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "stages": {s: {k: v for k, v in r.items() if k != "stdout"} for s, r in stages.items()},
        "output": {s: r["stdout"] for s, r in stages.items()},
        "images": sum(raw_card["totals"].values()) if raw_card else None,
        "crop_outcomes": crop.get("outcomes"),
        "totals": card.get("totals"),
        "leakage": {
            k: card["leakage"][k]
            for k in ("threshold", "cross_split_pairs", "exact_cross_split_pairs", "pairs")
        }
        if card
        else None,
    }
    for stage, r in result["stages"].items():
        if stage in ("prepare", "crop") and result["images"]:
            r["images_per_s"] = round(result["images"] / r["wall_s"], 1)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
