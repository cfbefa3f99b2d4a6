"""Explore page: a dataset folder, navigation, class filter, worst-IoU order and the sliders."""

from __future__ import annotations

from core.methods import DEFAULT_METHODS

from tests.apptest_helpers import TIMEOUT, assert_clean, boxes_shown, metrics
from tests.conftest import PROJECT_ROOT, SHARED_CARS, require_shared


def _open(folder, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CARS196_DIR", str(folder))
    app = AppTest.from_file(str(PROJECT_ROOT / "pages/1_Explore.py"), default_timeout=TIMEOUT)
    app.run()
    assert_clean(app)
    return app


def test_without_a_dataset_the_page_says_how_to_get_one(monkeypatch, offline_bundle):
    app = _open("", monkeypatch)
    assert any("cannot download" in i.value for i in app.info)


def test_folder_in_no_known_layout_is_a_clear_error(tmp_path, monkeypatch, offline_bundle):
    (tmp_path / "holiday.jpg").write_bytes(b"x")
    app = _open(tmp_path, monkeypatch)
    assert any("cannot be opened" in e.value and "layout" in e.value for e in app.error)


def test_browse_filter_and_sliders_on_a_drawn_dataset(drawn_dataset, monkeypatch, offline_bundle):
    app = _open(drawn_dataset, monkeypatch)
    assert any("Ground truth:** Drawn Saloon Left" in m.value for m in app.markdown)
    app.sidebar.selectbox(key="target_mode").set_value("class group").run()
    app.sidebar.slider(key="threshold").set_value(0.5).run()
    first = metrics(app)
    assert len(first) == len(DEFAULT_METHODS) and all(v > 0.5 for v in first), first
    app.button[1].click().run()  # Next: the flipped copy
    assert_clean(app)
    assert any("Ground truth:** Drawn Saloon Right" in m.value for m in app.markdown)
    flipped = boxes_shown(app)
    assert all(abs((b[0] + b[2]) / 2 - (800 - (117 + 723) / 2)) < 80 for b in flipped), flipped
    app.selectbox(key="explore_class").set_value(1).run()  # only class "Right"
    assert_clean(app)
    assert app.number_input(key="explore_position").label == "Photo (1–2)"
    app.sidebar.slider(key="threshold").set_value(0.9).run()
    assert all(v < w for v, w in zip(metrics(app), first))


def test_worst_iou_first_on_real_photos(monkeypatch, offline_bundle):
    app = _open(require_shared(SHARED_CARS), monkeypatch)
    app.selectbox(key="explore_order").set_value("worst CAM IoU first").run()
    assert_clean(app)
    worst = metrics(app)[0]
    app.number_input(key="explore_position").set_value(164).run()
    best = metrics(app)[0]
    assert worst < 0.7 < 0.9 < best, (worst, best)  # calibrated pipeline: even the worst photo overlaps
