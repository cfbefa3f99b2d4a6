"""Bounding boxes: the project's single box convention, conversions, validation and IoU.

Convention (used everywhere in CAM Explorer)
    A box is float ``(x1, y1, x2, y2)`` in pixels of the photo. The origin is the top-left corner of the
    top-left pixel; ``x2``/``y2`` are the far *edges* (exclusive), so ``width = x2 - x1`` and a box covering
    exactly pixel column 0 and row 0 is ``(0, 0, 1, 1)``. Several boxes form an ``(N, 4)`` array.

Other conventions are converted here and nowhere else:
    * tfds (``tensorflow_datasets``) boxes are normalised ``(ymin, xmin, ymax, xmax)`` in ``[0, 1]``.
    * Stanford Cars devkit boxes are 1-based inclusive pixels ``(x1, y1, x2, y2)`` → ``(x1-1, y1-1, x2, y2)``;
      devkit ``(1, 1, 10, 10)`` is the 10×10 box ``(0, 0, 10, 10)``.

IoU of a degenerate box (zero or negative width/height, or any non-finite coordinate — e.g. the NaN rows that
mean "no box found") is defined as 0.0, so IoU is never NaN and never above 1.

>>> iou((0, 0, 10, 10), (5, 0, 15, 10))
0.3333333333333333
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "InvalidBoxError", "from_tfds", "to_tfds", "from_devkit", "to_devkit",
    "clip_box", "check_box", "box_area", "iou_matrix", "paired_ious", "iou",
]

CHECK_POLICIES = ("raise", "clip")


class InvalidBoxError(ValueError):
    """A box that cannot describe a region of the photo (NaN, inverted, empty or outside)."""


def _as_boxes(box, name: str = "box") -> np.ndarray:
    """Return ``box`` as float64 of shape (4,) or (N, 4); raise ValueError for any other shape."""
    arr = np.asarray(box, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] != 4:
        raise ValueError(
            f"{name} must have shape (4,) or (N, 4), got shape {arr.shape}; "
            "pass one box as 4 numbers or several boxes as rows of 4."
        )
    return arr


def _check_size(height, width) -> tuple[float, float]:
    if not (np.isfinite(height) and np.isfinite(width)) or height <= 0 or width <= 0:
        raise ValueError(f"photo size must be positive, got height={height!r}, width={width!r}")
    return float(height), float(width)


def from_tfds(box, height, width) -> np.ndarray:
    """tfds normalised ``(ymin, xmin, ymax, xmax)`` → project ``(x1, y1, x2, y2)`` pixels of an H×W photo."""
    arr = _as_boxes(box)
    h, w = _check_size(height, width)
    return arr[..., [1, 0, 3, 2]] * np.array([w, h, w, h])


def to_tfds(box, height, width) -> np.ndarray:
    """Project ``(x1, y1, x2, y2)`` pixels → tfds normalised ``(ymin, xmin, ymax, xmax)``."""
    arr = _as_boxes(box)
    h, w = _check_size(height, width)
    return arr[..., [1, 0, 3, 2]] / np.array([h, w, h, w])


def from_devkit(box) -> np.ndarray:
    """Stanford Cars devkit 1-based inclusive ``(x1, y1, x2, y2)`` → project box (x2/y2 become far edges)."""
    return _as_boxes(box) - np.array([1.0, 1.0, 0.0, 0.0])


def to_devkit(box) -> np.ndarray:
    """Project box → devkit 1-based inclusive integer pixels (coordinates rounded to the nearest pixel)."""
    arr = _as_boxes(box)
    if not np.isfinite(arr).all():
        raise InvalidBoxError(f"cannot convert a non-finite box to devkit pixels: {arr.tolist()}")
    return np.rint(arr + np.array([1.0, 1.0, 0.0, 0.0])).astype(np.int64)


def clip_box(box, height, width) -> np.ndarray:
    """Clip box coordinates to the photo ``[0, width] × [0, height]`` (a new array, same shape)."""
    arr = _as_boxes(box)
    h, w = _check_size(height, width)
    return np.clip(arr, 0.0, np.array([w, h, w, h]))


def _box_problem(b: np.ndarray, height: float | None, width: float | None) -> str | None:
    """Describe why one box can never be used (partly outside is not such a reason), or None."""
    x1, y1, x2, y2 = b
    if not np.isfinite(b).all():
        return "has a NaN or infinite coordinate"
    if x1 > x2 or y1 > y2:
        return ("has min > max (x1 > x2 or y1 > y2); coordinates may be swapped or in another order "
                "(tfds boxes are (ymin, xmin, ymax, xmax): convert with from_tfds)")
    if x1 == x2 or y1 == y2:
        return "has zero area"
    if height is not None and width is not None:
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            return f"lies entirely outside the {width:g}×{height:g} photo"
    return None


def _sticks_out(b: np.ndarray, height: float | None, width: float | None) -> bool:
    return height is not None and bool(b[0] < 0 or b[1] < 0 or b[2] > width or b[3] > height)


def check_box(box, height=None, width=None, policy: str = "raise") -> np.ndarray:
    """Validate box(es) and return them as float64, clipped to the photo when ``policy="clip"``.

    Rejected with :class:`InvalidBoxError`: NaN/inf, min > max (tfds mock data produces ymin > ymax),
    zero area and — when the photo size is given — boxes entirely outside it. Boxes partly outside raise
    with ``policy="raise"``; with ``policy="clip"`` they are clipped and raise only if still degenerate.
    """
    if policy not in CHECK_POLICIES:
        raise ValueError(f"policy must be one of {CHECK_POLICIES}, got {policy!r}")
    if (height is None) != (width is None):
        raise ValueError("give both height and width of the photo, or neither")
    arr = _as_boxes(box)
    if height is not None:
        height, width = _check_size(height, width)
    rows = arr.reshape(-1, 4).copy()
    for i, row in enumerate(rows):
        problem = _box_problem(row, height, width)
        if problem is None and _sticks_out(row, height, width):
            if policy == "raise":
                problem = f"extends beyond the {width:g}×{height:g} photo (use policy='clip' to clip it)"
            else:
                rows[i] = clip_box(row, height, width)
                problem = _box_problem(rows[i], height, width)
        if problem is not None:
            where = f"box {i} " if arr.ndim == 2 else "box "
            raise InvalidBoxError(f"{where}{row.tolist()} {problem}")
    return rows.reshape(arr.shape)


def _sides(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Width and height, with non-finite and inverted boxes counted as 0 × 0."""
    finite = np.isfinite(arr).all(axis=-1)
    safe = np.where(finite[..., None], arr, 0.0)
    width = np.clip(safe[..., 2] - safe[..., 0], 0.0, None)
    height = np.clip(safe[..., 3] - safe[..., 1], 0.0, None)
    return width, height


