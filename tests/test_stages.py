"""Stages of a CAM method against hand computations on the tiny model, and against the engine's own maps
and boxes (tiny model and the real MobileNetV2), so the "How it works" page shows what the product does."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from core.boxes import iou
from core.cam import Explainer
from core.explanation import BoxSettings, DisplaySettings, render_views
from core.localize import boxes_from_heatmap
from core.methods import METHODS
from core.model_spec import ModelStructureError, inspect_model
from core.stages import explain_stages, network_stages, threshold_stages
from tests.conftest import SAMPLE_CAR_BOX, tiny_cam_model

PHOTO = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
TRUTH = (2.0, 3.0, 12.0, 14.0)


@pytest.fixture(scope="module")
def tiny():
    model = tiny_cam_model(channels=6)
    bundle = inspect_model(model, name="tiny", source="test", preprocessing="unit")
    return model, Explainer(bundle, freeze="never")


def _features_and_kernel(model, photo):
    """The layer's activations and the classifier's kernel, computed outside the engine."""
    x = photo[None].astype(np.float32) / 255.0
    features = keras.Model(model.input, model.get_layer("features").output)(x).numpy()[0]
    kernel, bias = (w.numpy() for w in model.get_layer("classifier").weights)
    return features, kernel, features.mean(axis=(0, 1)) @ kernel + bias


def test_cam_weighted_sum_weights_and_top_channels_match_a_hand_computation(tiny):
    model, explainer = tiny
    features, kernel, logits = _features_and_kernel(model, PHOTO)
    predicted = int(np.argmax(logits))
    stages = network_stages(explainer, PHOTO, "cam", top_k=3)
    weights = kernel[:, predicted]
    np.testing.assert_allclose(stages.weights, weights, rtol=1e-5)
    hand = sum(weights[k] * features[:, :, k] for k in range(features.shape[-1]))
    np.testing.assert_allclose(stages.raw, hand, rtol=1e-4, atol=1e-6)
    expected_top = np.argsort(-weights)[:3]
    assert stages.channels.tolist() == expected_top.tolist()
    np.testing.assert_allclose(stages.activations, features[:, :, expected_top], rtol=1e-5, atol=1e-6)
    assert stages.gradients is None and "classifier's own weights" in stages.not_applicable["gradients"]
    assert stages.photo_input.shape == (16, 16, 3) and stages.channel_count == 6


def test_gradcam_gradients_and_weights_are_the_linear_heads_known_answer(tiny):
    """Through GAP → Dense the logit's gradient is W[k, c] / (h·w) at every position of channel k."""
    model, explainer = tiny
    features, kernel, logits = _features_and_kernel(model, PHOTO)
    predicted = int(np.argmax(logits))
    stages = network_stages(explainer, PHOTO, "gradcam", top_k=6)
    positions = features.shape[0] * features.shape[1]
    np.testing.assert_allclose(stages.weights, kernel[:, predicted] / positions, rtol=1e-4, atol=1e-8)
    for i, k in enumerate(stages.channels):
        expected = kernel[k, predicted] / positions
        np.testing.assert_allclose(stages.gradients[..., i], expected, rtol=1e-4, atol=1e-8)
    hand = np.einsum("hwk,k->hw", features, kernel[:, predicted] / positions)
    np.testing.assert_allclose(stages.raw, hand, rtol=1e-4, atol=1e-7)
    assert np.all(np.diff(stages.weights[stages.channels]) <= 0)  # best first


@pytest.mark.parametrize("key", [k for k in METHODS if not k.startswith("fast")])
def test_every_method_ends_in_the_engines_map_box_and_iou(tiny, key):
    _, explainer = tiny
    settings = BoxSettings(0.4)
    raw = explainer.explain([PHOTO], methods=(key,))[0]
    (view,) = render_views(PHOTO, raw, DisplaySettings(settings), TRUTH)
    stages = explain_stages(explainer, PHOTO, key, settings=settings, ground_truth=TRUTH)
    np.testing.assert_allclose(stages.network.raw, raw.maps[(key, view.layer)], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stages.upsampled.values, view.heatmap.values, atol=1e-5)
    if view.localized.main_box is None:
        assert stages.box is None
    else:
        np.testing.assert_array_equal(stages.box, view.localized.main_box)
        assert stages.iou == pytest.approx(iou(stages.box, TRUTH))
    assert stages.iou == pytest.approx(view.localized.iou)


