"""Seeded Gaussian draws for the methods that average over noise (SS-CAM, Smooth Grad-CAM++).

Each draw is addressed by (seed, sample, channel …), not by a running generator, so a map does not depend
on chunk sizes or on which channels were skipped, the dashboard shows the same map for the same photo
every time, and a reference implementation can be fed the very same noise (``tests/reference`` loads this
file by path: it imports numpy only).
"""

from __future__ import annotations

import numpy as np

__all__ = ["standard_normal"]


def standard_normal(shape, seed: int, *index: int) -> np.ndarray:
    """float32 N(0, 1) of ``shape``, the same for the same (seed, *index) on every machine (PCG64)."""
    return np.random.default_rng([int(seed), *(int(i) for i in index)]).standard_normal(shape, dtype=np.float32)
