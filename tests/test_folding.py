"""BatchNorm folding (core.folding): the twin gives every layer's output of the original, except the
folded convolutions', which it names; the engine's maps are the same with and without it."""

import keras
import numpy as np
import pytest

from core.folding import fold_batch_norms


def _norm(name, channels, rng):
    norm = keras.layers.BatchNormalization(name=name, epsilon=1e-3)
    norm.build((None, 8, 8, channels))
    norm.set_weights([rng.uniform(0.5, 2, channels), rng.normal(0, 1, channels),
                      rng.normal(0, 1, channels), rng.uniform(0.5, 2, channels)])
    return norm


def _small_model():
    rng = np.random.default_rng(0)
    x = inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="plain")(x)
    x = _norm("plain_bn", 4, rng)(x)
    x = keras.layers.ReLU(name="plain_relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False, name="depth")(x)
    x = _norm("depth_bn", 8, rng)(x)
    biased = keras.layers.Conv2D(8, 1, use_bias=True, name="biased")(x)
    x = _norm("biased_bn", 8, rng)(biased)
    shared = keras.layers.Conv2D(8, 1, use_bias=False, name="shared")(x)  # read twice: not folded
    x = keras.layers.Add(name="add")([_norm("shared_bn", 8, rng)(shared), shared])
    x = keras.layers.Conv2D(8, 1, activation="relu", name="activated")(x)  # activation first: not folded
    x = _norm("activated_bn", 8, rng)(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(5, name="dense")(x))
    for layer in model.layers:  # random, non-trivial weights everywhere
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            layer.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in layer.get_weights()])
    return model


def test_the_twin_equals_the_model_at_every_layer_but_the_folded_convolutions():
    model = _small_model()
    twin = fold_batch_norms(model)
    assert twin.changed == {"plain", "depth", "biased"}
    names = [layer.name for layer in model.layers[1:]]
    assert [layer.name for layer in twin.model.layers[1:]] == names
    x = np.random.default_rng(1).normal(0, 1, (2, 8, 8, 3)).astype("float32")
    original = keras.Model(model.input, [model.get_layer(n).output for n in names])(x)
    folded = keras.Model(twin.model.input, [twin.model.get_layer(n).output for n in names])(x)
    for name, a, b in zip(names, original, folded):
        a, b = np.asarray(a), np.asarray(b)
        if name in twin.changed:
            assert not np.allclose(a, b, atol=1e-3), name  # the folded conv now gives its norm's output
        else:
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * np.abs(a).max(), err_msg=name)
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in twin.model.layers) == 2


def test_a_model_without_a_foldable_norm_has_no_twin():
    x = inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="c")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    assert fold_batch_norms(model) is None


@pytest.mark.parametrize("layer", ["out_relu", "block_12_add", "block_1_project_BN"])
def test_engine_maps_with_the_twin_equal_those_of_the_live_model(offline_bundle, layer):
    from core.cam import Explainer
    from core.images import decode_image
    from core.paths import ASSETS_DIR

    photo = decode_image((ASSETS_DIR / "sample_car.jpg").read_bytes(), "sample_car.jpg")
    methods = ("gradcam", "gradcampp", "layercam", "eigencam")
    folded = Explainer(offline_bundle, freeze="background")
    live = Explainer(offline_bundle, freeze="never")
    assert folded._forward_model(layer) is not offline_bundle.model
    assert live._forward_model(layer) is offline_bundle.model
    assert folded._forward_model("block_1_project") is offline_bundle.model  # a folded conv: the original
    a = folded.explain([photo], methods=methods, layer=layer)[0]
    b = live.explain([photo], methods=methods, layer=layer)[0]
    np.testing.assert_allclose(a.logits, b.logits, atol=1e-4)
    for key in b.maps:
        assert np.corrcoef(a.maps[key].ravel(), b.maps[key].ravel())[0, 1] > 0.9999, key
        assert np.unravel_index(a.maps[key].argmax(), a.maps[key].shape) == \
            np.unravel_index(b.maps[key].argmax(), b.maps[key].shape), key
