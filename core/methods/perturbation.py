"""Methods whose channel weights come from extra passes: Score-CAM, SS-CAM, IS-CAM, Ablation-CAM, and
Smooth Grad-CAM++ (forward and backward passes of noisy copies of the photo).

Score-CAM and Ablation-CAM cost one forward pass per channel (1,280 at MobileNetV2's last block), SS-CAM
and IS-CAM N of them per channel, so they run outside the engine's single compiled call: in chunks of
``chunk`` inputs through a compiled (frozen) forward function, reporting ``progress(done, total)`` after
each chunk and raising :class:`Stopped` between chunks once ``stop`` is set. Channels whose masks are
identical (all-zero activations after ReLU, common at the last block) are scored once: the weights are the
same as scoring each, at a fraction of the cost.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable

import numpy as np

from core.methods.noise import standard_normal
from core.methods.registry import Method, register

__all__ = ["PerturbationContext", "Stopped", "score_cam", "ss_cam", "is_cam", "ablation_cam",
           "interpolation_matrix", "integration_coefficients"]


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
    layer (Ablation-CAM then cannot run there). ``gradients(batch)``: (activations, ∂score/∂activations)
    at the layer, each (N, h, w, K), for a batch of preprocessed inputs (Smooth Grad-CAM++); None when the
    caller has none. ``seed``: where the noise of SS-CAM and Smooth Grad-CAM++ starts
    (``core.methods.noise``), so the same photo gives the same map.
    """

    inputs: np.ndarray
    activations: np.ndarray
    score: Callable[[np.ndarray], np.ndarray]
    tail_score: Callable[[np.ndarray], np.ndarray] | None
    chunk: int = 16  # masked inputs per forward pass: as fast per photo as 64 here, a quarter of the memory
    progress: Callable[[int, int], None] | None = None
    stop: threading.Event | None = None
    gradients: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    seed: int = 0


def _chunks(values: np.ndarray, ctx: PerturbationContext):
    """Consecutive chunks of ``values`` as (start, part), raising :class:`Stopped` before each once
    ``stop`` is set and reporting progress after each."""
    for start in range(0, len(values), ctx.chunk):
        if ctx.stop is not None and ctx.stop.is_set():
            raise Stopped("stopped before the last input was scored")
        part = values[start:start + ctx.chunk]
        yield start, part
        if ctx.progress is not None:
            ctx.progress(start + len(part), len(values))


def _chunked(values: np.ndarray, make_batch, scorer, ctx: PerturbationContext) -> np.ndarray:
    """Scores of ``make_batch(values[i:j])`` for consecutive chunks, with progress and stopping."""
    out = np.empty(len(values), np.float64)
    for start, part in _chunks(values, ctx):
        out[start:start + len(part)] = np.asarray(scorer(make_batch(part)), np.float64)
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


def _top_variance(activations: np.ndarray, count: int | None) -> np.ndarray:
    """Channel indices, all of them or the ``count`` with the highest spatial variance."""
    k = activations.shape[-1]
    if count is None or count >= k:
        return np.arange(k)
    variance = activations.reshape(-1, k).var(axis=0)
    return np.sort(np.argsort(-variance, kind="stable")[:count])


