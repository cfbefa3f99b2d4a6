"""FullGrad (Srinivas & Fleuret, NeurIPS 2019, "Full-Gradient Representation for Neural Network
Visualization"): a map at the input's resolution from the input's gradient and every bias's.

Why it is complete: a ReLU network with biases is piecewise linear, so its score is exactly

    y = Σ_i x_i ∂y/∂x_i + Σ_l Σ_c b_lc Σ_ij ∂y/∂z_lcij        (1)

over the input x and every layer l that adds a per-channel bias b_l to its output z_l (the classifier's
own bias is the last, spatially empty term). The saliency map keeps every spatial term:

    S = ψ(|x ⊙ ∇_x y|) + Σ_l ψ(|b_l ⊙ ∇_{z_l} y|),   ψ(T) = Σ_c resize(minmax(T_c))

with ``minmax`` per photo and channel ((t − min) / (max − min + 1e-7)) and ``resize`` bilinear to the input
size (half-pixel centres, as OpenCV). The bias layers are the convolutions with a bias and every
BatchNormalization, whose inference-time bias is β − μγ/√(σ² + ε) (z = γ(u − μ)/√(σ² + ε) + β). As
pytorch-grad-cam 1.5.7 (``FullGrad``): absolute values, the gradient of the target logit, the terms summed
(not averaged), the total min-max scaled afterwards (here by the engine's normalisation). Resizing is linear
and the min-max comes before it, so each layer's channels are summed at their own resolution and the sum
resized once: one resize per layer, not per channel (tests/test_fullgrad.py checks it equals the
reference's order).

All terms come from one compiled call of the engine (``core.cam``): a forward pass and a backward pass,
run segment by segment with recomputation so the whole network's activations are never alive at once
(``core.segments``), each term reduced to its map as soon as its gradient exists. That backward runs all
the way to the input (Grad-CAM's at ``out_relu`` stops after the head): on MobileNetV2 at batch 16 FullGrad
took 3.4–4.5 × Grad-CAM's time at ``out_relu`` (1.0–1.3 s against 0.3 s, frozen, on 2 shared cores), a
Grad-CAM at the first block (a full backward too) 1.9 ×.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from core.methods.registry import InputContext, Method, register

__all__ = ["bias_layers", "effective_bias", "full_gradient_terms", "term_maps", "fullgrad"]

_CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_EPSILON = 1e-7  # pytorch-grad-cam's scale_cam_image


def bias_layers(model: keras.Model) -> tuple[str, ...]:
    """Names of the layers that add a per-channel bias to a 4-D (B, h, w, K) output, in graph order:
    convolutions with ``use_bias`` and channels-last BatchNormalization (52 in MobileNetV2)."""
    names = []
    for layer in model.layers:
        if isinstance(layer, _CONVOLUTIONS) and layer.use_bias:
            names.append(layer.name)
        elif isinstance(layer, keras.layers.BatchNormalization) and len(layer.output.shape) == 4:
            if layer.axis not in (-1, 3, [-1], [3]):
                raise ValueError(f"FullGrad needs channels-last BatchNormalization; {layer.name!r} "
                                 f"normalises axis {layer.axis}")
            names.append(layer.name)
    return tuple(names)


def effective_bias(layer) -> tf.Tensor:
    """(K,) the per-channel bias ``layer`` adds to its output: a convolution's own, or BatchNormalization's
    β − μγ/√(σ² + ε) at inference (β = 0 without ``center``, γ = 1 without ``scale``)."""
    if not isinstance(layer, keras.layers.BatchNormalization):
        return tf.convert_to_tensor(layer.bias)
    gamma = layer.gamma if layer.scale else 1.0
    beta = layer.beta if layer.center else 0.0
    return beta - layer.moving_mean * gamma / tf.sqrt(layer.moving_variance + layer.epsilon)


def full_gradient_terms(ctx: InputContext) -> tuple[tf.Tensor | None, tuple[tf.Tensor, ...]]:
    """The signed terms of (1): x ⊙ ∇_x y (B, H, W, 3; None when the context has no input gradient) and
    b_l ⊙ ∇_{z_l} y (B, h_l, w_l, K_l) per layer."""
    input_term = None if ctx.input_gradients is None else ctx.inputs * ctx.input_gradients
    return input_term, tuple(g * b for g, b in zip(ctx.bias_gradients, ctx.biases))


def _channel_sum_of_unit_channels(term: tf.Tensor) -> tf.Tensor:
    """(B, h, w): Σ_c of |term_c| min-max scaled per photo and channel."""
    magnitude = tf.abs(term)
    low = tf.reduce_min(magnitude, axis=(1, 2), keepdims=True)
    shifted = magnitude - low
    return tf.reduce_sum(shifted / (_EPSILON + tf.reduce_max(shifted, axis=(1, 2), keepdims=True)), axis=-1)


def term_maps(ctx: InputContext) -> tuple[tf.Tensor, ...]:
    """(B, H, W) ψ of each term the context holds, at the input's resolution: the input's (if given), then
    each bias layer's."""
    size = tf.shape(ctx.inputs)[1:3]
    input_term, bias_terms = full_gradient_terms(ctx)
    first = () if input_term is None else (_channel_sum_of_unit_channels(input_term),)
    return (*first, *(
        tf.image.resize(_channel_sum_of_unit_channels(term)[..., None], size, method="bilinear")[..., 0]
        for term in bias_terms))


def fullgrad(ctx: InputContext) -> tf.Tensor:
    """(B, H, W) FullGrad map (or its part from the terms ``ctx`` holds) at the input's resolution, before
    the final normalisation."""
    return tf.add_n(term_maps(ctx))


register(Method("fullgrad", "FullGrad", "input", fullgrad, "Srinivas & Fleuret, NeurIPS 2019",
                normalize="minmax", smoothable=False,
                doc="FullGrad (Srinivas & Fleuret 2019): |x ⊙ ∇_x y| plus, for every layer adding a bias "
                    "(convolutions, BatchNorm), |b ⊙ ∇_z y|, each channel min-max scaled, resized to the "
                    "input and summed. A map at the input's resolution: it ignores the layer choice."))
