"""Heatmap → bounding boxes, via connected components of the thresholded map.

The original study took ``contours[0]`` of ``cv2.findContours`` — an arbitrary contour — and ``np.int0``,
which NumPy 2 removed. Here the component is chosen on purpose ("largest", "peak" or "all") and its exact
pixel rectangle (or minimum-area rotated rectangle) is returned in the project box convention
(``core.boxes``).

Threshold rule: a pixel is foreground when ``value >= threshold * peak``, ``peak`` being the map's maximum.
For a map normalised to peak 1 (what ``core.heatmaps.normalize_map`` returns) that is simply
``value >= threshold``; scaling by the peak keeps the rule meaningful after resizing, which can lower the
maximum slightly. So threshold 1 selects exactly the pixels equal to the maximum and threshold 0 selects the
whole photo. A flat map (including all zeros) has no components at any threshold: nothing stands out, so no
box is returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.heatmaps import as_unit_heatmap, is_flat_unit_map

__all__ = [
    "COMPONENT_MODES", "BOX_SHAPES", "Localization",
    "boxes_from_heatmap", "box_from_heatmap",
]

DEFAULT_THRESHOLD = 0.2
"""τ when nothing was calibrated: the CAM paper's 20 % of the map's maximum."""
COMPONENT_MODES = ("largest", "peak", "all")
BOX_SHAPES = ("rect", "rotated")
_PIXEL_CORNERS = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Localization:
    """One connected region of a heatmap.

    ``box``: axis-aligned ``(x1, y1, x2, y2)``, project convention, inside the photo. ``corners``: (4, 2)
    float ``(x, y)`` points — the rotated rectangle's corners for ``shape="rotated"``, else the box corners
    clockwise from the top-left. ``area_px``: pixels in the component; ``mass``: sum of heatmap values over
    them; ``peak``: their maximum value; ``shape``: ``"rect"`` or ``"rotated"``.
    """

    box: np.ndarray
    corners: np.ndarray
    area_px: int
    mass: float
    peak: float
    shape: str = "rect"


def _validate_threshold(threshold) -> float:
    value = float(threshold)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"threshold must be in [0, 1] (a fraction of the map's peak), got {threshold!r}")
    return value


def _components(mask: np.ndarray, heatmap: np.ndarray, need_all_masses: bool):
    """Label 8-connected components of ``mask``; return (labels, stats, mass) without the background row.

    Summing the heatmap per component costs a full pass over a photo-sized map, so unless every
    component is wanted only the components that tie on the largest area get their mass (it breaks ties).
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    stats = stats[1:]
    if need_all_masses:
        mass = np.bincount(labels.ravel(), weights=heatmap.ravel(), minlength=count)[1:]
    else:
        mass = np.zeros(len(stats))
        area = stats[:, cv2.CC_STAT_AREA]
        for index in np.flatnonzero(area == area.max()) if len(area) else ():
            mass[index] = _component_mass(labels, stats, heatmap, int(index))
    return labels, stats, mass


def _component_mass(labels, stats, heatmap, index: int) -> float:
    x, y, w, h = (int(v) for v in stats[index, :4])
    window = heatmap[y:y + h, x:x + w]
    return float(window[labels[y:y + h, x:x + w] == index + 1].sum())


def rank_components(area, top, left, mass) -> np.ndarray:
    """The project's one "largest component" rule, as an order (largest first): most pixels, then most
    mass, then topmost, then leftmost. Boxes drawn and boxes calibrated both follow it."""
    return np.lexsort((np.asarray(left), np.asarray(top), -np.asarray(mass), -np.asarray(area)))


def _ranking(stats: np.ndarray, mass: np.ndarray) -> np.ndarray:
    return rank_components(stats[:, cv2.CC_STAT_AREA], stats[:, cv2.CC_STAT_TOP], stats[:, cv2.CC_STAT_LEFT], mass)


