"""The first screen shows maps worth comparing: the default methods differ from one another."""

from __future__ import annotations

from itertools import combinations

from core.explanation import DisplaySettings, render_views
from core.images import read_image
from core.methods import DEFAULT_METHODS
from core.paths import ASSETS_DIR
from core.pipelines import target_for


def test_default_methods_give_distinct_maps_at_the_default_layer(offline_bundle, offline_explainer):
    photo = read_image(ASSETS_DIR / "sample_car.jpg")
    target = target_for(offline_bundle, "car")  # what the calibrated pipeline explains
    raw = offline_explainer.explain([photo], methods=DEFAULT_METHODS, target=target)[0]
    maps = {view.method: view.heatmap.values for view in render_views(photo, raw, DisplaySettings())}
    assert list(maps) == list(DEFAULT_METHODS)
    for a, b in combinations(DEFAULT_METHODS, 2):
        # at this layer Grad-CAM differs from CAM by < 0.02 and LayerCAM from Grad-CAM++ by < 0.05
        assert abs(maps[a] - maps[b]).max() > 0.1, (a, b)
