"""Benchmark face cropping on photographs: photos/s of the crop stage's runner (worker processes,
as `dvc repro` runs it) and the precision / recall of the faces it keeps, on generated photos
whose faces are known.

    python benchmarks/face_photos.py                              # Haar and MTCNN, conf's settings
    python benchmarks/face_photos.py --detectors haar --cascade alt2,default --scale-factor 1.1,1.2
    python benchmarks/face_photos.py --max-side 640,480,none --verify landmarks,none --photos 40

Each photo (longer side cycling through --sizes, 4:3) has 1-3 faces (scikit-image's astronaut,
a real photograph: her head and shoulders, pasted with the face 5-12 % of the photo's width) and 2 planted distractors
that Haar takes for faces (patches of scikit-image's moon and coins). A kept face is right when
its box overlaps a planted face by IoU >= 0.3. The same precision / recall on
:func:`sample_set`: real photographs from scikit-image (faces, and images where Haar finds faces
that are not there). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from omegaconf import OmegaConf

from fer_pipeline.faces import FaceCropper
from fer_pipeline.faces.runner import crop_all

ASTRONAUT_FACE = (170, 60, 280, 170)  # x1, y1, x2, y2 in skimage.data.astronaut()
CONF = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] / "conf/face.yaml"))["face"]


def distractors() -> list[np.ndarray]:
    """Patches Haar detects as faces (found by running it over scikit-image's samples)."""
    from skimage import data

    moon = cv2.cvtColor(data.moon(), cv2.COLOR_GRAY2RGB)[400:512, 400:512]
    coins = cv2.cvtColor(cv2.resize(data.coins(), None, fx=2, fy=2), cv2.COLOR_GRAY2RGB)
    return [moon, coins[330:460, 360:490], coins[0:180, 220:400]]


HEAD = (slice(0, 300), slice(100, 350))  # the astronaut's head and shoulders
HEAD_FACE = (70, 60, 180, 170)  # her face in that crop


def make_photos(
    folder: Path,
    count: int,
    sizes: list[int],
    seed: int = 0,
    face_share: tuple[float, float] = (0.05, 0.12),
    distractors_per_photo: int = 2,
) -> dict[str, list]:
    """Write ``count`` JPEG photos into ``folder/happy``: longer side cycling through ``sizes``
    (4:3), 1-3 faces each ``face_share`` of the width, and look-alike patches. Returns the
    planted face boxes (x1, y1, x2, y2) per file."""
    from skimage import data

    person = data.astronaut()[HEAD]
    patches = distractors()[:distractors_per_photo]
    rng = np.random.default_rng(seed)
    truth = {}
    (folder / "happy").mkdir(parents=True)
    for i in range(count):
        width = sizes[i % len(sizes)]
        height = width * 3 // 4
        tile = rng.integers(70, 190, (height // 16 + 1, width // 16 + 1, 1), dtype=np.uint8)
        canvas = np.repeat(
            cv2.resize(tile, (width, height), interpolation=cv2.INTER_CUBIC)[..., None], 3, 2
        )
        boxes, taken = [], []
        for _ in range(int(rng.integers(1, 4))):
            scale = width * rng.uniform(*face_share) / (HEAD_FACE[2] - HEAD_FACE[0])
            head = cv2.resize(person, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            spot = place(rng, canvas, head, taken)
            if spot is not None:
                x, y = spot
                canvas[y : y + head.shape[0], x : x + head.shape[1]] = head
                boxes.append([x + HEAD_FACE[0] * scale, y + HEAD_FACE[1] * scale,
                              x + HEAD_FACE[2] * scale, y + HEAD_FACE[3] * scale])  # fmt: skip
        for patch in patches:
            side = int(width * rng.uniform(0.06, 0.12))
            spot_patch = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)
            spot = place(rng, canvas, spot_patch, taken)
            if spot is not None:
                x, y = spot
                canvas[y : y + side, x : x + side] = spot_patch
        name = f"happy/photo_{i:03d}.jpg"
        cv2.imwrite(str(folder / name), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 90])  # fmt: skip
        truth[name] = boxes
    return truth


def place(rng, canvas, tile, taken: list) -> tuple[int, int] | None:
    """A free spot for ``tile`` (no overlap with earlier tiles), or None."""
    h, w = tile.shape[:2]
    H, W = canvas.shape[:2]
    if h >= H or w >= W:
        return None
    for _ in range(50):
        x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
        if all(x + w <= a or a + c <= x or y + h <= b or b + d <= y for a, b, c, d in taken):
            taken.append((x, y, w, h))
            return x, y
    return None


def sample_set() -> list[tuple[str, np.ndarray, list]]:
    """Real photographs that ship with scikit-image and the tests, with their faces' boxes:
    faces, and images where Haar finds faces that are not there."""
    from skimage import data

    astronaut = data.astronaut()
    person = astronaut[HEAD]
    two = np.full((300, 500, 3), 128, np.uint8)  # tests/conftest.py's two_faces()
    two[:, :250] = person
    small = cv2.resize(person, None, fx=0.6, fy=0.6)
    two[50 : 50 + small.shape[0], 300 : 300 + small.shape[1]] = small
    two_boxes = [(70, 60, 180, 170), (342, 86, 408, 152)]
    coins = cv2.cvtColor(cv2.resize(data.coins(), None, fx=2, fy=2), cv2.COLOR_GRAY2RGB)
    planted = np.full((606, 1268, 3), 120, np.uint8)
    planted[:, :768] = coins
    planted[150:450, 768:1268] = two
    grey = lambda a: cv2.cvtColor(a, cv2.COLOR_GRAY2RGB)  # noqa: E731
    return [
        ("astronaut", astronaut, [ASTRONAUT_FACE]),
        ("astronaut x2", cv2.resize(astronaut, None, fx=2, fy=2), [tuple(2 * v for v in ASTRONAUT_FACE)]),
        ("two faces", two, two_boxes),
        ("coins x2 + two faces", planted,
         [(x + 768, y + 150, x2 + 768, y2 + 150) for x, y, x2, y2 in two_boxes]),
        ("coins x2", coins, []),
        ("moon", grey(data.moon()), []),
        ("coffee x2", cv2.resize(data.coffee(), None, fx=2, fy=2), []),
        ("retina", data.retina()[..., :3], []),
    ]  # fmt: skip


def settings(detector: str, max_side, verify: str, haar: dict | None) -> tuple[dict, dict]:
    """The face config: conf/face.yaml's, with ``multiple=all``, ``max_side`` ("conf": the
    detector's own), ``verify`` and the ``haar`` options given; and what a result shows of it."""
    max_side = CONF[detector]["max_side"] if max_side == "conf" else max_side
    haar = {**CONF["haar"], **(haar or {}), "max_side": max_side}
    face = {**CONF, "detector": detector, "multiple": "all", "on_failure": "drop", "verify": verify,
            "haar": haar, "mtcnn": {**CONF["mtcnn"], "max_side": max_side}}  # fmt: skip
    shown = {"detector": detector, "max_side": max_side}
    if detector == "haar":
        shown |= {k: haar[k] for k in ("cascade", "scale_factor", "min_neighbors")}
    return face, shown | {"verify": verify}


def score_samples(max_side, verify: str, detector: str = "haar", haar: dict | None = None) -> dict:
    face, shown = settings(detector, max_side, verify, haar)
    cropper = FaceCropper.from_config(face)
    kept = right = found = planted = 0
    missed, wrong = [], []
    for name, image, truth in sample_set():
        boxes = [d.box for d in cropper(image).kept]
        kept += len(boxes)
        good = sum(any(iou(b, t) >= 0.3 for t in truth) for b in boxes)
        right += good
        hits = sum(any(iou(b, t) >= 0.3 for b in boxes) for t in truth)
        found += hits
        planted += len(truth)
        if hits < len(truth):
            missed.append(f"{name}: {len(truth) - hits}")
        if good < len(boxes):
            wrong.append(f"{name}: {len(boxes) - good}")
    return {
        **shown, "faces": planted, "kept": kept,
        "precision": round(right / kept, 3) if kept else None,
        "recall": round(found / planted, 3), "missed": missed, "non_faces_kept": wrong,
    }  # fmt: skip


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def run(
    root: Path, truth: dict, max_side, verify: str, workers: int, haar: dict | None = None,
    detector: str = "haar",
) -> dict:  # fmt: skip
    """The crop stage's runner over the photos with conf/face.yaml's settings, but for these."""
    face, shown = settings(detector, max_side, verify, haar)
    cropper = FaceCropper.from_config(face)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        rows = crop_all(cropper, face, root, Path(out), sorted(truth), {}, workers)
        seconds = time.perf_counter() - start
    kept = [r for r in rows if r["action"] == "kept" and r["x"] != ""]
    right = found = 0
    for name, boxes in truth.items():
        mine = [
            (float(r["x"]), float(r["y"]), float(r["x"]) + float(r["w"]), float(r["y"]) + float(r["h"]))
            for r in kept if r["source"] == name
        ]  # fmt: skip
        right += sum(any(iou(m, t) >= 0.3 for t in boxes) for m in mine)
        found += sum(any(iou(m, t) >= 0.3 for m in mine) for t in boxes)
    planted = sum(len(b) for b in truth.values())
    return {
        **shown,
        "photos_per_s": round(len(truth) / seconds, 1),
        "seconds": round(seconds, 2),
        "faces_kept": len(kept),
        "rejected": sum(r["action"] == "rejected" for r in rows),
        "precision": round(right / len(kept), 3) if kept else None,
        "recall": round(found / planted, 3),
    }


def haar_variants(args) -> list[dict]:
    """Every combination of the Haar options given on the command line (the rest: conf's)."""
    options = {"cascade": (args.cascade, str), "scale_factor": (args.scale_factor, float),
               "min_neighbors": (args.min_neighbors, int)}  # fmt: skip
    variants = [{}]
    for key, (values, kind) in options.items():
        if values:
            variants = [v | {key: kind(x)} for v in variants for x in values.split(",")]
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--sizes", default="640,1024,2048,3000,4000")
    parser.add_argument(
        "--max-side", default="conf", help="e.g. 640,480,none; conf: each detector's"
    )
    parser.add_argument("--verify", default=CONF["verify"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--detectors", default="haar,mtcnn")
    parser.add_argument("--cascade", default=None, help="Haar cascade(s), e.g. alt2,default")
    parser.add_argument("--scale-factor", default=None, help="Haar's pyramid step(s)")
    parser.add_argument("--min-neighbors", default=None, help="Haar's min_neighbors")
    args = parser.parse_args()
    sides = [
        None if s == "none" else s if s == "conf" else int(s) for s in args.max_side.split(",")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        truth = make_photos(root, args.photos, [int(s) for s in args.sizes.split(",")])
        report = {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {args.workers} workers",
            "photos": args.photos,
            "sizes": args.sizes,
            "faces_planted": sum(len(b) for b in truth.values()),
            "runs": [
                run(root, truth, s, v, args.workers, h, d)
                for d in args.detectors.split(",")
                for s in sides
                for v in args.verify.split(",")
                for h in (haar_variants(args) if d == "haar" else [None])
            ],
            "scikit_image_photos": [
                score_samples(s, v, d, h)
                for d in args.detectors.split(",")
                for s in sides
                for v in args.verify.split(",")
                for h in (haar_variants(args) if d == "haar" else [None])
            ],
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
