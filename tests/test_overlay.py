"""Colormaps, blending and box drawing: exact pixels on tiny arrays."""

import cv2
import numpy as np
import pytest

from core.boxes import InvalidBoxError
from core.localize import boxes_from_heatmap
from core.overlay import COLORMAPS, blend, colorize, draw_box, draw_boxes

RED, GREEN = (255, 0, 0), (0, 255, 0)


def _photo(height: int = 8, width: int = 10) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def test_jet_is_red_at_one_and_blue_at_zero_in_rgb_order():
    colours = colorize(np.array([[0.0, 1.0]]), "jet")
    assert colours.shape == (1, 2, 3) and colours.dtype == np.uint8
    low, high = colours[0, 0].astype(int), colours[0, 1].astype(int)
    assert high[0] > high[2] and low[2] > low[0]  # R > B at 1.0, B > R at 0.0


def test_gray_repeats_the_level_in_every_channel():
    colours = colorize(np.array([[0.0, 0.5, 1.0]]), "gray")
    np.testing.assert_array_equal(colours[0], [[0, 0, 0], [128, 128, 128], [255, 255, 255]])


@pytest.mark.parametrize("name", COLORMAPS)
def test_every_listed_colormap_works(name):
    colours = colorize(np.linspace(0, 1, 12).reshape(3, 4), name)
    assert colours.shape == (3, 4, 3)
    assert len({tuple(c) for c in colours.reshape(-1, 3)}) > 1


def test_unknown_colormap_lists_the_valid_ones():
    with pytest.raises(ValueError, match="jet.*viridis"):
        colorize(np.zeros((2, 2)), "rainbowish")


def test_colorize_rejects_values_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        colorize(np.array([[0.0, 2.0]]))
    with pytest.raises(ValueError, match="NaN"):
        colorize(np.array([[0.0, np.nan]]))


def test_blend_alpha_zero_returns_the_photo_and_alpha_one_the_colormap():
    photo = _photo()
    heat = np.linspace(0, 1, 80, dtype=np.float32).reshape(8, 10)
    np.testing.assert_array_equal(blend(photo, heat, alpha=0.0), photo)
    np.testing.assert_array_equal(blend(photo, heat, alpha=1.0, colormap="magma"), colorize(heat, "magma"))


def test_blend_half_is_the_rounded_mean():
    photo = np.full((2, 2, 3), 100, dtype=np.uint8)
    heat = np.ones((2, 2), dtype=np.float32)  # gray at 1.0 = 255
    np.testing.assert_array_equal(blend(photo, heat, 0.5, "gray"), np.full((2, 2, 3), 178))  # 177.5 → 178


def test_blend_resizes_a_small_heatmap_and_leaves_the_input_alone():
    photo = _photo(14, 14)
    before = photo.copy()
    heat = np.zeros((7, 7), dtype=np.float32)
    heat[0, 0] = 1.0
    out = blend(photo, heat, 1.0, "gray")
    assert out.shape == (14, 14, 3)
    assert out[0, 0, 0] == 255 and out[13, 13, 0] == 0
    np.testing.assert_array_equal(photo, before)
    assert out is not photo


def test_blend_rejects_bad_alpha_and_images():
    with pytest.raises(ValueError, match="alpha"):
        blend(_photo(), np.zeros((8, 10)), 1.5)
    with pytest.raises(TypeError, match="uint8"):
        blend(_photo().astype(np.float32), np.zeros((8, 10)))
    with pytest.raises(ValueError, match="shape"):
        blend(np.zeros((8, 10, 4), dtype=np.uint8), np.zeros((8, 10)))


def test_blend_accepts_a_greyscale_photo():
    grey = np.full((4, 4), 60, dtype=np.uint8)
    np.testing.assert_array_equal(blend(grey, np.zeros((4, 4)), 0.0), np.full((4, 4, 3), 60))


def test_draw_box_colours_exactly_the_edge_pixels_of_the_box():
    image = np.zeros((8, 10, 3), dtype=np.uint8)
    out = draw_box(image, (2, 1, 7, 5), color=RED, thickness=1)
    painted = np.all(out == RED, axis=2)
    expected = np.zeros((8, 10), dtype=bool)
    expected[1, 2:7] = expected[4, 2:7] = True  # top and bottom rows of the box
    expected[1:5, 2] = expected[1:5, 6] = True  # left and right columns
    np.testing.assert_array_equal(painted, expected)
    assert image.max() == 0  # input untouched


def test_draw_box_thick_line_stays_inside_the_box():
    out = draw_box(np.zeros((10, 10, 3), dtype=np.uint8), (1, 1, 9, 9), color=GREEN, thickness=2)
    painted = np.all(out == GREEN, axis=2)
    assert painted[1:3, 1:9].all() and painted[7:9, 1:9].all()
    assert not painted[0].any() and not painted[9].any() and not painted[3:7, 3:7].any()


