"""Localisation metrics from per-photo IoU-vs-τ curves, following Choe et al., CVPR 2020 ("Evaluating
Weakly Supervised Object Localization Methods Right").

Each photo's normalised heatmap is swept *once* over τ ∈ {0, 0.01, …, 0.99} (:func:`threshold_sweep`),
giving two curves: the IoU of the largest component's rectangle (what the dashboard draws) and the best
IoU over every component (MaxBoxAccV2's box). Every aggregate — mean/median IoU at a τ, BoxAcc, MaxBoxAcc,
MaxBoxAccV2, the τ a calibration picks — is a cheap reduction of the stacked (N, T) curves, so changing τ
never recomputes a map.

Sweeps run on a fixed ``EVAL_GRID``×``EVAL_GRID`` grid (the photo and its box scaled to 224×224, as in the
WSOL standard): IoU is unchanged by scaling both boxes, and labelling 224² pixels 100 times costs ~15 ms
where a 650×450 photo costs ~90 ms. Boxes found on the grid are scaled back to photo pixels.

>>> curves = np.array([[0.2, 0.6, 0.8], [0.1, 0.4, 0.9]])  # 2 photos, 3 thresholds
>>> boxacc_curve(curves, 0.5).tolist()
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.boxes import iou_matrix
from core.heatmaps import is_flat_unit_map
from core.localize import rank_components

__all__ = [
    "THRESHOLDS", "IOU_LEVELS", "EVAL_GRID", "Sweep", "threshold_sweep", "grid_box",
    "boxacc_curve", "max_boxacc", "max_boxacc_v2", "best_threshold_index", "scores_at",
    "full_image_ious", "center_box_ious", "CENTER_FRACTIONS",
]

THRESHOLDS = np.round(np.arange(100) * 0.01, 2)
"""τ ∈ [0, 1) in steps of 0.01, as fractions of the map's peak (the project's threshold rule)."""
IOU_LEVELS = (0.3, 0.5, 0.7)
"""δ: a box is correct when its IoU with the truth is at least δ (BoxAcc@δ; MaxBoxAccV2 averages them)."""
EVAL_GRID = 224
CENTER_FRACTIONS = np.round(np.arange(0.30, 1.0001, 0.02), 2)
"""Side fractions swept for the centred-box baseline (1.0 is the full image)."""


@dataclass(frozen=True)
class Sweep:
    """One photo's curves: ``largest[t]`` and ``best[t]`` are IoUs at ``THRESHOLDS[t]`` (0 when no box);
    ``boxes[t]`` is the largest component's box (NaN when none), for a calibrated box correction."""

    largest: np.ndarray
    best: np.ndarray
    boxes: np.ndarray


def _iou_with(boxes: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """IoU of each row of ``boxes`` (K, 4) with one valid ``truth`` box (4,)."""
    return iou_matrix(boxes, truth[None])[:, 0]


def _check_heatmap(heatmap) -> np.ndarray:
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.ndim != 2 or heat.size == 0:
        raise ValueError(f"heatmap must be a non-empty 2-D array (H, W), got shape {heat.shape}")
    if not np.isfinite(heat).all():
        raise ValueError("heatmap has NaN or infinite values; normalise it with core.heatmaps.normalize_map")
    return heat


def _check_truth(truth) -> np.ndarray:
    box = np.asarray(truth, dtype=np.float64)
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"ground-truth box must be a valid (x1, y1, x2, y2) with x1 < x2 and y1 < y2; "
                         f"got {truth!r}")
    return box


