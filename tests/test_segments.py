"""The segmented backward pass (core.segments) against a plain GradientTape on a small residual network:
where it may cut (never inside a residual block), and that its gradients at the input and at every tapped
layer are the whole-graph gradients, whatever the number of segments."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from core.segments import SegmentChain, choose_cuts, cut_points


def _residual_network() -> keras.Model:
    """stem conv → ReLU → [conv → BN → ReLU → conv, + shortcut] → ReLU → conv (stride 2) → BN → ReLU →
    global average pooling → Dense, seeded weights."""
    rng = np.random.default_rng(11)
    inputs = keras.Input((12, 12, 3))
    stem = keras.layers.ReLU(name="stem_relu")(keras.layers.Conv2D(4, 3, padding="same", name="stem")(inputs))
    x = keras.layers.Conv2D(6, 3, padding="same", name="inner_conv")(stem)
    x = keras.layers.BatchNormalization(name="inner_bn")(x)
    x = keras.layers.ReLU(name="inner_relu")(x)
    x = keras.layers.Conv2D(4, 1, name="inner_project")(x)
    x = keras.layers.Add(name="block_add")([stem, x])
    x = keras.layers.ReLU(name="block_relu")(x)
    x = keras.layers.Conv2D(5, 3, strides=2, padding="same", name="down")(x)
    x = keras.layers.BatchNormalization(name="down_bn")(x)
    x = keras.layers.ReLU(name="features")(x)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, name="classifier")(pooled)
    model = keras.Model(inputs, outputs)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([rng.normal(0.0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()])
    for name in ("inner_bn", "down_bn"):  # positive moving variances
        bn = model.get_layer(name)
        gamma, beta, mean, _ = bn.get_weights()
        bn.set_weights([gamma, beta, mean, rng.uniform(0.5, 1.5, mean.shape).astype(np.float32)])
    return model


TAPS = ("inner_bn", "inner_relu", "block_add", "down_bn", "features")


def _whole_graph_gradients(model, x):
    capture = keras.Model(model.input, [model.get_layer(t).output for t in TAPS] + [model.get_layer("gap").output])
    dense = model.get_layer("classifier")
    with tf.GradientTape() as tape:
        tape.watch(x)
        *taps, pooled = capture(x, training=False)
        score = tf.reduce_sum((tf.matmul(pooled, dense.kernel) + dense.bias)[:, 1])
    found = tape.gradient(score, [x, *taps])
    return found[0].numpy(), {t: g.numpy() for t, g in zip(TAPS, found[1:])}


def _chain_gradients(model, x, segments):
    chain = SegmentChain(model, "gap", taps=TAPS, segments=segments)
    dense = model.get_layer("classifier")
    boundaries, kept = chain.forward(x, keep=("features",))
    with tf.GradientTape() as tape:
        tape.watch(boundaries[-1])
        score = tf.reduce_sum((tf.matmul(boundaries[-1], dense.kernel) + dense.bias)[:, 1])
    visited = {}
    grad_x = chain.backward(boundaries, tape.gradient(score, boundaries[-1]),
                            lambda tap, g: visited.setdefault(tap, g.numpy()))
    return chain, grad_x.numpy(), visited, kept


def test_cuts_fall_between_blocks_never_inside_a_residual_block():
    cuts = cut_points(_residual_network(), "gap")
    assert cuts[-1] == "gap"
    assert {"stem_relu", "block_add", "block_relu", "down", "features"} <= set(cuts)
    assert not {"inner_conv", "inner_bn", "inner_relu", "inner_project"} & set(cuts)  # the shortcut is live


def test_choose_cuts_makes_about_the_asked_number_of_segments_ending_at_the_last_layer():
    model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3))
    pool = next(layer.name for layer in model.layers  # its name gets a suffix after other models were built
                if isinstance(layer, keras.layers.GlobalAveragePooling2D))
    for segments in (1, 4, 8):
        cuts = choose_cuts(model, pool, segments)
        assert cuts[-1] == pool
        assert 1 <= len(cuts) <= segments + 1
        assert set(cuts[:-1]) <= set(cut_points(model, pool))
    assert len(choose_cuts(model, pool, 8)) >= 4


@pytest.mark.parametrize("segments", [1, 2, 8])
def test_segmented_gradients_equal_the_whole_graph_gradients(segments):
    model = _residual_network()
    x = tf.constant(np.random.default_rng(5).normal(size=(2, 12, 12, 3)).astype(np.float32))
    expected_x, expected = _whole_graph_gradients(model, x)
    chain, grad_x, visited, kept = _chain_gradients(model, x, segments)
    assert len(chain.parts) == len(chain.cuts) and (segments == 1) == (len(chain.parts) == 1)
    np.testing.assert_allclose(grad_x, expected_x, rtol=1e-5, atol=1e-6)
    assert set(visited) == set(TAPS)  # every tap once, the boundary ones too
    for tap in TAPS:
        np.testing.assert_allclose(visited[tap], expected[tap], rtol=1e-5, atol=1e-6)
    features = keras.Model(model.input, model.get_layer("features").output)(x, training=False)
    np.testing.assert_allclose(kept["features"].numpy(), features.numpy(), rtol=1e-6)


def test_a_tap_after_the_last_layer_is_refused():
    with pytest.raises(ValueError, match="does not come before"):
        SegmentChain(_residual_network(), "block_relu", taps=("features",))
