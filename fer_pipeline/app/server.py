"""The app's HTTP side: the page, the models on offer, and one image in -> faces, probabilities and
occlusion maps out, through :class:`Recognizer` (the same path as the API and the MLflow model)."""

from __future__ import annotations

import base64
import csv
import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from fer_pipeline.app.catalog import NO_RUN, Choice, menus, tracked_choices
from fer_pipeline.data.decode import TooLarge
from fer_pipeline.errors import PipelineError
from fer_pipeline.inference.inputs import INPUT_ERRORS, decode
from fer_pipeline.inference.recognizer import Recognizer

STATIC = Path(__file__).with_name("static")
MAX_UPLOAD = 25 * 1024 * 1024
MAP_SIZE = 144  # px of the occlusion picture


class Models:
    """The choices on offer, and their loaded recognizers (loaded once, on first use)."""

    def __init__(self, tracking_uri: str | None, device: str | None, precision: str = "fp32"):
        self.tracking_uri, self.device, self.precision = tracking_uri, device, precision
        self.loaded: dict[str, Recognizer] = {}
        self.known: dict[str, Choice] = {}
        self.lock = threading.Lock()

    def choices(self) -> list[Choice]:
        """The store's choices now (the page asks when it loads); remembered for predictions."""
        found = tracked_choices(self.tracking_uri)
        self.known = {c.key: c for c in found}
        return found

    def recognizer(self, key: str) -> tuple[Choice, Recognizer]:
        by_key = self.known if key in self.known else {c.key: c for c in self.choices()}
        if key not in by_key:
            raise HTTPException(404, f"no trained model '{key}' (choose one the page offers)")
        choice = by_key[key]
        with self.lock:
            if key not in self.loaded:
                self.loaded[key] = Recognizer.load(
                    choice.uri, device=self.device, precision=self.precision,
                    tracking_uri=self.tracking_uri,
                )  # fmt: skip
        return choice, self.loaded[key]

    def preload(self) -> None:
        choices = self.choices()
        first = next((c for c in choices if c.champion), choices[0] if choices else None)
        if first is not None:
            try:
                self.recognizer(first.key)
            except (PipelineError, HTTPException) as err:  # the request will say it again
                print(f"app: could not load {first.uri}: {err}")

    def analyse(self, recognizer: Recognizer, data: bytes) -> dict:
        with self.lock:  # one image at a time: the cores are the limit anyway
            return analysis(recognizer, data)


def occlusion_picture(face: np.ndarray, drop: np.ndarray) -> str:
    """The face with the map over it (red: hiding that region lowers the predicted class's
    probability most), as a PNG data URL."""
    grey = face if face.ndim == 2 else cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    grey = cv2.resize(grey, (MAP_SIZE, MAP_SIZE), interpolation=cv2.INTER_CUBIC)
    top = float(drop.max())
    level = np.clip(drop / top, 0, 1) if top > 0 else np.zeros_like(drop)
    level = cv2.resize(
        level.astype(np.float32), (MAP_SIZE, MAP_SIZE), interpolation=cv2.INTER_CUBIC
    )
    heat = cv2.applyColorMap(np.uint8(255 * np.clip(level, 0, 1)), cv2.COLORMAP_JET)
    base = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    alpha = (0.15 + 0.5 * np.clip(level, 0, 1))[..., None]
    mixed = np.uint8(base * (1 - alpha) + heat * alpha)
    ok, png = cv2.imencode(".png", mixed)
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


def analysis(recognizer: Recognizer, data: bytes) -> dict:
    # once, upright (EXIF), as the browser shows it; TooLarge above the model's face.max_pixels
    image = decode(data, recognizer.cropper.max_pixels)
    rows, explained = recognizer.analyze(image if image is not None else data)
    size = None if image is None else {"width": image.shape[1], "height": image.shape[0]}
    faces = []
    for row, explanation in zip(rows[: len(explained)], explained, strict=True):
        faces.append(
            {
                "face": int(row["face"]),
                "box": [row[k] for k in ("x", "y", "w", "h")],
                "score": row["face_score"],
                "probabilities": {c: row[f"p_{c}"] for c in recognizer.classes},
                "predicted": row["predicted"],
                "occlusion": occlusion_picture(explanation["face"], explanation["map"]),
            }
        )
    outcome = rows[0]["outcome"]
    return {
        "image": size,
        "outcome": outcome,
        "error": outcome in INPUT_ERRORS,
        "classes": recognizer.classes,
        "faces": faces,
    }


def split_samples(manifest: Path, faces_dir: Path) -> list[dict]:
    """A few faces of the test split (one per class), when the pipeline has made them."""
    card = manifest.with_name("card.json")
    try:
        classes = json.loads(card.read_text()).get("classes", [])
    except (OSError, ValueError):
        classes = []
    found: dict[str, dict] = {}
    try:
        with manifest.open(newline="") as f:
            for row in csv.DictReader(f):
                label = row.get("label", "")
                if row.get("split") == "test" and label not in found:
                    path = faces_dir / row.get("path", "")
                    if path.is_file():
                        name = (
                            classes[int(label)]
                            if label.isdigit() and int(label) < len(classes)
                            else label
                        )
                        found[label] = {"label": name, "path": path}
    except OSError:
        return []
    samples = sorted(found.values(), key=lambda s: s["label"])
    return [{"id": i, **s} for i, s in enumerate(samples)]


def create_app(
    tracking_uri: str | None = None,
    device: str | None = None,
    manifest: Path = Path("data/split/manifest.csv"),
    faces_dir: Path = Path("data/faces"),
    preload: bool = True,
    precision: str = "fp32",
) -> FastAPI:
    app = FastAPI(title="fer-pipeline", docs_url=None, redoc_url=None, openapi_url=None)
    models = Models(tracking_uri, device, precision)
    samples = split_samples(manifest, faces_dir)
    if preload:  # the page selects the champion first: load it while the browser opens
        threading.Thread(target=models.preload, daemon=True).start()

    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/models")
    def offered() -> dict:
        choices = models.choices()
        return {
            **menus(),
            "choices": [c.to_json() for c in choices],
            "message": "" if choices else NO_RUN,
            "samples": [{"id": s["id"], "label": s["label"]} for s in samples],
        }

    @app.get("/api/samples/{index}")
    def sample(index: int) -> Response:
        if not 0 <= index < len(samples):
            raise HTTPException(404, f"no sample {index}")
        return FileResponse(samples[index]["path"])

    @app.post("/api/predict")
    async def predict(request: Request, model: str) -> JSONResponse:
        data = await request.body()
        if not data:
            raise HTTPException(400, "no image in the request")
        if len(data) > MAX_UPLOAD:
            raise HTTPException(413, f"image larger than {MAX_UPLOAD // 2**20} MB")
        choice, recognizer = await run_in_threadpool(models.recognizer, model)
        start = time.perf_counter()
        try:
            result = await run_in_threadpool(models.analyse, recognizer, data)
        except TooLarge as err:  # from its header: never decoded
            raise HTTPException(413, str(err)) from None
        except PipelineError as err:
            raise HTTPException(400, str(err)) from None
        result["seconds"] = round(time.perf_counter() - start, 3)
        result["model"] = choice.to_json()
        return JSONResponse(result)

    return app
