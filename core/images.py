"""Safe photo decoding: bytes or a file → RGB ``uint8`` array of shape (H, W, 3), or a clear refusal.

Every photo the app touches — uploads and dataset files alike — goes through :func:`decode_image`, so no
file a user gives can crash the app: anything unreadable raises :class:`ImageDecodeError` (a ``ValueError``)
whose message names the file and says what to do. Nothing is written to disk.

What is accepted and how it is normalised
    * Formats: JPEG (phone MPO files open as JPEG), PNG, GIF, WebP, BMP, TIFF (multipage files give
      their first page). Others (PDF, HEIC, SVG, text …) are refused without being parsed, which keeps
      Pillow's rarer plugins (and Ghostscript) out of reach.
    * Size: the header is read first and the photo refused before any pixel is decoded when a side exceeds
      :data:`MAX_SIDE` or the area exceeds :data:`MAX_PIXELS` (decompression bombs); files larger than
      :data:`MAX_FILE_BYTES` are refused before being read.
    * Pixels: grayscale, palette, CMYK, YCbCr, LAB → RGB; 16-bit grayscale → 8-bit (value / 257, rounded);
      16-bit RGB TIFFs keep their high byte (value // 256, how Pillow reads them); 32-bit float grayscale
      (TIFF) → 8-bit, read as [0, 1] when no value exceeds 1, else as [0, 255]; anything with transparency
      (RGBA, LA, palette + transparency) is composited on white; animations and multipage TIFFs give
      their first frame.
    * EXIF orientation is applied when ``apply_exif=True`` (the default, right for uploads: phones store
      photos sideways and rely on the tag). Dataset readers pass ``apply_exif=False``: Stanford Cars boxes
      were drawn on the stored pixel grid (tfds and torchvision also decode without the tag), so rotating
      the pixels would move the car away from its box and change what published models were evaluated on.
    * Pillow warnings (odd EXIF, bomb warnings, …) are silenced locally, so a process that turns warnings
      into errors (``python -W error``, pytest ``filterwarnings=error``) still decodes good photos.

>>> from PIL import Image; import io
>>> buf = io.BytesIO(); Image.new("L", (3, 2), 7).save(buf, "PNG")
>>> decode_image(buf.getvalue(), "tiny.png").shape
(2, 3, 3)
"""

from __future__ import annotations

import io
import os
import stat
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

__all__ = [
    "ImageDecodeError", "decode_image", "read_image",
    "MAX_PIXELS", "MAX_SIDE", "MAX_FILE_BYTES", "ACCEPTED_FORMATS", "IMAGE_SUFFIXES",
]

MAX_PIXELS = 50_000_000
"""Largest accepted area (width × height); ~6 bytes per pixel are needed while decoding."""
MAX_SIDE = 20_000
"""Largest accepted width or height in pixels."""
MAX_FILE_BYTES = 100 * 1024 * 1024
"""Largest accepted file (a 50-megapixel JPEG is ~25 MB)."""
ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
"""Pillow format names that are parsed; everything else is refused unread."""
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"})
"""File name endings that dataset readers treat as photos."""

_ACCEPTED_HUMAN = "JPEG, PNG, GIF, WebP, BMP or TIFF"
_TRANSPARENT_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
# catch_warnings() swaps process-global state, so concurrent decodes must not interleave inside it.
_PILLOW_LOCK = threading.Lock()


class ImageDecodeError(ValueError):
    """A photo that cannot be used: empty, truncated, not an image, unsupported or too large."""


def _refuse(name: str, problem: str, advice: str) -> ImageDecodeError:
    return ImageDecodeError(f"{name}: {problem}. {advice}")


# Magic bytes of common non-photo files, so the refusal can say what the file actually is.
_KNOWN_OTHER_FORMATS = (
    (b"%PDF", "a PDF document, not a photo"),
    (b"II*\x00", "a damaged TIFF image (its header cannot be read)"),
    (b"MM\x00*", "a damaged TIFF image (its header cannot be read)"),
    (b"PK\x03\x04", "a ZIP archive (or Office document), not a photo"),
    (b"\x1f\x8b", "a gzip archive, not a photo"),
    (b"<svg", "an SVG drawing, which is not accepted"),
    (b"<?xml", "an XML/SVG file, not a photo"),
    (b"<!DOCTYPE html", "an HTML page (a download that failed?), not a photo"),
    (b"<html", "an HTML page (a download that failed?), not a photo"),
)


def _what_it_is(data: bytes) -> str:
    """Best guess of what unrecognised bytes are, for the error message."""
    head = data[:64].lstrip()
    for magic, description in _KNOWN_OTHER_FORMATS:
        if head[: len(magic)].lower() == magic.lower():
            return description
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif", b"ftyphevc"):
        return "a HEIC/AVIF photo, which is not accepted (export it as JPEG)"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "not a recognised image"
    return "text, not a photo"


