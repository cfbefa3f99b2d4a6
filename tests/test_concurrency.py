"""Several dashboard sessions share one loaded model: results must not mix between threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from core.cam import Explainer, Target
from tests.conftest import tiny_cam_model
from core.model_spec import inspect_model


def test_parallel_explanations_match_sequential_ones():
    bundle = inspect_model(tiny_cam_model(), name="tiny", source="test", preprocessing="unit")
    shared = Explainer(bundle)  # one instance, as st.cache_resource shares it between sessions
    rng = np.random.default_rng(11)
    photos = [rng.integers(0, 256, (20 + 3 * i, 30 + 2 * i, 3), dtype=np.uint8) for i in range(20)]
    targets = [Target.of_class(i % 3) for i in range(20)]
    layers = ["features", "conv_a"]

    def work(i):
        return shared.explain([photos[i]], methods=("cam", "gradcam"), layer=layers[i % 2], target=targets[i])[0]

    with ThreadPoolExecutor(max_workers=5) as pool:
        parallel = list(pool.map(work, range(20)))
    reference = Explainer(bundle)
    for i, raw in enumerate(parallel):
        expected = reference.explain([photos[i]], methods=("cam", "gradcam"), layer=layers[i % 2],
                                     target=targets[i])[0]
        assert raw.maps.keys() == expected.maps.keys()
        for key in raw.maps:
            np.testing.assert_allclose(raw.maps[key], expected.maps[key], rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(raw.class_weights, expected.class_weights)
