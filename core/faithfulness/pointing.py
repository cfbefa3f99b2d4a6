"""Pointing games: does the map point at the object?

* Pointing game (Zhang et al., ECCV 2016 / IJCV 2018, "Top-down neural attention by excitation
  backprop"): a hit when the map's maximum lies within ``tolerance`` = 15 pixels of a ground-truth box.
  The maximum is the centre of the first maximal cell (row-major), scaled to photo pixels; its distance
  to a box is 0 inside it. A map with no maximum (constant, e.g. all zero) never hits.
* Energy-based pointing game (Wang et al., CVPR-W 2020, "Score-CAM"): the share of the map's energy
  inside the boxes, Σ_in m / Σ m, negative values counted as 0; a cell is inside when its centre,
  scaled to photo pixels, lies in a box. An all-zero map scores 0 (no energy points anywhere).

Boxes follow ``core.boxes``: float (x1, y1, x2, y2) photo pixels, far edges exclusive, (4,) or (K, 4)
(several instances: inside any of them). ``image_shape`` (height, width) is the photo's size when the map
is at another resolution (default: the map's own). Both games need no forward pass.
"""

from __future__ import annotations

import numpy as np

from core.boxes import check_box

__all__ = ["POINTING_TOLERANCE", "energy_pointing_game", "pointing_game"]

POINTING_TOLERANCE = 15.0


def _prepare(saliency, boxes, image_shape) -> tuple[np.ndarray, np.ndarray, float, float]:
    arr = np.asarray(saliency, np.float64)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"the map must be a non-empty 2-D array (h, w), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("the map contains NaN or infinite values; replace them first")
    height, width = arr.shape if image_shape is None else image_shape
    if not (height > 0 and width > 0):
        raise ValueError(f"image_shape must be a positive (height, width), got {image_shape!r}")
    rows = check_box(boxes).reshape(-1, 4)
    return arr, rows, arr.shape[0] / float(height), arr.shape[1] / float(width)


def _cell_centres(shape: tuple[int, int], scale_y: float, scale_x: float) -> tuple[np.ndarray, np.ndarray]:
    """Photo coordinates (x, y) of every cell's centre."""
    return (np.arange(shape[1]) + 0.5) / scale_x, (np.arange(shape[0]) + 0.5) / scale_y


def pointing_game(saliency, boxes, tolerance: float = POINTING_TOLERANCE, image_shape=None) -> bool:
    """True when the maximum of ``saliency`` (h, w) lies within ``tolerance`` photo pixels of a box.

    >>> heat = np.zeros((100, 100)); heat[50, 20] = 1.0
    >>> pointing_game(heat, (30, 40, 60, 60)), pointing_game(heat, (40, 40, 60, 60))
    (True, False)
    """
    arr, rows, scale_y, scale_x = _prepare(saliency, boxes, image_shape)
    if tolerance < 0:
        raise ValueError(f"tolerance must be ≥ 0 pixels, got {tolerance!r}")
    if arr.max() == arr.min():
        return False
    row, col = np.unravel_index(int(np.argmax(arr)), arr.shape)
    x, y = (col + 0.5) / scale_x, (row + 0.5) / scale_y
    dx = np.maximum(np.maximum(rows[:, 0] - x, x - rows[:, 2]), 0.0)
    dy = np.maximum(np.maximum(rows[:, 1] - y, y - rows[:, 3]), 0.0)
    return bool((np.hypot(dx, dy) <= tolerance).any())


def energy_pointing_game(saliency, boxes, image_shape=None) -> float:
    """Σ of the map inside the boxes / Σ of the map, in [0, 1] (negatives as 0; all-zero map → 0).

    >>> heat = np.zeros((4, 4)); heat[0, 0], heat[3, 3] = 3.0, 1.0
    >>> energy_pointing_game(heat, (0, 0, 2, 2))
    0.75
    """
    arr, rows, scale_y, scale_x = _prepare(saliency, boxes, image_shape)
    energy = np.maximum(arr, 0.0)
    total = energy.sum()
    if total == 0:
        return 0.0
    xs, ys = _cell_centres(arr.shape, scale_y, scale_x)
    inside_x = (xs[None] >= rows[:, :1]) & (xs[None] < rows[:, 2:3])  # (K, w)
    inside_y = (ys[None] >= rows[:, 1:2]) & (ys[None] < rows[:, 3:4])  # (K, h)
    inside = (inside_y[:, :, None] & inside_x[:, None, :]).any(axis=0)
    return float(energy[inside].sum() / total)
