"""Model sources: the default choice offline, the real offline MobileNetV2 seeing cars, users' .keras files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from core import model_sources
from core.cam import Target
from core.imagenet_classes import CAR_CLASS_INDICES, imagenet_class_names
from core.images import read_image
from core.model_spec import ModelStructureError
from tests.conftest import SHARED_CARS, require_shared, tiny_cam_model


def _shared_car_photos() -> list[Path]:
    folder = require_shared(SHARED_CARS / "cars_train")
    return sorted(folder.glob("*.jpg"))


def test_offline_mobilenet_bundle_has_cam_head_and_car_group(offline_bundle):
    assert offline_bundle.cam_head.feature_layer == "out_relu"
    assert offline_bundle.cam_head.classifier_layer == "predictions"
    assert offline_bundle.input_size == (224, 224)
    assert offline_bundle.preprocessing == "torch"
    assert offline_bundle.class_names[817] == "sports car"
    assert offline_bundle.class_groups[model_sources.IMAGENET_CAR_GROUP] == CAR_CLASS_INDICES
    assert "out_relu" in offline_bundle.suggested_layers and "block_12_add" in offline_bundle.suggested_layers


def test_offline_mobilenet_sees_cars_in_the_shared_photos(offline_explainer):
    photos = [read_image(p) for p in _shared_car_photos()]
    raws = offline_explainer.explain(photos, methods=("cam",), batch_size=32)
    predicted = np.array([r.predicted_class for r in raws])
    car_share = np.isin(predicted, CAR_CLASS_INDICES).mean()
    names = imagenet_class_names()
    print(f"offline MobileNetV2 calls {car_share:.1%} of {len(photos)} shared photos a car; "
          f"most common: {sorted({names[i] for i in predicted})[:8]}")
    assert car_share >= 0.8
    car_probability = np.array([r.probabilities[list(CAR_CLASS_INDICES)].sum() for r in raws])
    assert np.median(car_probability) > 0.8


def test_car_group_map_is_centred_on_the_car(offline_explainer):
    """On real photos the car group's CAM peak falls inside the annotated car box in most photos."""
    from core.data import open_dataset

    dataset = open_dataset(require_shared(SHARED_CARS))
    split = dataset["train"]
    records = [split[i] for i in range(0, min(len(split), 40))]
    target = Target.group(CAR_CLASS_INDICES, "car")
    raws = offline_explainer.explain([r.image for r in records], methods=("cam",), target=target)
    inside = 0
    for record, raw in zip(records, raws):
        cam = raw.maps[("cam", "out_relu")]
        row, col = np.unravel_index(np.argmax(cam), cam.shape)
        height, width = record.image.shape[:2]
        x, y = (col + 0.5) * width / cam.shape[1], (row + 0.5) * height / cam.shape[0]
        x1, y1, x2, y2 = record.box
        inside += x1 <= x <= x2 and y1 <= y <= y2
    assert inside / len(records) >= 0.9


def test_default_model_offline_falls_back_fast_to_offline_mobilenet(monkeypatch, offline_bundle):
    monkeypatch.setenv("CAM_EXPLORER_OFFLINE", "1")
    monkeypatch.setattr(model_sources, "keras_weights_cached", lambda arch: False)
    monkeypatch.setattr(model_sources, "mobilenetv2_offline", lambda progress=None: offline_bundle)
    started = time.perf_counter()
    choice = model_sources.load_default_model()
    assert choice.bundle is offline_bundle
    assert "offline" in choice.reason.lower() and "ResNet50" in choice.reason
    assert time.perf_counter() - started < 30  # no retry loops (tfds-style retries take ~200 s)


def test_resnet50_download_refused_quickly_when_offline(monkeypatch):
    monkeypatch.setenv("CAM_EXPLORER_OFFLINE", "1")
    monkeypatch.setattr(model_sources, "keras_weights_cached", lambda arch: False)
    with pytest.raises(model_sources.WeightsUnavailableError, match="cannot be downloaded"):
        model_sources.resnet50_imagenet()


def test_study_cam_model_is_flat_with_named_inner_layers():
    model = model_sources.build_cam_model("resnet50", num_classes=196, weights=None)
    assert model.get_layer("conv5_block3_out").output.shape[1:3] == (7, 7)
    assert model.get_layer("predictions").units == 196
    bundle = __import__("core.model_spec", fromlist=["inspect_model"]).inspect_model(
        model, name="study", source="test", preprocessing="caffe")
    assert bundle.cam_head.feature_layer == "conv5_block3_out"
    assert {"conv5_block3_out", "conv4_block3_out", "conv3_block3_out"} <= set(bundle.suggested_layers)


def test_user_keras_file_loads_with_its_metadata(tmp_path):
    path = tmp_path / "cars.keras"
    tiny_cam_model().save(path)
    (tmp_path / "cars.meta.json").write_text(json.dumps(
        {"name": "Tiny cars", "class_names": ["a", "b", "c"], "preprocessing": "tf", "threshold": 0.4}))
    bundle = model_sources.load_keras_file(path)
    assert bundle.name == "Tiny cars" and bundle.class_names == ("a", "b", "c")
    assert bundle.preprocessing == "tf" and bundle.metadata["threshold"] == 0.4
    assert bundle.cam_head.feature_layer == "features"


def test_keras_file_with_lambda_layer_is_refused_by_safe_mode(tmp_path):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.Conv2D(2, 3, name="conv")(x)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ModelStructureError, match="could not be loaded"):
        model_sources.load_keras_file(path)


@pytest.mark.parametrize("name, content", [("junk.keras", b"not a zip at all"), ("model.h5", b"\x89HDF")])
def test_files_that_are_not_keras_models_give_clear_errors(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ModelStructureError):
        model_sources.load_keras_file(path)


def test_missing_model_file_and_unknown_key():
    with pytest.raises(FileNotFoundError):
        model_sources.load_keras_file("/nonexistent/model.keras")
    with pytest.raises(ValueError, match="unknown model"):
        model_sources.load_model("vgg99")


def test_trained_model_in_models_folder_becomes_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("CAM_EXPLORER_MODELS", str(tmp_path))
    (tmp_path / "run1").mkdir()
    tiny_cam_model().save(tmp_path / "run1" / "model.keras")
    choice = model_sources.load_default_model()
    assert choice.bundle.cam_head.feature_layer == "features"
    assert "fine-tuned" in choice.reason


def test_keras_imagenet_resnet50_wiring_without_the_download(monkeypatch):
    """Online, Keras downloads the weights; here the same code path runs with random weights."""
    monkeypatch.setattr(model_sources, "_require_keras_weights", lambda arch: None)
    monkeypatch.setitem(model_sources._KERAS_IMAGENET, "resnet50",
                        (lambda weights: keras.applications.ResNet50(weights=None), "caffe"))
    bundle = model_sources.resnet50_imagenet()
    assert bundle.name == "ResNet50 (ImageNet)" and bundle.preprocessing == "caffe"
    assert bundle.cam_head.feature_layer == "conv5_block3_out" and bundle.cam_head.classifier_layer == "predictions"
    assert bundle.num_classes == 1000 and bundle.class_names[511] == "convertible"
    assert "conv4_block6_out" in bundle.suggested_layers and "conv4_block3_out" in bundle.suggested_layers