def _labelled(heat: np.ndarray, cut: np.float32, row_peak=None, col_peak=None):
    """Components of ``heat >= cut``: (labels, boxes (K, 4), areas (K,), the labelled crop of ``heat``).

    With the map's row and column maxima given, only the rows and columns that reach ``cut`` are
    labelled (high τ keeps a small crop); ``labels`` then covers that crop and boxes are shifted back.
    """
    r0 = c0 = 0
    if row_peak is not None:
        rows, cols = np.flatnonzero(row_peak >= cut), np.flatnonzero(col_peak >= cut)
        r0, c0 = int(rows[0]), int(cols[0])
        heat = heat[r0:int(rows[-1]) + 1, c0:int(cols[-1]) + 1]
    count, labels, stats, _ = cv2.connectedComponentsWithStats((heat >= cut).view(np.uint8), connectivity=8)
    stats = stats[1:].astype(np.float64)
    x, y = stats[:, 0] + c0, stats[:, 1] + r0
    boxes = np.column_stack([x, y, x + stats[:, 2], y + stats[:, 3]])
    return labels, boxes, stats[:, cv2.CC_STAT_AREA], heat


def _largest_index(labels, heat, areas, boxes) -> int:
    """Most pixels; ties broken like ``core.localize`` (more mass, then topmost, then leftmost)."""
    tied = np.flatnonzero(areas == areas.max())
    if tied.size == 1:
        return int(tied[0])
    mass = np.bincount(labels.ravel(), weights=heat.ravel(), minlength=len(areas) + 1)[1:]
    order = rank_components(areas[tied], boxes[tied, 1], boxes[tied, 0], mass[tied])
    return int(tied[order[0]])


def threshold_sweep(heatmap, truth, thresholds=THRESHOLDS) -> Sweep:
    """IoU against ``truth`` at every τ: of the largest component's rectangle and of the best component.

    heatmap: (H, W) float in [0, 1]; a pixel is foreground when ``value >= τ × max``. truth: ``(x1, y1, x2,
    y2)`` in the heatmap's pixel grid. A flat map has no box at any τ (IoU 0). One labelling per τ.

    >>> heat = np.zeros((4, 8)); heat[1:3, 1:3] = 1.0; heat[0:4, 5:8] = 0.6
    >>> s = threshold_sweep(heat, (5, 0, 8, 4), thresholds=[0.5, 0.9])
    >>> s.largest.tolist(), s.best.tolist()   # τ 0.5: the 3×4 block is largest; τ 0.9: only the 2×2 one
    ([1.0, 0.0], [1.0, 0.0])
    """
    heat = _check_heatmap(heatmap)
    box = _check_truth(truth)
    ts = np.asarray(thresholds, dtype=np.float64)
    largest, best = np.zeros(ts.size), np.zeros(ts.size)
    boxes_at = np.full((ts.size, 4), np.nan)
    peak = float(heat.max())
    if is_flat_unit_map(heat):
        return Sweep(largest, best, boxes_at)
    row_peak, col_peak = heat.max(axis=1), heat.max(axis=0)
    for i, t in enumerate(ts):
        labels, boxes, areas, crop = _labelled(heat, np.float32(t * peak), row_peak, col_peak)
        ious = _iou_with(boxes, box)
        chosen = _largest_index(labels, crop, areas, boxes)
        largest[i], boxes_at[i] = ious[chosen], boxes[chosen]
        best[i] = ious.max()
    return Sweep(largest, best, boxes_at)


def grid_box(heatmap, threshold: float) -> np.ndarray | None:
    """The largest component's rectangle at one τ on the grid (None for a flat map)."""
    heat = _check_heatmap(heatmap)
    if is_flat_unit_map(heat):
        return None
    labels, boxes, areas, crop = _labelled(heat, np.float32(threshold * float(heat.max())))
    return boxes[_largest_index(labels, crop, areas, boxes)]


