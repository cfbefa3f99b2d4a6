"""CAM and Grad-CAM against hand computations on a tiny model."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from core.cam import Explainer, Target
from core.model_spec import ModelStructureError, inspect_model


def _bundle(model, preprocessing="unit"):
    return inspect_model(model, name="tiny", source="test", preprocessing=preprocessing)


def _features_and_logits(model, photo_at_input_size):
    """Feature maps and logits computed outside the engine, from the layers' own weights."""
    x = photo_at_input_size[None].astype(np.float32) / 255.0
    features = keras.Model(model.input, model.get_layer("features").output)(x).numpy()[0]
    kernel, bias = (w.numpy() for w in model.get_layer("classifier").weights)
    logits = features.mean(axis=(0, 1)) @ kernel + bias
    return features, kernel, logits


def test_head_and_layers_are_detected(tiny_model):
    bundle = _bundle(tiny_model)
    assert bundle.cam_head.feature_layer == "features"
    assert bundle.cam_head.classifier_layer == "classifier"
    assert bundle.score_head.output_activation == "softmax"
    assert bundle.conv_layers == ("features", "conv_a")
    assert bundle.default_layer == "features"


def test_cam_equals_hand_computed_weighted_sum(tiny_model):
    photo = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    features, kernel, logits = _features_and_logits(tiny_model, photo)
    raw = Explainer(_bundle(tiny_model)).explain([photo], methods=("cam",))[0]
    predicted = int(np.argmax(logits))
    expected = np.zeros(features.shape[:2], np.float32)
    for k in range(features.shape[-1]):
        expected += kernel[k, predicted] * features[:, :, k]
    np.testing.assert_allclose(raw.maps[("cam", "features")], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(raw.logits, logits, rtol=1e-4, atol=1e-5)
    assert raw.predicted_class == predicted


def test_gradcam_on_logit_is_relu_cam_up_to_positive_scale(tiny_model):
    photo = np.random.default_rng(4).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    raw = Explainer(_bundle(tiny_model)).explain([photo], methods=("cam", "gradcam"))[0]
    cam = raw.maps[("cam", "features")]
    gradcam = raw.maps[("gradcam", "features")]
    # ∂z_c/∂A_k(i,j) = W[k,c] / (h·w), so Grad-CAM before ReLU is CAM / (h·w).
    np.testing.assert_allclose(gradcam, cam / cam.size, rtol=1e-4, atol=1e-7)
    relu_cam = np.maximum(cam, 0)
    scale = relu_cam.max() / np.maximum(gradcam, 0).max()
    assert scale > 0
    np.testing.assert_allclose(np.maximum(gradcam, 0) * scale, relu_cam, rtol=1e-4, atol=1e-6)


def test_original_variant_uses_softmax_probability(tiny_model):
    photo = np.random.default_rng(5).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    raw = Explainer(_bundle(tiny_model)).explain([photo], methods=("gradcam",), variant="original")[0]
    features, kernel, logits = _features_and_logits(tiny_model, photo)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    c = int(np.argmax(p))
    # ∂p_c/∂z_j = p_c (δ_cj − p_j); ∂z_j/∂A_k = W[k, j] / (h·w)
    alpha = (kernel @ (p[c] * (np.eye(len(p))[c] - p))) / (features.shape[0] * features.shape[1])
    expected = features @ alpha
    np.testing.assert_allclose(raw.maps[("gradcam", "features")], expected, rtol=1e-3, atol=1e-8)


def test_class_group_weights_classes_by_their_softmax(tiny_model):
    photo = np.random.default_rng(6).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    explainer = Explainer(_bundle(tiny_model))
    group = explainer.explain([photo], methods=("cam",), target=Target.group([0, 2], "two"))[0]
    singles = [explainer.explain([photo], methods=("cam",), target=Target.of_class(c))[0] for c in (0, 2)]
    z = group.logits[[0, 2]]
    pi = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(group.class_weights[[0, 2]], pi, rtol=1e-5)
    assert group.class_weights[1] == 0
    expected = pi[0] * singles[0].maps[("cam", "features")] + pi[1] * singles[1].maps[("cam", "features")]
    np.testing.assert_allclose(group.maps[("cam", "features")], expected, rtol=1e-4, atol=1e-6)


def test_batch_matches_single_photos_and_any_photo_size(tiny_model):
    rng = np.random.default_rng(7)
    photos = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(16, 16, 3), (33, 20, 3), (5, 90, 3)]]
    explainer = Explainer(_bundle(tiny_model))
    batched = explainer.explain(photos, methods=("cam", "gradcam"), batch_size=3)
    for photo, raw in zip(photos, batched):
        single = explainer.explain([photo], methods=("cam", "gradcam"))[0]
        for key in raw.maps:
            np.testing.assert_allclose(raw.maps[key], single.maps[key], rtol=1e-4, atol=1e-6)
    assert len(explainer._functions) == 1  # one compiled function served every size and batch


