"""Shared input handling for the faithfulness metrics: validation, torch-style bilinear resizing, the
min-max normalisation torchcam applies, and the saliency ranking of pixels.

Conventions (every metric in this package):
    ``inputs``: float32 (N, H, W, 3), the *preprocessed* model inputs (what the network sees). Metrics
    perturb this tensor, as the reference libraries do (torchcam and pytorch-grad-cam perturb the
    normalised tensor), so "zero" means the preprocessing's zero: the dataset's mean colour for
    torch/caffe preprocessing, mid-grey for the "tf" scheme.
    ``maps``: (N, h, w) real numbers, larger = more salient, at any resolution; resized to (H, W) here
    with bilinear half-pixel interpolation (torch's ``interpolate(mode="bilinear", align_corners=False)``,
    OpenCV's ``INTER_LINEAR`` when enlarging).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NORMALISE_EPS",
    "check_inputs",
    "check_maps",
    "half_pixel_matrix",
    "resize_maps",
    "saliency_ranks",
    "unit_normalise",
]

NORMALISE_EPS = 1e-8
"""torchcam's ``_normalize``: (m − min) / (max − min + 1e-8)."""


def check_inputs(inputs) -> np.ndarray:
    """(N, H, W, 3) finite float32, or ValueError saying what was passed."""
    arr = np.asarray(inputs)
    if arr.ndim != 4 or arr.shape[-1] != 3 or 0 in arr.shape:
        raise ValueError(f"inputs must be a batch of preprocessed images (N, H, W, 3), got shape {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError("inputs contain NaN or infinite values")
    return arr


def check_maps(maps, count: int | None = None) -> np.ndarray:
    """(N, h, w) finite float32 maps (one per photo, ``count`` of them when given), or ValueError."""
    arr = np.asarray(maps)
    if arr.ndim != 3 or 0 in arr.shape:
        raise ValueError(f"maps must be one 2-D map per photo (N, h, w), got shape {arr.shape}")
    if count is not None and len(arr) != count:
        raise ValueError(f"{len(arr)} maps for {count} photos: pass one map per photo")
    arr = arr.astype(np.float32, copy=False)
    bad = ~np.isfinite(arr).reshape(len(arr), -1).all(axis=1)
    if bad.any():
        raise ValueError(f"map(s) {np.flatnonzero(bad).tolist()} contain NaN or infinite values; "
                         "replace them first (core.heatmaps.normalize_map does)")
    return arr


def half_pixel_matrix(source: int, target: int) -> np.ndarray:
    """(target, source) bilinear weights with half-pixel centres, borders clamped (torch's
    ``align_corners=False``): output i samples the input at (i + ½)·source/target − ½."""
    position = np.maximum((np.arange(target) + 0.5) * (source / target) - 0.5, 0.0)
    low = np.minimum(np.floor(position).astype(int), source - 1)
    high = np.minimum(low + 1, source - 1)
    frac = position - low
    matrix = np.zeros((target, source), np.float64)
    np.add.at(matrix, (np.arange(target), low), 1.0 - frac)
    np.add.at(matrix, (np.arange(target), high), frac)
    return matrix


def resize_maps(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, h, w) → (N, height, width) float32 by separable half-pixel bilinear interpolation; maps already
    at that size are returned unchanged (as torch's same-size interpolation does)."""
    if maps.shape[1:] == (height, width):
        return maps.astype(np.float32, copy=False)
    rows = half_pixel_matrix(maps.shape[1], height)
    cols = half_pixel_matrix(maps.shape[2], width)
    return np.einsum("Hh,nhw,Ww->nHW", rows, maps.astype(np.float64), cols, optimize=True).astype(np.float32)


def unit_normalise(maps: np.ndarray) -> np.ndarray:
    """Each map min-max scaled to [0, 1) as torchcam does: (m − min) / (max − min + 1e-8); a flat map → 0."""
    low = maps.min(axis=(1, 2), keepdims=True)
    shifted = maps - low
    return shifted / (shifted.max(axis=(1, 2), keepdims=True) + np.float32(NORMALISE_EPS))


def saliency_ranks(maps: np.ndarray) -> np.ndarray:
    """(N, h·w) rank of each pixel, 0 = most salient; ties keep row-major order (a stable sort, as
    torchcam's ``argsort(descending=True, stable=True)``)."""
    flat = maps.reshape(len(maps), -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None].repeat(len(flat), 0), axis=1)
    return ranks
