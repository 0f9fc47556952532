"""Benchmark using a trained model: faces/s of the network alone by batch size, photos/s end to end
on a folder of 640x480 photos with Haar detection, and the app's time from upload to result.

    python benchmarks/inference.py                                   # models/best.ckpt, the app
                                                                     # on models:/fer-pipeline@champion
    python benchmarks/inference.py --model runs:/<id>/model --batch-sizes 1,64 --photos 40
    python benchmarks/inference.py --screenshot docs/images/app.png  # also the README's picture

The photos are made by ``face_photos.make_photos``: scikit-image's astronaut (a public-domain
photograph, in the test extras) pasted at random places on 640x480 backgrounds, 1-3 faces each,
the face 12-19 % of the width. Network-only
speed feeds random 8-bit face crops at the checkpoint's face size through its preprocessing and
test-time augmentation (``Recognizer.probabilities``). The app is started in this process on
127.0.0.1 against ``$MLFLOW_TRACKING_URI`` (default ``sqlite:///mlflow.db``); its time is the
median HTTP round trip of ``POST /api/predict`` with one photo (detection, prediction and one
occlusion map per face). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch
from face_photos import make_photos  # this folder's photo maker

from fer_pipeline.inference import Recognizer


def network_only(recognizer: Recognizer, batch_sizes: list[int], seconds: float) -> dict:
    size = int(recognizer.config.face.size)
    channels = 1 if recognizer.config.face.get("grayscale", True) else 3
    shape = (size, size) if channels == 1 else (size, size, 3)
    rng = np.random.default_rng(0)
    result = {}
    for batch in batch_sizes:
        recognizer.batch_size = batch
        faces = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(batch)]
        recognizer.probabilities(faces)  # warm-up
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or done < 2 * batch:
            recognizer.probabilities(faces)
            done += batch
        result[str(batch)] = round(done / (time.perf_counter() - start), 1)
    return result


def end_to_end(recognizer: Recognizer, folder: Path, batch: int) -> dict:
    recognizer.batch_size = batch
    recognizer.predict(sorted(folder.rglob("*.jpg"))[:2])  # warm-up
    start = time.perf_counter()
    table = recognizer.predict(folder)
    seconds = time.perf_counter() - start
    count = table["input"].nunique()
    return {
        "photos": int(count),
        "faces_found": int(table["face"].notna().sum()),
        "photos_without_face": int(table.groupby("input")["face"].count().eq(0).sum()),
        "seconds": round(seconds, 2),
        "photos_per_s": round(count / seconds, 1),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_latency(
    photo: Path, repeats: int, device: str, precision: str, screenshot: str | None
) -> dict:
    import uvicorn

    from fer_pipeline.app.catalog import tracked_choices
    from fer_pipeline.app.server import create_app

    choices = tracked_choices()
    if not choices:
        return {"skipped": "no registered model in the MLflow store (run make demo first)"}
    key = next((c for c in choices if c.champion), choices[0]).key
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(device=device, preload=False, precision=precision),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )  # fmt: skip
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    body = photo.read_bytes()

    def post() -> tuple[float, int]:
        start = time.perf_counter()
        request = urllib.request.Request(f"{url}/api/predict?model={key}", data=body)
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
        return time.perf_counter() - start, len(answer["faces"])

    first, faces = post()  # includes loading the model from the registry
    times = [post()[0] for _ in range(repeats)]
    result = {
        "model_version": key,
        "faces_in_photo": faces,
        "first_request_s": round(first, 2),
        "upload_to_result_s_median": round(statistics.median(times), 3),
        "upload_to_result_s_max": round(max(times), 3),
    }
    if screenshot:
        result["browser_upload_to_result_s"] = take_screenshot(url, photo, Path(screenshot))
    server.should_exit = True
    thread.join(10)
    return result


def take_screenshot(url: str, photo: Path, path: Path) -> float:
    """The page after one upload, as the README shows it; returns the time the page took."""
    import shutil

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1180, "height": 900})
        page.goto(url)
        page.wait_for_selector("td.selected")
        start = time.perf_counter()
        page.set_input_files("#file", str(photo))
        page.wait_for_selector("body[data-state=done]", timeout=120_000)
        seconds = time.perf_counter() - start
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        browser.close()
    return round(seconds, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/best.ckpt")
    parser.add_argument("--batch-sizes", default="1,8,32,64,128")
    parser.add_argument("--seconds", type=float, default=5.0, help="per batch size")
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--photo-batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10, help="app requests")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--screenshot", help="save the app's page after one upload here")
    args = parser.parse_args()
    recognizer = Recognizer.load(
        args.model, detector="haar", device=args.device, precision=args.precision
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        truth = make_photos(folder, args.photos, [640], face_share=(0.12, 0.19),
                            distractors_per_photo=0)  # fmt: skip
        pasted = sum(map(len, truth.values()))
        result = {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads "
            f"{torch.get_num_threads()}, device {args.device}, {args.precision}",
            "model": args.model,
            "network": recognizer.config.model.name,
            "face_size": int(recognizer.config.face.size),
            "input_size": recognizer.input_size,
            "tta": recognizer.tta[0],
            "network_only_faces_per_s": network_only(
                recognizer, [int(b) for b in args.batch_sizes.split(",")], args.seconds
            ),
            "end_to_end_640x480_haar": {"faces_pasted": pasted}
            | end_to_end(recognizer, folder, args.photo_batch),
            "app": {},
        }
        for n in (1, 2):  # a photo with one face, and one with two
            photo = folder / next(name for name, boxes in truth.items() if len(boxes) == n)
            shot = args.screenshot if n == 2 else None
            result["app"][f"{n}_face"] = app_latency(
                photo, args.repeats, args.device, args.precision, shot
            )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
