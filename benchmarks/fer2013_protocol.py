"""What a protocol error does to a FER2013 number: one trained model, scored the honest way and the
wrong ways.

For the model in ``models/`` (the train stage's ``best.ckpt``, chosen on val, and ``last.ckpt``) on
the prepared split (``data/split``):

- accuracy on the train faces (testing on training faces), on val (the split the checkpoint was
  chosen on) and on test, each with a 95 % bootstrap interval;
- test accuracy of ``best.ckpt`` and of ``last.ckpt``: picking whichever scores higher on test is
  selecting the checkpoint on test;
- test accuracy on the test faces that have a near-duplicate in train or val (the split stage's
  leakage check, ``data/split/leakage_pairs.csv``) against the rest; and on those whose duplicate
  carries the same label.

The test-time augmentation is ``evaluation.tta`` of the checkpoint's config (as the evaluate stage
tests it). Prints a Markdown table and writes ``--out`` (JSON).

    python benchmarks/fer2013_protocol.py --out reports/protocol.json
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from fer_pipeline.data.datamodule import FERDataModule
from fer_pipeline.errors import exit_on_error
from fer_pipeline.evaluation.report import predict
from fer_pipeline.models.module import load_trained
from fer_pipeline.quiet import quiet_libraries


def interval(correct: np.ndarray, resamples: int = 2000, seed: int = 0) -> dict:
    """Accuracy of a 0/1 vector (or the mean of any per-face vector, such as a paired difference)
    with its 95 % percentile bootstrap interval."""
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, len(correct), (resamples, len(correct)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return {"accuracy": float(correct.mean()), "low": float(low), "high": float(high),
            "faces": int(len(correct))}  # fmt: skip


def unaugmented_data(faces: str, split: str, loader_cfg) -> FERDataModule:
    """The prepared split, unaugmented, at the checkpoint's input size and normalisation."""
    datamodule = FERDataModule(
        faces, str(Path(split) / "manifest.csv"), input_size=loader_cfg.input_size,
        batch_size=256, eval_batch_size=256, mean=loader_cfg.mean, std=loader_cfg.std, augment=None,
        augmentation="albumentations",
    )  # fmt: skip
    datamodule.setup(None)
    return datamodule


def correct_per_face(module, datamodule: FERDataModule, split: str, tta: str) -> tuple:
    """``(paths, correct)`` of every face of ``split``, unaugmented, with ``tta``."""
    loader = datamodule._loader(split, shuffle=False)
    probs, labels = predict(module, loader, "cpu", tta)
    return datamodule.splits[split].paths, (probs.argmax(dim=1) == labels).numpy()


def duplicated_test_faces(pairs_csv: Path) -> tuple[set[str], set[str]]:
    """Test faces with a near-duplicate in train or val; and those whose duplicate has the same
    label."""
    anywhere, same_label = set(), set()
    with pairs_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            for mine, other in (("a", "b"), ("b", "a")):
                if row[f"split_{mine}"] == "test" and row[f"split_{other}"] in ("train", "val"):
                    anywhere.add(row[mine])
                    if row["label_conflict"] == "False":
                        same_label.add(row[mine])
    return anywhere, same_label


@exit_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="models", help="folder with best.ckpt and last.ckpt")
    parser.add_argument("--split", default="data/split")
    parser.add_argument("--faces", default="data/faces")
    parser.add_argument("--out", default="reports/protocol.json")
    args = parser.parse_args()
    quiet_libraries()
    start = time.perf_counter()
    results: dict = {}
    best = load_trained(Path(args.models) / "best.ckpt")
    tta = best.config.evaluation.tta
    datamodule = unaugmented_data(args.faces, args.split, best.config.loader)
    per_face = {}
    for split in ("train", "val", "test"):
        paths, correct = correct_per_face(best, datamodule, split, tta)
        per_face[split] = dict(zip(paths, correct, strict=True))
        results[f"best.ckpt on {split}"] = interval(correct)
    last = load_trained(Path(args.models) / "last.ckpt")
    _, correct = correct_per_face(last, datamodule, "test", tta)
    results["last.ckpt on test"] = interval(correct)
    anywhere, same_label = duplicated_test_faces(Path(args.split) / "leakage_pairs.csv")
    test = per_face["test"]
    groups = {
        "test faces with a near-duplicate in train or val": anywhere,
        "  of which the duplicate has the same label": same_label,
        "test faces without one": set(test) - anywhere,
    }
    for name, faces in groups.items():
        results[name] = interval(np.array([test[f] for f in sorted(faces) if f in test]))
    results["tta"] = tta
    results["seconds"] = round(time.perf_counter() - start, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print("| scored on | faces | accuracy [95 % CI] |\n|---|---|---|")
    for name, r in results.items():
        if isinstance(r, dict):
            print(
                f"| {name} | {r['faces']} | {r['accuracy']:.4f} [{r['low']:.4f}, {r['high']:.4f}] |"
            )
    print(f"({results['seconds']} s, tta {tta}) -> {args.out}")


if __name__ == "__main__":
    main()
