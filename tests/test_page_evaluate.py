"""Evaluate page: empty state, a run with progress on a small dataset, the tables and plots, bad input."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.apptest_helpers import TIMEOUT, assert_clean
from tests.conftest import PROJECT_ROOT


def _page() -> AppTest:
    app = AppTest.from_file(str(PROJECT_ROOT / "pages/4_Evaluate.py"), default_timeout=TIMEOUT)
    app.run()
    assert_clean(app)
    return app


def test_without_results_the_page_says_what_to_do(tmp_path, offline_bundle):
    app = _page()
    app.text_input(key="eval_out").set_value(str(tmp_path / "nothing")).run()
    assert any("No results yet" in i.value for i in app.info)


def test_run_on_a_small_dataset_shows_metrics_and_plots(tmp_path, drawn_dataset, offline_bundle):
    app = _page()
    app.text_input(key="eval_data").set_value(str(drawn_dataset))
    app.selectbox(key="eval_split").set_value("train")
    app.text_input(key="eval_out").set_value(str(tmp_path / "results")).run()
    app.button[0].click().run()
    assert_clean(app)
    assert not app.error, [e.value for e in app.error]
    assert any("Evaluation written" in s.value for s in app.success)
    table = app.dataframe[0].value
    assert list(table[""])[:2] == ["CAM", "Grad-CAM"] and "full image" in list(table[""])
    assert all(0.0 <= float(v) <= 1.0 for v in table["mean IoU"])
    assert len(app.get("plotly_chart")) >= 3  # IoU histogram, BoxAcc against τ, CAM vs Grad-CAM
    assert (tmp_path / "results" / "per_photo.csv").is_file()


def test_a_bad_dataset_folder_is_a_clear_error(tmp_path, offline_bundle):
    app = _page()
    app.text_input(key="eval_data").set_value(str(tmp_path / "missing"))
    app.text_input(key="eval_out").set_value(str(tmp_path / "out")).run()
    app.button[0].click().run()
    assert_clean(app)
    assert any("could not run" in e.value for e in app.error)