def test_gradcam_on_an_earlier_layer_has_its_resolution(tiny_model):
    raw = Explainer(_bundle(tiny_model)).explain(
        [np.zeros((16, 16, 3), np.uint8)], methods=("gradcam",), layer="conv_a")[0]
    assert raw.maps[("gradcam", "conv_a")].shape == (8, 8)


def test_unknown_layer_and_out_of_range_class_are_clear_errors(tiny_model):
    explainer = Explainer(_bundle(tiny_model))
    with pytest.raises(ModelStructureError, match="not a convolutional layer"):
        explainer.explain([np.zeros((16, 16, 3), np.uint8)], methods=("gradcam",), layer="nope")
    with pytest.raises(ValueError, match="out of range"):
        explainer.explain([np.zeros((16, 16, 3), np.uint8)], target=Target.of_class(7))
    with pytest.raises(ValueError, match="RGB uint8"):
        explainer.explain([np.zeros((16, 16), np.uint8)])


def test_model_without_pooling_dense_head_has_gradcam_but_not_cam():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="dense")(x)
    bundle = _bundle(keras.Model(inputs, outputs))
    assert bundle.cam_head is None
    assert "global average pooling" in bundle.cam_unavailable_reason
    explainer = Explainer(bundle)
    with pytest.raises(ModelStructureError, match="CAM is unavailable"):
        explainer.explain([np.zeros((16, 16, 3), np.uint8)], methods=("cam",))
    raw = explainer.explain([np.full((16, 16, 3), 128, np.uint8)], methods=("gradcam",))[0]
    assert raw.maps[("gradcam", "conv")].shape == (14, 14)


def test_models_that_are_not_image_classifiers_are_refused():
    dense_only = keras.Sequential([keras.Input((10,)), keras.layers.Dense(2)])
    with pytest.raises(ModelStructureError, match="RGB image input"):
        _bundle(dense_only)
    no_conv = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ModelStructureError, match="no convolutional layer"):
        _bundle(no_conv)


def test_layer_grid_matches_single_layer_runs(tiny_model):
    photo = np.random.default_rng(8).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    explainer = Explainer(_bundle(tiny_model))
    grid = explainer.explain_layers([photo], ["features", "conv_a"])[0]
    for layer in ("features", "conv_a"):
        single = explainer.explain([photo], methods=("gradcam",), layer=layer)[0]
        np.testing.assert_allclose(grid.maps[("gradcam", layer)], single.maps[("gradcam", layer)],
                                   rtol=1e-4, atol=1e-7)


def _tiny_bn_model():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Activation("relu", name="features")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="classifier")(
        keras.layers.GlobalAveragePooling2D(name="gap")(x))
    model = keras.Model(inputs, outputs)
    bn = model.get_layer("bn")
    bn.set_weights([w + np.random.default_rng(3).uniform(0.1, 0.5, w.shape).astype("float32")
                    for w in bn.get_weights()])  # non-trivial statistics, so folding matters
    return model


