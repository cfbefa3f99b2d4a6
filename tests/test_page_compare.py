"""Compare page: one grid cell per method with the core's IoU, sorting, the leaderboard hook, a slow
method opted in, and an empty selection explained."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from core.explanation import BoxSettings, DisplaySettings, render_views
from core.images import decode_image
from core.methods import METHODS
from core.paths import ASSETS_DIR
from tests.apptest_helpers import TIMEOUT, assert_clean, run_page
from tests.conftest import PROJECT_ROOT, SAMPLE_CAR_BOX

PAGE = "pages/6_Compare.py"
LABELS = {m.label: key for key, m in METHODS.items()}


def _cells(app) -> list[tuple[str, str]]:
    """(method label, its IoU/time caption) per grid cell, in grid order."""
    names = [m.value.strip("*") for m in app.markdown if m.value.strip("*") in LABELS]
    texts = [c.value for c in app.caption if c.value.startswith("IoU **")]
    assert len(names) == len(texts)
    return list(zip(names, texts))


def _thresholds_shown(app) -> tuple[tuple[str, float], ...]:
    """Each method's τ as the sidebar lists it ("τ: CAM 0.41 · Grad-CAM 0.44 · …")."""
    line = next(c.value for c in app.sidebar.caption if c.value.startswith("τ: ")).split("\n")[0]
    pairs = re.findall(r"([^·]+?) ([0-9.]+)(?: \(default, not calibrated\))?\s*(?:·|$)", line[3:])
    return tuple((LABELS[name.strip()], float(tau)) for name, tau in pairs)


def _iou(text: str) -> float:
    return float(re.match(r"IoU \*\*([0-9.]+)\*\*", text).group(1))


def test_one_cell_per_one_pass_method_with_the_cores_iou(offline_bundle, offline_explainer):
    app = run_page(PAGE)
    fast = [k for k, m in METHODS.items() if m.one_pass]
    cells = _cells(app)
    assert sorted(LABELS[name] for name, _ in cells) == sorted(fast)
    photo = decode_image((ASSETS_DIR / "sample_car.jpg").read_bytes(), "sample_car.jpg")
    raw = offline_explainer.explain([photo], methods=tuple(fast), layer=offline_bundle.default_layer)[0]
    display = DisplaySettings(BoxSettings(), thresholds=_thresholds_shown(app))
    expected = {v.method: v.localized.iou for v in render_views(photo, raw, display, SAMPLE_CAR_BOX)}
    for name, text in cells:
        assert _iou(text) == pytest.approx(expected[LABELS[name]], abs=5e-4), name
        assert "· shared run" in text
    at_layer = sum(METHODS[k].kind != "input" for k in fast)
    note = (f"The {len(fast)} one-pass methods come from one request: one shared forward and backward pass "
            f"for the {at_layer} at the layer, and one pass back to the input for FullGrad")
    assert any(c.value.startswith(note) for c in app.caption), [c.value for c in app.caption]
    shown = [_iou(text) for _, text in cells]
    assert shown == sorted(shown, reverse=True)  # IoU, best first

    app.radio(key="compare_order").set_value("name").run()
    assert_clean(app)
    names = [name for name, _ in _cells(app)]
    assert names == sorted(names, key=str.lower)


def test_leaderboard_ranks_appear_beside_the_methods(offline_bundle, monkeypatch):
    import ui.compare

    monkeypatch.setattr(ui.compare, "method_ranks", lambda model: {"gradcam": 1, "eigencam": 2})
    app = run_page(PAGE)
    ranked = {name: text for name, text in _cells(app) if "leaderboard rank" in text}
    assert set(ranked) == {"Grad-CAM", "Eigen-CAM"}
    assert ranked["Grad-CAM"].endswith("leaderboard rank 1")


def test_a_slow_method_opted_in_gets_its_own_run_and_time(offline_bundle):
    app = AppTest.from_file(str(PROJECT_ROOT / PAGE), default_timeout=TIMEOUT)
    app.session_state["compare_methods"] = ["ablationcam"]  # straight to it: no one-pass methods to trace
    app.run()
    assert_clean(app)
    cells = dict(_cells(app))
    assert set(cells) == {"Ablation-CAM"}
    assert "shared" not in cells["Ablation-CAM"] and re.search(r"· [0-9,]+ ms", cells["Ablation-CAM"])
    assert "first run: includes compiling" in cells["Ablation-CAM"]
    app.sidebar.slider(key="threshold").set_value(0.6).run()  # a redraw keeps the run and its time
    assert_clean(app)
    assert dict(_cells(app))["Ablation-CAM"].split("·")[1] == cells["Ablation-CAM"].split("·")[1]


def test_no_method_or_no_photo_is_explained(offline_bundle):
    app = run_page(PAGE)
    app.sidebar.multiselect(key="compare_methods").set_value([]).run()
    assert_clean(app)
    assert any("at least one method" in w.value for w in app.warning)
    app.sidebar.multiselect(key="compare_methods").set_value(["gradcam"]).run()
    app.radio(key="compare_source").set_value("Upload a photo").run()
    assert_clean(app)
    assert any("Upload a photo of a car" in i.value for i in app.info) and not _cells(app)
