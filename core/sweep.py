"""Boxes at every τ the slider can reach, so a browser can redraw them the instant the slider moves.

A τ move through the server costs a whole page run and the images' trip (~150 ms in Chromium here, a
trivial page alone ~80 ms); drawing precomputed boxes in the page costs a frame. The sweep is made on the
map upsampled to a drawing resolution (longer side ``SWEEP_MAX_SIDE``), the same function of the raw map
as the photo-sized one, only sampled more coarsely: its boxes, scaled to the photo, lie within a photo
pixel or two of the exact ones at that τ, which is less than a displayed pixel in a column of the page.
The exact boxes (``core.explanation.localize`` at the photo's size) replace them when the server's own
redraw lands; numbers shown as text (IoU, box coordinates) always come from those.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.cam import RawExplanation
from core.explanation import (BoxSettings, DisplaySettings, Localized, RedrawCache, localize, photo_heatmap,
                              truth_key)

SWEEP_STEP = 0.01  # the τ slider's step
SWEEP_MAX_SIDE = 256


@dataclass(frozen=True)
class SweptBoxes:
    """One τ of a sweep: the boxes as drawn (photo coordinates) and the IoU label's value."""

    threshold: float
    localized: Localized
    scale: tuple[float, float]  # photo pixels per sweep pixel, (x, y)

    def corners(self) -> list[np.ndarray]:
        """Each box's (4, 2) corners in photo coordinates (rotated boxes keep their angle)."""
        return [b.corners * self.scale for b in self.localized.boxes]


def sweep_thresholds(step: float = SWEEP_STEP) -> np.ndarray:
    """0, step, …, 1 rounded as the slider rounds them."""
    return np.round(np.arange(0.0, 1.0 + step / 2, step), 2)


def threshold_sweep(raw: RawExplanation, method: str, layer: str, photo_shape: tuple[int, int],
                    settings: BoxSettings, interpolation: str = "bilinear", ground_truth=None,
                    max_side: int = SWEEP_MAX_SIDE) -> list[SweptBoxes]:
    """``settings``' boxes (its component and shape; no correction: one τ for every method has none) at
    every τ of :func:`sweep_thresholds`, found on the map at drawing resolution."""
    height, width = photo_shape
    factor = min(1.0, max_side / max(height, width))
    small_h, small_w = max(1, round(height * factor)), max(1, round(width * factor))
    heatmap = photo_heatmap(raw, method, layer, small_h, small_w, interpolation)
    scale = (width / small_w, height / small_h)
    truth = None
    if ground_truth is not None:  # IoU is unchanged when both boxes are scaled alike, per axis
        truth = np.asarray(ground_truth, float).ravel() / np.array([scale[0], scale[1], scale[0], scale[1]])
    return [SweptBoxes(float(tau), localize(heatmap, BoxSettings(float(tau), settings.component, settings.shape),
                                            truth), scale)
            for tau in sweep_thresholds()]


def view_sweep(photo: np.ndarray, raw: RawExplanation, method: str, layer: str, display: DisplaySettings,
               ground_truth=None, cache: RedrawCache | None = None) -> list[SweptBoxes] | None:
    """The sweep of one map of ``raw`` with the slider's box settings (``display.box``); with a ``cache``,
    τ moves reuse it (only the photo, the maps, the box mode or the upsampling make a new one).

    None for rotated boxes: a minimum-area rectangle's angle flips between near-equal fits on the blocky
    regions of an upsampled map, so at drawing resolution it can differ by tens of pixels from the exact
    one; those boxes wait for the server."""
    if display.box.shape == "rotated":
        return None
    truth = truth_key(ground_truth)

    def make():
        return threshold_sweep(raw, method, layer, photo.shape[:2], display.box, display.interpolation, truth)

    key = ("sweep", method, layer, display.interpolation, display.box.component, display.box.shape, truth)
    return make() if cache is None else cache.get(photo, raw, key, make)