def box_area(boxes):
    """Area in square pixels: a float for one box, shape (N,) for (N, 4); degenerate/non-finite boxes → 0."""
    arr = _as_boxes(boxes, "boxes")
    width, height = _sides(arr)
    area = width * height
    return float(area) if arr.ndim == 1 else area


def _ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a`` and ``b`` (arrays of shape (..., 4) that broadcast), the one implementation: 0.0
    for any pair with a degenerate or non-finite box."""
    a_w, a_h = _sides(a)
    b_w, b_h = _sides(b)
    valid = (a_w * a_h > 0) & (b_w * b_h > 0)
    a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    b = np.nan_to_num(b, nan=0.0, posinf=0.0, neginf=0.0)
    lo = np.maximum(a[..., :2], b[..., :2])
    hi = np.minimum(a[..., 2:], b[..., 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=-1)
    union = a_w * a_h + b_w * b_h - inter
    out = np.zeros(np.shape(inter), dtype=np.float64)
    np.divide(inter, union, out=out, where=valid & (union > 0))
    return np.clip(out, 0.0, 1.0)


def iou_matrix(a, b) -> np.ndarray:
    """Intersection over union of every box in ``a`` (N, 4) with every box in ``b`` (M, 4) → (N, M) float64.

    Values lie in [0, 1]; a pair involving a degenerate or non-finite box scores 0.0.

    >>> iou_matrix([[0, 0, 2, 2]], [[1, 1, 3, 3], [0, 0, 2, 2]]).round(4).tolist()
    [[0.1429, 1.0]]
    """
    a = _as_boxes(a, "a").reshape(-1, 4)
    b = _as_boxes(b, "b").reshape(-1, 4)
    return _ious(a[:, None, :], b[None, :, :])


def paired_ious(a, b) -> np.ndarray:
    """IoU of matching boxes of ``a`` and ``b``, arrays of shape (..., 4) that broadcast (e.g. boxes at many
    thresholds (N, T, 4) against one truth per photo (N, 1, 4)); 0.0 where a box is missing (NaN).

    >>> paired_ious([[0, 0, 2, 2], [0, 0, 1, 1]], [[1, 1, 3, 3], [0, 0, 1, 1]]).round(4).tolist()
    [0.1429, 1.0]
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape[-1:] != (4,) or b.shape[-1:] != (4,):
        raise ValueError(f"boxes must have 4 numbers in their last axis, got shapes {a.shape} and {b.shape}")
    return _ious(a, b)


def iou(a, b) -> float:
    """IoU of two single boxes of shape (4,) (see :func:`iou_matrix` for many)."""
    a, b = _as_boxes(a, "a"), _as_boxes(b, "b")
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"iou compares two single boxes, got shapes {a.shape} and {b.shape}; use iou_matrix")
    return float(iou_matrix(a, b)[0, 0])
