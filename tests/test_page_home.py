"""Home page: says which model is in use and why, and how to get Cars196; model switching works."""

from __future__ import annotations

from tests.apptest_helpers import assert_clean, run_page
from tests.conftest import tiny_cam_model


def test_home_names_the_model_and_the_reason(offline_bundle):
    app = run_page("dashboard.py")
    text = " ".join(m.value for m in app.markdown)
    assert "MobileNetV2 (ImageNet, offline weights)" in text
    assert "offline" in text and "404" in text


def test_switching_to_a_user_model_file_and_to_one_without_cam(tmp_path, offline_bundle):
    import keras

    good = tmp_path / "tiny.keras"
    tiny_cam_model().save(good)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))
    no_cam = tmp_path / "flat.keras"
    keras.Model(inputs, outputs).save(no_cam)

    app = run_page("pages/2_Upload.py")
    app.sidebar.text_input(key="custom_model").set_value(str(good)).run()
    assert_clean(app)
    assert any("tiny" in c.value for c in app.sidebar.caption)
    app.sidebar.text_input(key="custom_model").set_value(str(no_cam)).run()
    assert_clean(app)
    assert any("CAM unavailable" in c.value for c in app.sidebar.caption)
    app.sidebar.text_input(key="custom_model").set_value(str(tmp_path / "missing.keras")).run()
    assert_clean(app)
    assert any("No file at" in e.value for e in app.sidebar.error)
    app.sidebar.text_input(key="custom_model").set_value(str(tmp_path / "model.h5")).run()
    assert any(".keras" in e.value for e in app.sidebar.error)
