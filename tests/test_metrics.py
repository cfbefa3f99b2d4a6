"""Localisation metrics on hand-made maps and curves with answers computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from core.localize import boxes_from_heatmap
from core.metrics import (
    CENTER_FRACTIONS, THRESHOLDS, best_threshold_index, boxacc_curve, center_box_ious, full_image_ious,
    grid_box, max_boxacc, max_boxacc_v2, scores_at, threshold_sweep,
)


def _two_blocks() -> np.ndarray:
    """10×10: block A (1.0, 2×2 at rows 1-2, cols 1-2) and block B (0.5, 3×4 at rows 5-7, cols 4-7)."""
    heat = np.zeros((10, 10), np.float32)
    heat[1:3, 1:3] = 1.0
    heat[5:8, 4:8] = 0.5
    return heat


def test_sweep_iou_per_threshold_by_hand():
    truth = (4, 5, 8, 8)  # exactly block B
    sweep = threshold_sweep(_two_blocks(), truth, thresholds=[0.0, 0.4, 0.6])
    # τ 0: every pixel → the whole 10×10 map, IoU 12/100; τ 0.4: A (4 px) and B (12 px), B largest;
    # τ 0.6: only A, disjoint from the truth
    assert sweep.largest.tolist() == [0.12, 1.0, 0.0]
    assert sweep.best.tolist() == [0.12, 1.0, 0.0]


def test_best_component_can_beat_the_largest():
    truth = (1, 1, 3, 3)  # block A, the smaller one
    sweep = threshold_sweep(_two_blocks(), truth, thresholds=[0.4])
    assert sweep.largest.tolist() == [0.0] and sweep.best.tolist() == [1.0]


def test_flat_map_has_no_box_at_any_threshold():
    sweep = threshold_sweep(np.full((5, 5), 0.3), (0, 0, 2, 2))
    assert not sweep.largest.any() and not sweep.best.any()
    assert grid_box(np.zeros((4, 4)), 0.5) is None


def test_area_tie_is_broken_by_mass_like_core_localize():
    heat = np.zeros((6, 9), np.float32)
    heat[1:3, 0:2] = 0.6  # 4 px, mass 2.4
    heat[1:3, 6:8] = 0.9  # 4 px, mass 3.6: wins the tie
    heat[5, 4] = 1.0  # the peak, 1 px
    assert grid_box(heat, 0.5).tolist() == [6.0, 1.0, 8.0, 3.0]
    assert boxes_from_heatmap(heat, 0.5)[0].box.tolist() == [6.0, 1.0, 8.0, 3.0]


def test_sweep_box_agrees_with_the_dashboard_rule_on_smooth_maps():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:40, 0:50]
    for _ in range(5):
        cx, cy = rng.uniform(10, 40), rng.uniform(10, 30)
        heat = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 120)
        heat += 0.4 * np.exp(-((xx - 5) ** 2 + (yy - 5) ** 2) / 30)  # a second, weaker blob
        heat = (heat / heat.max()).astype(np.float32)
        for t in (0.2, 0.5, 0.8):
            assert grid_box(heat, t).tolist() == boxes_from_heatmap(heat, t)[0].box.tolist()


# 3 photos × 4 thresholds
LARGEST = np.array([[0.2, 0.6, 0.8, 0.1], [0.4, 0.5, 0.3, 0.0], [0.7, 0.7, 0.2, 0.0]])
BEST = np.array([[0.3, 0.6, 0.8, 0.2], [0.4, 0.55, 0.75, 0.0], [0.7, 0.72, 0.2, 0.1]])


def test_boxacc_and_maxboxacc_by_hand():
    assert boxacc_curve(LARGEST, 0.5).tolist() == pytest.approx([1 / 3, 1.0, 1 / 3, 0.0])
    assert max_boxacc(LARGEST) == (1.0, 1)


def test_maxboxacc_v2_by_hand():
    # best BoxAcc over τ: @0.3 → 1 (τ0), @0.5 → 1 (τ1), @0.7 → 2/3 (τ2); mean 8/9
    assert max_boxacc_v2(BEST) == pytest.approx(8 / 9)


def test_best_threshold_by_mean_iou_and_by_boxacc():
    # mean IoU per τ: 0.433, 0.6, 0.433, 0.033 → τ index 1; BoxAcc@0.7: 1/3, 1/3, 1/3, 0 → the lowest, 0
    assert best_threshold_index(LARGEST, "mean_iou") == 1
    assert best_threshold_index(LARGEST, "boxacc@0.7") == 0
    with pytest.raises(ValueError, match="objective"):
        best_threshold_index(LARGEST, "median")


def test_scores_at_one_threshold_by_hand():
    scores = scores_at([0.2, 0.5, 0.8, 0.35], correct=[True, False, True, True])
    assert scores["mean_iou"] == pytest.approx(0.4625)
    assert scores["median_iou"] == pytest.approx(0.425)
    assert scores["boxacc"] == {"0.3": 0.75, "0.5": 0.5, "0.7": 0.25}
    assert scores["gt_known_loc"] == 0.5
    assert scores["top1_loc"] == 0.25  # IoU ≥ 0.5 and right class: only the 0.8 photo
    assert scores_at([0.9], correct=None)["top1_loc"] is None


def test_centred_box_baseline_by_hand():
    truth = [(50, 25, 150, 75)]  # the centred half of a 100×200 photo
    ious = center_box_ious(truth, [(100, 200)], [0.5, 0.6, 1.0])
    assert ious[0].tolist() == pytest.approx([1.0, 5000 / 7200, 0.25])
    assert full_image_ious(truth, [(100, 200)]).tolist() == [0.25]
    assert CENTER_FRACTIONS[-1] == 1.0 and THRESHOLDS[0] == 0.0 and THRESHOLDS[-1] == 0.99


@pytest.mark.parametrize(("call", "message"), [
    (lambda: threshold_sweep(np.zeros((4, 4)), (3, 0, 1, 2)), "ground-truth box"),
    (lambda: threshold_sweep(np.zeros(4), (0, 0, 1, 1)), "2-D"),
    (lambda: threshold_sweep(np.full((2, 2), np.nan), (0, 0, 1, 1)), "NaN"),
    (lambda: boxacc_curve(np.zeros(3), 0.5), "N photos, T thresholds"),
    (lambda: max_boxacc(np.zeros((0, 4))), "no photos"),
    (lambda: center_box_ious([(0, 0, 1, 1)], [(10, 10)], [1.5]), "within"),
    (lambda: center_box_ious([(0, 0, 1, 1)], [(10, 10), (5, 5)]), "1 truth boxes but 2"),
    (lambda: scores_at([], None), "non-empty"),
])
def test_bad_input_is_refused_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()
