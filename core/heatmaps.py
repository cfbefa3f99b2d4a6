"""Heatmap normalisation and resizing: raw class-activation maps → float32 maps in [0, 1] at photo size.

Raw maps come in any scale and sign (CAM can be negative, Grad-CAM can be all negative, a broken layer
can give NaN). Normalising is where division by zero and NaN would creep in, so every such case is
handled here once and reported through :class:`NormalizedMap` flags instead of silently producing a
meaningless picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["NORMALIZE_MODES", "INTERPOLATIONS", "NormalizedMap", "normalize_map", "upsample",
           "as_unit_heatmap", "is_flat_unit_map", "FLAT_EPS"]

NORMALIZE_MODES = ("minmax", "max")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
_CV2_INTERPOLATION = {
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST_EXACT,  # INTER_NEAREST is shifted by half a source cell; EXACT is centred
}
# A raw map whose range is below this fraction of its magnitude carries no spatial information (float32
# noise); once normalised to [0, 1], the same rule is an absolute FLAT_EPS (is_flat_unit_map).
FLAT_RELATIVE_EPS = 1e-6


@dataclass(frozen=True, eq=False)
class NormalizedMap:
    """A heatmap scaled to [0, 1] plus what happened on the way.

    ``values``: float32 (H, W) in [0, 1], all zero when ``flat``. ``flat``: nothing to show (constant map, or
    nothing positive left after ReLU / for ``mode="max"``). ``had_nan``: the raw map had NaN or ±inf values
    (``nonfinite_count`` of them) that were replaced. ``all_negative``: no raw value above 0 and some below.
    ``peak``/``floor``: raw finite max/min before ReLU (0.0 when no value was finite).
    """

    values: np.ndarray
    flat: bool
    had_nan: bool
    all_negative: bool
    peak: float
    floor: float
    nonfinite_count: int
    relu: bool
    mode: str

    @property
    def status(self) -> str | None:
        """A sentence for the user when the map is not a normal one, else None."""
        notes = []
        if self.had_nan:
            notes.append(f"{self.nonfinite_count} NaN/infinite value(s) in the raw map were replaced")
        if self.all_negative:
            notes.append("no positive evidence: every value is ≤ 0 (the layer argues against this class)")
        if self.flat:
            notes.append("flat map: the model shows no preference for any region at this layer")
        return "; ".join(notes) if notes else None


def _replace_nonfinite(raw: np.ndarray) -> tuple[np.ndarray, int]:
    """NaN and -inf → finite minimum, +inf → finite maximum (0 when nothing is finite)."""
    finite = np.isfinite(raw)
    count = int(raw.size - np.count_nonzero(finite))
    if count == 0:
        return raw, 0
    lo, hi = (float(raw[finite].min()), float(raw[finite].max())) if finite.any() else (0.0, 0.0)
    return np.nan_to_num(raw, nan=lo, posinf=hi, neginf=lo), count


def normalize_map(raw: np.ndarray, relu: bool, mode: str = "minmax") -> NormalizedMap:
    """Scale a raw 2-D activation map into [0, 1].

    ``relu`` keeps only positive evidence first (Grad-CAM's ReLU).
    ``mode="minmax"``: ``(x - min) / (max - min)``; ``mode="max"``: ``x / max`` with negatives clipped
    to 0 (the original study's ``cam /= np.max(cam)``).
    Flat maps (``max - min <= 1e-6 × max(|max|, |min|)``), all-zero maps after ReLU, and ``mode="max"`` maps
    without a positive value come back as all zeros with ``flat=True`` — never a division by zero or NaN.

    >>> normalize_map(np.array([[-1.0, 0.0], [1.0, 3.0]]), relu=True).values.tolist()
    [[0.0, 0.0], [0.3333333432674408, 1.0]]
    """
    if mode not in NORMALIZE_MODES:
        raise ValueError(f"mode must be one of {NORMALIZE_MODES}, got {mode!r}")
    arr = np.asarray(raw)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"raw map must be a non-empty 2-D array (H, W), got shape {arr.shape}; "
                         "select one photo and sum over channels first")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"raw map must be numeric, got dtype {arr.dtype}")
    arr, nonfinite = _replace_nonfinite(arr.astype(np.float64))
    peak, floor = float(arr.max()), float(arr.min())
    if relu:
        arr = np.maximum(arr, 0.0)
    hi, lo = float(arr.max()), float(arr.min())
    scale = max(abs(hi), abs(lo))
    flat = (hi - lo) <= FLAT_RELATIVE_EPS * scale or (mode == "max" and hi <= 0.0)
    if flat:
        values = np.zeros(arr.shape, dtype=np.float32)
    elif mode == "minmax":
        values = ((arr - lo) / (hi - lo)).astype(np.float32)
    else:
        values = np.clip(arr / hi, 0.0, None).astype(np.float32)
    values = np.clip(values, 0.0, 1.0)
    values.setflags(write=False)  # the dataclass is frozen; so are its values
    return NormalizedMap(
        values=values, flat=bool(flat), had_nan=nonfinite > 0,
        all_negative=bool(peak <= 0.0 and floor < 0.0), peak=peak, floor=floor,
        nonfinite_count=nonfinite, relu=bool(relu), mode=mode,
    )


def upsample(map2d: np.ndarray, height: int, width: int, interpolation: str = "bilinear") -> np.ndarray:
    """Resize a feature-resolution map (h, w) to the photo size (height, width) → float32.

    Cell centres map to the centres of the photo regions they summarise (OpenCV's half-pixel alignment: a
    one-hot 7×7 map resized to 224×224 peaks at the centre of its 32×32 block). ``"bicubic"`` overshoots,
    so its output is clipped back into the input's value range. ``"nearest"`` gives exact blocks.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    arr = np.asarray(map2d)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"map must be a non-empty 2-D array (h, w), got shape {arr.shape}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError("map contains NaN or infinite values; pass it through normalize_map first")
    for name, size in (("height", height), ("width", width)):
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(f"{name} must be a positive integer, got {size!r}")
    if arr.shape == (height, width):
        return arr.copy()
    out = cv2.resize(arr, (int(width), int(height)), interpolation=_CV2_INTERPOLATION[interpolation])
    if interpolation == "bicubic":
        out = np.clip(out, arr.min(), arr.max())
    return out.astype(np.float32, copy=False)


# A normalised map (values in [0, 1]) whose max − min is below this shows no region standing out.
FLAT_EPS = 1e-6


def is_flat_unit_map(heatmap: np.ndarray) -> bool:
    """True when a [0, 1] heatmap has no spatial information (the one flat rule for boxes and sweeps)."""
    return float(heatmap.max()) - float(heatmap.min()) <= FLAT_EPS


# Normalised maps may overshoot [0, 1] by float rounding after resizing; more than this is a caller's bug.
UNIT_TOLERANCE = 1e-6


def as_unit_heatmap(heatmap) -> np.ndarray:
    """A normalised (H, W) heatmap as float32 in [0, 1], checked in one pass over min and max (redraws
    call this on photo-sized maps): ValueError for a wrong shape, NaN/inf or values outside [0, 1]."""
    arr = np.asarray(heatmap)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"heatmap must be a non-empty 2-D array (H, W), got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"heatmap must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    lo, hi = float(arr.min()), float(arr.max())  # NaN and ±inf show up here
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("heatmap contains NaN or infinite values; normalise it with normalize_map")
    if lo < -UNIT_TOLERANCE or hi > 1 + UNIT_TOLERANCE:
        raise ValueError(f"heatmap values must lie in [0, 1], got [{lo:g}, {hi:g}]; "
                         "normalise it with normalize_map")
    return arr if 0.0 <= lo and hi <= 1.0 else np.clip(arr, 0.0, 1.0)
