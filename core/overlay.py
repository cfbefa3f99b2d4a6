"""Pictures for people: colour a heatmap, blend it over the photo, draw boxes with labels.

Pure array → array functions on uint8 RGB images (OpenCV works in BGR; the conversion happens here, once).
Nothing is ever drawn into the caller's array: every function returns a new one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import cv2
import numpy as np

from core.boxes import check_box
from core.heatmaps import as_unit_heatmap, upsample
from core.localize import Localization

__all__ = ["COLORMAPS", "colorize", "blend", "draw_box", "draw_boxes"]

_CV2_COLORMAPS = {
    "jet": cv2.COLORMAP_JET, "turbo": cv2.COLORMAP_TURBO, "inferno": cv2.COLORMAP_INFERNO,
    "viridis": cv2.COLORMAP_VIRIDIS, "magma": cv2.COLORMAP_MAGMA, "plasma": cv2.COLORMAP_PLASMA,
    "hot": cv2.COLORMAP_HOT, "gray": None,  # OpenCV has no grey colormap: the value is repeated in R, G, B
}
COLORMAPS = tuple(_CV2_COLORMAPS)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@functools.cache
def _rgb_lookup_table(colormap: str) -> np.ndarray:
    """The colormap's 256 colours in RGB order, shaped for cv2.LUT on a 3-channel image."""
    levels = np.arange(256, dtype=np.uint8).reshape(256, 1)
    code = _CV2_COLORMAPS[colormap]
    colours = np.repeat(levels[:, :, None], 3, axis=2) if code is None else cv2.cvtColor(
        cv2.applyColorMap(levels, code), cv2.COLOR_BGR2RGB)
    return colours.reshape(256, 1, 3)


def _as_rgb(image, copy: bool = True) -> np.ndarray:
    """A uint8 (H, W, 3) RGB view (``copy=False``) or new copy of an RGB or greyscale (H, W) photo."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise TypeError(f"image must be uint8 RGB, got dtype {arr.dtype}; "
                        "convert with np.clip(x, 0, 255).astype(np.uint8)")
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"image must have shape (H, W, 3) or (H, W), got {arr.shape}")
    return arr.copy() if copy else arr


def _as_color(color) -> tuple[int, int, int]:
    values = np.asarray(color)
    if values.shape != (3,) or not np.isfinite(values).all() or values.min() < 0 or values.max() > 255:
        raise ValueError(f"color must be three numbers (R, G, B) in 0..255, got {color!r}")
    return tuple(int(round(float(v))) for v in values)


def colorize(heatmap: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """Map a (H, W) heatmap in [0, 1] to a uint8 RGB (H, W, 3) picture with an OpenCV colormap."""
    if colormap not in _CV2_COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose one of {', '.join(COLORMAPS)}")
    levels = cv2.convertScaleAbs(as_unit_heatmap(heatmap), alpha=255.0)  # rounds and saturates to uint8
    return cv2.LUT(cv2.merge([levels, levels, levels]), _rgb_lookup_table(colormap))


def blend(image_rgb: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5,
          colormap: str = "jet") -> np.ndarray:
    """Photo and coloured heatmap mixed: ``(1 - alpha) * photo + alpha * colours`` → new uint8 RGB.

    ``alpha`` is the heatmap's weight: 0 gives the photo, 1 the colormap alone. A heatmap of another size
    (e.g. the 7×7 feature map) is resized bilinearly to the photo first.
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (the heatmap's weight), got {alpha!r}")
    photo = _as_rgb(image_rgb, copy=False)  # addWeighted writes a new array
    heat = as_unit_heatmap(heatmap)
    height, width = photo.shape[:2]
    if heat.shape != (height, width):
        heat = upsample(heat, height, width)
    colours = colorize(heat, colormap)
    return cv2.addWeighted(photo, 1.0 - alpha, colours, alpha, 0.0)


def auto_thickness(height: int, width: int) -> int:
    """Box line width in photo pixels: 1 px at 224, 2 px at 500 (what ``draw_box`` uses by default)."""
    return max(1, round(min(height, width) / 200))


def _label_scale(height: int, width: int) -> float:
    return max(0.35, min(height, width) / 700)


def label_font_size(height: int, width: int) -> float:
    """The box labels' font size in photo pixels, for drawings made elsewhere (the browser's SVG boxes) to
    look like ``draw_box``'s: OpenCV's text height at the label scale, over a cap height of 0.72 em."""
    (_, text_h), _ = cv2.getTextSize("IoU 0.00", _FONT, _label_scale(height, width), 1)
    return round(text_h / 0.72, 1)


def _draw_rect(canvas: np.ndarray, box: np.ndarray, color, thickness: int) -> None:
    """Outline drawn just *inside* the box edges, so a 1-px line covers the box's first and last pixels."""
    height, width = canvas.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in np.rint(box))
    x1, y1 = min(x1, width - 1), min(y1, height - 1)
    x2, y2 = min(max(x2, x1 + 1), width), min(max(y2, y1 + 1), height)
    canvas[y1:min(y1 + thickness, y2), x1:x2] = color
    canvas[max(y2 - thickness, y1):y2, x1:x2] = color
    canvas[y1:y2, x1:min(x1 + thickness, x2)] = color
    canvas[y1:y2, max(x2 - thickness, x1):x2] = color


