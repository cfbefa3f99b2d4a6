"""FullGrad against known answers: the full-gradient decomposition is complete on a small ReLU network with
biases (the score is exactly the sum of its raw terms), and the engine's map is those terms post-processed
in pytorch-grad-cam's order (every channel min-max scaled and resized, then summed). Parity with
pytorch-grad-cam on the real MobileNetV2 is in tests/test_parity.py."""

from __future__ import annotations

import cv2
import keras
import numpy as np
import tensorflow as tf

from core.cam import Explainer, Target
from core.methods import INPUT, InputContext, method
from core.methods.fullgrad import bias_layers, effective_bias, full_gradient_terms
from core.model_spec import inspect_model
from core.preprocessing import preprocess

SIZE = 16


def _biased_relu_network() -> keras.Model:
    """conv (bias, stride 2) → BatchNorm (non-trivial statistics) → ReLU → depthwise conv (bias, stride 2)
    → ReLU → global average pooling → Dense (bias) softmax, with seeded weights."""
    rng = np.random.default_rng(7)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(5, 3, strides=2, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(epsilon=1e-3, name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="depthwise")(x)
    x = keras.layers.ReLU(name="features")(x)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="classifier")(pooled)
    model = keras.Model(inputs, outputs)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([rng.normal(0.0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()])
    bn = model.get_layer("bn")  # γ, β, μ and σ² > 0 (moving variance must stay positive)
    bn.set_weights([rng.uniform(0.5, 1.5, 5), rng.normal(0, 0.3, 5), rng.normal(0, 0.3, 5),
                    rng.uniform(0.2, 2.0, 5)])
    return model


def _photos(count=2):
    return np.random.default_rng(3).integers(0, 256, (count, SIZE, SIZE, 3), dtype=np.uint8)


def _raw_terms(model, images, target: int):
    """The logit of ``target`` and the signed terms x ⊙ ∇_x y, b_l ⊙ ∇_{z_l} y, by a plain GradientTape."""
    names = bias_layers(model)
    capture = keras.Model(model.input, [model.get_layer(n).output for n in names]
                          + [model.get_layer("classifier").input])
    dense = model.get_layer("classifier")

    @tf.function
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            *outputs, pooled = capture(x, training=False)
            logit = (tf.matmul(pooled, dense.kernel) + dense.bias)[:, target]
            total = tf.reduce_sum(logit)
        grads = tape.gradient(total, [x, *outputs])
        return logit, grads

    x = preprocess(tf.constant(images), "unit")
    logit, grads = run(x)
    ctx = InputContext(x, grads[0], tuple(grads[1:]), tuple(effective_bias(model.get_layer(n)) for n in names))
    return logit.numpy(), full_gradient_terms(ctx), dense.bias.numpy()[target]


def test_bias_layers_are_the_convolutions_with_a_bias_and_the_batchnorms_in_graph_order():
    assert bias_layers(_biased_relu_network()) == ("conv", "bn", "depthwise")


def test_batchnorm_bias_is_what_inference_adds_after_scaling():
    bn = _biased_relu_network().get_layer("bn")
    gamma, beta, mean, variance = bn.get_weights()
    u = np.random.default_rng(0).normal(size=(2, 3, 3, 5)).astype(np.float32)
    scaled = gamma / np.sqrt(variance + 1e-3) * u  # the BatchNorm minus its bias
    assert np.allclose(bn(u, training=False).numpy() - scaled, effective_bias(bn).numpy(), atol=1e-6)


def test_the_full_gradient_decomposition_is_complete_on_a_relu_network_with_biases():
    model = _biased_relu_network()
    for target in range(3):
        logit, (input_term, bias_terms), dense_bias = _raw_terms(model, _photos(), target)
        total = (input_term.numpy().sum(axis=(1, 2, 3)) + sum(t.numpy().sum(axis=(1, 2, 3)) for t in bias_terms)
                 + dense_bias)
        assert np.allclose(total, logit, rtol=1e-5, atol=1e-5), (target, total, logit)
        # and no term is negligible: dropping any one breaks the identity
        for term in (input_term, *bias_terms):
            assert not np.allclose(total - term.numpy().sum(axis=(1, 2, 3)), logit, rtol=1e-3, atol=1e-3)


def _reference_post_processing(input_term, bias_terms) -> np.ndarray:
    """pytorch-grad-cam's order: |term|, every channel min-max scaled, resized with OpenCV, then summed."""
    def unit(channel):
        channel = np.abs(channel) - np.abs(channel).min()
        return channel / (1e-7 + channel.max())

    out = np.zeros((len(input_term), SIZE, SIZE))
    for term in (input_term, *bias_terms):
        term = term.numpy()
        for i in range(len(term)):
            for k in range(term.shape[-1]):
                out[i] += cv2.resize(unit(term[i, ..., k]).astype(np.float32), (SIZE, SIZE),
                                     interpolation=cv2.INTER_LINEAR)
    return out


def test_the_engines_map_is_the_terms_scaled_per_channel_resized_and_summed():
    model = _biased_relu_network()
    bundle = inspect_model(model, name="tiny", source="test", preprocessing="unit")
    images = _photos()
    _, (input_term, bias_terms), _ = _raw_terms(model, images, target=1)
    raws = Explainer(bundle, freeze="never").explain(list(images), ("fullgrad",), target=Target.of_class(1))
    ours = np.stack([r.maps[("fullgrad", INPUT)] for r in raws])
    assert ours.shape == (2, SIZE, SIZE)
    assert np.allclose(ours, _reference_post_processing(input_term, bias_terms), rtol=1e-5, atol=1e-5)


def test_fullgrad_ignores_the_layer_and_one_compiled_call_serves_every_request():
    model = _biased_relu_network()
    bundle = inspect_model(model, name="tiny", source="test", preprocessing="unit")
    explainer = Explainer(bundle, freeze="never")
    images = list(_photos())
    assert explainer.check_request(("fullgrad",), "depthwise") == (("fullgrad", INPUT),)
    assert explainer.check_request(("fullgrad", "gradcam"), "conv+depthwise") == (
        ("fullgrad", INPUT), ("gradcam", "conv+depthwise"))
    together = explainer.explain(images, ("gradcam", "fullgrad"), layer="depthwise", target=Target.of_class(2))
    alone = explainer.explain(images, ("fullgrad",), layer="conv", target=Target.of_class(2))
    for a, b in zip(together, alone):
        assert np.allclose(a.maps[("fullgrad", INPUT)], b.maps[("fullgrad", INPUT)], rtol=1e-6)
    # FullGrad's own call, shared by both requests, and Grad-CAM's call at its layer
    assert sorted(key[0] for key in explainer._functions) == ["inputs", "network"]
    assert method("fullgrad").one_pass and not method("fullgrad").uses_layer_choice
    assert method("fullgrad").menu_label == "FullGrad (ignores the layer)"