@contextmanager
def _quiet_pillow():
    """Silence Pillow's warnings for this decode only; serialised because the filter list is global."""
    with _PILLOW_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _open_checked(data: bytes, name: str) -> Image.Image:
    """Parse the header only and refuse unknown formats and oversized photos before pixels are decoded."""
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as err:  # Pillow's own guard (at 2 × MAX_IMAGE_PIXELS) fired first
        raise _refuse(name, f"is far too large to decode: its header claims over "
                            f"{2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels (limit {MAX_PIXELS:,})",
                      "Resize it before using it") from err
    except Image.UnidentifiedImageError as err:
        raise _refuse(name, f"is {_what_it_is(data)}",
                      f"Choose a photo in {_ACCEPTED_HUMAN} format") from err
    except Exception as err:  # noqa: BLE001 - a header cut short or garbled: OSError, SyntaxError, ...
        raise _refuse(name, f"is truncated or corrupt (unreadable header: {type(err).__name__}: {err})",
                      "Download or export the photo again") from err
    width, height = image.size
    if width < 1 or height < 1:
        raise _refuse(name, f"has an empty size {width}×{height}", "Choose another photo")
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise _refuse(name, f"is {width}×{height} pixels, above the limit of {MAX_SIDE:,} px a side "
                            f"and {MAX_PIXELS:,} pixels in all", "Resize it before using it")
    return image


def _sixteen_to_eight(image: Image.Image) -> Image.Image:
    """16-bit (or 32-bit integer) grayscale → 8-bit, mapping 0..65535 onto 0..255 (value / 257, rounded)."""
    values = np.asarray(image, dtype=np.float64)
    scaled = np.rint(np.clip(values, 0, 65535) / 257.0).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def _float_to_eight(image: Image.Image) -> Image.Image:
    """32-bit float grayscale (scientific TIFFs) → 8-bit: [0, 1] data scaled by 255, larger data clipped."""
    values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    scale = 255.0 if values.size and values.max() <= 1.0 else 1.0
    return Image.fromarray(np.rint(np.clip(values * scale, 0, 255)).astype(np.uint8))


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any accepted pixel mode → 8-bit RGB; transparency is composited on white."""
    if image.mode in _SIXTEEN_BIT_MODES:
        image = _sixteen_to_eight(image)
    elif image.mode == "F":
        image = _float_to_eight(image)
    if image.mode in _TRANSPARENT_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def decode_image(data: bytes, name: str = "upload", *, apply_exif: bool = True) -> np.ndarray:
    """Decode photo bytes into a new RGB ``uint8`` array of shape (H, W, 3).

    ``name`` only labels error messages (a file name or "upload"). Raises :class:`ImageDecodeError` for
    empty, truncated, corrupt, non-image, unsupported or oversized input, and ``TypeError`` for non-bytes.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_image expects the photo's bytes, got {type(data).__name__} for {name!r}")
    data = bytes(data)
    if not data:
        raise _refuse(name, "is empty (0 bytes)", "Choose the photo again or download it again")
    if len(data) > MAX_FILE_BYTES:
        raise _refuse(name, f"is {len(data):,} bytes, above the {MAX_FILE_BYTES:,}-byte limit",
                      "Use a smaller photo")
    with _quiet_pillow():
        image = _open_checked(data, name)
        try:
            image.seek(0)  # animations: the first frame
            image.load()
            if apply_exif:
                image = ImageOps.exif_transpose(image)
            rgb = np.array(_to_rgb(image), dtype=np.uint8)
        except ImageDecodeError:
            raise
        except Exception as err:  # noqa: BLE001 - Pillow's plugins raise a dozen types on hostile input
            raise _refuse(name, f"is truncated or corrupt ({type(err).__name__}: {err})",
                          "Download or export the photo again") from err
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise _refuse(name, f"decoded to an unexpected shape {rgb.shape}", "Convert it to an RGB JPEG")
    return rgb


def read_image(path: str | os.PathLike, *, apply_exif: bool = True) -> np.ndarray:
    """Read and decode one photo file with the same checks as :func:`decode_image`.

    The size is checked from the file system before reading, so a huge file is never loaded. Missing
    files and folders raise :class:`ImageDecodeError` too, so callers handle one kind of failure.
    """
    path = Path(path)
    try:
        info = path.stat()
    except OSError as err:
        raise _refuse(str(path), f"cannot be opened ({err.strerror or err})",
                      "Check that the file exists and is readable") from err
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(str(path), "is not a regular file", "Choose a photo file, not a folder")
    if info.st_size > MAX_FILE_BYTES:
        raise _refuse(str(path), f"is {info.st_size:,} bytes, above the {MAX_FILE_BYTES:,}-byte limit",
                      "Use a smaller photo")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise _refuse(str(path), f"cannot be read ({err.strerror or err})",
                      "Check the file's permissions") from err
    return decode_image(data, str(path), apply_exif=apply_exif)
