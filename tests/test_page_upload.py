"""Upload page: good and bad files, sliders that redraw, layer and method switches."""

from __future__ import annotations

from core.methods import DEFAULT_METHODS

import io

import numpy as np
from PIL import Image

from core.paths import ASSETS_DIR
from tests.apptest_helpers import assert_clean, boxes_shown, live_overlays, metrics, run_page

SAMPLE_BYTES = (ASSETS_DIR / "sample_car.jpg").read_bytes()


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _upload(app, *files):
    app.file_uploader[0].set_value(list(files)).run()
    assert_clean(app)
    return app


def test_no_photo_shows_a_prompt(offline_bundle):
    app = run_page("pages/2_Upload.py")
    assert any("Upload one or more photos" in i.value for i in app.info)


def test_uploaded_photo_is_explained_and_threshold_moves_the_box(offline_bundle):
    app = _upload(run_page("pages/2_Upload.py"), ("car.jpg", SAMPLE_BYTES, "image/jpeg"))
    overlays = live_overlays(app)
    assert len(overlays) == len(DEFAULT_METHODS)  # one overlay per method, drawn by the browser
    assert all(o["image"].startswith("data:image/jpeg;base64,") and o["sweep"] is None for o in overlays)
    assert any("Prediction:" in m.value for m in app.markdown)
    low = boxes_shown(app)
    assert len(low) == len(DEFAULT_METHODS)
    app.sidebar.slider(key="threshold").set_value(0.7).run()
    assert_clean(app)
    high = boxes_shown(app)
    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
    assert all(area(h) < area(l) for h, l in zip(high, low)), (low, high)
    for overlay, printed in zip(live_overlays(app), high):  # the overlay draws the printed box, at 0.7
        xs, ys = zip(*overlay["boxes"][0]["points"])
        assert overlay["tau"] == 0.7 and [min(xs), min(ys), max(xs), max(ys)] == list(printed)
    assert any("(cached)" in c.value for c in app.caption)  # the slider did not rerun the network


def test_ground_truth_entry_gives_iou(offline_bundle):
    app = _upload(run_page("pages/2_Upload.py"), ("car.jpg", SAMPLE_BYTES, "image/jpeg"))
    key = next(c.key for c in app.checkbox if c.key.startswith("use_gt_"))
    suffix = key.removeprefix("use_gt_")
    app.checkbox(key=key).check()
    for name, value in zip(("x1", "y1", "x2", "y2"), (117, 183, 723, 406)):
        app.number_input(key=f"gt_{name}_{suffix}").set_value(value)
    app.sidebar.selectbox(key="target_mode").set_value("class group")
    app.run()  # each method boxes at its own calibrated τ (Eigen-CAM's is far lower than CAM's)
    assert_clean(app)
    values = metrics(app)
    assert len(values) == len(DEFAULT_METHODS) and all(0.5 < v <= 1.0 for v in values), values
    app.sidebar.slider(key="threshold").set_value(0.95).run()
    assert all(v < w for v, w in zip(metrics(app), values))


def test_bad_uploads_show_clear_errors_and_good_ones_still_work(offline_bundle):
    gray16 = _png((np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20))
    app = _upload(run_page("pages/2_Upload.py"),
                  ("empty.jpg", b"", "image/jpeg"),
                  ("report.jpg", b"%PDF-1.7\n%binary", "image/jpeg"),
                  ("gray16.png", gray16, "image/png"),
                  ("car.jpg", SAMPLE_BYTES, "image/jpeg"))
    errors = [e.value for e in app.error]
    assert any("empty.jpg" in e and "empty" in e for e in errors), errors
    assert any("report.jpg" in e and "PDF" in e for e in errors), errors
    assert len(boxes_shown(app)) >= 2  # the 16-bit PNG and the photo are still explained


def test_layer_and_method_switches(offline_bundle):
    app = _upload(run_page("pages/2_Upload.py"), ("car.jpg", SAMPLE_BYTES, "image/jpeg"))
    assert app.sidebar.select_slider(key="layer").options[:2] == ["out_relu", "block_12_add"]  # deepest first
    app.sidebar.toggle(key="every_layer").set_value(True).run()
    app.sidebar.select_slider(key="layer").set_value("block_6_expand_relu").run()
    assert_clean(app)
    assert any("block_6_expand_relu" in s.value for s in app.subheader)
    app.sidebar.multiselect(key="methods").set_value(["gradcam"]).run()
    assert_clean(app)
    assert [s.value for s in app.subheader if "·" in s.value] == ["Grad-CAM · `block_6_expand_relu`"]


def _image_urls(app) -> list[str]:
    return [image.proto.imgs[0].url for image in app.get("image")]


def test_alpha_colormap_and_box_mode_redraw_without_the_network(offline_bundle):
    app = _upload(run_page("pages/2_Upload.py"), ("car.jpg", SAMPLE_BYTES, "image/jpeg"))
    before = _image_urls(app)
    app.sidebar.slider(key="alpha").set_value(0.9).run()
    assert_clean(app)
    after_alpha = _image_urls(app)
    assert all(a != b for a, b in zip(after_alpha, before))  # the overlays were redrawn
    app.sidebar.selectbox(key="colormap").set_value("gray").run()
    assert all(a != b for a, b in zip(_image_urls(app), after_alpha))
    app.sidebar.slider(key="threshold").set_value(0.8).run()
    app.sidebar.selectbox(key="component").set_value("all").run()
    assert_clean(app)
    app.sidebar.selectbox(key="shape").set_value("rotated").run()
    assert_clean(app)
    assert len(boxes_shown(app)) == len(DEFAULT_METHODS)
    assert all("(cached)" in c.value for c in app.caption if "network" in c.value)
