"""Reading images of any common format, bit depth and mode into 8-bit grayscale or RGB."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fer_pipeline.errors import PipelineError

# OpenCV logs its decoders' complaints (a missing file, a broken PNG chunk) to the terminal; the
# project reports each bad file itself, in one line or one report row.
# 0: silent (LOG_LEVEL_SILENT). OpenCV 4 has cv2.setLogLevel; OpenCV 5 (the GPU image's) only
# cv2.utils.logging.setLogLevel.
if hasattr(cv2, "setLogLevel"):
    cv2.setLogLevel(0)
else:
    cv2.utils.logging.setLogLevel(0)

# Images declaring more pixels than this are refused from their header, before any decoding: a
# 48 MP phone photo passes, a PNG that declares 40,000 x 40,000 (an "image bomb") does not.
MAX_PIXELS = 50_000_000

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


def header_info(source: str | Path | bytes) -> tuple[int, int, int]:
    """An image's width, height and EXIF orientation (1: as stored), from its header only (a path
    or the file's bytes; ``(0, 0, 1)`` when unknown)."""
    try:
        with warnings.catch_warnings():  # PIL warns of large images; sizes are checked here
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
                return *im.size, int(im.getexif().get(EXIF_ORIENTATION, 1))
    except Image.DecompressionBombError as err:  # PIL's own limit (twice its 89 MP warning)
        width, height = pixels_in(str(err))
        return width, height, 1
    except (OSError, SyntaxError, ValueError, TypeError):
        return 0, 0, 1


def pixels_in(message: str) -> tuple[int, int]:
    """PIL's decompression-bomb message gives the pixel count only: ``(count, 1)``."""
    digits = [int(w) for w in message.replace("(", " ").split() if w.isdigit()]
    return (digits[0], 1) if digits else (MAX_PIXELS + 1, 1)


def header(source: str | Path | bytes) -> tuple[int, int]:
    """An image's longer side and EXIF orientation, from its header only (``(0, 1)`` when
    unknown)."""
    width, height, orientation = header_info(source)
    return max(width, height), orientation


class BadImage(PipelineError):
    """An input image that cannot be used: unreadable, truncated, too small or of an odd type."""


class TooLarge(BadImage):
    """An image whose header declares more pixels than allowed (never decoded)."""


def check_pixels(source: str | Path | bytes, max_pixels: int | None, name=None) -> int:
    """Refuse (:class:`TooLarge`, naming the image, its size and the limit) an image whose header
    declares more than ``max_pixels`` pixels; return its EXIF orientation."""
    width, height, orientation = header_info(source)
    check_size(width, height, max_pixels, name or source)
    return orientation


def check_size(width: int, height: int, max_pixels: int | None, name) -> None:
    """:class:`TooLarge` when ``width`` x ``height`` is above ``max_pixels`` (a header's size)."""
    if max_pixels and width * height > max_pixels:
        size = f"{width}x{height}" if height > 1 else f"{width} pixels"
        raise TooLarge(
            f"image {name} is {size} ({width * height / 1e6:.0f} MP), above the "
            f"limit of {max_pixels / 1e6:g} MP (face.max_pixels)"
        )


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


def read_photo(
    path: str | Path, grayscale: bool, keep_side: int | None, max_pixels: int | None = MAX_PIXELS
) -> tuple[np.ndarray, int]:
    """:func:`read_image`, decoding large JPEGs at 1/2, 1/4 or 1/8 scale (several times faster)
    while their longer side stays at least ``keep_side``; returns the image and the factor its
    pixels are smaller by. Images above ``max_pixels`` are :class:`TooLarge`, from their header."""
    if keep_side is None or Path(path).suffix.lower() not in JPEG_SUFFIXES:
        return read_image(path, grayscale, max_pixels=max_pixels), 1
    width, height, orientation = header_info(path)  # one header read for both
    check_size(width, height, max_pixels, path)
    factor = reduction(max(width, height), keep_side)
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
    max_pixels: int | None = None,
) -> np.ndarray:
    """Read ``path`` as uint8, ``(H, W)`` when ``grayscale`` else ``(H, W, 3)`` RGB, upright (its
    EXIF orientation applied).

    16-bit images are scaled to 8 bits and alpha is dropped. ``data``: the file's bytes, when the
    caller has read them already; ``orientation``: its EXIF orientation, when known already;
    ``max_pixels``: refuse larger images from their header (:class:`TooLarge`), for images from
    outside (the pipeline's own faces need no check). An unreadable file raises
    :class:`PipelineError` naming it.
    """
    if max_pixels:
        orientation = check_pixels(data if data is not None else path, max_pixels, path)
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
