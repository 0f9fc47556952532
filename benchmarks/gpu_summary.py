"""The GPU check's summary (benchmarks/gpu_check.sh): one Markdown file and a learning-curve plot
from what the check's steps wrote.

Reads the test report (``metrics.json``), the per-epoch curves (``train_curves.csv``) and the
throughput benchmark's JSON; writes ``summary.md`` and ``learning_curve.png`` into the output
folder and prints the summary.

    python benchmarks/gpu_summary.py OUT --reports WORK/reports --train-seconds 395 --command "..."
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import sys
from pathlib import Path


def read_curves(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def plot_curves(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_acc", "train (augmented)"), ("val_acc", "val")):
        acc.plot(epochs, [r.get(key) for r in rows], marker="o", label=label)
    for key, label in (("train_loss", "train"), ("val_loss", "val")):
        loss.plot(epochs, [r.get(key) for r in rows], marker="o", label=label)
    acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    for ax in (acc, loss):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary(
    metrics: dict, curves: list[dict], throughput: dict, train_seconds: float, command: str
) -> str:
    test, ci = metrics["test"], metrics["ci"]["accuracy"]
    best = max(curves, key=lambda r: r.get("val_acc", -1.0))
    timed = [r["epoch_s"] for r in curves if "epoch_s" in r]
    lines = [
        "# GPU check",
        "",
        f"- Command: `{command}`",
        f"- Device: {throughput.get('gpu') or throughput.get('device')} "
        f"(host {platform.node() or '?'}, Python {platform.python_version()})",
        f"- Test accuracy: **{test['accuracy']:.4f}**, {metrics['bootstrap']['level']:.0%} bootstrap "
        f"CI [{ci['low']:.4f}, {ci['high']:.4f}] on {metrics['num_test_samples']} faces "
        f"(TTA {metrics['tta']}); macro F1 {test['f1_macro']:.4f}",
        f"- Epochs run: {len(curves)}; best val/acc {best['val_acc']:.4f} at epoch {int(best['epoch'])}",
        f"- Training wall time: {train_seconds:.0f} s (the train command: fit, package, test)",
    ]
    if timed:
        lines.append(
            f"- Epoch time (training batches): median {statistics.median(timed):.2f} s, "
            f"first {timed[0]:.2f} s"
        )
    lines += [
        "",
        f"Throughput (batch {throughput['batch_size']}, {throughput['timed_batches']} timed batches, "
        f"{throughput['train_faces']} training faces an epoch; "
        + (
            f"MFU against {throughput['peak_tflops']} TFLOP/s):"
            if throughput.get("peak_tflops")
            else "no MFU: no peak TFLOP/s for this device):"
        ),
        "",
        "| model / px | ours images/s | plain images/s | ratio | epoch s | train GFLOP/image | MFU | peak GPU MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, row in throughput["train"].items():
        mfu = f"{row['mfu']:.1%}" if "mfu" in row else "-"
        lines.append(
            f"| {key} | {row['ours_images_per_s']} | {row['plain_images_per_s']} | {row['ratio']} | "
            f"{row['epoch_s']} | {row['train_gflops_per_image']} | {mfu} | "
            f"{row.get('ours_peak_gpu_mb', '-')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--reports", type=Path, required=True, help="the train command's reports/")
    parser.add_argument("--train-seconds", type=float, required=True)
    parser.add_argument("--command", default="bash benchmarks/gpu_check.sh")
    args = parser.parse_args()
    needed = [
        args.reports / "metrics.json",
        args.reports / "train_curves.csv",
        args.out / "throughput.json",
    ]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        sys.exit(f"gpu_summary: missing {', '.join(missing)}: an earlier step of the check failed")
    curves = read_curves(args.reports / "train_curves.csv")
    text = summary(
        json.loads(needed[0].read_text()),
        curves,
        json.loads(needed[2].read_text()),
        args.train_seconds,
        args.command,
    )
    plot_curves(curves, args.out / "learning_curve.png")
    (args.out / "summary.md").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
