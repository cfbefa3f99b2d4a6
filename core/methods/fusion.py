"""LayerCAM's fusion of several layers (Jiang et al. 2021): shallow maps are sharp but noisy, deep ones
coarse but reliable; each normalised map is scaled by tanh(γ·M) (γ = 2, as the paper and torchcam), all
are resized to the finest grid and combined by element-wise maximum."""

from __future__ import annotations

import numpy as np

from core.heatmaps import normalize_map, upsample

__all__ = ["fuse_layer_maps", "FUSION_GAMMA"]

FUSION_GAMMA = 2.0


def fuse_layer_maps(maps: list[np.ndarray], relu: bool = True, mode: str = "max",
                    gamma: float = FUSION_GAMMA) -> np.ndarray:
    """Raw maps of one photo at several layers (any grids) → one fused map on the finest grid, in [0, 1]."""
    if not maps:
        raise ValueError("fusion needs at least one layer's map")
    height = max(m.shape[0] for m in maps)
    width = max(m.shape[1] for m in maps)
    fused = np.zeros((height, width), np.float32)
    for raw in maps:
        values = np.tanh(gamma * normalize_map(raw, relu=relu, mode=mode).values)
        fused = np.maximum(fused, upsample(values, height, width))
    return fused