def _rect_box(stat: np.ndarray) -> np.ndarray:
    x, y, w, h = (float(v) for v in stat[:4])
    return np.array([x, y, x + w, y + h])


def box_corners(box) -> np.ndarray:
    """(4, 2) corners of an axis-aligned box (x1, y1, x2, y2), clockwise from the top left."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)


def _rotated_corners(component: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """Minimum-area rectangle around the component's pixel *squares* (not centres), project coordinates."""
    contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    pixels = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float64) + (x0, y0)
    squares = (pixels[:, None, :] + _PIXEL_CORNERS[None]).reshape(-1, 2)
    return cv2.boxPoints(cv2.minAreaRect(squares.astype(np.float32))).astype(np.float64)


def _localization(index: int, labels, stats, mass, heatmap, shape: str) -> Localization:
    x, y, w, h = (int(v) for v in stats[index, :4])
    inside = labels[y:y + h, x:x + w] == index + 1
    values = heatmap[y:y + h, x:x + w][inside]
    peak = float(values.max())
    mass = mass.copy()
    mass[index] = float(values.sum())  # exact for the returned component, whichever path computed it
    if shape == "rotated":
        corners = _rotated_corners(inside.astype(np.uint8), x, y)
        height, width = heatmap.shape
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        box = np.clip(np.array([lo[0], lo[1], hi[0], hi[1]]), 0.0, [width, height, width, height])
    else:
        box = _rect_box(stats[index])
        corners = box_corners(box)
    box.setflags(write=False)
    corners.setflags(write=False)
    return Localization(box=box, corners=corners, area_px=int(stats[index, cv2.CC_STAT_AREA]),
                        mass=float(mass[index]), peak=peak, shape=shape)


def boxes_from_heatmap(heatmap: np.ndarray, threshold: float, component: str = "largest",
                       shape: str = "rect") -> list[Localization]:
    """Boxes around the connected regions (8-connectivity) where ``heatmap >= threshold * max(heatmap)``.

    heatmap: (H, W) float in [0, 1]. component: ``"largest"`` (most pixels), ``"peak"`` (the region holding
    the maximum; the largest such region if the maximum occurs in several), or ``"all"``. shape: ``"rect"``
    (exact pixel rectangle) or ``"rotated"`` (minimum-area rotated rectangle; ``box`` is its bounds clipped to
    the photo). Returns a list sorted largest first (ties: more mass, then topmost, then leftmost) — empty
    when the map is flat (nothing stands out). Raises ValueError for a threshold outside [0, 1], NaN values,
    values outside [0, 1], or a map that is not 2-D.

    >>> heat = np.zeros((4, 6)); heat[1:3, 2:5] = 1.0
    >>> boxes_from_heatmap(heat, 0.5)[0].box.tolist()
    [2.0, 1.0, 5.0, 3.0]
    """
    if component not in COMPONENT_MODES:
        raise ValueError(f"component must be one of {COMPONENT_MODES}, got {component!r}")
    if shape not in BOX_SHAPES:
        raise ValueError(f"shape must be one of {BOX_SHAPES}, got {shape!r}")
    heat = as_unit_heatmap(heatmap)
    cut = np.float32(_validate_threshold(threshold) * float(heat.max()))
    if is_flat_unit_map(heat):
        return []
    labels, stats, mass = _components(heat >= cut, heat, need_all_masses=component != "largest")
    order = _ranking(stats, mass)
    if component == "largest":
        order = order[:1]
    elif component == "peak":
        holding_peak = set(np.unique(labels[heat == heat.max()]) - 1)
        order = [i for i in order if i in holding_peak][:1]
    return [_localization(int(i), labels, stats, mass, heat, shape) for i in order]


def box_from_heatmap(heatmap: np.ndarray, threshold: float = 0.5) -> Localization | None:
    """The single default box: largest component, axis-aligned rectangle; None when the map is flat."""
    found = boxes_from_heatmap(heatmap, threshold, component="largest", shape="rect")
    return found[0] if found else None
