"""Raw feature-resolution maps → heatmaps on the evaluation grid, and ground truth scaled onto it.

The dashboard upsamples a map to the photo's own size; evaluation upsamples it to a fixed square grid
(``core.metrics.EVAL_GRID``) and scales the truth box the same way, as the WSOL standard does: IoU is
unchanged by the scaling, and every photo costs the same to sweep.
"""

from __future__ import annotations

import numpy as np

from core.explanation import normalization_for
from core.heatmaps import normalize_map, upsample
from core.metrics import EVAL_GRID

__all__ = ["grid_heatmap", "to_grid", "from_grid"]


def grid_heatmap(raw_map, method: str, variant: str = "paper", grid: int = EVAL_GRID,
                 interpolation: str = "bilinear") -> np.ndarray:
    """The paper normalisation of ``method`` (CAM min-max, Grad-CAM ReLU + max), resized to grid×grid."""
    relu, mode = normalization_for(method, variant)
    small = normalize_map(np.asarray(raw_map), relu=relu, mode=mode)
    if small.flat:
        return np.zeros((grid, grid), np.float32)
    return np.clip(upsample(small.values, grid, grid, interpolation), 0.0, 1.0)


def _scale(height: int, width: int, grid: int) -> np.ndarray:
    if height <= 0 or width <= 0:
        raise ValueError(f"photo size must be positive, got {height}×{width}")
    return np.array([width, height, width, height], dtype=np.float64) / grid


def to_grid(box, height: int, width: int, grid: int = EVAL_GRID) -> np.ndarray:
    """A photo-pixel box → the same box on the grid×grid evaluation grid."""
    return np.asarray(box, dtype=np.float64) / _scale(height, width, grid)


def from_grid(box, height: int, width: int, grid: int = EVAL_GRID) -> np.ndarray:
    """A box on the evaluation grid → photo pixels."""
    return np.asarray(box, dtype=np.float64) * _scale(height, width, grid)
