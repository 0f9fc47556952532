"""What a user passes to predict, as a stream of images: paths, folders (recursive), globs, video
files, numpy arrays, PIL images, encoded image bytes, or a list of them.

Each input becomes one or more :class:`Item`: an RGB ``uint8`` image (a still, or a sampled video
frame), or, when it cannot be read, an ``error`` outcome that names why. Nothing stops the stream:
a bad input is an item like any other, so it is reported, not skipped.
"""

from __future__ import annotations

import glob
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_pipeline.data.decode import MAX_PIXELS, TooLarge, as_image, check_pixels
from fer_pipeline.errors import PipelineError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
NPY_MAGIC = b"\x93NUMPY"  # numpy.save's header
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}

# Outcomes of inputs that give no image (the face outcomes are FaceCropper's).
INPUT_ERRORS = MISSING, NOT_AN_IMAGE, UNREADABLE, EMPTY_FOLDER, BAD_VIDEO, TOO_LARGE = (
    "missing",
    "not_an_image",
    "unreadable",
    "empty_folder",
    "unreadable_video",
    "too_large",  # more pixels than max_pixels, refused from its header (never decoded)
)


@dataclass
class Item:
    input: str  # the path, or a name such as "array[0]"
    image: np.ndarray | None  # (H, W, 3) RGB uint8; None when ``error``
    frame: int | None = None  # video frame index
    time_s: float | None = None  # video time of the frame
    fps: float | None = None  # the video's frame rate
    error: str | None = None  # one of INPUT_ERRORS


def to_rgb_uint8(image, name: str) -> np.ndarray:
    """An array or PIL image (see :func:`fer_pipeline.data.decode.as_image`) -> ``(H, W, 3)`` RGB
    uint8; ValueError for anything that is not an image."""
    try:
        array = as_image(image, name=name)
    except PipelineError as err:
        raise ValueError(str(err)) from None
    return cv2.cvtColor(array, cv2.COLOR_GRAY2RGB) if array.ndim == 2 else array


def decode(data: bytes, max_pixels: int | None = MAX_PIXELS, name: str = "") -> np.ndarray | None:
    """Encoded image bytes (PNG, JPEG, ...) or an array saved by ``numpy.save`` -> RGB uint8, or
    None when they are not an image. An image whose header declares more than ``max_pixels``
    pixels raises :class:`~fer_pipeline.data.decode.TooLarge` and is not decoded."""
    if data.startswith(NPY_MAGIC):
        try:
            return to_rgb_uint8(np.load(io.BytesIO(data), allow_pickle=False), "array")
        except (ValueError, EOFError, OSError):
            return None
    check_pixels(data, max_pixels, name or "upload")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def image_item(path: Path, max_pixels: int | None = MAX_PIXELS) -> Item:
    """An image file as an :class:`Item` (``unreadable`` when it cannot be decoded, ``too_large``
    above ``max_pixels``)."""
    try:
        data = path.read_bytes()
        image = decode(data, max_pixels, str(path)) if data else None
    except OSError:
        return Item(str(path), None, error=UNREADABLE)
    except TooLarge:
        return Item(str(path), None, error=TOO_LARGE)
    return Item(str(path), image, error=None if image is not None else UNREADABLE)


def read_video(path: Path, every_n_frames: int = 1) -> Iterator[Item]:
    """Every ``every_n_frames``-th frame of a video, with its index and time."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        yield Item(str(path), None, error=BAD_VIDEO)
        return
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    index, sent = 0, 0
    try:
        while True:
            if index % every_n_frames == 0:
                ok, bgr = capture.read()
            else:
                ok, bgr = capture.grab(), None
            if not ok:
                break
            if bgr is not None:
                time_s = round(index / fps, 3) if fps > 0 else None
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                yield Item(str(path), rgb, frame=index, time_s=time_s, fps=fps or None)
                sent += 1
            index += 1
    finally:
        capture.release()
    if not sent:
        yield Item(str(path), None, error=BAD_VIDEO)


def files_in(folder: Path) -> list[Path]:
    """Image and video files under ``folder``, recursively, in name order."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
    )


