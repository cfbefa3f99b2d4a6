"""Photo → square network input, for training (random crop, flip, colour) and for validation (whole photo).

Validation squashes the whole photo to the input size, exactly as :class:`core.cam.Explainer` feeds the
dashboard's photos, so a model is validated on what it will be shown. Training crops a random part
(``scale`` of the area, aspect ``ratio``) before the same squashing, mirrors half the photos and jitters
brightness, contrast and saturation. All of it is numpy/OpenCV on uint8 RGB driven by a seeded
``np.random.Generator``, so an epoch's photos are reproducible (resuming a run sees what it would have).

>>> import numpy as np
>>> flip_horizontal(np.array([[[1, 1, 1], [2, 2, 2]]], np.uint8))[0, :, 0].tolist()
[2, 1]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Augmentation", "resize_to", "random_crop_box", "flip_horizontal", "jitter_colour"]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as OpenCV's RGB → gray


def resize_to(image: np.ndarray, size: int) -> np.ndarray:
    """Whole photo → ``(size, size, 3)`` uint8; area averaging when shrinking (as the Explainer does)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"expected an RGB uint8 photo (H, W, 3), got shape {image.shape} dtype {image.dtype}")
    shrinking = image.shape[0] > size or image.shape[1] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def random_crop_box(height: int, width: int, rng: np.random.Generator, scale=(0.5, 1.0),
                    ratio=(3 / 4, 4 / 3), attempts: int = 10) -> tuple[int, int, int, int]:
    """Integer ``(x1, y1, x2, y2)`` (far edges exclusive) covering ``scale`` of the area at an aspect
    ``ratio`` (width / height) drawn log-uniformly; the whole photo when no draw fits in ``attempts``."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(attempts):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        crop_w = int(round(math.sqrt(target * aspect)))
        crop_h = int(round(math.sqrt(target / aspect)))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            x1 = int(rng.integers(0, width - crop_w + 1))
            y1 = int(rng.integers(0, height - crop_h + 1))
            return x1, y1, x1 + crop_w, y1 + crop_h
    return 0, 0, width, height


def flip_horizontal(image: np.ndarray) -> np.ndarray:
    """Mirror left ↔ right (a car seen from its other side is the same model)."""
    return np.ascontiguousarray(image[:, ::-1])


def jitter_colour(image: np.ndarray, brightness: float = 1.0, contrast: float = 1.0,
                  saturation: float = 1.0) -> np.ndarray:
    """Scale brightness, then contrast about the mean grey, then saturation about each pixel's grey.

    Factors of 1 return the photo unchanged; saturation 0 gives grey. Result rounded, clipped to uint8.
    """
    x = image.astype(np.float32) * np.float32(brightness)
    grey_mean = float((x @ _LUMA).mean())
    x = (x - grey_mean) * np.float32(contrast) + grey_mean
    grey = (x @ _LUMA)[..., None]
    x = (x - grey) * np.float32(saturation) + grey
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Augmentation:
    """Training view of a photo; ``strength`` of each colour jitter is the largest change (0.2 → ±20 %)."""

    crop_scale: tuple[float, float] = (0.5, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_probability: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    def __call__(self, image: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
        height, width = image.shape[:2]
        x1, y1, x2, y2 = random_crop_box(height, width, rng, self.crop_scale, self.crop_ratio)
        view = resize_to(np.ascontiguousarray(image[y1:y2, x1:x2]), size)
        if rng.random() < self.flip_probability:
            view = flip_horizontal(view)
        factors = [1.0 + rng.uniform(-s, s) for s in (self.brightness, self.contrast, self.saturation)]
        return jitter_colour(view, *factors)

    def describe(self) -> str:
        return (f"random crop {self.crop_scale[0]:.0%}–{self.crop_scale[1]:.0%} of the area, "
                f"horizontal flip p={self.flip_probability}, brightness/contrast/saturation "
                f"±{self.brightness:.0%}/±{self.contrast:.0%}/±{self.saturation:.0%}")
