"""A slide-ready contact sheet: a set of photos' overlays (boxes drawn) in one 16:9 PNG, each with the
photo's name, the method and its IoU in type large enough to read from the back of a room.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.report.images import font_file
from core.report.model import MethodResult, PhotoReport, Report

__all__ = ["SHEET_SIZE", "SheetLayout", "sheet_layout", "contact_sheet", "contact_sheet_png"]

SHEET_SIZE = (1920, 1080)  # (width, height): a 16:9 slide at full HD
MAX_CELLS = 24
_PAD = 16
_TITLE = 110  # px of title band at 1080 p
_CAPTION = 64  # px of two caption lines under each overlay
_BACKGROUND = (255, 255, 255)
_INK = (29, 35, 42)
_MUTED = (87, 96, 106)
_IOU = (11, 110, 47)


@dataclass(frozen=True)
class SheetLayout:
    """Where each overlay goes: ``cells[i] = (x, y, width, height)`` of its image area, row by row."""

    rows: int
    cols: int
    cells: tuple[tuple[int, int, int, int], ...]


def _grid_shape(count: int, aspect: float, width: int, height: int) -> tuple[int, int]:
    """(rows, cols) that show the overlays largest; ties go to fewer columns."""
    best, shape = -1.0, (1, 1)
    for cols in range(1, count + 1):
        rows = math.ceil(count / cols)
        cell_w = (width - _PAD * (cols + 1)) / cols
        cell_h = (height - _PAD * (rows + 1)) / rows - _CAPTION
        shown = min(cell_w, cell_h * aspect)
        if shown > best + 1e-9:
            best, shape = shown, (rows, cols)
    return shape


def sheet_layout(count: int, aspect: float, size: tuple[int, int] = SHEET_SIZE) -> SheetLayout:
    """The grid for ``count`` overlays of width/height ``aspect`` below the title band."""
    if count < 1:
        raise ValueError(f"a contact sheet needs at least one overlay, got {count}")
    width, height = size
    top = round(_TITLE * height / 1080)
    rows, cols = _grid_shape(count, aspect, width, height - top)
    cell_w = (width - _PAD * (cols + 1)) // cols
    cell_h = (height - top - _PAD * (rows + 1)) // rows - _CAPTION
    cells = tuple((_PAD + c * (cell_w + _PAD), top + _PAD + r * (cell_h + _CAPTION + _PAD), cell_w, cell_h)
                  for r in range(rows) for c in range(cols))[:count]
    return SheetLayout(rows, cols, cells)


def _cells(report: Report, method: str | None) -> list[tuple[PhotoReport, MethodResult]]:
    """The overlays to show. ``method``: one method's key, ``"all"`` for every method of every photo, or
    None: every method of a single photo, else the report's first method on each photo (a set of photos)."""
    if method is None:
        method = "all" if len(report.photos) == 1 or not report.comparison else report.comparison[0].method
    return [(photo, result) for photo in report.photos for result in photo.methods
            if method == "all" or result.method == method]


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text``, cut with an ellipsis so it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _caption(draw: ImageDraw.ImageDraw, photo: PhotoReport, result: MethodResult, x: int, y: int, width: int,
             fonts) -> None:
    """Two lines under an overlay, aligned with it: the photo's name; the method and τ, IoU at the right."""
    name_font, line_font = fonts
    draw.text((x, y + 6), _fit_text(draw, photo.name, name_font, width), font=name_font, fill=_INK)
    iou = "" if result.iou is None else f"IoU {result.iou:.2f}"
    room = width - (draw.textlength("  " + iou, font=line_font) if iou else 0)
    draw.text((x, y + 34), _fit_text(draw, f"{result.label} · τ {result.threshold:.2f}", line_font, room),
              font=line_font, fill=_MUTED)
    if iou:
        draw.text((x + width - draw.textlength(iou, font=line_font), y + 34), iou, font=line_font, fill=_IOU)


def _subtitle(report: Report, shown: int, total: int) -> str:
    parts = [report.provenance.get("Model") or "", report.created]
    if shown < total:
        parts.append(f"first {shown} of {total} overlays")
    return " · ".join(p for p in parts if p)


def contact_sheet(report: Report, method: str | None = None, size: tuple[int, int] = SHEET_SIZE,
                  max_cells: int = MAX_CELLS) -> np.ndarray:
    """The sheet as uint8 RGB (height, width, 3), overlays row by row (which ones: see :func:`_cells`)."""
    cells = _cells(report, method)
    if not cells:
        raise ValueError(f"no overlay to show{f' for method {method!r}' if method else ''}")
    shown = cells[:max_cells]
    aspect = float(np.median([r.overlay.shape[1] / r.overlay.shape[0] for _, r in shown]))
    layout = sheet_layout(len(shown), aspect, size)
    sheet = Image.new("RGB", size, _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    scale = size[1] / 1080
    title_font = ImageFont.truetype(str(font_file(bold=True)), round(40 * scale))
    sub_font = ImageFont.truetype(str(font_file()), round(22 * scale))
    name_font = ImageFont.truetype(str(font_file(bold=True)), max(12, round(22 * scale)))
    line_font = ImageFont.truetype(str(font_file()), max(12, round(21 * scale)))
    draw.text((_PAD, round(18 * scale)), _fit_text(draw, report.title, title_font, size[0] - 2 * _PAD),
              font=title_font, fill=_INK)
    draw.text((_PAD, round(70 * scale)), _subtitle(report, len(shown), len(cells)), font=sub_font, fill=_MUTED)
    for (photo, result), (x, y, w, h) in zip(shown, layout.cells):
        overlay = Image.fromarray(result.overlay)
        factor = min(w / overlay.width, h / overlay.height)  # fills the cell, shrinking or enlarging
        overlay = overlay.resize((max(1, round(overlay.width * factor)), max(1, round(overlay.height * factor))),
                                 Image.Resampling.LANCZOS)
        left, top = x + (w - overlay.width) // 2, y  # centred across, captions right under it
        sheet.paste(overlay, (left, top))
        _caption(draw, photo, result, left, top + overlay.height, overlay.width, (name_font, line_font))
    return np.asarray(sheet)


def contact_sheet_png(report: Report, method: str | None = None, size: tuple[int, int] = SHEET_SIZE) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(contact_sheet(report, method, size)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