def test_frozen_function_gives_the_same_maps_as_the_live_one():
    bundle = _bundle(_tiny_bn_model())
    photo = np.random.default_rng(9).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    frozen = Explainer(bundle, freeze="now")
    live = Explainer(bundle, freeze="never")
    a = frozen.explain([photo], methods=("cam", "gradcam"), layer="conv")[0]
    b = live.explain([photo], methods=("cam", "gradcam"), layer="conv")[0]
    assert all(f.frozen for f in frozen._functions.values())
    assert not any(f.frozen for f in live._functions.values())
    for key in a.maps:
        np.testing.assert_allclose(a.maps[key], b.maps[key], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(a.probabilities, b.probabilities, rtol=1e-5)


def test_background_freezing_takes_over_and_compiled_functions_are_bounded(tiny_model):
    explainer = Explainer(_bundle(tiny_model))  # default: freeze in the background
    photo = np.zeros((16, 16, 3), np.uint8)
    before = explainer.explain([photo], methods=("cam",))[0]
    function = next(iter(explainer._functions.values()))
    assert function.ready.wait(60) and function.frozen
    after = explainer.explain([photo], methods=("cam",))[0]
    np.testing.assert_allclose(after.maps[("cam", "features")], before.maps[("cam", "features")], rtol=1e-5)
    for variant in ("paper", "original"):
        for layer in ("features", "conv_a"):
            for methods in (("gradcam",), ("cam", "gradcam")):
                explainer.explain([photo], methods=methods, layer=layer, variant=variant)
    assert len(explainer._functions) == Explainer.MAX_COMPILED


def test_process_exits_cleanly_while_a_function_is_still_freezing(tmp_path):
    """A daemon freezing thread made TensorFlow abort the interpreter at exit (code 134)."""
    import subprocess
    import sys

    from tests.conftest import PROJECT_ROOT

    script = tmp_path / "explain_once.py"
    script.write_text(
        "import numpy as np\n"
        "from tests.conftest import tiny_cam_model\n"
        "from core.model_spec import inspect_model\n"
        "from core.cam import Explainer\n"
        "bundle = inspect_model(tiny_cam_model(), name='t', source='t', preprocessing='unit')\n"
        "Explainer(bundle).explain([np.zeros((16, 16, 3), np.uint8)], methods=('cam',))\n")
    done = subprocess.run([sys.executable, str(script)], cwd=PROJECT_ROOT, capture_output=True,
                          env={**__import__("os").environ, "PYTHONPATH": str(PROJECT_ROOT)}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_frozen_twins_are_bounded_by_a_process_wide_memory_budget(tiny_model, monkeypatch):
    import core.freezing as freezing

    monkeypatch.setattr(freezing, "budget", freezing.FrozenBudget(None))
    explainer = Explainer(_bundle(tiny_model), freeze="now")
    photo = np.random.default_rng(11).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    first = explainer.explain([photo], methods=("cam",))[0]
    one_twin = freezing.budget.used_bytes
    assert one_twin > 0
    freezing.budget.limit_bytes = one_twin * 3 // 2  # room for one twin, not two
    explainer.explain([photo], methods=("gradcam",), layer="conv_a")
    old, new = explainer._functions.values()
    assert not old.frozen and new.frozen  # the least recently used twin made room
    again = explainer.explain([photo], methods=("cam",))[0]  # now unfrozen: same map
    np.testing.assert_allclose(again.maps[("cam", "features")], first.maps[("cam", "features")], rtol=1e-5)
    freezing.budget.limit_bytes = one_twin // 2  # a twin larger than the whole budget stays, alone
    explainer.explain([photo], methods=("gradcam",), layer="features")
    assert [f.frozen for f in explainer._functions.values()] == [False, False, True]
