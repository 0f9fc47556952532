"""Predict the emotion of every face in images, folders (recursive) and video files.

    python -m fer_pipeline.predict photo.jpg faces/ clip.mp4 --out predictions.csv
    python -m fer_pipeline.predict photos/ --model models:/fer-pipeline@champion --annotate seen/
    python -m fer_pipeline.predict talk.mp4 --every-n-frames 10

Writes one CSV row per (input, frame, face) with the box, the face score, a probability per class,
the predicted class and the crop outcome; an input without a face, or one that cannot be read, is
a row whose outcome says why (``no_face``, ``missing``, ``not_an_image``, ``unreadable``,
``too_large`` (above ``face.max_pixels``, refused from its header), ``empty_folder``,
``unreadable_video``). Rows are written as they come, to ``<out>.part``, which
becomes ``<out>`` when all inputs are done: an interrupted run keeps its rows there and leaves an
existing ``<out>`` as it was. Exit status: 0; 1 when some input could not be read (all others
are still predicted); 2 for a bad option or model (one line).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections import Counter
from pathlib import Path

import cv2

from fer_pipeline.errors import PipelineError, exit_on_error
from fer_pipeline.inference.annotate import draw
from fer_pipeline.inference.inputs import INPUT_ERRORS
from fer_pipeline.quiet import quiet_libraries


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fer_pipeline.predict",
        description="Predict the emotion of every face in images, folders and videos.",
    )
    parser.add_argument("inputs", nargs="+", help="image or video files, folders, globs")
    parser.add_argument(
        "--model",
        default="models/best.ckpt",
        help="a checkpoint (default: %(default)s, the pipeline's model), a registered model "
        "(models:/fer-pipeline@champion), a run's model (runs:/<id>/model) or a training run id; "
        "MLflow is read at $MLFLOW_TRACKING_URI",
    )
    parser.add_argument("--out", default="predictions.csv", help="CSV to write (%(default)s)")
    parser.add_argument("--annotate", metavar="DIR", help="write copies with boxes and labels")
    parser.add_argument("--every-n-frames", type=int, default=1, metavar="N", help="video: sample")
    parser.add_argument("--batch-size", type=int, default=64, metavar="B")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument(
        "--precision", default="fp32", choices=["fp32", "bf16"],
        help="bf16: faster on CPUs with bf16 instructions, probabilities within about 0.01",
    )  # fmt: skip
    parser.add_argument(
        "--detector",
        choices=("auto", "haar", "mtcnn", "retinaface", "none"),
        help="face detector (default: the model's own, auto for models trained on given crops)",
    )
    args = parser.parse_args(argv)
    if args.every_n_frames < 1:
        raise PipelineError(f"--every-n-frames must be >= 1, got {args.every_n_frames}")
    if args.batch_size < 1:
        raise PipelineError(f"--batch-size must be >= 1, got {args.batch_size}")
    return args


class Annotator:
    """Annotated copies under ``folder``: images as PNG, each video as an MP4 of its sampled
    frames."""

    def __init__(self, folder: Path, classes: list[str], every_n_frames: int):
        self.folder, self.classes, self.every_n = folder, classes, every_n_frames
        self.writers: dict[str, object] = {}
        self.names: dict[str, str] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def _name(self, source: str, suffix: str) -> Path:
        if source not in self.names:
            stem = Path(source).stem if "[" not in source else source.replace("[", "_").strip("]")
            name, n = stem, 1
            while name in self.names.values():
                n += 1
                name = f"{stem}_{n}"
            self.names[source] = name
        return self.folder / f"{self.names[source]}{suffix}"

    def add(self, item, rows: list[dict]) -> None:
        if item.image is None:
            return
        picture = cv2.cvtColor(draw(item.image, rows, self.classes), cv2.COLOR_RGB2BGR)
        if item.frame is None:
            cv2.imwrite(str(self._name(item.input, ".png")), picture)
            return
        if item.input not in self.writers:
            height, width = picture.shape[:2]
            self.writers[item.input] = cv2.VideoWriter(
                str(self._name(item.input, ".mp4")),
                cv2.VideoWriter_fourcc(*"mp4v"),
                max((item.fps or 25.0) / self.every_n, 1.0),
                (width, height),
            )
        self.writers[item.input].write(picture)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.release()


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    quiet_libraries()  # no MLflow download bar when --model is a registry or run URI
    from fer_pipeline.inference import Recognizer, columns
    from fer_pipeline.inference.recognizer import trained_on
    from fer_pipeline.progress import progress

    out = Path(args.out)
    if out.is_dir():
        raise PipelineError(f"--out {out} is a folder; give a file name such as {out}/faces.csv")
    recognizer = Recognizer.load(
        args.model, args.detector, args.device, args.batch_size, args.precision
    )
    if recognizer.cropper.note:
        print(f"note: {recognizer.cropper.note}", file=sys.stderr)
    print(
        f"model: {recognizer.source}, trained on {trained_on(recognizer.dataset)}", file=sys.stderr
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    annotator = (
        Annotator(Path(args.annotate), recognizer.classes, args.every_n_frames)
        if args.annotate
        else None
    )
    outcomes: Counter = Counter()
    bad_inputs: set[str] = set()
    faces = images = 0
    done = False
    try:
        with part.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns(recognizer.classes))
            writer.writeheader()
            bar = progress("predict", unit="images", stream=sys.stderr)  # CSV may go to stdout
            for item, rows in recognizer.iter_predictions(args.inputs, args.every_n_frames):
                writer.writerows(rows)
                f.flush()
                bar.update()
                for row in rows:
                    outcomes[row["outcome"]] += 1
                    faces += row["face"] is not None
                if item.error:
                    bad_inputs.add(item.input)
                else:
                    images += 1
                if annotator:
                    annotator.add(item, rows)
            bar.close()
        done = True
    finally:
        if annotator:
            annotator.close()
        if not done and part.exists():
            print(f"stopped: the rows written so far are in {part}", file=sys.stderr)
    os.replace(part, out)
    no_face = outcomes["no_face"] + outcomes["too_small"]
    summary = f"predict: {faces} faces in {images} images/frames ({no_face} without a face)"
    if bad_inputs:
        detail = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()) if k in INPUT_ERRORS)
        summary += f"; {len(bad_inputs)} inputs could not be read ({detail})"
    print(f"{summary} -> {out}" + (f", pictures in {args.annotate}" if annotator else ""))
    if bad_inputs:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
