"""A box dragged on the shown photo becomes a box in the photo's own pixels."""

from __future__ import annotations

import pytest

from ui.truth_box import _a_click, _inside, shown_size, to_photo_pixels


def test_a_1200_px_photo_shown_at_600_px_gives_boxes_in_photo_pixels():
    drawn = {"left": 50, "top": 20, "width": 100, "height": 40}
    assert to_photo_pixels(drawn, (300, 600), (600, 1200)) == (100.0, 40.0, 300.0, 120.0)


def test_each_axis_scales_on_its_own():
    drawn = {"left": 10, "top": 10, "width": 20, "height": 20}
    assert to_photo_pixels(drawn, (100, 200), (300, 400)) == (20.0, 30.0, 60.0, 90.0)


@pytest.mark.parametrize(("photo", "shown"), [((412, 620), (412, 620)), ((520, 800), (416, 640)),
                                              ((600, 1200), (320, 640))])
def test_the_canvas_is_never_wider_than_640_and_keeps_the_aspect(photo, shown):
    assert shown_size(*photo) == shown


def test_a_click_or_a_box_outside_the_photo_is_not_taken_as_a_drawing():
    assert _a_click((400, 300, 405, 305), 520, 800)  # 4 × 4 canvas pixels: fabric's box for a plain click
    assert not _a_click((117, 183, 723, 406), 520, 800)
    assert _inside((0, 0, 800, 520), 520, 800) and _inside((-0.5, 0, 800.6, 520), 520, 800)  # rounding
    assert not _inside((-20, 0, 800, 520), 520, 800) and not _inside((10, 10, 900, 500), 520, 800)
