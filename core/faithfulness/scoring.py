"""The score callable every metric calls, batched and chunked, and its adapter to the project's engine.

A score function maps a batch of preprocessed inputs (M, H, W, 3) and, for each row, the index of the
photo it was made from (M,) to the target's score (M,). The photo index lets one forward pass mix the
perturbed copies of several photos, each scored for its own target class(es). Metrics build perturbed
inputs ``chunk`` at a time, so memory stays bounded (32 inputs of 224×224×3 float32: 19 MB).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["DEFAULT_CHUNK", "ScoreFn", "explainer_score_fn", "model_inputs", "original_scores", "score_in_chunks"]

ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
DEFAULT_CHUNK = 32


def _checked(scores, rows: int) -> np.ndarray:
    arr = np.asarray(scores, np.float64).reshape(-1)
    if arr.shape != (rows,):
        raise ValueError(f"the score function returned {np.shape(scores)} for {rows} inputs; it must return "
                         "one score per input, shape (M,)")
    return arr


def score_in_chunks(score: ScoreFn, photos: np.ndarray, build: Callable[[np.ndarray], np.ndarray],
                    chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Scores of ``build(job indices)`` for all jobs, ``chunk`` inputs per call of ``score``.

    ``photos`` (M,): the photo each job perturbs; ``build(indices)`` returns those jobs' inputs.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of inputs per forward pass, got {chunk}")
    photos = np.asarray(photos, np.int64)
    out = np.empty(len(photos), np.float64)
    for start in range(0, len(photos), chunk):
        jobs = np.arange(start, min(start + chunk, len(photos)))
        out[jobs] = _checked(score(build(jobs), photos[jobs]), len(jobs))
    return out


def original_scores(inputs: np.ndarray, score: ScoreFn, chunk: int = DEFAULT_CHUNK,
                    known: np.ndarray | None = None) -> np.ndarray:
    """(N,) the target's score on the unperturbed inputs: one forward pass per photo, shared by all
    metrics; ``known`` scores are checked and returned instead."""
    if known is not None:
        return _checked(known, len(inputs))
    return score_in_chunks(score, np.arange(len(inputs)), lambda jobs: inputs[jobs], chunk)


def explainer_score_fn(explainer, class_weights, variant: str = "original") -> ScoreFn:
    """Score function from the project's engine: ``Explainer.score_function(variant)`` (compiled, frozen)
    with each photo's class weights π (N, C), e.g. ``RawExplanation.class_weights`` stacked.

    ``variant="original"`` scores Σ_c π_c softmax(z)_c, the probability of the target (one class: its
    softmax probability), which is what RISE, Grad-CAM++'s average drop and the reference libraries'
    parity runs use; ``"paper"`` scores the logit Σ_c π_c z_c instead.
    """
    weights = np.asarray(class_weights, np.float32)
    if weights.ndim != 2 or weights.shape[1] != explainer.bundle.num_classes:
        raise ValueError(f"class_weights must be (photos, {explainer.bundle.num_classes}), "
                         f"got {weights.shape}")
    compiled = explainer.score_function(variant)

    def score(inputs: np.ndarray, photos: np.ndarray) -> np.ndarray:
        return compiled(np.asarray(inputs, np.float32), weights[np.asarray(photos, np.int64)])

    return score


def model_inputs(explainer, photos) -> np.ndarray:
    """(N, H, W, 3) float32: RGB uint8 photos of any size resized and preprocessed exactly as the engine
    does before explaining them, i.e. the tensors the metrics perturb."""
    from core.cam import _resize_batch
    from core.preprocessing import preprocess

    batch = _resize_batch(list(photos), explainer.bundle.input_size)
    return preprocess(batch, explainer.bundle.preprocessing).numpy()
