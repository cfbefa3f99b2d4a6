"""The calibrated box correction: known affine maps recovered, boxes kept valid, τ chosen with it, and the
dashboard's box and IoU using it only where it was fitted."""

import numpy as np
import pytest

from core.box_correction import (
    BoxCorrection, choose_threshold_and_correction, corrected_ious, fit_correction,
)
from core.boxes import iou
from core.evaluate.report import Choice, chosen_ious
from core.explanation import BoxSettings, DisplaySettings, localize
from core.heatmaps import normalize_map
from core.pipelines import calibrated_pipelines

# the truth is the box widened by 10 % of the photo on each side and moved up by 5 %
KNOWN = BoxCorrection(np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0],
                                [-0.1, -0.05, 0.1, -0.05]]))


def _boxes(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x1, y1 = rng.uniform(0.15, 0.4, n), rng.uniform(0.15, 0.4, n)
    return np.column_stack([x1, y1, x1 + rng.uniform(0.2, 0.4, n), y1 + rng.uniform(0.2, 0.4, n)])


def test_fit_recovers_a_known_affine_bias():
    boxes = _boxes(60)
    truths = KNOWN.apply_fractions(boxes)
    fitted = fit_correction(boxes, truths, ridge=0.0)
    assert fitted.coef == pytest.approx(KNOWN.coef, abs=1e-9)
    assert corrected_ious(boxes, truths, fitted) == pytest.approx(np.ones(60))
    assert corrected_ious(boxes, truths, None).max() < 0.8  # uncorrected, every box falls short


def test_corrected_boxes_stay_inside_the_photo_and_non_empty():
    shrink_to_nothing = BoxCorrection(np.vstack([np.zeros((4, 4)), [[0.5, 0.5, 0.5, 0.5]]]))
    box = shrink_to_nothing.apply([10, 10, 50, 50], height=100, width=200)
    assert box[2] > box[0] and box[3] > box[1]
    far = BoxCorrection(np.vstack([np.eye(4) * 3, np.zeros((1, 4))])).apply([100, 50, 180, 90], 100, 200)
    assert far.min() >= 0 and far[2] <= 200 and far[3] <= 100
    missing = KNOWN.apply_fractions(np.array([[np.nan] * 4]))
    assert np.isnan(missing).all() and corrected_ious(missing, np.array([[0, 0, 1, 1.0]]), None)[0] == 0


def test_too_few_photos_give_the_identity_and_bad_matrices_are_refused():
    assert fit_correction(_boxes(1), _boxes(1, 1)).coef == pytest.approx(BoxCorrection.identity().coef)
    with pytest.raises(ValueError, match="5×4"):
        BoxCorrection(np.eye(4))
    with pytest.raises(ValueError, match="finite"):
        BoxCorrection(np.full((5, 4), np.nan))
    assert BoxCorrection.from_list(KNOWN.as_list()).coef == pytest.approx(KNOWN.coef)


def test_tau_is_chosen_where_the_corrected_boxes_fit_best():
    boxes = _boxes(40)
    truths = KNOWN.apply_fractions(boxes)
    noise = np.random.default_rng(5).uniform(0, 0.3, (40, 3, 4))
    per_tau = np.stack([boxes + noise[:, 0], boxes, boxes + noise[:, 2]], axis=1)  # τ 1 is exact
    per_tau[:5, 2] = np.nan  # no box for some photos at τ 2
    index, correction, score = choose_threshold_and_correction(per_tau, truths)
    assert index == 1 and score == pytest.approx(1.0, abs=0.01)  # the ridge costs a little
    with pytest.raises(ValueError, match=r"\(N, T, 4\)"):
        choose_threshold_and_correction(boxes, truths)


def _blob_map(height=100, width=200):
    heat = np.zeros((height, width), np.float32)
    heat[40:60, 60:140] = 1.0
    return normalize_map(heat, relu=True, mode="max")


def test_localize_applies_the_correction_to_the_main_box_only_when_asked():
    heat, truth = _blob_map(), (40.0, 35.0, 160.0, 60.0)
    raw = localize(heat, BoxSettings(0.5), truth)
    fixed = localize(heat, BoxSettings(0.5, correction=KNOWN), truth)
    expected = KNOWN.apply(raw.main_box, 100, 200)
    assert fixed.main_box == pytest.approx(expected)
    assert fixed.iou == pytest.approx(iou(expected, truth)) and fixed.iou > raw.iou
    assert fixed.boxes[0].box == pytest.approx(raw.main_box)  # the region itself is unchanged
    union = localize(heat, BoxSettings(0.5, component="all", correction=KNOWN), truth)
    assert union.corrected is None  # fitted on the largest region, not on unions


def test_display_uses_a_correction_only_with_its_methods_own_tau():
    display = DisplaySettings(BoxSettings(0.3), thresholds=(("cam", 0.5),), corrections=(("cam", KNOWN),))
    assert display.box_for("cam").correction is KNOWN and display.box_for("cam").threshold == 0.5
    assert display.box_for("gradcam").correction is None and display.box_for("gradcam").threshold == 0.3


def test_calibrated_pipeline_reads_corrections_from_the_calibration():
    metadata = {"thresholds": {"cam": 0.4}, "threshold_source": "test",
                "calibration": {"pipeline": {"methods": ["cam"]}, "box_corrections": {"cam": KNOWN.as_list()}}}
    main = calibrated_pipelines(metadata)[0]
    pairs = main.corrections_for(["cam", "gradcam"])
    assert [m for m, _ in pairs] == ["cam"] and pairs[0][1].coef == pytest.approx(KNOWN.coef)


def test_evaluation_scores_the_corrected_box_at_each_photos_tau():
    boxes = _boxes(3)
    truths = KNOWN.apply_fractions(boxes)
    arrays = {"width": np.array([200, 200, 200]), "height": np.array([100, 100, 100]),
              "truth": truths * [200, 100, 200, 100], "largest__cam": np.zeros((3, 2)),
              "boxes__cam": np.stack([boxes, boxes + 0.1], axis=1)}
    plain = chosen_ious(arrays, "cam", Choice(np.array([0, 0, 1]), "t"))
    assert plain.tolist() == [0, 0, 0]  # the stored curves
    fixed = chosen_ious(arrays, "cam", Choice(np.array([0, 0, 1]), "t", (KNOWN,) * 3))
    assert fixed[:2] == pytest.approx([1.0, 1.0]) and fixed[2] < 1.0


def test_tau_and_correction_calibrated_at_one_layer_are_dropped_at_another():
    metadata = {"thresholds": {"cam": 0.4, "gradcampp": 0.5}, "threshold_source": "test",
                "calibration": {"pipeline": {"methods": ["cam", "gradcampp"]},
                                "box_corrections": {"cam": KNOWN.as_list(), "gradcampp": KNOWN.as_list()}}}
    main = calibrated_pipelines(metadata)[0]
    assert main.at_layer("out_relu", "out_relu") is main
    moved = main.at_layer("block_12_add", "out_relu")
    assert moved.is_calibrated("cam") and not moved.is_calibrated("gradcampp")
    assert [m for m, _ in moved.corrections_for(["cam", "gradcampp"])] == ["cam"]
    assert "calibrated at `out_relu`, not `block_12_add`" in moved.source
