"""Heatmap → boxes on synthetic blobs with known answers."""

import cv2
import numpy as np
import pytest

from core.heatmaps import upsample
from core.localize import Localization, box_from_heatmap, boxes_from_heatmap


def _two_blobs() -> np.ndarray:
    """A big dim blob (4x6 = 24 px at 0.6) and a small bright one (2x2 = 4 px, peak 1.0)."""
    heat = np.zeros((20, 30), dtype=np.float32)
    heat[2:6, 3:9] = 0.6
    heat[12:14, 20:22] = 0.9
    heat[13, 21] = 1.0
    return heat


def test_single_rectangle_blob_gives_exactly_its_rectangle():
    heat = np.zeros((10, 12), dtype=np.float32)
    heat[3:7, 2:10] = 1.0
    (loc,) = boxes_from_heatmap(heat, 0.5)
    np.testing.assert_array_equal(loc.box, [2, 3, 10, 7])
    np.testing.assert_array_equal(loc.corners, [[2, 3], [10, 3], [10, 7], [2, 7]])
    assert (loc.area_px, loc.mass, loc.peak, loc.shape) == (32, 32.0, 1.0, "rect")


def test_blob_touching_the_photo_edges_reaches_them():
    heat = np.zeros((5, 6), dtype=np.float32)
    heat[2:, 3:] = 1.0
    np.testing.assert_array_equal(box_from_heatmap(heat).box, [3, 2, 6, 5])


def test_largest_and_peak_choose_different_blobs():
    heat = _two_blobs()
    (largest,) = boxes_from_heatmap(heat, 0.5, component="largest")
    (peak,) = boxes_from_heatmap(heat, 0.5, component="peak")
    np.testing.assert_array_equal(largest.box, [3, 2, 9, 6])
    np.testing.assert_array_equal(peak.box, [20, 12, 22, 14])
    assert peak.peak == 1.0 and largest.peak == pytest.approx(0.6)
    assert peak.mass == pytest.approx(3 * 0.9 + 1.0)


def test_all_returns_every_blob_largest_first():
    found = boxes_from_heatmap(_two_blobs(), 0.5, component="all")
    assert [loc.area_px for loc in found] == [24, 4]
    np.testing.assert_array_equal(found[1].box, [20, 12, 22, 14])


def test_threshold_above_dim_blob_keeps_only_bright_one():
    found = boxes_from_heatmap(_two_blobs(), 0.7, component="all")
    assert len(found) == 1 and found[0].area_px == 4


def test_diagonal_pixels_are_one_component_8_connectivity():
    heat = np.zeros((4, 4), dtype=np.float32)
    heat[[0, 1, 2], [0, 1, 2]] = 1.0
    (loc,) = boxes_from_heatmap(heat, 0.5, component="all")
    np.testing.assert_array_equal(loc.box, [0, 0, 3, 3])


