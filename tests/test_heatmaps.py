"""Heatmap normalisation (every degenerate case) and centre-aligned upsampling."""

import numpy as np
import pytest

from core.heatmaps import normalize_map, upsample


def test_minmax_scales_to_zero_one():
    result = normalize_map(np.array([[2.0, 4.0], [6.0, 10.0]]), relu=False)
    np.testing.assert_allclose(result.values, [[0.0, 0.25], [0.5, 1.0]])
    assert result.values.dtype == np.float32
    assert (result.peak, result.floor, result.flat, result.status) == (10.0, 2.0, False, None)


def test_max_mode_is_the_original_studys_division_by_max():
    result = normalize_map(np.array([[2.0, 4.0], [-6.0, 8.0]]), relu=False, mode="max")
    np.testing.assert_allclose(result.values, [[0.25, 0.5], [0.0, 1.0]])


def test_relu_drops_negative_evidence_before_scaling():
    result = normalize_map(np.array([[-4.0, 0.0], [1.0, 2.0]]), relu=True)
    np.testing.assert_allclose(result.values, [[0.0, 0.0], [0.5, 1.0]])
    assert result.floor == -4.0  # raw statistics are kept


def test_minmax_without_relu_keeps_negatives_as_low_values():
    result = normalize_map(np.array([[-4.0, 0.0], [2.0, 4.0]]), relu=False)
    np.testing.assert_allclose(result.values, [[0.0, 0.5], [0.75, 1.0]])


def test_constant_map_is_flat_zeros_not_nan():
    result = normalize_map(np.full((3, 3), 7.5), relu=False)
    assert result.flat
    np.testing.assert_array_equal(result.values, np.zeros((3, 3)))
    assert "flat map" in result.status


def test_tiny_float_noise_counts_as_flat():
    raw = np.full((4, 4), 1000.0, dtype=np.float32)
    raw[0, 0] += 1e-4
    assert normalize_map(raw, relu=False).flat


def test_all_zero_map_is_flat():
    result = normalize_map(np.zeros((2, 5)), relu=True, mode="max")
    assert result.flat and not result.all_negative
    np.testing.assert_array_equal(result.values, 0.0)


def test_all_negative_map_with_relu_is_flat_and_flagged():
    result = normalize_map(np.array([[-1.0, -3.0], [-2.0, -0.5]]), relu=True)
    assert result.flat and result.all_negative
    np.testing.assert_array_equal(result.values, 0.0)
    assert "no positive evidence" in result.status and "flat map" in result.status


def test_all_negative_map_in_max_mode_is_flat_not_inverted():
    result = normalize_map(np.array([[-1.0, -3.0], [-2.0, -0.5]]), relu=False, mode="max")
    assert result.flat
    np.testing.assert_array_equal(result.values, 0.0)


def test_all_negative_map_minmax_without_relu_still_shows_the_pattern():
    result = normalize_map(np.array([[-1.0, -3.0]]), relu=False)
    np.testing.assert_allclose(result.values, [[1.0, 0.0]])
    assert result.all_negative and not result.flat


def test_nan_and_inf_are_replaced_and_flagged():
    raw = np.array([[np.nan, 1.0], [3.0, np.inf], [-np.inf, 2.0]])
    result = normalize_map(raw, relu=False)
    assert result.had_nan and result.nonfinite_count == 3
    # NaN and -inf become the finite minimum (1), +inf the finite maximum (3)
    np.testing.assert_allclose(result.values, [[0.0, 0.0], [1.0, 1.0], [0.0, 0.5]])
    assert "3 NaN/infinite" in result.status


def test_all_nan_map_gives_zeros():
    result = normalize_map(np.full((2, 2), np.nan), relu=True)
    assert result.flat and result.had_nan
    assert np.isfinite(result.values).all() and result.values.max() == 0.0


def test_input_is_not_modified_and_values_are_read_only():
    raw = np.array([[np.nan, -1.0, 2.0]])
    result = normalize_map(raw, relu=True)
    np.testing.assert_array_equal(raw, [[np.nan, -1.0, 2.0]])
    with pytest.raises(ValueError, match="read-only"):
        result.values[0, 0] = 0.5


@pytest.mark.parametrize("bad, error", [
    (np.zeros(4), ValueError), (np.zeros((0, 3)), ValueError), (np.zeros((2, 2, 1)), ValueError),
    (np.array([["a", "b"]]), TypeError),
])
def test_normalize_rejects_bad_input(bad, error):
    with pytest.raises(error):
        normalize_map(bad, relu=True)


def test_normalize_rejects_unknown_mode():
    with pytest.raises(ValueError, match="minmax"):
        normalize_map(np.eye(2), relu=True, mode="zscore")


def _one_hot(row: int, col: int, size: int = 7) -> np.ndarray:
    grid = np.zeros((size, size), dtype=np.float32)
    grid[row, col] = 1.0
    return grid


def test_upsample_one_hot_peak_lands_in_the_centre_of_its_cell():
    up = upsample(_one_hot(2, 5), 224, 224)
    assert up.shape == (224, 224) and up.dtype == np.float32
    # cell (2, 5) covers rows 64..95 and columns 160..191; its centre lies between pixels 79/80 and 175/176
    peak_rows, peak_cols = np.nonzero(up == up.max())
    assert set(peak_rows) == {79, 80} and set(peak_cols) == {175, 176}


def test_upsample_weighted_centre_matches_cell_centre_for_uneven_scale():
    up = upsample(_one_hot(3, 1), 100, 150).astype(np.float64)
    rows, cols = np.mgrid[0:100, 0:150] + 0.5  # pixel centres in the project's edge convention
    centre_y = (up * rows).sum() / up.sum()
    centre_x = (up * cols).sum() / up.sum()
    assert centre_y == pytest.approx(3.5 * 100 / 7, abs=0.5)
    assert centre_x == pytest.approx(1.5 * 150 / 7, abs=0.5)


def test_upsample_nearest_gives_exact_blocks():
    up = upsample(_one_hot(2, 5), 224, 224, interpolation="nearest")
    expected = np.zeros((224, 224), dtype=np.float32)
    expected[64:96, 160:192] = 1.0
    np.testing.assert_array_equal(up, expected)


def test_upsample_bicubic_stays_inside_input_range():
    up = upsample(_one_hot(3, 3), 70, 70, interpolation="bicubic")
    assert up.min() >= 0.0 and up.max() <= 1.0
    assert up.max() > 0.9  # the peak survives


def test_upsample_bilinear_stays_inside_input_range():
    grid = np.random.default_rng(1).uniform(-2, 3, size=(7, 7))
    up = upsample(grid, 61, 93)
    assert up.min() >= grid.min() - 1e-6 and up.max() <= grid.max() + 1e-6


def test_upsample_same_size_returns_a_copy():
    grid = np.arange(6, dtype=np.float32).reshape(2, 3)
    up = upsample(grid, 2, 3)
    np.testing.assert_array_equal(up, grid)
    assert up is not grid


@pytest.mark.parametrize("kwargs, message", [
    (dict(map2d=np.zeros(5), height=4, width=4), "2-D"),
    (dict(map2d=np.full((2, 2), np.nan), height=4, width=4), "NaN"),
    (dict(map2d=np.zeros((2, 2)), height=0, width=4), "height"),
    (dict(map2d=np.zeros((2, 2)), height=4, width=2.5), "width"),
    (dict(map2d=np.zeros((2, 2)), height=4, width=4, interpolation="area"), "bilinear"),
])
def test_upsample_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        upsample(**kwargs)
