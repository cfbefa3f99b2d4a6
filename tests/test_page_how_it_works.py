"""How it works page: every stage of a method on the sample drawing, τ redrawing without the network,
methods without channel weights saying so, and bad requests explained."""

from __future__ import annotations

import re

import numpy as np
import pytest

from core.explanation import BoxSettings
from core.images import decode_image
from core.paths import ASSETS_DIR
from core.stages import explain_stages
from tests.apptest_helpers import assert_clean, run_page
from tests.conftest import SAMPLE_CAR_BOX

PAGE = "pages/5_How_it_works.py"
STAGES = ["1 · The photo at the network's input size", "2 · The feature maps that matter most",
          "2b · The gradients", "3 · Their weights", "4 · The weighted sum", "5 · ReLU and normalisation",
          "6 · Upsampling to the photo", "7 · The threshold τ = {tau:.2f}", "8 · Connected regions",
          "9 · The box", "10 · IoU with the ground truth"]


@pytest.fixture(scope="module")
def sample():
    return decode_image((ASSETS_DIR / "sample_car.jpg").read_bytes(), "sample_car.jpg")


def _subheaders(app) -> list[str]:
    return [s.value for s in app.subheader]


def _mask_text(app) -> str:
    return next(m.value for m in app.markdown if m.value.startswith("Pixels at least"))


def _shown_iou(app) -> float:
    (metric,) = [m for m in app.metric if m.label == "IoU with the ground truth"]
    return float(metric.value)


def test_every_stage_is_shown_and_tau_moves_them_without_the_network(offline_bundle, offline_explainer,
                                                                    sample):
    app = run_page(PAGE)
    tau = float(re.search(r"τ = ([0-9.]+)", _subheaders(app)[7]).group(1))
    assert _subheaders(app) == [s.format(tau=tau) for s in STAGES]
    assert len(app.latex) == len(STAGES) and len(app.get("plotly_chart")) == 6
    expected = explain_stages(offline_explainer, sample, "gradcam", offline_bundle.default_layer,
                              settings=BoxSettings(tau), ground_truth=SAMPLE_CAR_BOX)
    assert _shown_iou(app) == pytest.approx(expected.iou, abs=5e-4)
    kept = _mask_text(app)

    app.sidebar.slider(key="threshold").set_value(0.7).run()
    assert_clean(app)
    assert _subheaders(app)[7] == "7 · The threshold τ = 0.70"
    tighter = explain_stages(offline_explainer, sample, "gradcam", offline_bundle.default_layer,
                             settings=BoxSettings(0.7), ground_truth=SAMPLE_CAR_BOX)
    assert _shown_iou(app) == pytest.approx(tighter.iou, abs=5e-4)
    assert _mask_text(app) != kept  # the mask stage moved
    assert f"{tighter.mask.mean():.1%}" in _mask_text(app)
    assert len(app.session_state["stage_networks"]) == 1  # τ re-used the network's result


def test_methods_without_channel_weights_say_why(offline_bundle):
    app = run_page(PAGE)
    app.sidebar.selectbox(key="stages_method").set_value("eigencam").run()
    assert_clean(app)
    headers = _subheaders(app)
    assert "4 · The method's own map" in headers and "2b · The gradients" not in headers
    assert any("no channel weights" in i.value for i in app.info)
    assert any("uses no gradient" in c.value for c in app.caption)


def test_fullgrad_shows_its_terms_and_says_it_ignores_the_layer(offline_bundle):
    app = run_page(PAGE)
    app.sidebar.selectbox(key="stages_method").set_value("fullgrad").run()
    assert_clean(app)
    headers = _subheaders(app)
    assert "2 · The terms that matter most" in headers and "4 · The sum of the terms" in headers
    assert "2b · The gradients" not in headers
    assert any("ignore(s) the layer" in c.value for c in app.sidebar.caption)
    assert any("52 layers with a bias" in m.value for m in app.markdown)


def test_a_method_the_layer_cannot_run_and_a_missing_photo_are_explained(offline_bundle):
    app = run_page(PAGE)
    app.sidebar.toggle(key="every_layer").set_value(True).run()  # the slider over every spatial layer
    app.sidebar.select_slider(key="layer").set_value("block_14_expand_relu")
    app.sidebar.selectbox(key="stages_method").set_value("ablationcam").run()
    assert_clean(app)
    assert any("Ablation-CAM cannot be taken apart here" in e.value for e in app.error)
    assert any("Pick another method or layer" in i.value for i in app.info)
    app.sidebar.select_slider(key="layer").set_value("out_relu").run()  # a cut of the network: it runs
    assert_clean(app)
    assert "3 · Their weights" in _subheaders(app) and "2b · The gradients" not in _subheaders(app)
    assert any("scoring masked or ablated inputs" in c.value for c in app.caption)
    app.radio(key="stages_source").set_value("Upload a photo").run()
    assert_clean(app)
    assert any("Upload a photo of a car" in i.value for i in app.info)
    assert not app.subheader


def test_an_upload_has_no_iou_and_says_so(offline_bundle):
    app = run_page(PAGE)
    app.radio(key="stages_source").set_value("Upload a photo").run()
    photo = np.asarray(decode_image((ASSETS_DIR / "sample_car.jpg").read_bytes(), "s.jpg"))
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(photo[::2, ::2].copy()).save(buffer, format="PNG")
    app.file_uploader(key="stages_upload").set_value(("car.png", buffer.getvalue(), "image/png")).run()
    assert_clean(app)
    assert len(app.subheader) == len(STAGES)
    assert not [m for m in app.metric if m.label == "IoU with the ground truth"]
    assert any("no ground-truth box" in m.value for m in app.markdown)


def test_the_photo_shown_on_explore_is_the_default_with_its_ground_truth(offline_bundle, offline_explainer,
                                                                          drawn_dataset):
    from streamlit.testing.v1 import AppTest

    from core.data import open_dataset
    from tests.apptest_helpers import TIMEOUT
    from tests.conftest import PROJECT_ROOT

    split = open_dataset(str(drawn_dataset))["train"]
    record = split[1]  # the mirrored drawing: its box is not the sample's
    app = AppTest.from_file(str(PROJECT_ROOT / PAGE), default_timeout=TIMEOUT)
    app.session_state["explore_record"] = ((id(split), 1), record)  # what the Explore page keeps
    app.run()
    assert_clean(app)
    assert app.radio(key="stages_source").value == "Photo on the Explore page"
    tau = float(re.search(r"τ = ([0-9.]+)", _subheaders(app)[7]).group(1))
    expected = explain_stages(offline_explainer, record.image, "gradcam", offline_bundle.default_layer,
                              settings=BoxSettings(tau), ground_truth=record.box)
    assert _shown_iou(app) == pytest.approx(expected.iou, abs=5e-4)
