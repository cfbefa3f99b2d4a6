"""Choices survive moving between pages and reruns (ui/state.py): set on one page, found on another."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.apptest_helpers import TIMEOUT, assert_clean
from tests.conftest import PROJECT_ROOT

SPORTS_CAR = 817  # ImageNet "sports car"


def _go(app: AppTest, page: str) -> AppTest:
    app.switch_page(page).run()
    assert_clean(app)
    return app


def test_choices_made_on_one_page_are_there_on_the_others(drawn_dataset, monkeypatch, offline_bundle):
    monkeypatch.setenv("CARS196_DIR", "")
    name = offline_bundle.name
    app = AppTest.from_file(str(PROJECT_ROOT / "dashboard.py"), default_timeout=TIMEOUT)
    app.run()
    assert_clean(app)
    _go(app, "pages/2_Upload.py")
    pipelines = app.sidebar.selectbox(key="pipeline")
    fast = next(i for i, label in enumerate(pipelines.options) if "one view" in label)
    pipelines.set_value(fast).run()  # the fast single-view maps
    sidebar = app.sidebar
    sidebar.multiselect(key="methods").set_value(["gradcam", "layercam"])
    sidebar.toggle(key="every_layer").set_value(True).run()
    app.sidebar.select_slider(key="layer").set_value("block_6_expand_relu")
    app.sidebar.selectbox(key="target_mode").set_value("any class").run()
    app.sidebar.selectbox(key=f"target_class_{name}").set_value(SPORTS_CAR)
    app.sidebar.slider(key="alpha").set_value(0.8)
    app.sidebar.slider(key="threshold").set_value(0.3).run()  # moving τ switches to one τ for all
    assert_clean(app)

    _go(app, "pages/4_Evaluate.py")  # a page without any of those widgets: Streamlit drops their values
    _go(app, "pages/2_Upload.py")
    app.run()  # and a plain rerun
    sidebar = app.sidebar
    assert sidebar.selectbox(key="pipeline").value == fast
    assert sidebar.multiselect(key="methods").value == ["gradcam", "layercam"]
    assert sidebar.select_slider(key="layer").value == "block_6_expand_relu"
    assert sidebar.selectbox(key="target_mode").value == "any class"
    assert sidebar.selectbox(key=f"target_class_{name}").value == SPORTS_CAR
    assert sidebar.slider(key="alpha").value == 0.8
    assert sidebar.slider(key="threshold").value == 0.3

    _go(app, "pages/1_Explore.py")  # the same choices on Explore; the dataset folder typed there is kept
    app.text_input(key="dataset_path").set_value(str(drawn_dataset)).run()
    assert app.sidebar.selectbox(key=f"target_class_{name}").value == SPORTS_CAR
    assert app.sidebar.select_slider(key="layer").value == "block_6_expand_relu"
    app.selectbox(key="explore_class").set_value(1)
    app.sidebar.selectbox(key="target_mode").set_value("ground-truth class").run()
    assert_clean(app)
    _go(app, "pages/2_Upload.py")  # Upload has no ground truth: it shows another mode meanwhile
    assert app.sidebar.selectbox(key="target_mode").value != "ground-truth class"
    _go(app, "pages/3_Layers.py")  # another page without ground truth
    _go(app, "pages/1_Explore.py")
    assert app.text_input(key="dataset_path").value == str(drawn_dataset)
    assert app.selectbox(key="explore_class").value == 1
    assert app.sidebar.selectbox(key="target_mode").value == "ground-truth class"
    assert any("Ground truth:** Drawn Saloon Right" in m.value for m in app.markdown)
