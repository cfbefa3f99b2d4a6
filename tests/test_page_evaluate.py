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
    assert any("No results on this machine yet" in i.value for i in app.info)


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


def test_without_results_the_shipped_calibration_is_shown_as_shipped(tmp_path, offline_bundle):
    from core.calibration import shipped_calibrations

    app = _page()
    app.text_input(key="eval_out").set_value(str(tmp_path / "nothing")).run()
    assert_clean(app)
    assert any(s.value == "Shipped results" for s in app.subheader)
    text = " ".join(m.value for m in app.markdown) + " ".join(c.value for c in app.caption)
    assert "shipped with the project (`assets/calibration.json`)" in text
    entry = shipped_calibrations()[offline_bundle.name]
    assert entry["calibration"]["calibrated_on"] in text
    main = next(d.value for d in app.dataframe if "τ (best mean IoU)" in d.value.columns)  # the main pipeline
    assert list(main["method"])[:3] == ["CAM", "Grad-CAM", "Grad-CAM++"]  # the registry order
    cam = main[main["method"] == "CAM"].iloc[0]
    assert cam["τ (best mean IoU)"] == f"{entry['thresholds']['cam']:.2f}"
    assert cam["held-out mean IoU"] == f"{entry['calibration']['kfold_heldout']['cam']['mean_iou']:.3f}"
    shipped = [d for d in app.dataframe if "τ (best mean IoU)" in d.value.columns]
    assert len(shipped) == 1 + len(entry["calibration"]["other_pipelines"])


def test_a_summary_with_unmeasured_speed_and_accuracy_is_shown(tmp_path, offline_bundle):
    """A model whose classes are not the dataset's has no classification accuracy; a resumed run no speed."""
    import json

    from core.evaluate import EvalRequest, run_evaluation
    from tests.conftest import make_drawn_dataset

    out = tmp_path / "results"
    run_evaluation(EvalRequest(str(make_drawn_dataset(tmp_path / "drawn", count=2)), "train",
                               model="mobilenetv2-offline", methods=("cam",), sizes=(), flip=False), out)
    summary = json.loads((out / "summary.json").read_text())
    summary.update(photos_per_second=None, classification_accuracy=None)
    (out / "summary.json").write_text(json.dumps(summary))
    app = _page()
    app.text_input(key="eval_out").set_value(str(out)).run()
    assert_clean(app)
    assert any("speed not measured" in m.value for m in app.markdown)
    assert any("accuracy not defined: the model's classes are not the dataset's" in c.value for c in app.caption)
    assert list(app.dataframe[0].value[""])[0] == "CAM"


def test_a_run_with_faithfulness_metrics_shows_the_leaderboard_and_worst_photos(tmp_path, drawn_dataset,
                                                                                offline_bundle):
    app = _page()
    app.text_input(key="eval_data").set_value(str(drawn_dataset))
    app.selectbox(key="eval_split").set_value("train")
    app.multiselect(key="eval_metrics").set_value(["avg_drop", "pointing_game"])
    app.text_input(key="eval_out").set_value(str(tmp_path / "board")).run()
    assert any("forward passes" in c.value for c in app.caption)  # the cost, stated before running
    app.button[0].click().run()
    assert_clean(app)
    assert not app.error, [e.value for e in app.error]
    assert any("Leaderboard" in m.value for m in app.markdown)
    board = next(d.value for d in app.dataframe if "Method" in d.value.columns)
    assert list(board["Method"])[:2] == ["CAM", "Grad-CAM"]
    assert {"Mean IoU ↑", "Average drop ↓", "Pointing game ↑"} <= set(board.columns)
    assert all(0.0 <= v <= 1.0 for v in board["Average drop ↓"])
    assert len(app.get("plotly_chart")) >= 4  # the run's own plots, then the ranking
    opens = [b for b in app.button if b.label == "Open in Explore"]
    assert len(opens) == 4  # the drawn dataset has 4 photos with boxes
    assert len(app.get("imgs")) >= 4 or len(app.image) >= 4