@dataclass(frozen=True)
class _ChannelMasks:
    """Score-CAM's masks for one photo, and which channels need scoring: a constant channel (typically a
    dead one after ReLU) has the all-zero mask, so the constant ones share one input, scored once."""

    acts: np.ndarray  # (h, w, K)
    channels: np.ndarray  # the channels weighted (all, or the highest-variance ones)
    constant: np.ndarray  # bool per entry of ``channels``
    rows: np.ndarray
    cols: np.ndarray

    @classmethod
    def of(cls, ctx: PerturbationContext, max_channels: int | None = None) -> "_ChannelMasks":
        height, width = ctx.inputs.shape[:2]
        acts = ctx.activations.astype(np.float32)
        channels = _top_variance(acts, max_channels)
        flat = acts.reshape(-1, acts.shape[-1])[:, channels]
        return cls(acts, channels, flat.max(axis=0) == flat.min(axis=0),
                   interpolation_matrix(acts.shape[0], height), interpolation_matrix(acts.shape[1], width))

    @property
    def todo(self) -> np.ndarray:
        """The channels to score: every varying one, then one representative of the constant ones."""
        return np.concatenate([self.channels[~self.constant], self.channels[self.constant][:1]])

    def masks(self, idx: np.ndarray) -> np.ndarray:
        return _channel_masks(self.acts[..., idx], self.rows, self.cols)

    def weights(self, scored: np.ndarray) -> np.ndarray:
        """(K,) softmax over the weighted channels of their scores (``scored`` in the order of ``todo``)."""
        scores = np.empty(len(self.channels))
        varying = int((~self.constant).sum())
        scores[~self.constant] = scored[:varying]
        if self.constant.any():
            scores[self.constant] = scored[-1]
        weights = np.zeros(self.acts.shape[-1])
        shifted = np.exp(scores - scores.max())
        weights[self.channels] = shifted / shifted.sum()
        return weights


def score_cam(ctx: PerturbationContext, max_channels: int | None = None) -> np.ndarray:
    """Score-CAM (Wang et al. 2020): α_k = softmax over k of s(X ⊙ M_k), M_k = channel k upsampled to the
    input (bilinear, corners aligned) and min-max scaled; the mask multiplies the *preprocessed* input, so
    masked-out pixels take the dataset's mean colour. s is the target's score (the class logit in the paper
    recipe), as pytorch-grad-cam computes it. With ``max_channels`` only the N highest-variance channels
    are scored (Faster-Score-CAM); the others get weight 0.
    """
    plan = _ChannelMasks.of(ctx, max_channels)

    def masked(idx: np.ndarray) -> np.ndarray:
        return ctx.inputs[None] * plan.masks(idx)[..., None]

    return plan.weights(_chunked(plan.todo, masked, ctx.score, ctx))


def _sampled(ctx: PerturbationContext, plan: _ChannelMasks, samples: int, make_batch) -> np.ndarray:
    """Mean over ``samples`` of the scores of ``make_batch(sample, channels)``, per channel of ``plan.todo``:
    (sample, channel) pairs run sample after sample in chunks, with one progress count over all of them."""
    todo = plan.todo
    pairs = np.stack(np.meshgrid(np.arange(samples), todo, indexing="ij"), -1).reshape(-1, 2)

    def batch(part: np.ndarray) -> np.ndarray:
        return make_batch(part[:, 0], part[:, 1])

    return _chunked(pairs, batch, ctx.score, ctx).reshape(samples, len(todo)).mean(axis=0)


SSCAM_SAMPLES = 35  # torchcam 0.5.0's defaults, the paper's N and σ
SSCAM_STD = 2.0
ISCAM_SAMPLES = 10


def ss_cam(ctx: PerturbationContext, samples: int = SSCAM_SAMPLES, std: float = SSCAM_STD) -> np.ndarray:
    """SS-CAM (Wang et al. 2020, "SS-CAM: Smoothed Score-CAM"): Score-CAM with each score averaged over
    ``samples`` noisy masks, α_k = softmax_k (1/N) Σ_i s(X ⊙ (M_k + δ_ik)), δ_ik ~ N(0, σ²) drawn per
    pixel of the input-size mask (shared by the three colours) and not clipped, as torchcam 0.5.0 (N = 35,
    σ = 2 by default there and here; the registry's entry uses N = 4, ``SSCAM_MENU_SAMPLES``).

    Costs N × Score-CAM. The noise is ``std · standard_normal(seed, i, k)`` (``core.methods.noise``);
    with σ = 0 it is Score-CAM exactly. Constant channels share one mask, hence one noise draw per sample:
    their scores are identically distributed, and scoring each separately would cost most of the time at
    the last block (where most dead channels are) for no difference in expectation.
    """
    plan = _ChannelMasks.of(ctx)
    shape = ctx.inputs.shape[:2]

    def noisy(sample: np.ndarray, idx: np.ndarray) -> np.ndarray:
        masks = plan.masks(idx)
        if std:
            masks = masks + std * np.stack([standard_normal(shape, ctx.seed, i, k) for i, k in zip(sample, idx)])
        return ctx.inputs[None] * masks[..., None]

    return plan.weights(_sampled(ctx, plan, samples, noisy))