def _curves(curves) -> np.ndarray:
    arr = np.asarray(curves, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"curves must be an (N photos, T thresholds) array, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("no photos to aggregate: the curves array is empty")
    return arr


def boxacc_curve(curves, delta: float) -> np.ndarray:
    """(T,) share of photos whose IoU is at least ``delta`` at each τ."""
    return (_curves(curves) >= delta).mean(axis=0)


def max_boxacc(largest_curves, delta: float = 0.5) -> tuple[float, int]:
    """MaxBoxAcc (Choe et al.): the best BoxAcc@δ over τ, largest component; returns (value, τ index)."""
    acc = boxacc_curve(largest_curves, delta)
    index = int(np.argmax(acc))
    return float(acc[index]), index


def max_boxacc_v2(best_curves, levels=IOU_LEVELS) -> float:
    """MaxBoxAccV2: mean over δ of the best BoxAcc@δ over τ, the best box among all components."""
    return float(np.mean([boxacc_curve(best_curves, d).max() for d in levels]))


def best_threshold_index(curves, objective: str = "mean_iou") -> int:
    """τ index maximising ``"mean_iou"`` or ``"boxacc@0.5"`` over the photos (ties: the lower τ)."""
    arr = _curves(curves)
    if objective == "mean_iou":
        score = arr.mean(axis=0)
    elif objective.startswith("boxacc@"):
        score = (arr >= float(objective.split("@", 1)[1])).mean(axis=0)
    else:
        raise ValueError(f"objective must be 'mean_iou' or 'boxacc@<delta>', got {objective!r}")
    return int(np.argmax(score))


def scores_at(ious, correct=None, levels=IOU_LEVELS) -> dict:
    """Aggregates of per-photo IoUs at one τ: mean, median, BoxAcc per δ, GT-known and top-1 localisation.

    ``correct``: per-photo booleans (classification right), or None when "right" is undefined — then
    ``top1_loc`` is None. GT-known localisation is BoxAcc@0.5 (the class is given).
    """
    values = np.asarray(ious, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"ious must be a non-empty 1-D array, got shape {values.shape}")
    hit = values >= 0.5
    top1 = None
    if correct is not None:
        right = np.asarray(correct, dtype=bool)
        if right.shape != values.shape:
            raise ValueError(f"correct has shape {right.shape}, ious {values.shape}")
        top1 = float((hit & right).mean())
    return {
        "mean_iou": float(values.mean()),
        "median_iou": float(np.median(values)),
        "boxacc": {f"{d:g}": float((values >= d).mean()) for d in levels},
        "gt_known_loc": float(hit.mean()),
        "top1_loc": top1,
    }


def full_image_ious(truths, sizes) -> np.ndarray:
    """IoU of the whole-photo box with each truth box; ``sizes`` are (height, width) per photo."""
    truths, sizes = np.asarray(truths, np.float64), np.asarray(sizes, np.float64)
    return center_box_ious(truths, sizes, [1.0])[:, 0]


def center_box_ious(truths, sizes, fractions=CENTER_FRACTIONS) -> np.ndarray:
    """(N, F) IoU of the centred box covering ``fraction`` of the photo's width and height with each truth."""
    truths = np.asarray(truths, np.float64).reshape(-1, 4)
    sizes = np.asarray(sizes, np.float64).reshape(-1, 2)
    if len(truths) != len(sizes):
        raise ValueError(f"{len(truths)} truth boxes but {len(sizes)} photo sizes")
    f = np.asarray(fractions, np.float64)
    if f.ndim != 1 or ((f <= 0) | (f > 1)).any():
        raise ValueError(f"fractions must be a 1-D sequence within (0, 1], got {fractions!r}")
    height, width = sizes[:, :1], sizes[:, 1:]
    x1, x2 = width * (1 - f) / 2, width * (1 + f) / 2
    y1, y2 = height * (1 - f) / 2, height * (1 + f) / 2
    iw = np.clip(np.minimum(x2, truths[:, 2:3]) - np.maximum(x1, truths[:, 0:1]), 0, None)
    ih = np.clip(np.minimum(y2, truths[:, 3:4]) - np.maximum(y1, truths[:, 1:2]), 0, None)
    inter = iw * ih
    truth_area = (truths[:, 2:3] - truths[:, 0:1]) * (truths[:, 3:4] - truths[:, 1:2])
    return inter / ((x2 - x1) * (y2 - y1) + truth_area - inter)
