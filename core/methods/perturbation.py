"""Methods whose channel weights come from extra forward passes: Score-CAM and Ablation-CAM.

They cost one forward pass per channel (1,280 at MobileNetV2's last block), so they run outside the
engine's single compiled call: in chunks of ``chunk`` channels through a compiled (frozen) forward
function, reporting ``progress(done, total)`` after each chunk and raising :class:`Stopped` between
chunks once ``stop`` is set. Channels whose masks are identical (all-zero activations after ReLU, common
at the last block, or channels equal up to scale and offset) are scored once: the weights are the same as
scoring each, at a fraction of the cost.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable

import numpy as np

from core.methods.registry import Method, register

__all__ = ["PerturbationContext", "Stopped", "score_cam", "ablation_cam", "interpolation_matrix"]


_ELEMENTS_PER_CHUNK = 8_000_000


class Stopped(RuntimeError):
    """A slow method was stopped by its caller before it finished."""


@dataclass(frozen=True)
class PerturbationContext:
    """One photo's inputs for a perturbation method.

    ``inputs``: the preprocessed photo (H, W, 3) float32. ``activations``: the layer's (h, w, K).
    ``score(batch)``: the target's score for a batch of preprocessed inputs (N, H, W, 3) → (N,), the same
    target and recipe the gradient methods use. ``tail_score(batch)``: the target's score from the
    layer's activations (N, h, w, K) onward, or None when the rest of the network needs more than that
    layer (Ablation-CAM then cannot run there).
    """

    inputs: np.ndarray
    activations: np.ndarray
    score: Callable[[np.ndarray], np.ndarray]
    tail_score: Callable[[np.ndarray], np.ndarray] | None
    chunk: int = 16  # masked inputs per forward pass: as fast per photo as 64 here, a quarter of the memory
    progress: Callable[[int, int], None] | None = None
    stop: threading.Event | None = None


def _chunked(values: np.ndarray, make_batch, scorer, ctx: PerturbationContext) -> np.ndarray:
    """Scores of ``make_batch(values[i:j])`` for consecutive chunks, with progress and stopping."""
    out = np.empty(len(values), np.float64)
    for start in range(0, len(values), ctx.chunk):
        if ctx.stop is not None and ctx.stop.is_set():
            raise Stopped("stopped before the last channel was scored")
        part = values[start:start + ctx.chunk]
        out[start:start + len(part)] = np.asarray(scorer(make_batch(part)), np.float64)
        if ctx.progress is not None:
            ctx.progress(start + len(part), len(values))
    return out


def interpolation_matrix(source: int, target: int) -> np.ndarray:
    """(target, source) bilinear weights with corners aligned (torch's ``UpsamplingBilinear2d``)."""
    if source == 1:
        return np.ones((target, 1), np.float32)
    position = np.arange(target) * (source - 1) / max(target - 1, 1)
    low = np.minimum(np.floor(position).astype(int), source - 2)
    frac = position - low
    matrix = np.zeros((target, source), np.float32)
    matrix[np.arange(target), low] = 1.0 - frac
    matrix[np.arange(target), low + 1] = frac
    return matrix


def _channel_masks(activations: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Channels (h, w, n) upsampled to the input (n, H, W) and min-max scaled to [0, 1] (flat → zeros)."""
    up = np.einsum("Hh,hwk,Ww->kHW", rows, activations.astype(np.float32), cols, optimize=True)
    lo = up.min(axis=(1, 2), keepdims=True)
    hi = up.max(axis=(1, 2), keepdims=True)
    return (up - lo) / (hi - lo + 1e-8)


def _distinct_masks(activations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Channels (h, w, n) → the distinct ones among their min-max scaled forms (h, w, u) and, per channel,
    the index of its form. Upsampling is linear with rows summing to 1, so a·A + b (a > 0) has the same
    mask as A: constant channels (all-zero masks, the dead ones after ReLU) and channels that differ only
    by scale and offset (e.g. one active cell) are scored once, with the same weights as scoring each."""
    height, width, count = activations.shape
    flat = activations.reshape(-1, count).T.astype(np.float32)
    low = flat.min(axis=1, keepdims=True)
    span = flat.max(axis=1, keepdims=True) - low
    scaled = np.where(span > 0, (flat - low) / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)
    unique, inverse = np.unique(scaled, axis=0, return_inverse=True)
    return unique.T.reshape(height, width, -1), inverse.reshape(-1)


def _top_variance(activations: np.ndarray, count: int | None) -> np.ndarray:
    """Channel indices, all of them or the ``count`` with the highest spatial variance."""
    k = activations.shape[-1]
    if count is None or count >= k:
        return np.arange(k)
    variance = activations.reshape(-1, k).var(axis=0)
    return np.sort(np.argsort(-variance, kind="stable")[:count])


def score_cam(ctx: PerturbationContext, max_channels: int | None = None) -> np.ndarray:
    """Score-CAM (Wang et al. 2020): α_k = softmax over k of s(X ⊙ M_k), M_k = channel k upsampled to the
    input (bilinear, corners aligned) and min-max scaled; the mask multiplies the *preprocessed* input, so
    masked-out pixels take the dataset's mean colour. s is the target's score (the class logit in the paper
    recipe), as pytorch-grad-cam computes it. With ``max_channels`` only the N highest-variance channels
    are scored (Faster-Score-CAM); the others get weight 0.
    """
    height, width = ctx.inputs.shape[:2]
    acts = ctx.activations.astype(np.float32)
    channels = _top_variance(acts, max_channels)
    rows = interpolation_matrix(acts.shape[0], height)
    cols = interpolation_matrix(acts.shape[1], width)
    unique, inverse = _distinct_masks(acts[..., channels])

    def masked(idx: np.ndarray) -> np.ndarray:
        return ctx.inputs[None] * _channel_masks(unique[..., idx], rows, cols)[..., None]

    scores = _chunked(np.arange(unique.shape[-1]), masked, ctx.score, ctx)[inverse]
    weights = np.zeros(acts.shape[-1])
    shifted = np.exp(scores - scores.max())
    weights[channels] = shifted / shifted.sum()
    return weights


def ablation_cam(ctx: PerturbationContext) -> np.ndarray:
    """Ablation-CAM (Desai & Ramaswamy 2020): α_k = (s − s_k) / s, s_k the target's score with channel k
    of the layer set to zero. Only what follows the layer is re-run (``tail_score``), so at the last block
    it costs little. pytorch-grad-cam zeroes a channel only when the layer's minimum is exactly 0 (else it
    writes a large negative value that compounds along its batch); this zeroes it, as the paper does.
    """
    if ctx.tail_score is None:
        raise ValueError("Ablation-CAM needs a layer whose output alone decides the prediction (a block "
                         "output such as out_relu or conv5_block3_out); pick such a layer or use Score-CAM")
    acts = ctx.activations.astype(np.float32)
    base = float(np.asarray(ctx.tail_score(acts[None]))[0])
    k = acts.shape[-1]

    def ablated(idx: np.ndarray) -> np.ndarray:
        keep = np.ones((len(idx), 1, 1, k), np.float32)
        keep[np.arange(len(idx)), 0, 0, idx] = 0.0
        return acts[None] * keep

    # a chunk holds that many copies of the layer: keep it near 32 MB whatever the layer's size
    sized = replace(ctx, chunk=max(1, min(ctx.chunk, _ELEMENTS_PER_CHUNK // acts.size)))
    scores = _chunked(np.arange(k), ablated, ctx.tail_score, sized)
    return (base - scores) / (base if base != 0 else 1e-7)


register(Method("scorecam", "Score-CAM", "perturbation", score_cam, "Wang et al., CVPR-W 2020",
                needs_gradients=False, cost="channels", doc=score_cam.__doc__))
FAST_SCORECAM_CHANNELS = 64
register(Method("fastscorecam", f"Faster-Score-CAM ({FAST_SCORECAM_CHANNELS} channels)", "perturbation",
                partial(score_cam, max_channels=FAST_SCORECAM_CHANNELS),
                "Wang et al. 2020, channel selection as tf-keras-vis' Faster-Score-CAM", needs_gradients=False,
                cost="channels", doc="Score-CAM on the 64 channels of highest spatial variance only."))
register(Method("ablationcam", "Ablation-CAM", "perturbation", ablation_cam, "Desai & Ramaswamy, WACV 2020",
                needs_gradients=False, cost="channels", doc=ablation_cam.__doc__))
