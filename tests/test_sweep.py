"""The τ sweep the browser draws while the slider moves: the same boxes as the exact ones, within the
drawing resolution, at every τ the slider can reach."""

import numpy as np
import pytest

from core.cam import RawExplanation
from core.explanation import BoxSettings, DisplaySettings, RedrawCache, localize, photo_heatmap
from core.sweep import SWEEP_MAX_SIDE, sweep_thresholds, threshold_sweep, view_sweep


def _raw(low: np.ndarray) -> RawExplanation:
    return RawExplanation(np.array([0.5, 0.5]), np.zeros(2), np.array([1.0, 0.0]),
                          {("cam", "out_relu"): low.astype(np.float32)}, "paper")


def _two_blobs() -> np.ndarray:
    """A 7×7 map with a strong blob and a weaker one apart: the boxes jump between regions as τ moves."""
    low = np.zeros((7, 7))
    low[1:3, 1:3] = [[0.6, 0.8], [0.8, 1.0]]
    low[4:6, 4:7] = 0.5
    return low


def test_thresholds_are_the_sliders_steps():
    taus = sweep_thresholds()
    assert len(taus) == 101 and taus[0] == 0.0 and taus[-1] == 1.0 and taus[37] == 0.37


@pytest.mark.parametrize("component", ["largest", "all", "peak"])
def test_sweep_boxes_match_the_exact_ones_within_the_drawing_resolution(component):
    raw, photo_shape, truth = _raw(_two_blobs()), (700, 1000), (80, 60, 520, 430)
    settings = BoxSettings(0.5, component)
    sweep = threshold_sweep(raw, "cam", "out_relu", photo_shape, settings, ground_truth=truth)
    full = photo_heatmap(raw, "cam", "out_relu", *photo_shape)
    pixel = max(photo_shape) / SWEEP_MAX_SIDE  # photo pixels per sweep pixel
    assert len(sweep) == 101
    for swept in sweep:
        exact = localize(full, BoxSettings(swept.threshold, component), truth)
        assert len(swept.localized.boxes) == len(exact.boxes), swept.threshold
        for corners, box in zip(swept.corners(), exact.boxes):
            assert np.abs(corners - box.corners).max() <= 2 * pixel, (swept.threshold, corners, box.corners)
        assert swept.localized.iou == pytest.approx(exact.iou, abs=0.02)


def test_a_small_photo_is_swept_at_its_own_size_exactly():
    raw, photo_shape = _raw(_two_blobs()), (120, 200)
    sweep = threshold_sweep(raw, "cam", "out_relu", photo_shape, BoxSettings())
    full = photo_heatmap(raw, "cam", "out_relu", *photo_shape)
    for swept in sweep:
        exact = localize(full, BoxSettings(swept.threshold))
        assert [c.tolist() for c in swept.corners()] == [b.corners.tolist() for b in exact.boxes]


def test_flat_map_sweeps_to_no_box_at_any_tau():
    sweep = threshold_sweep(_raw(np.zeros((7, 7))), "cam", "out_relu", (300, 400), BoxSettings())
    assert all(not s.localized.boxes for s in sweep)


def test_view_sweep_is_reused_while_only_tau_moves():
    raw, photo = _raw(_two_blobs()), np.zeros((300, 400, 3), np.uint8)
    cache = RedrawCache()
    first = view_sweep(photo, raw, "cam", "out_relu", DisplaySettings(BoxSettings(0.3)), None, cache)
    again = view_sweep(photo, raw, "cam", "out_relu", DisplaySettings(BoxSettings(0.8), alpha=0.2), None, cache)
    other = view_sweep(photo, raw, "cam", "out_relu", DisplaySettings(BoxSettings(0.3, "all")), None, cache)
    assert again is first and other is not first


def test_rotated_boxes_have_no_sweep_they_wait_for_the_server():
    raw, photo = _raw(_two_blobs()), np.zeros((300, 400, 3), np.uint8)
    assert view_sweep(photo, raw, "cam", "out_relu", DisplaySettings(BoxSettings(0.3, "largest", "rotated"))) is None