def from_path(
    path: Path, every_n_frames: int, max_pixels: int | None = MAX_PIXELS
) -> Iterator[Item]:
    if path.is_dir():
        files = files_in(path)
        if not files:
            yield Item(str(path), None, error=EMPTY_FOLDER)
        for file in files:
            yield from from_path(file, every_n_frames, max_pixels)
    elif not path.exists():
        yield Item(str(path), None, error=MISSING)
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        yield from read_video(path, every_n_frames)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        yield image_item(path, max_pixels)
    else:
        item = image_item(path, max_pixels)  # an image with an unusual name is still an image
        bad = item.error not in (None, TOO_LARGE)
        yield Item(str(path), None, error=NOT_AN_IMAGE) if bad else item


def expand(
    inputs,
    every_n_frames: int = 1,
    names: list[str] | None = None,
    max_pixels: int | None = MAX_PIXELS,
) -> Iterator[Item]:
    """The images of ``inputs`` (see the module doc), in order. ``names``: one per input, the
    ``input`` of its items instead of ``array[i]`` / ``image[i]`` / ``bytes[i]`` (paths keep
    theirs); ``max_pixels``: encoded images declaring more are ``too_large`` items."""
    if every_n_frames < 1:
        raise ValueError(f"every_n_frames must be >= 1, got {every_n_frames}")
    single = (str, Path, bytes, bytearray, np.ndarray)
    many = [inputs] if isinstance(inputs, single) or _is_pil(inputs) else list(inputs)
    if names is not None and len(names) != len(many):
        raise ValueError(f"{len(names)} names for {len(many)} inputs")
    counters = {"array": 0, "image": 0, "bytes": 0}

    def name(kind: str, index: int) -> str:
        counters[kind] += 1
        return names[index] if names is not None else f"{kind}[{counters[kind] - 1}]"

    for index, value in enumerate(many):
        if isinstance(value, np.ndarray) or _is_pil(value):
            label = name("array" if isinstance(value, np.ndarray) else "image", index)
            try:
                yield Item(label, to_rgb_uint8(value, label))
            except ValueError:
                yield Item(label, None, error=NOT_AN_IMAGE)
        elif isinstance(value, bytes | bytearray):
            label = name("bytes", index)
            try:
                image = decode(bytes(value), max_pixels, label)
            except TooLarge:
                yield Item(label, None, error=TOO_LARGE)
                continue
            yield Item(label, image, error=None if image is not None else NOT_AN_IMAGE)
        elif isinstance(value, str | Path):
            text = str(value)
            if not Path(text).exists() and glob.has_magic(text):
                matches = sorted(glob.glob(text, recursive=True))
                if not matches:
                    yield Item(text, None, error=MISSING)
                for match in matches:
                    yield from from_path(Path(match), every_n_frames, max_pixels)
            else:
                yield from from_path(Path(text), every_n_frames, max_pixels)
        else:
            yield Item(repr(value)[:80], None, error=NOT_AN_IMAGE)


def _is_pil(value) -> bool:
    return type(value).__module__.startswith("PIL.")


def chunks(items: Iterable[Item], size: int, max_pixels: int = 16_000_000) -> Iterator[list[Item]]:
    """Lists of at most ``size`` items and, past one image, ``max_pixels`` pixels: large photos
    come in smaller chunks, so memory does not grow with their size."""
    chunk: list[Item] = []
    pixels = 0
    for item in items:
        chunk.append(item)
        pixels += 0 if item.image is None else item.image.shape[0] * item.image.shape[1]
        if len(chunk) == size or pixels >= max_pixels:
            yield chunk
            chunk, pixels = [], 0
    if chunk:
        yield chunk
