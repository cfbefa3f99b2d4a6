"""Box convention, conversions, validation and IoU — exact hand-computed answers."""

import numpy as np
import pytest

from core.boxes import (
    InvalidBoxError, box_area, check_box, clip_box, from_devkit, from_tfds, iou, iou_matrix, to_devkit,
    paired_ious, to_tfds,
)


def test_from_tfds_swaps_axes_and_scales_to_pixels():
    box = from_tfds([0.1, 0.2, 0.5, 1.0], height=100, width=200)
    np.testing.assert_array_equal(box, [40.0, 10.0, 200.0, 50.0])
    assert box.dtype == np.float64


def test_tfds_round_trip_on_many_boxes():
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.25, 0.5, 0.75, 0.625]])
    projected = from_tfds(boxes, 80, 64)
    np.testing.assert_array_equal(projected, [[0, 0, 64, 80], [32, 20, 40, 60]])
    np.testing.assert_allclose(to_tfds(projected, 80, 64), boxes)


def test_devkit_box_1_to_10_is_ten_pixels_wide():
    box = from_devkit([1, 1, 10, 10])
    np.testing.assert_array_equal(box, [0.0, 0.0, 10.0, 10.0])
    assert box_area(box) == 100.0


def test_to_devkit_inverts_from_devkit_and_returns_ints():
    devkit = np.array([[39, 116, 569, 375], [1, 1, 1, 1]])
    back = to_devkit(from_devkit(devkit))
    np.testing.assert_array_equal(back, devkit)
    assert back.dtype.kind == "i"


def test_single_box_in_single_box_out():
    assert from_devkit((5, 6, 7, 8)).shape == (4,)
    assert clip_box((5, 6, 7, 8), 10, 10).shape == (4,)


@pytest.mark.parametrize("bad", [[1, 2, 3], [[1, 2, 3, 4, 5]], np.zeros((2, 2, 4))])
def test_wrong_shape_is_rejected(bad):
    with pytest.raises(ValueError, match="shape"):
        from_devkit(bad)


def test_bad_photo_size_is_rejected():
    with pytest.raises(ValueError, match="positive"):
        from_tfds([0, 0, 1, 1], 0, 10)


def test_clip_box_limits_to_photo_edges():
    np.testing.assert_array_equal(clip_box([-5, 2, 30, 12], height=10, width=20), [0, 2, 20, 10])


def test_check_box_accepts_a_valid_box():
    np.testing.assert_array_equal(check_box([1, 2, 3, 4], 10, 10), [1, 2, 3, 4])


@pytest.mark.parametrize("box, problem", [
    ([0, np.nan, 3, 4], "NaN"),
    ([0, 0, np.inf, 4], "NaN or infinite"),
    ([0, 5, 3, 4], "min > max"),
    ([2, 0, 2, 4], "zero area"),
])
def test_check_box_rejects_broken_boxes(box, problem):
    with pytest.raises(InvalidBoxError, match=problem):
        check_box(box)


def test_check_box_names_the_offending_row():
    with pytest.raises(InvalidBoxError, match=r"box 1 \[0.0, 5.0, 3.0, 4.0\]"):
        check_box([[0, 0, 1, 1], [0, 5, 3, 4]])


def test_tfds_mock_box_with_ymin_above_ymax_is_rejected():
    with pytest.raises(InvalidBoxError, match="min > max"):
        check_box(from_tfds([0.8, 0.1, 0.2, 0.9], 100, 100))


def test_check_box_outside_photo():
    with pytest.raises(InvalidBoxError, match="entirely outside"):
        check_box([20, 0, 30, 5], height=10, width=10, policy="clip")
    with pytest.raises(InvalidBoxError, match="beyond"):
        check_box([5, 0, 30, 5], height=10, width=10)
    np.testing.assert_array_equal(check_box([5, -1, 30, 5], 10, 10, policy="clip"), [5, 0, 10, 5])


def test_check_box_touching_the_edge_from_outside_is_outside():
    with pytest.raises(InvalidBoxError, match="entirely outside"):
        check_box([-4, 0, 0, 5], 10, 10, policy="clip")