def test_threshold_is_inclusive_and_relative_to_the_peak():
    heat = np.array([[0.25, 0.5, 1.0, 0.5, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(box_from_heatmap(heat, 0.5).box, [1, 0, 4, 1])  # 0.5 >= 0.5 counts
    # the same map at peak 0.5 selects the same pixels
    np.testing.assert_array_equal(box_from_heatmap(heat * 0.5, 0.5).box, [1, 0, 4, 1])


def test_threshold_one_selects_only_the_maximum_and_zero_selects_everything():
    heat = np.array([[0.0, 0.3, 0.8], [0.8, 0.1, 0.2]], dtype=np.float32)
    found = boxes_from_heatmap(heat, 1.0, component="all")
    assert [loc.box.tolist() for loc in found] == [[2, 0, 3, 1], [0, 1, 1, 2]]  # ties: topmost first
    np.testing.assert_array_equal(box_from_heatmap(heat, 0.0).box, [0, 0, 3, 2])


def test_threshold_one_still_finds_the_peak_of_an_upsampled_map():
    grid = np.zeros((7, 7), dtype=np.float32)
    grid[2, 5] = 1.0
    heat = upsample(grid, 224, 224)
    assert heat.max() < 1.0  # resizing lowered the peak: an absolute cut at 1.0 would find nothing
    (loc,) = boxes_from_heatmap(heat, 1.0)
    np.testing.assert_array_equal(loc.box, [175, 79, 177, 81])


@pytest.mark.parametrize("heat", [np.zeros((6, 6)), np.full((6, 6), 0.4)])
@pytest.mark.parametrize("threshold", [0.0, 0.5, 1.0])
def test_flat_map_has_no_boxes(heat, threshold):
    assert boxes_from_heatmap(heat, threshold, component="all") == []
    assert box_from_heatmap(heat, threshold) is None


def test_peak_mode_with_tied_maxima_takes_the_largest_region():
    heat = np.zeros((6, 10), dtype=np.float32)
    heat[0, 0] = 1.0
    heat[3:6, 5:9] = 1.0
    (loc,) = boxes_from_heatmap(heat, 0.5, component="peak")
    assert loc.area_px == 12


def test_axis_aligned_blob_rotated_shape_gives_the_same_rectangle():
    heat = np.zeros((10, 12), dtype=np.float32)
    heat[3:7, 2:10] = 1.0
    (loc,) = boxes_from_heatmap(heat, 0.5, shape="rotated")
    assert loc.shape == "rotated"
    np.testing.assert_allclose(loc.box, [2, 3, 10, 7], atol=1e-4)
    expected = {(2, 3), (10, 3), (10, 7), (2, 7)}
    assert {tuple(np.round(c).astype(int)) for c in loc.corners} == expected


def test_rotated_blob_corners_close_to_the_drawn_polygon():
    drawn = np.array([[40, 10], [90, 60], [60, 90], [10, 40]], dtype=np.int32)  # a 45° rectangle
    mask = np.zeros((100, 100), dtype=np.uint8)
    cv2.fillPoly(mask, [drawn], 1)
    (loc,) = boxes_from_heatmap(mask.astype(np.float32), 0.5, shape="rotated")
    expected = drawn + 0.5  # OpenCV pixel centres → project coordinates
    for corner in expected:
        assert np.linalg.norm(loc.corners - corner, axis=1).min() < 1.5
    rect = boxes_from_heatmap(mask.astype(np.float32), 0.5)[0]
    rotated_area = cv2.contourArea(loc.corners.astype(np.float32))
    assert rotated_area < 0.6 * (rect.box[2] - rect.box[0]) * (rect.box[3] - rect.box[1])
    np.testing.assert_allclose(loc.box, rect.box, atol=1.0)


def test_rotated_box_is_clipped_to_the_photo():
    mask = np.zeros((30, 30), dtype=np.uint8)
    cv2.fillPoly(mask, [np.array([[0, 5], [12, 0], [29, 20], [15, 29]], dtype=np.int32)], 1)
    (loc,) = boxes_from_heatmap(mask.astype(np.float32), 0.5, shape="rotated")
    assert loc.box.min() >= 0.0 and loc.box[2] <= 30.0 and loc.box[3] <= 30.0


def test_localization_arrays_are_read_only():
    loc = box_from_heatmap(_two_blobs())
    assert isinstance(loc, Localization)
    with pytest.raises(ValueError, match="read-only"):
        loc.box[0] = 99.0


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan")])
def test_threshold_outside_unit_interval_is_rejected(threshold):
    with pytest.raises(ValueError, match="threshold"):
        boxes_from_heatmap(_two_blobs(), threshold)


@pytest.mark.parametrize("heat, message", [
    (np.zeros(5), "2-D"),
    (np.zeros((2, 2, 3)), "2-D"),
    (np.array([[0.0, np.nan]]), "NaN"),
    (np.array([[0.0, 3.0]]), r"\[0, 1\]"),
])
def test_bad_heatmaps_are_rejected(heat, message):
    with pytest.raises(ValueError, match=message):
        boxes_from_heatmap(heat, 0.5)


def test_unknown_modes_are_rejected():
    with pytest.raises(ValueError, match="component"):
        boxes_from_heatmap(_two_blobs(), 0.5, component="biggest")
    with pytest.raises(ValueError, match="shape"):
        boxes_from_heatmap(_two_blobs(), 0.5, shape="ellipse")
