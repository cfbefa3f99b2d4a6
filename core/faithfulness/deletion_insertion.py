"""Deletion and insertion curves (Petsiuk, Das & Saenko, BMVC 2018, "RISE"), as torchcam 0.5.0's
``DeletionInsertionMetric`` defines them.

Pixels are ranked by the map, most salient first (ties in row-major order), after torchcam's min-max
normalisation and the bilinear resize to the input: float32 rounding there can make values tie, and
ranking exactly what torchcam ranks keeps ties, and so the curves, identical. With P pixels and ``steps``
intervals, the curve is sampled after perturbing k ∈ {0, s, 2s, …} ∪ {P} pixels, s = ⌈P / steps⌉
(224² pixels and 20 steps: 21 points). The mask is shared by the three channels.

* Deletion: the k top pixels take the baseline's values; the curve starts at the photo's score and ends
  at the baseline's. A faithful map makes the score fall fast: lower AUC is better.
* Insertion: only the k top pixels take the photo's values, the rest stay baseline; higher AUC is better.

AUC = trapezoidal area under score(k) against the perturbed fraction k / P, so it lies in the score's
range. RISE deletes to a zero baseline and inserts into a blurred copy; both baselines work for both
curves. Zero is zero of the *preprocessed* input (the mean colour for torch preprocessing), as in torchcam.
Cost per photo: len(points) − 1 forward passes per curve (the unperturbed point is the shared original
score); deletion and insertion on the same baseline share the all-baseline input: 2·(points − 2) + 1.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.faithfulness.maps import check_inputs, check_maps, resize_maps, saliency_ranks, unit_normalise
from core.faithfulness.scoring import DEFAULT_CHUNK, ScoreFn, original_scores, score_in_chunks

__all__ = [
    "BASELINES",
    "BLUR_KERNEL",
    "BLUR_SIGMA",
    "DEFAULT_STEPS",
    "area_under_curve",
    "blurred_baseline",
    "deletion_insertion_curves",
    "perturbed_counts",
    "zero_baseline",
]

DEFAULT_STEPS = 20  # torchcam's default
BLUR_KERNEL = 11  # RISE's insertion substrate: an 11×11 Gaussian, σ = 5
BLUR_SIGMA = 5.0


def perturbed_counts(pixels: int, steps: int = DEFAULT_STEPS) -> np.ndarray:
    """Pixels perturbed at each point of the curve: 0, s, 2s, … below ``pixels``, then ``pixels``.

    >>> perturbed_counts(10, 4).tolist()
    [0, 3, 6, 9, 10]
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    step = -(-pixels // steps)
    return np.array([*range(0, pixels, step), pixels], np.int64)


def zero_baseline(inputs: np.ndarray) -> np.ndarray:
    """All zeros in the preprocessed space (the dataset's mean colour under torch preprocessing)."""
    return np.zeros_like(check_inputs(inputs))


def blurred_baseline(inputs: np.ndarray, kernel: int = BLUR_KERNEL, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """Each input Gaussian-blurred (``kernel``×``kernel``, σ = ``sigma``; RISE's 11 and 5) per channel.
    Borders are reflected (OpenCV's default), where RISE's convolution pads with zeros."""
    arr = check_inputs(inputs)
    return np.stack([cv2.GaussianBlur(image, (kernel, kernel), sigma) for image in arr])


BASELINES = {"zero": zero_baseline, "blur": blurred_baseline}


def _check_baseline(baseline, inputs: np.ndarray) -> np.ndarray:
    arr = np.asarray(baseline, np.float32)
    if arr.shape != inputs.shape:
        raise ValueError(f"baseline has shape {arr.shape}; it must match the inputs {inputs.shape}")
    return arr


def deletion_insertion_curves(inputs, maps, score: ScoreFn, baseline=None, curves=("deletion", "insertion"),
                              steps: int = DEFAULT_STEPS, original: np.ndarray | None = None,
                              chunk: int = DEFAULT_CHUNK) -> dict[str, np.ndarray]:
    """Score curves of the requested ``curves`` → {"fractions": (T,), "deletion": (N, T), "insertion": …}.

    ``baseline``: (N, H, W, 3) array (default: :func:`zero_baseline`); ``original``: (N,) scores of the
    unperturbed inputs when already known (saves one forward pass per photo).
    """
    inputs = check_inputs(inputs)
    count, height, width, _ = inputs.shape
    maps = resize_maps(unit_normalise(check_maps(maps, count)), height, width)
    unknown = set(curves) - {"deletion", "insertion"}
    if unknown or not curves:
        raise ValueError(f"curves must be a subset of ('deletion', 'insertion'), got {tuple(curves)}")
    base = zero_baseline(inputs) if baseline is None else _check_baseline(baseline, inputs)
    pixels = height * width
    counts = perturbed_counts(pixels, steps)
    original = original_scores(inputs, score, chunk, known=original)
    ranks = saliency_ranks(maps).reshape(count, height, width)
    # jobs: (photo, curve, point); curve 2 is the all-baseline input, deletion's last and insertion's first
    names = [name for name in ("deletion", "insertion") if name in curves]
    interior = [(names.index(n), p) for p in range(1, len(counts) - 1) for n in names]
    per_photo = [(2, len(counts) - 1), *interior]
    jobs = np.array([(photo, curve, point) for photo in range(count) for curve, point in per_photo], np.int64)

    inserting = names.index("insertion") if "insertion" in names else -1

    def build(indices: np.ndarray) -> np.ndarray:
        photo, curve, point = jobs[indices].T
        top = ranks[photo] < counts[point][:, None, None]
        keep_photo = np.where((curve == inserting)[:, None, None], top, ~top)
        return np.where(keep_photo[..., None], inputs[photo], base[photo])

    scores = score_in_chunks(score, jobs[:, 0], build, chunk)
    out = {"fractions": counts / pixels}
    for name in names:
        curve = np.empty((count, len(counts)))
        ends = (0, -1) if name == "deletion" else (-1, 0)
        curve[:, ends[0]] = original
        mine = jobs[:, 1] == names.index(name)
        curve[jobs[mine, 0], jobs[mine, 2]] = scores[mine]
        full = jobs[:, 1] == 2
        curve[jobs[full, 0], ends[1]] = scores[full]
        out[name] = curve
    return out


def area_under_curve(fractions: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """(N,) trapezoidal area under each curve (N, T) against ``fractions`` (T,) in [0, 1]."""
    return np.trapezoid(np.asarray(curves, np.float64), np.asarray(fractions, np.float64), axis=-1)