def test_draw_box_clips_a_box_partly_outside_and_rejects_broken_ones():
    out = draw_box(np.zeros((6, 6, 3), dtype=np.uint8), (-3, -3, 3, 3), color=RED, thickness=1)
    assert np.all(out[0, 0:3] == RED) and np.all(out[2, 0:3] == RED)
    with pytest.raises(InvalidBoxError):
        draw_box(np.zeros((6, 6, 3), dtype=np.uint8), (np.nan, 0, 3, 3))
    with pytest.raises(ValueError, match="color"):
        draw_box(np.zeros((6, 6, 3), dtype=np.uint8), (0, 0, 3, 3), color=(300, 0, 0))


def test_draw_box_label_gets_a_filled_patch():
    image = np.zeros((120, 160, 3), dtype=np.uint8)
    plain = draw_box(image, (40, 60, 120, 110), color=GREEN)
    labelled = draw_box(image, (40, 60, 120, 110), color=GREEN, label="car 0.93")
    patch = labelled[:60, 40:]  # the label sits above the box
    assert np.all(plain[:60] == 0)
    assert np.all(patch == GREEN, axis=2).sum() > 50  # background patch in the box colour
    assert (np.all(patch == 0, axis=2) & (patch.sum(axis=2) == 0)).sum() > 5  # dark ink on bright green


def test_draw_box_label_moves_inside_when_box_touches_the_top():
    labelled = draw_box(np.zeros((120, 160, 3), dtype=np.uint8), (10, 0, 150, 100), color=RED, label="x")
    assert np.all(labelled[5:10, 12:20] == RED, axis=2).any()


def test_draw_box_draws_a_rotated_localization_as_a_polygon_inside_its_box():
    mask = np.zeros((60, 60), dtype=np.uint8)
    cv2.fillPoly(mask, [np.array([[30, 5], [55, 30], [30, 55], [5, 30]], dtype=np.int32)], 1)
    (loc,) = boxes_from_heatmap(mask.astype(np.float32), 0.5, shape="rotated")
    out = draw_box(np.zeros((60, 60, 3), dtype=np.uint8), loc, color=RED, thickness=1)
    painted = out[:, :, 0] > 127  # anti-aliased fringe pixels are faint
    rows, cols = np.nonzero(painted)
    x1, y1, x2, y2 = loc.box
    assert cols.min() >= np.floor(x1) and cols.max() < np.ceil(x2)
    assert rows.min() >= np.floor(y1) and rows.max() < np.ceil(y2)
    assert painted[30, 4:7].any() and painted[4:7, 30].any()  # the diamond's left and top tips
    assert not painted[5:10, 5:10].any() and not painted[25:35, 25:35].any()  # not the bounding box or inside


def test_draw_box_axis_aligned_rotated_localization_matches_the_rect_outline():
    heat = np.zeros((20, 20), dtype=np.float32)
    heat[4:15, 3:12] = 1.0
    (rotated,) = boxes_from_heatmap(heat, 0.5, shape="rotated")
    (rect,) = boxes_from_heatmap(heat, 0.5)
    image = np.zeros((20, 20, 3), dtype=np.uint8)
    drawn_rotated = draw_box(image, rotated, color=RED, thickness=1)[:, :, 0] > 127
    drawn_rect = draw_box(image, rect, color=RED, thickness=1)[:, :, 0] > 127
    np.testing.assert_array_equal(drawn_rotated, drawn_rect)


def test_draw_boxes_many_colours_and_labels_on_one_copy():
    image = np.zeros((20, 20, 3), dtype=np.uint8)
    out = draw_boxes(image, np.array([[0, 0, 5, 5], [10, 10, 20, 20]]), color=[RED, GREEN], thickness=1)
    assert tuple(out[0, 0]) == RED and tuple(out[19, 19]) == GREEN
    assert image.max() == 0
    with pytest.raises(ValueError, match="labels"):
        draw_boxes(image, [[0, 0, 5, 5]], labels=["a", "b"])


def test_draw_boxes_accepts_localizations_and_a_single_box():
    heat = np.zeros((20, 20), dtype=np.float32)
    heat[2:6, 2:8] = 1.0
    found = boxes_from_heatmap(heat, 0.5, component="all")
    out = draw_boxes(np.zeros((20, 20, 3), dtype=np.uint8), found, color=RED, thickness=1)
    assert tuple(out[2, 2]) == RED and tuple(out[5, 7]) == RED and tuple(out[3, 4]) == (0, 0, 0)
    single = draw_boxes(np.zeros((20, 20, 3), dtype=np.uint8), (2, 2, 8, 6), color=RED, thickness=1)
    np.testing.assert_array_equal(single, out)


def test_auto_thickness_grows_with_the_photo():
    small = draw_box(np.zeros((224, 224, 3), dtype=np.uint8), (10, 10, 100, 100))
    large = draw_box(np.zeros((1000, 1000, 3), dtype=np.uint8), (10, 10, 500, 500))
    assert np.all(small[10:12, 50] == RED, axis=1).tolist() == [True, False]
    assert np.all(large[10:16, 200] == RED, axis=1).tolist() == [True] * 5 + [False]
