"""From raw maps to what users see: degenerate maps give a message and no box, never NaN or a crash."""

from __future__ import annotations

import numpy as np
import pytest

from core.cam import RawExplanation
from core.explanation import BoxSettings, DisplaySettings, render_views

PHOTO = np.full((60, 80, 3), 120, np.uint8)
TRUTH = np.array([10.0, 10.0, 50.0, 40.0])


def _raw(cam: np.ndarray, gradcam: np.ndarray | None = None, variant: str = "paper") -> RawExplanation:
    maps = {("cam", "features"): cam.astype(np.float32)}
    if gradcam is not None:
        maps[("gradcam", "features")] = gradcam.astype(np.float32)
    probabilities = np.array([0.7, 0.3], np.float32)
    return RawExplanation(probabilities, np.log(probabilities), np.array([1.0, 0.0]), maps, variant)


def _views(raw, threshold=0.5, component="largest", shape="rect"):
    return render_views(PHOTO, raw, DisplaySettings(BoxSettings(threshold, component, shape), 0.5, "jet"), TRUTH)


def test_a_blob_in_the_map_gives_a_box_on_it_and_a_known_iou():
    cam = np.zeros((6, 8))
    cam[1:4, 1:5] = 1.0  # cells of 10×10 px: the blob covers x 10–50, y 10–40 = the truth box
    (view,) = _views(_raw(cam), threshold=0.5)
    x1, y1, x2, y2 = view.localized.main_box
    assert abs(x1 - 10) <= 5 and abs(y1 - 10) <= 5 and abs(x2 - 50) <= 5 and abs(y2 - 40) <= 5
    assert view.localized.iou > 0.75
    assert view.overlay.shape == PHOTO.shape and view.heatmap.status is None


@pytest.mark.parametrize("name, cam, words", [
    ("flat", np.full((6, 8), 3.0), "flat map"),
    ("zeros", np.zeros((6, 8)), "flat map"),
    ("nan", np.full((6, 8), np.nan), "NaN"),
])
def test_degenerate_cam_maps_give_no_box_zero_iou_and_a_message(name, cam, words):
    (view,) = _views(_raw(cam))
    assert view.localized.boxes == [] and view.localized.iou == 0.0
    assert words in view.heatmap.status
    assert np.isfinite(view.heatmap.values).all()


def test_all_negative_gradcam_is_flat_after_relu_and_says_so():
    cam = np.random.default_rng(0).random((6, 8))
    (_, gradcam_view) = _views(_raw(cam, gradcam=-1.0 - cam))
    assert gradcam_view.localized.boxes == [] and gradcam_view.localized.iou == 0.0
    assert "no positive evidence" in gradcam_view.heatmap.status


def test_partly_nan_map_still_localises_and_reports_the_replacement():
    cam = np.zeros((6, 8))
    cam[1:4, 1:5] = 1.0
    cam[5, 7] = np.nan
    (view,) = _views(_raw(cam))
    assert "1 NaN" in view.heatmap.status and view.localized.iou > 0.75


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_threshold_extremes_give_valid_boxes(threshold):
    cam = np.random.default_rng(1).random((6, 8))
    (view,) = _views(_raw(cam), threshold=threshold)
    assert len(view.localized.boxes) == 1
    assert 0.0 <= view.localized.iou <= 1.0
    if threshold == 0.0:  # everything selected: the whole photo
        assert view.localized.main_box.tolist() == [0.0, 0.0, 80.0, 60.0]


def test_all_regions_mode_scores_the_union_and_rotated_boxes_stay_inside_the_photo():
    cam = np.zeros((6, 8))
    cam[0:2, 0:2] = 1.0
    cam[4:6, 6:8] = 0.9
    (all_view,) = _views(_raw(cam), threshold=0.5, component="all")
    assert len(all_view.localized.boxes) == 2
    (rotated,) = _views(_raw(cam), threshold=0.5, shape="rotated")
    x1, y1, x2, y2 = rotated.localized.main_box
    assert 0 <= x1 < x2 <= 80 and 0 <= y1 < y2 <= 60


