"""Reading images of any common format, bit depth and mode into 8-bit grayscale or RGB."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fer_pipeline.errors import PipelineError

# Camera photos store their orientation in EXIF; these formats can carry it.
EXIF_SUFFIXES = {".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".png", ".heic"}
EXIF_ORIENTATION = 0x0112


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` turned as its EXIF ``orientation`` (1-8) says, as a viewer shows it."""
    turned = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }.get(orientation)
    return image if turned is None else np.ascontiguousarray(turned(image))


JPEG_SUFFIXES = {".jpg", ".jpeg"}
REDUCED = {  # factor: (colour, grey) decoder flags
    2: (cv2.IMREAD_REDUCED_COLOR_2, cv2.IMREAD_REDUCED_GRAYSCALE_2),
    4: (cv2.IMREAD_REDUCED_COLOR_4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
    8: (cv2.IMREAD_REDUCED_COLOR_8, cv2.IMREAD_REDUCED_GRAYSCALE_8),
}


def header(source: str | Path | bytes) -> tuple[int, int]:
    """An image's longer side and EXIF orientation (1: as stored), from its header only (a path
    or the file's bytes; ``(0, 1)`` when unknown)."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            return max(im.size), int(im.getexif().get(EXIF_ORIENTATION, 1))
    except (OSError, SyntaxError, ValueError, TypeError):
        return 0, 1


def exif_orientation(path: str | Path | None, data: bytes | None = None) -> int:
    """The EXIF orientation of an image file or its bytes; 1 for formats that carry none."""
    if data is not None:
        return header(data)[1]
    if path is None or Path(path).suffix.lower() not in EXIF_SUFFIXES:
        return 1
    return header(path)[1]


def reduction(longer: int, keep_side: int | None) -> int:
    """The largest JPEG decoding reduction (1, 2, 4 or 8) that keeps a longer side of ``longer``
    px at least ``keep_side`` (1 without ``keep_side``)."""
    factor = 1
    while keep_side and factor < 8 and longer / (factor * 2) >= keep_side:
        factor *= 2
    return factor


def read_photo(path: str | Path, grayscale: bool, keep_side: int | None) -> tuple[np.ndarray, int]:
    """:func:`read_image`, decoding large JPEGs at 1/2, 1/4 or 1/8 scale (several times faster)
    while their longer side stays at least ``keep_side``; returns the image and the factor its
    pixels are smaller by."""
    if keep_side is None or Path(path).suffix.lower() not in JPEG_SUFFIXES:
        return read_image(path, grayscale), 1
    longer, orientation = header(path)
    factor = reduction(longer, keep_side)
    if factor == 1:
        return read_image(path, grayscale, orientation=orientation), 1
    flags = REDUCED[factor][grayscale] | cv2.IMREAD_IGNORE_ORIENTATION  # upright(), as below
    image = cv2.imread(str(path), flags)
    if image is None or image.size == 0:
        return read_image(path, grayscale), 1  # let the full decoder name the problem
    image = upright(image, orientation)
    return (image if grayscale else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)), factor


def read_image(
    path: str | Path,
    grayscale: bool = True,
    data: bytes | None = None,
    orientation: int | None = None,
) -> np.ndarray:
    """Read ``path`` as uint8, ``(H, W)`` when ``grayscale`` else ``(H, W, 3)`` RGB, upright (its
    EXIF orientation applied).

    16-bit images are scaled to 8 bits and alpha is dropped. ``data``: the file's bytes, when the
    caller has read them already; ``orientation``: its EXIF orientation, when known already. An
    unreadable file raises :class:`PipelineError` naming it.
    """
    if data is None:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    else:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise PipelineError(f"cannot read image {path} (missing, empty, truncated or not an image)")
    image = upright(image, orientation or exif_orientation(path, data))
    if image.dtype == np.uint16:
        image = (image / 257.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        raise PipelineError(f"image {path} has unsupported pixel type {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 2:
        return image if grayscale else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if grayscale:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class BadImage(PipelineError):
    """An input image that cannot be used: unreadable, truncated, too small or of an odd type."""


SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


def decode_image(
    path: str | Path, grayscale: bool = True, min_size: int = 1
) -> tuple[np.ndarray, str]:
    """Strictly decode any image a dataset may ship into uint8 ``(H, W)`` or ``(H, W, 3)`` RGB;
    return it with the file's original PIL mode (``L``, ``RGB``, ``I;16``, ``RGBA`` ...).

    Unlike :func:`read_image` (fast, for the pipeline's own PNGs), this refuses truncated files
    (OpenCV would decode them half grey), scales 16-bit to 8-bit, flattens palette, alpha, CMYK and
    1-bit modes, and rejects images smaller than ``min_size`` on a side. Raises :class:`BadImage`.
    """
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in SIXTEEN_BIT_MODES:
                wide = np.asarray(im, dtype=np.int64)
                if wide.min() < 0 or wide.max() > 65535:
                    raise BadImage(f"image {path} has {mode} values outside 0..65535")
                im = Image.fromarray((wide / 257.0).round().astype(np.uint8))
            elif mode == "F":
                raise BadImage(f"image {path} is floating point (mode F), not a photo format")
            image = np.asarray(im.convert("L" if grayscale else "RGB"))
    except BadImage:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise BadImage(f"cannot decode image {path} ({err})") from None
    height, width = image.shape[:2]
    if min(height, width) < min_size:
        raise BadImage(f"image {path} is {width}x{height}, smaller than {min_size} px on a side")
    return image, mode


def as_image(value, bgr: bool = False, name: str = "image") -> np.ndarray:
    """What a user passes as an image -> uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB.

    Paths are read upright (EXIF); PIL images are turned upright and converted; arrays may be
    ``(H, W)`` or ``(H, W, 1|3|4)``, uint8, 16-bit (scaled by their range when above 255) or float
    (``[0, 1]`` when they stay within it, else ``[0, 255]``), RGB unless ``bgr`` (as
    ``cv2.imread`` gives). Anything else is a :class:`PipelineError` naming what it got."""
    if isinstance(value, str | Path):
        image = read_image(value, grayscale=False)
        return image[..., ::-1].copy() if bgr else image
    if type(value).__module__.startswith("PIL."):
        from PIL import ImageOps

        value = ImageOps.exif_transpose(value)
        if value.mode in SIXTEEN_BIT_MODES | {"F"}:  # wide values: scaled as arrays are, below
            value = np.asarray(value)
        else:
            return np.asarray(value.convert("L" if value.mode in ("L", "1") else "RGB"))
    if not isinstance(value, np.ndarray):
        raise PipelineError(
            f"{name}: expected a path, a PIL image or a numpy array, got {type(value).__name__}"
        )
    array = value[..., 0] if value.ndim == 3 and value.shape[2] == 1 else value
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise PipelineError(f"{name}: expected an (H, W) or (H, W, 3|4) image, got {value.shape}")
    if min(array.shape[:2]) == 0:
        raise PipelineError(f"{name}: empty image {value.shape}")
    if array.dtype != np.uint8:
        floating = np.issubdtype(array.dtype, np.floating)
        if not floating and not np.issubdtype(array.dtype, np.integer):
            raise PipelineError(f"{name}: pixel type {array.dtype} is not a number")
        if floating and not np.isfinite(array).all():
            raise PipelineError(f"{name}: has NaN or infinite pixels")
        peak = array.max(initial=0)
        if floating:
            top = 1.0 if peak <= 1 else 255.0
        else:
            top = 255.0 if peak <= 255 else float(np.iinfo(array.dtype).max)
        array = np.clip(np.rint(array.astype(np.float64) * (255 / top)), 0, 255).astype(np.uint8)
    if array.ndim == 3:
        array = array[..., :3]
        array = array[..., ::-1] if bgr else array
    return np.ascontiguousarray(array)
