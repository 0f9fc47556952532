"""Choose the test-time augmentation on val: one trained model scored on the val faces with each
``evaluation.tta`` (none, hflip, tencrop), each with a 95 % bootstrap interval and its time.

The choice is made on val; the test column is printed for information only (``--test`` adds it)
and plays no part in it. ``--models`` is a train stage's ``models/`` (``best.ckpt``), on the
prepared split (``data/split``).

    python benchmarks/tta_val.py --models models --out reports/tta_val.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from fer2013_protocol import correct_per_face, interval, unaugmented_data

from fer_pipeline.errors import exit_on_error
from fer_pipeline.evaluation.settings import TTA_MODES
from fer_pipeline.evaluation.tta import views
from fer_pipeline.models.module import load_trained
from fer_pipeline.quiet import quiet_libraries


@exit_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="models", help="folder with best.ckpt")
    parser.add_argument("--split", default="data/split")
    parser.add_argument("--faces", default="data/faces")
    parser.add_argument("--tta", default=",".join(TTA_MODES), help="comma-separated")
    parser.add_argument("--test", action="store_true", help="also score test (not for choosing)")
    parser.add_argument("--out", default="reports/tta_val.json")
    args = parser.parse_args()
    quiet_libraries()
    choices = args.tta.split(",")
    unknown = [c for c in choices if c not in TTA_MODES]
    if unknown:
        parser.error(f"--tta: unknown {', '.join(unknown)} (known: {', '.join(TTA_MODES)})")
    module = load_trained(Path(args.models) / "best.ckpt")
    datamodule = unaugmented_data(args.faces, args.split, module.config.loader)
    splits = ("val", "test") if args.test else ("val",)
    results: dict = {"model": str(module.config.model.name), "checkpoint": args.models, "rows": {}}
    correct = {}
    for tta in choices:
        row = {"views": len(views(torch.zeros(1, 1, 8, 8), tta))}
        for split in splits:
            start = time.perf_counter()
            _, correct[tta, split] = correct_per_face(module, datamodule, split, tta)
            row[split] = interval(correct[tta, split])
            row[split]["seconds"] = round(time.perf_counter() - start, 1)
        # paired on the same val faces: this view's accuracy minus the first choice's
        diff = correct[tta, "val"].astype(float) - correct[choices[0], "val"].astype(float)
        paired = interval(diff)  # its "accuracy" is here the mean difference
        row["val_minus_first"] = {"difference": paired.pop("accuracy"), **paired}
        results["rows"][tta] = row
    chosen = max(choices, key=lambda c: results["rows"][c]["val"]["accuracy"])
    results["chosen_on_val"] = chosen
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    head = (
        f"| tta | views | val accuracy [95 % CI] | minus {choices[0]}, paired [95 % CI] | val s |"
    )
    head += " test (not used) |" if args.test else ""
    print(head + "\n|---|---|---|---|---|" + ("---|" if args.test else ""))
    for tta, row in results["rows"].items():
        v, d = row["val"], row["val_minus_first"]
        line = (
            f"| {tta} | {row['views']} | {v['accuracy']:.4f} [{v['low']:.4f}, {v['high']:.4f}] | "
            f"{d['difference']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] | {v['seconds']} |"
        )
        if args.test:
            t = row["test"]
            line += f" {t['accuracy']:.4f} [{t['low']:.4f}, {t['high']:.4f}] |"
        print(line)
    print(f"{results['model']}: chosen on val: {chosen} -> {args.out}")


if __name__ == "__main__":
    main()
