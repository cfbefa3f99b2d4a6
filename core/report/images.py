"""Overlays as compact embedded images, and the fonts every writer uses (matplotlib ships DejaVu, so no
system font is needed and τ, ×, · print the same everywhere)."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np

MAX_SIDE = 960  # overlays are embedded at most this large: sharp on a page, small enough to mail


def fitted_size(width: int, height: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """(width, height) scaled down, aspect kept, so the longer side is at most ``max_side``."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def shrunk(image_rgb: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    height, width = image_rgb.shape[:2]
    size = fitted_size(width, height, max_side)
    if size == (width, height):
        return image_rgb
    return cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)


def jpeg_bytes(image_rgb: np.ndarray, max_side: int = MAX_SIDE, quality: int = 88) -> bytes:
    """The overlay as JPEG (photos compress ~10× better than PNG), shrunk to ``max_side``."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(shrunk(image_rgb, max_side), cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"could not encode an image of shape {image_rgb.shape} as JPEG")
    return encoded.tobytes()


def data_uri(image_rgb: np.ndarray, max_side: int = MAX_SIDE) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(image_rgb, max_side)).decode("ascii")


def font_file(bold: bool = False) -> Path:
    """DejaVu Sans from matplotlib's own data (a pinned dependency)."""
    import matplotlib

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall matplotlib (pip install -r requirements.txt)")
    return path