def integration_coefficients(samples: int) -> np.ndarray:
    """IS-CAM's input scales c_i = Σ_{j ≤ i} j / N (i = 1 … N): they accumulate, as torchcam 0.5.0 computes
    and documents them, so they reach (N + 1) / 2 rather than 1."""
    steps = np.arange(1, samples + 1) / samples
    return np.cumsum(steps)


def is_cam(ctx: PerturbationContext, samples: int = ISCAM_SAMPLES) -> np.ndarray:
    """IS-CAM (Naidu et al. 2020, "IS-CAM: Integrated Score-CAM"): Score-CAM with each score averaged along a
    path of scaled masked inputs, α_k = softmax_k (1/N) Σ_i s(c_i · X ⊙ M_k), with torchcam 0.5.0's
    coefficients (:func:`integration_coefficients`, N = 10 there and here; the registry's entry uses N = 4,
    ``ISCAM_MENU_SAMPLES``). Deterministic; costs N × Score-CAM."""
    plan = _ChannelMasks.of(ctx)
    scales = integration_coefficients(samples).astype(np.float32)

    def scaled(sample: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return ctx.inputs[None] * (plan.masks(idx) * scales[sample][:, None, None])[..., None]

    return plan.weights(_sampled(ctx, plan, samples, scaled))


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
# 32 channels: 33 forward passes, about 0.33 s a photo here (64 took 0.62–0.68 s, over the 0.5 s a fast
# setting may cost); its maps correlate 0.969 on average with all-channel Score-CAM's on six shared photos,
# against 0.981 for 64 and 0.951 for 16.
FAST_SCORECAM_CHANNELS = 32
register(Method("fastscorecam", f"Faster-Score-CAM ({FAST_SCORECAM_CHANNELS} channels)", "perturbation",
                partial(score_cam, max_channels=FAST_SCORECAM_CHANNELS),
                "Wang et al. 2020, channel selection as tf-keras-vis' Faster-Score-CAM", needs_gradients=False,
                cost="channels", doc=f"Score-CAM on the {FAST_SCORECAM_CHANNELS} channels of highest spatial variance only."))
# The registry's sample counts, what a dashboard user waits for: N = 4, so each costs 4 × Score-CAM (about
# 4 × 50 s a photo at MobileNetV2's last block on 2 busy cores). torchcam's N = 35 (SS-CAM) and 10 (IS-CAM)
# are the functions' defaults, for batch runs that can wait.
SSCAM_MENU_SAMPLES = 4
ISCAM_MENU_SAMPLES = 4
register(Method("sscam", "SS-CAM", "perturbation", partial(ss_cam, samples=SSCAM_MENU_SAMPLES),
                "Wang et al., 2020 (SS-CAM: Smoothed Score-CAM)", needs_gradients=False, cost="channels × samples",
                samples=SSCAM_MENU_SAMPLES, doc=ss_cam.__doc__))
register(Method("iscam", "IS-CAM", "perturbation", partial(is_cam, samples=ISCAM_MENU_SAMPLES),
                "Naidu et al., 2020 (IS-CAM: Integrated Score-CAM)", needs_gradients=False,
                cost="channels × samples", samples=ISCAM_MENU_SAMPLES, doc=is_cam.__doc__))
register(Method("ablationcam", "Ablation-CAM", "perturbation", ablation_cam, "Desai & Ramaswamy, WACV 2020",
                needs_gradients=False, cost="channels", doc=ablation_cam.__doc__))
