"""Smooth Grad-CAM++ (Omeiza et al. 2019): Grad-CAM++ with its derivatives averaged over noisy copies of
the photo. It needs a forward and a backward pass per copy, so it runs as the perturbation methods do
(chunks of ``chunk`` copies, progress, stop), through the engine's compiled gradient function
(``PerturbationContext.gradients``), and weights the clean photo's activations.
"""

from __future__ import annotations

import numpy as np

from core.methods.noise import standard_normal
from core.methods.perturbation import PerturbationContext, _chunks
from core.methods.registry import Method, register

__all__ = ["smooth_gradcam_plus_plus", "noisy_copies", "SMOOTH_SAMPLES", "SMOOTH_NOISE"]

SMOOTH_SAMPLES = 4  # torchcam 0.5.0's default
# SmoothGrad's noise level σ / (x_max − x_min) of the preprocessed photo; 0.07 is torchcam's σ = 0.3 on
# torchvision-normalised photos (whose range is about 4.4), and it carries over to any preprocessing.
SMOOTH_NOISE = 0.07


def noisy_copies(inputs: np.ndarray, samples, noise: float, seed: int) -> np.ndarray:
    """(n, H, W, 3): ``inputs`` + σ · standard_normal(seed, i) for each i of ``samples``,
    σ = ``noise`` · (max − min) of ``inputs``."""
    sigma = noise * float(inputs.max() - inputs.min())
    return np.stack([inputs + sigma * standard_normal(inputs.shape, seed, i) for i in samples]).astype(np.float32)


def smooth_gradcam_plus_plus(ctx: PerturbationContext, samples: int = SMOOTH_SAMPLES,
                             noise: float = SMOOTH_NOISE) -> np.ndarray:
    """Smooth Grad-CAM++ (Omeiza et al. 2019): with D_p the mean over n noisy copies of g^p (g = ∂s/∂A),
    a_kij = D₂ / (2 D₂ + Σ_ab A_kab · D₃), α_k = Σ_ij a_kij ReLU(D₁), map = Σ_k α_k A_k of the clean photo.

    As the paper (and Grad-CAM++ here: ε = 1e-6, a = 0 where D₂ = 0), so with ``noise`` = 0 it is Grad-CAM++
    exactly. torchcam 0.5.0's SmoothGradCAMpp differs in three ways: ReLU of the last copy's gradient instead
    of D₁, Σ_ab A_kab D₃(a, b) in the denominator, and the last noisy copy's activations in the map.
    Costs n forward and backward passes (n = 4 as torchcam; noise 0.07 of the photo's range ≈ torchcam's
    σ = 0.3).
    """
    if ctx.gradients is None:
        raise ValueError("Smooth Grad-CAM++ needs the network's gradients for noisy inputs")
    acts = ctx.activations.astype(np.float64)
    moments = np.zeros((3, *acts.shape))
    for _, part in _chunks(np.arange(samples), ctx):
        _, grads = ctx.gradients(noisy_copies(ctx.inputs, part, noise, ctx.seed))
        g = np.asarray(grads, np.float64)
        moments += np.stack([g.sum(0), (g ** 2).sum(0), (g ** 3).sum(0)])
    d1, d2, d3 = moments / samples
    sums = acts.sum(axis=(0, 1))
    alpha = np.where(d2 != 0, d2 / np.where(d2 != 0, 2 * d2 + sums * d3 + 1e-6, 1.0), 0.0)
    return (alpha * np.maximum(d1, 0.0)).sum(axis=(0, 1))


register(Method("smoothgradcampp", "Smooth Grad-CAM++", "perturbation", smooth_gradcam_plus_plus,
                "Omeiza et al., 2019", cost="samples", samples=SMOOTH_SAMPLES, smoothable=False,
                doc=smooth_gradcam_plus_plus.__doc__))