def test_box_settings_reject_bad_values():
    for bad in ({"threshold": 1.5}, {"threshold": -0.1}, {"component": "biggest"}, {"shape": "circle"}):
        with pytest.raises(ValueError):
            BoxSettings(**bad)


def test_the_pipelines_upsampling_is_the_one_displayed():
    import cv2

    cam = np.zeros((3, 4), np.float32)
    cam[1, 1] = 1.0  # one hot cell: bilinear makes a tent, bicubic a rounder bump with clipped lobes
    settings = {name: DisplaySettings(BoxSettings(0.5), 0.5, "jet", (), interpolation=name) for name in ("bilinear", "bicubic")}
    views = {name: render_views(PHOTO, _raw(cam), s)[0] for name, s in settings.items()}
    shown = {name: view.heatmap.values for name, view in views.items()}
    expected_bicubic = np.clip(cv2.resize(cam, (80, 60), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
    expected_bilinear = cv2.resize(cam, (80, 60), interpolation=cv2.INTER_LINEAR)
    assert np.allclose(shown["bicubic"], expected_bicubic, atol=1e-6)
    assert np.allclose(shown["bilinear"], expected_bilinear, atol=1e-6)
    assert np.abs(shown["bicubic"] - shown["bilinear"]).max() > 0.05
    # and the box at τ = 0.5 follows: bicubic's bump is wider at half its peak than bilinear's tent
    bicubic_box, bilinear_box = views["bicubic"].localized.main_box, views["bilinear"].localized.main_box
    assert (bicubic_box[2] - bicubic_box[0]) > (bilinear_box[2] - bilinear_box[0])


def test_an_unknown_upsampling_is_refused():
    with pytest.raises(ValueError, match="interpolation must be one of"):
        DisplaySettings(interpolation="lanczos")


def test_display_controls_take_the_pipelines_upsampling():
    from streamlit.testing.v1 import AppTest

    def page(interpolation):
        import streamlit as st

        from core.pipelines import CalibratedPipeline, Pipeline
        from ui.controls import display_controls

        st.write(display_controls(CalibratedPipeline(Pipeline(interpolation=interpolation))).interpolation)

    for interpolation in ("bicubic", "nearest"):
        app = AppTest.from_function(page, args=(interpolation,), default_timeout=60).run()
        assert not app.exception and app.markdown[-1].value == interpolation


def test_the_redraw_cache_gives_the_same_views_and_reuses_what_tau_does_not_change(monkeypatch):
    import core.explanation as explanation

    rng = np.random.default_rng(3)
    raw = _raw(rng.random((6, 8)), rng.random((6, 8)))
    photo = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    calls = {"maps": 0, "blends": 0}
    real_map, real_blend = explanation.photo_heatmap, explanation.blended_photo

    def counted(name, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(explanation, "photo_heatmap", counted("maps", real_map))
    monkeypatch.setattr(explanation, "blended_photo", counted("blends", real_blend))
    cache = explanation.RedrawCache()
    for threshold in (0.2, 0.5, 0.8, 0.5):
        settings = DisplaySettings(BoxSettings(threshold, "largest", "rect"), 0.5, "jet")
        fresh = render_views(photo, raw, settings, TRUTH)
        cached = render_views(photo, raw, settings, TRUTH, cache)
        for a, b in zip(fresh, cached):
            assert np.array_equal(a.overlay, b.overlay) and a.localized.iou == b.localized.iou
            assert np.array_equal(a.heatmap.values, b.heatmap.values)
    assert calls == {"maps": 4 * 2 + 2, "blends": 4 * 2 + 2}  # uncached: every call; cached: once per method
    render_views(photo, raw, DisplaySettings(BoxSettings(0.5, "largest", "rect"), 0.8, "jet"), TRUTH, cache)
    assert calls["blends"] == 10 + 2 and calls["maps"] == 10  # a new α blends again, on the same maps
    other = _raw(rng.random((6, 8)))
    render_views(photo, other, DisplaySettings(), TRUTH, cache)
    assert calls["maps"] == 11  # another photo's maps are never served from the cache
