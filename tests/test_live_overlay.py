"""What the live overlay component is given: the blend, the server's exact boxes drawn as
``core.explanation.draw_predicted`` draws them, and the sweep when the browser asked for it."""

import numpy as np

from core.box_correction import BoxCorrection
from core.cam import RawExplanation
from core.explanation import BoxSettings, DisplaySettings, render_views
from core.sweep import SWEEP_MAX_SIDE, threshold_sweep
from ui.live_overlay import overlay_data


def _raw() -> RawExplanation:
    low = np.zeros((7, 7), np.float32)
    low[2:5, 1:4] = 1.0
    return RawExplanation(np.array([1.0]), np.zeros(1), np.array([1.0]), {("cam", "out_relu"): low}, "paper")


def _view(display: DisplaySettings, truth=(50, 80, 250, 260)):
    photo = np.full((350, 500, 3), 120, np.uint8)
    (view,) = render_views(photo, _raw(), display, truth)
    return view


def test_exact_boxes_are_the_views_own_with_the_iou_label():
    view = _view(DisplaySettings(BoxSettings(0.5)))
    data = overlay_data(view, b"\xff\xd8jpeg", None, 0.5, "photo|largest")
    (box,) = data["boxes"]
    xs, ys = zip(*box["points"])
    assert [min(xs), min(ys), max(xs), max(ys)] == view.localized.boxes[0].box.tolist()
    assert box["label"] == f"IoU {view.localized.iou:.2f}" and box["color"] == "#ff2828" and box["ink"] == "#ffffff"
    assert box["width"] == 2 and data["width"] == 500 and data["height"] == 350  # 2 px lines at 350 px, as drawn
    assert data["image"] == "data:image/jpeg;base64,/9hqcGVn" and data["sweep"] is None and data["tau"] == 0.5


def test_a_corrected_box_is_drawn_over_its_thin_raw_region():
    shift = BoxCorrection(np.vstack([np.eye(4), [0.02, 0.0, 0.02, 0.0]]))  # 2 % of 500 px: 10 px right
    display = DisplaySettings(BoxSettings(0.5), thresholds=(("cam", 0.5),), corrections=(("cam", shift),))
    view = _view(display)
    raw_region, corrected = overlay_data(view, b"", None, 0.5, "t")["boxes"]
    assert raw_region["width"] == 1 and raw_region["label"] is None and raw_region["color"] == "#ffaaaa"
    xs, _ = zip(*corrected["points"])
    assert min(xs) == view.localized.boxes[0].box[0] + 10 and corrected["label"].startswith("IoU ")


def test_sweep_holds_every_tau_in_photo_coordinates():
    view = _view(DisplaySettings(BoxSettings(0.5)))
    sweep = threshold_sweep(_raw(), "cam", "out_relu", (350, 500), BoxSettings(0.5), ground_truth=(50, 80, 250, 260))
    data = overlay_data(view, b"", sweep, 0.5, "t")
    assert len(data["sweep"]) == 101 and data["step"] == 0.01
    (at_half,) = data["sweep"][50]
    exact = np.array(data["boxes"][0]["points"])
    assert np.abs(np.array(at_half["points"]) - exact).max() <= 2 * 500 / SWEEP_MAX_SIDE
    assert data["sweep"][100] and all(len(boxes) == 1 for boxes in data["sweep"][1:])