def _inset_rectangle(corners: np.ndarray, distance: float) -> np.ndarray:
    """Move each side of a (rotated) rectangle inwards by ``distance`` (at most half the shorter side)."""
    after, before = np.roll(corners, -1, axis=0) - corners, np.roll(corners, 1, axis=0) - corners
    len_after = np.linalg.norm(after, axis=1, keepdims=True)
    len_before = np.linalg.norm(before, axis=1, keepdims=True)
    distance = min(distance, float(len_after.min()) / 2, float(len_before.min()) / 2)
    unit_after = np.divide(after, len_after, out=np.zeros_like(after), where=len_after > 0)
    unit_before = np.divide(before, len_before, out=np.zeros_like(before), where=len_before > 0)
    return corners + distance * (unit_after + unit_before)


def _draw_polygon(canvas: np.ndarray, corners: np.ndarray, color, thickness: int) -> None:
    """Rotated rectangle outline, centred half a line width inside its edges like the axis-aligned one."""
    inner = _inset_rectangle(np.asarray(corners, dtype=np.float64), thickness / 2)
    shift = 4  # OpenCV sub-pixel bits; pixel centres sit at integer OpenCV coordinates, hence the -0.5
    points = np.rint((inner - 0.5) * (1 << shift)).astype(np.int32)
    cv2.polylines(canvas, [points.reshape(-1, 1, 2)], True, color, thickness, cv2.LINE_AA, shift)


def label_ink(color) -> tuple[int, int, int]:
    """Black text on a light patch, white on a dark one (so a label reads on any box colour)."""
    luminance = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


def _draw_label(canvas: np.ndarray, box: np.ndarray, text: str, color, thickness: int) -> None:
    """Text on a filled patch of the box colour, above the box when there is room, else inside its top."""
    height, width = canvas.shape[:2]
    scale = _label_scale(height, width)
    weight = max(1, thickness // 2)
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, scale, weight)
    pad = max(2, thickness)
    patch_h, patch_w = text_h + baseline + 2 * pad, text_w + 2 * pad
    x = int(np.clip(np.rint(box[0]), 0, max(0, width - patch_w)))
    top = int(np.rint(box[1])) - patch_h
    top = top if top >= 0 else int(np.clip(np.rint(box[1]), 0, max(0, height - patch_h)))
    cv2.rectangle(canvas, (x, top), (x + patch_w - 1, top + patch_h - 1), color, cv2.FILLED)
    cv2.putText(canvas, text, (x + pad, top + pad + text_h), _FONT, scale, label_ink(color), weight, cv2.LINE_AA)


def _draw_one(canvas: np.ndarray, item, color, thickness: int | None, label: str | None) -> None:
    height, width = canvas.shape[:2]
    thickness = auto_thickness(height, width) if thickness is None else int(thickness)
    if thickness < 1:
        raise ValueError(f"thickness must be a positive number of pixels, got {thickness!r}")
    color = _as_color(color)
    rotated = isinstance(item, Localization) and item.shape == "rotated"
    raw_box = item.box if isinstance(item, Localization) else item
    box = check_box(raw_box, height, width, policy="clip")
    if box.ndim != 1:
        raise ValueError(f"draw_box draws one box, got shape {box.shape}; use draw_boxes")
    if rotated:
        _draw_polygon(canvas, item.corners, color, thickness)
    else:
        _draw_rect(canvas, box, color, thickness)
    if label:
        _draw_label(canvas, box, str(label), color, thickness)


def draw_box(image: np.ndarray, box_or_localization, color=(255, 0, 0), thickness: int | None = None,
             label: str | None = None) -> np.ndarray:
    """A copy of ``image`` (uint8 RGB) with one box drawn: ``(x1, y1, x2, y2)`` project box or a Localization.

    Rotated Localizations are drawn as their rotated rectangle. ``thickness=None`` scales with the photo
    (1 px at 224, 2 px at 500). ``label`` is written on a filled patch so it stays readable on any photo.
    Raises ``core.boxes.InvalidBoxError`` for NaN, inverted, empty or fully outside boxes.
    """
    canvas = _as_rgb(image)
    _draw_one(canvas, box_or_localization, color, thickness, label)
    return canvas


def _box_items(boxes) -> list:
    """Localizations stay objects (they may be rotated); plain numbers become (4,) rows."""
    if isinstance(boxes, Localization):
        return [boxes]
    if isinstance(boxes, (list, tuple)) and any(isinstance(b, Localization) for b in boxes):
        return list(boxes)
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] != 4:
        raise ValueError(f"boxes must be (N, 4), one (4,) box or a list of Localizations, "
                         f"got shape {arr.shape}")
    return list(arr.reshape(-1, 4))


def draw_boxes(image: np.ndarray, boxes, color=(255, 0, 0), thickness: int | None = None,
               labels: Sequence[str | None] | None = None) -> np.ndarray:
    """A copy of ``image`` with every box drawn; ``boxes`` is (N, 4) or a list of boxes/Localizations.

    ``color`` is one (R, G, B) for all boxes or one colour per box; ``labels`` is None or one per box.
    """
    items = _box_items(boxes)
    colors = np.asarray(color)
    per_box = [tuple(c) for c in colors] if colors.ndim == 2 else [color] * len(items)
    names = [None] * len(items) if labels is None else list(labels)
    if len(per_box) != len(items) or len(names) != len(items):
        raise ValueError(f"got {len(items)} boxes but {len(per_box)} colours and {len(names)} labels; "
                         "give one colour (or one per box) and one label per box")
    canvas = _as_rgb(image)
    for item, item_color, name in zip(items, per_box, names):
        _draw_one(canvas, item, item_color, thickness, name)
    return canvas