def test_check_box_bad_arguments():
    with pytest.raises(ValueError, match="policy"):
        check_box([0, 0, 1, 1], policy="fix")
    with pytest.raises(ValueError, match="both"):
        check_box([0, 0, 1, 1], height=5)


def test_box_area_one_and_many_with_degenerate_as_zero():
    assert box_area([0, 0, 4, 3]) == 12.0
    np.testing.assert_array_equal(box_area([[0, 0, 4, 3], [5, 5, 2, 9], [np.nan, 0, 1, 1]]), [12.0, 0.0, 0.0])


def test_iou_identical_is_one():
    assert iou([3, 4, 10, 12], [3, 4, 10, 12]) == 1.0


def test_iou_half_overlap():
    # intersection 5x10 = 50, union 100 + 100 - 50 = 150
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(1 / 3)


def test_iou_touching_and_disjoint_are_zero():
    assert iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0
    assert iou([0, 0, 10, 10], [10, 10, 20, 20]) == 0.0
    assert iou([0, 0, 1, 1], [50, 50, 60, 60]) == 0.0


def test_iou_containment_is_area_ratio():
    assert iou([0, 0, 10, 10], [2, 2, 7, 6]) == pytest.approx(20 / 100)


def test_iou_zero_area_and_nan_boxes_are_zero_not_nan():
    assert iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0
    assert iou([5, 5, 5, 9], [0, 0, 10, 10]) == 0.0
    assert iou([np.nan] * 4, [0, 0, 10, 10]) == 0.0
    assert iou([10, 10, 0, 0], [0, 0, 10, 10]) == 0.0


def test_iou_rejects_many_boxes():
    with pytest.raises(ValueError, match="iou_matrix"):
        iou([[0, 0, 1, 1], [0, 0, 2, 2]], [0, 0, 1, 1])


def test_iou_matrix_values_and_shape():
    a = np.array([[0, 0, 2, 2], [1, 1, 3, 3]])
    b = np.array([[0, 0, 2, 2], [1, 1, 3, 3], [4, 4, 5, 5]])
    expected = np.array([[1.0, 1 / 7, 0.0], [1 / 7, 1.0, 0.0]])
    np.testing.assert_allclose(iou_matrix(a, b), expected)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_iou_matrix_never_above_one_for_random_boxes():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 100, size=(50, 2, 2))
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
    m = iou_matrix(boxes, boxes)
    assert np.isfinite(m).all() and m.max() <= 1.0 and m.min() >= 0.0
    np.testing.assert_allclose(np.diag(m), 1.0)
    np.testing.assert_allclose(m, m.T)


def test_tfds_to_project_iou_round_trip():
    height, width = 200, 400
    truth = from_tfds([0.25, 0.25, 0.75, 0.5], height, width)  # (100, 50, 200, 150)
    np.testing.assert_array_equal(truth, [100, 50, 200, 150])
    shifted = truth + [50, 0, 50, 0]  # 50 px right: overlap 50x100 = 5000, union 15000
    assert iou(truth, shifted) == pytest.approx(1 / 3)
    assert iou(to_tfds(truth, height, width), to_tfds(truth, height, width)) == 1.0


def test_devkit_conversion_gives_expected_iou():
    # devkit (1,1,10,10) = (0,0,10,10); devkit (6,1,15,10) = (5,0,15,10): the half-overlap case
    assert iou(from_devkit([1, 1, 10, 10]), from_devkit([6, 1, 15, 10])) == pytest.approx(1 / 3)


def test_paired_ious_are_the_diagonal_of_the_matrix_missing_and_inverted_boxes_score_zero():
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1], [np.nan] * 4, [3, 3, 1, 1], [10, 10, 20, 30]], float)
    b = np.array([[1, 1, 3, 3], [0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 3, 3], [15, 10, 25, 30]], float)
    expected = np.diag(iou_matrix(a, b))
    assert np.allclose(paired_ious(a, b), expected)
    assert np.allclose(expected, [1 / 7, 1.0, 0.0, 0.0, 1 / 3])
    # broadcasting: boxes at three thresholds per photo against one truth per photo
    stacked = np.stack([a, a, a], axis=1)  # (5, 3, 4)
    assert np.allclose(paired_ious(stacked, b[:, None]), expected[:, None])
