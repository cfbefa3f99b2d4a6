"""Average drop and increase in confidence (Chattopadhay et al., WACV 2018, "Grad-CAM++"), as torchcam
0.5.0's ``ClassificationMetric`` defines them.

The map is min-max normalised at its own resolution (torchcam: (m − min) / (max − min + 1e-8)), resized
to the input (bilinear, half-pixel), and multiplies the preprocessed input: x̃ = x ⊙ E(x), the same factor
on the three channels. With Y = score(x) and O = score(x̃):

    drop     = max(0, Y − O) / (Y + 1e-7)      (average drop: mean over photos, lower is better)
    increase = 1 if Y < O else 0              (increase in confidence: mean over photos, higher is better)

Grad-CAM++ reports both in percent; these are fractions. Cost: one forward pass per photo (the masked
input), plus the shared original score.
"""

from __future__ import annotations

import numpy as np

from core.faithfulness.maps import check_inputs, check_maps, resize_maps, unit_normalise
from core.faithfulness.scoring import DEFAULT_CHUNK, ScoreFn, original_scores, score_in_chunks

__all__ = ["DROP_EPS", "confidence_change", "explanation_masked"]

DROP_EPS = 1e-7  # torchcam's


def explanation_masked(inputs, maps) -> np.ndarray:
    """x ⊙ E(x): each preprocessed input times its normalised, upsampled map (N, H, W, 3)."""
    inputs = check_inputs(inputs)
    count, height, width, _ = inputs.shape
    masks = resize_maps(unit_normalise(check_maps(maps, count)), height, width)
    return inputs * masks[..., None]


def confidence_change(inputs, maps, score: ScoreFn, original: np.ndarray | None = None,
                      chunk: int = DEFAULT_CHUNK) -> dict[str, np.ndarray]:
    """Per photo {"avg_drop": (N,) drop, "avg_increase": (N,) 0/1, "masked_scores": (N,) O}."""
    inputs = check_inputs(inputs)
    masked = explanation_masked(inputs, maps)
    original = original_scores(inputs, score, chunk, known=original)
    after = score_in_chunks(score, np.arange(len(inputs)), lambda jobs: masked[jobs], chunk)
    drop = np.maximum(original - after, 0.0) / (original + DROP_EPS)
    return {"avg_drop": drop, "avg_increase": (original < after).astype(np.float64), "masked_scores": after}
