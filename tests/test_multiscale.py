"""Input-size change and test-time fusion (sizes, mirror) on tiny named models."""

from __future__ import annotations

import cv2
import keras
import numpy as np
import pytest

from core.cam import Explainer, Target
from core.model_spec import ModelStructureError, inspect_model
from core.multiscale import FusedExplainer, InputRecipe, at_input_size, fuse_maps
from tests.conftest import tiny_cam_model


@pytest.fixture(scope="module")
def tiny_bundle():
    return inspect_model(tiny_cam_model(), name="tiny", source="test", preprocessing="unit")


def _photos(count=3, seed=4):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (20 + 3 * i, 30, 3), dtype=np.uint8) for i in range(count)]


def test_larger_input_keeps_weights_and_doubles_the_map(tiny_bundle):
    bigger = at_input_size(tiny_bundle, 32)
    assert bigger.input_size == (32, 32) and tiny_bundle.input_size == (16, 16)
    for mine, theirs in zip(bigger.model.get_weights(), tiny_bundle.model.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    raw = Explainer(bigger).explain(_photos(1), ("cam",))[0]
    assert raw.maps[("cam", "features")].shape == (16, 16)  # 8×8 at 16 px
    assert at_input_size(tiny_bundle, (16, 16)) is tiny_bundle
    assert at_input_size(tiny_bundle, (16, 24)).input_size == (16, 24)


def test_size_dependent_model_is_refused(tiny_bundle):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, padding="same", name="conv")(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(x))
    flat = inspect_model(keras.Model(inputs, outputs), name="flat", source="test", preprocessing="unit")
    with pytest.raises(ModelStructureError, match="cannot take 16×16 input"):
        at_input_size(flat, 16)


def test_one_view_recipe_is_the_plain_explainer(tiny_bundle):
    photos = _photos()
    plain = Explainer(tiny_bundle).explain(photos, ("cam", "gradcam"))
    fused = FusedExplainer(tiny_bundle, InputRecipe()).explain(photos, ("cam", "gradcam"))
    for a, b in zip(plain, fused):
        assert a.maps.keys() == b.maps.keys()
        for key in a.maps:
            np.testing.assert_array_equal(a.maps[key], b.maps[key])


def test_mirror_view_is_mirrored_back_and_averaged_for_the_first_views_class(tiny_bundle):
    photos = _photos()
    fused = FusedExplainer(tiny_bundle, InputRecipe(flip=True)).explain(photos, ("cam",))
    plain = Explainer(tiny_bundle)
    for photo, raw in zip(photos, fused):
        own = plain.explain([photo], ("cam",))[0]
        same_class = Target.of_class(own.predicted_class)
        mirror = plain.explain([photo[:, ::-1].copy()], ("cam",), target=same_class)[0]
        views = [own.maps[("cam", "features")], mirror.maps[("cam", "features")][:, ::-1]]
        expected = fuse_maps(views, "cam", "paper")
        np.testing.assert_allclose(raw.maps[("cam", "features")], expected, atol=1e-6)
        np.testing.assert_allclose(raw.probabilities, own.probabilities, rtol=1e-5)  # batch of 3 vs 1


def test_fusion_mixes_grids_on_the_finest_one():
    fine = np.zeros((4, 4), np.float32)
    fine[0, 0] = 1.0
    coarse = np.array([[2.0, 0.0], [0.0, 0.0]], np.float32)  # CAM min-max → [[1, 0], [0, 0]]
    expected = (fine + cv2.resize(coarse / 2, (4, 4), interpolation=cv2.INTER_LINEAR)) / 2
    np.testing.assert_allclose(fuse_maps([fine, coarse], "cam", "paper"), expected, atol=1e-7)
    assert fuse_maps([fine, coarse], "cam", "paper")[0, 0] == 1.0


def test_two_sizes_fuse_on_the_larger_grid(tiny_bundle):
    explainer = FusedExplainer(tiny_bundle, InputRecipe((16, 32)))
    raw = explainer.explain(_photos(1), ("gradcam",), layer="features")[0]
    values = raw.maps[("gradcam", "features")]
    assert values.shape == (16, 16) and 0.0 <= values.min() and values.max() <= 1.0


@pytest.mark.parametrize(("sizes", "message"), [((4,), "must be an integer in"), ((64, 64), "repeat"),
                                                ((True,), "must be an integer")])
def test_bad_recipes_are_refused(sizes, message):
    with pytest.raises(ValueError, match=message):
        InputRecipe(sizes)


def test_recipe_round_trip_and_label():
    recipe = InputRecipe((224, 576), flip=True)
    assert InputRecipe.from_dict(recipe.as_dict()) == recipe
    assert recipe.label() == "224px+576px + flip" and recipe.views == 4
    assert InputRecipe().label() == "model's input size" and InputRecipe().views == 1