def test_relu_and_normalisation_follow_the_registry(tiny):
    _, explainer = tiny
    cam = explain_stages(explainer, PHOTO, "cam")  # registry: no ReLU, min-max
    raw = cam.network.raw
    np.testing.assert_array_equal(cam.after_relu, raw)
    np.testing.assert_allclose(cam.normalized.values, (raw - raw.min()) / (raw.max() - raw.min()), atol=1e-6)
    grad = explain_stages(explainer, PHOTO, "gradcam")  # registry: ReLU, x / max
    relu = np.maximum(grad.network.raw, 0)
    np.testing.assert_array_equal(grad.after_relu, relu)
    np.testing.assert_allclose(grad.normalized.values, relu / relu.max(), atol=1e-6)
    original = explain_stages(explainer, PHOTO, "gradcam", variant="original")  # the study: no ReLU, x / max
    np.testing.assert_array_equal(original.after_relu, original.network.raw)
    assert (original.normalized.relu, original.normalized.mode) == (False, "max")


def test_mask_regions_and_box_are_core_localizes(tiny):
    _, explainer = tiny
    network = network_stages(explainer, PHOTO, "gradcampp")
    photo_size = (40, 50)
    loose, tight = (threshold_stages(network, photo_size, BoxSettings(t), TRUTH) for t in (0.2, 0.7))
    values = loose.upsampled.values
    assert loose.mask.shape == photo_size
    np.testing.assert_array_equal(loose.mask, values >= np.float32(0.2 * values.max()))
    assert not (tight.mask & ~loose.mask).any() and tight.mask.sum() < loose.mask.sum()
    for stages in (loose, tight):
        every = boxes_from_heatmap(stages.upsampled.values, stages.threshold, component="all")
        assert stages.region_count == len(every) == stages.labels.max()
        assert set(np.unique(stages.labels[stages.mask])) == set(range(1, stages.region_count + 1))
        np.testing.assert_array_equal(stages.box, every[0].box)
        assert stages.iou == pytest.approx(iou(every[0].box, TRUTH))
    assert threshold_stages(network, photo_size, BoxSettings(0.5)).iou is None  # no ground truth, no IoU


def test_map_methods_have_no_weights_and_say_why(tiny):
    model, explainer = tiny
    features, _, _ = _features_and_kernel(model, PHOTO)
    stages = network_stages(explainer, PHOTO, "eigencam", top_k=2)
    assert stages.weights is None and stages.gradients is None
    assert "no channel weights" in stages.not_applicable["weights"]
    assert stages.channels.tolist() == np.argsort(-features.mean(axis=(0, 1)))[:2].tolist()


def test_bad_requests_are_clear_errors(tiny):
    _, explainer = tiny
    with pytest.raises(ModelStructureError, match="not a convolutional layer"):
        network_stages(explainer, PHOTO, "gradcam", layer="no_such_layer")
    with pytest.raises(ValueError, match="one layer at a time"):
        network_stages(explainer, PHOTO, "gradcam", layer="features+conv_a")
    with pytest.raises(ValueError, match="unknown method"):
        network_stages(explainer, PHOTO, "nocam")
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    flat = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x)))
    headless = Explainer(inspect_model(flat, name="flat", source="test", preprocessing="unit"),
                         freeze="never")
    with pytest.raises(ModelStructureError, match="CAM is unavailable"):
        network_stages(headless, PHOTO, "cam")


def test_real_model_stages_end_in_the_boxes_the_pages_show(offline_explainer):
    from core.images import decode_image
    from core.paths import ASSETS_DIR

    photo = decode_image((ASSETS_DIR / "sample_car.jpg").read_bytes(), "sample_car.jpg")
    layer = "block_13_expand_relu"  # 14×14: maps differ between methods here
    methods = ("gradcampp", "eigencam")
    settings = BoxSettings(0.3)
    raw = offline_explainer.explain([photo], methods=methods, layer=layer)[0]
    for view in render_views(photo, raw, DisplaySettings(settings), SAMPLE_CAR_BOX):
        stages = explain_stages(offline_explainer, photo, view.method, layer, settings=settings,
                                ground_truth=SAMPLE_CAR_BOX)
        assert stages.network.raw.shape == (14, 14) and stages.network.photo_input.shape == (224, 224, 3)
        np.testing.assert_allclose(stages.upsampled.values, view.heatmap.values, atol=1e-5)
        np.testing.assert_array_equal(stages.box, view.localized.main_box)
        assert stages.iou == pytest.approx(view.localized.iou)
