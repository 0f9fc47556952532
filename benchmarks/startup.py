"""Benchmark how long a command takes before it does any work: ``python -c "import <module>"``
in a fresh process, for each stage and the heavy libraries, with and without compiled bytecode.

Python compiles a module's source at every import when it finds no ``.pyc`` and may not write
one (``PYTHONDONTWRITEBYTECODE=1``, set in many containers and on these machines). ``make
install`` writes every ``.pyc`` at install time (``uv sync --compile-bytecode``); this script
measures what that saves. ``--no-pyc`` runs each import with a ``sys.pycache_prefix`` pointing at
an empty folder, so nothing precompiled is found: the cost without ``--compile-bytecode``.
Prints one JSON object: the median of ``--repeats`` seconds per module.

    python benchmarks/startup.py
    python benchmarks/startup.py --modules pytorch_lightning,fer_pipeline.train --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

MODULES = (
    "torch",
    "torchvision",
    "pytorch_lightning",
    "mlflow",
    "fer_pipeline.prepare",
    "fer_pipeline.crop",
    "fer_pipeline.split",
    "fer_pipeline.train",
    "fer_pipeline.evaluate",
    "fer_pipeline.compare",
)


def import_seconds(module: str, repeats: int, no_pyc: bool) -> float:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as empty:
            flags = ["-X", f"pycache_prefix={empty}"] if no_pyc else []
            start = time.perf_counter()
            subprocess.run([sys.executable, *flags, "-c", f"import {module}"], env=env, check=True)
            times.append(time.perf_counter() - start)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", default=",".join(MODULES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-pyc", action="store_true", help="also time without any .pyc")
    args = parser.parse_args()
    modes = {"compiled": False, **({"from_source": True} if args.no_pyc else {})}
    result = {
        "machine": f"{platform.node()} {os.cpu_count()} CPUs, {platform.python_version()}",
        "repeats": args.repeats,
        "import_s": {
            mode: {m: import_seconds(m, args.repeats, no_pyc) for m in args.modules.split(",")}
            for mode, no_pyc in modes.items()
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
