"""python -m core.explain: overlays and results.json, bad photos skipped by name, IoU with --data."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from core.boxes import iou
from core.explain import main
from core.paths import ASSETS_DIR
from tests.conftest import SHARED_CARS, require_shared

SAMPLE = ASSETS_DIR / "sample_car.jpg"
SAMPLE_CAR_BOX = (117, 183, 723, 406)  # assets/draw_sample_car.py CAR_BOX


@pytest.fixture(autouse=True)
def _offline_weights(offline_bundle):
    """Every run here uses the real offline MobileNetV2 (skips if its package is missing)."""


def test_explains_the_sample_and_skips_a_corrupt_photo(tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"%PDF-1.4 not a photo")
    out = tmp_path / "out"
    code = main([str(SAMPLE), str(broken), "--out", str(out), "--model", "mobilenetv2-offline",
                 "--target", "car", "--threshold", "0.5"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert [p["photo"] for p in results["photos"]] == [str(SAMPLE)]
    assert results["skipped"][0]["photo"] == str(broken) and "PDF" in results["skipped"][0]["error"]
    assert "broken.jpg" in capsys.readouterr().err
    photo = results["photos"][0]
    assert set(photo["methods"]) == {"cam", "gradcam"}
    for method, entry in photo["methods"].items():
        overlay = cv2.imread(str(out / entry["overlay"]))
        assert overlay.shape == (520, 800, 3)
        # the drawn car spans (117, 183, 723, 406): the car-group box must sit on it
        assert iou(entry["box"], SAMPLE_CAR_BOX) > 0.6, (method, entry)
        assert entry["iou"] is None


def test_only_unreadable_photos_is_an_error_exit(tmp_path):
    bad = tmp_path / "empty.jpg"
    bad.write_bytes(b"")
    assert main([str(bad), "--out", str(tmp_path / "out"), "--model", "mobilenetv2-offline"]) == 1


def test_unknown_model_is_a_clear_error(tmp_path, capsys):
    assert main([str(SAMPLE), "--out", str(tmp_path), "--model", "vgg99"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_ground_truth_from_dataset_gives_iou(tmp_path):
    cars = require_shared(SHARED_CARS)
    photos = sorted((cars / "cars_train").glob("*.jpg"))[:3]
    out = tmp_path / "out"
    assert main([*map(str, photos), "--out", str(out), "--model", "mobilenetv2-offline", "--method", "cam",
                 "--data", str(cars), "--threshold", "0.4"]) == 0
    results = json.loads((out / "results.json").read_text())["photos"]
    assert len(results) == 3
    for entry in results:
        assert entry["ground_truth_box"] is not None
        assert 0.0 <= entry["methods"]["cam"]["iou"] <= 1.0
    assert np.mean([e["methods"]["cam"]["iou"] for e in results]) > 0.4


def test_fullgrad_saves_its_input_resolution_map_whatever_the_layer(tmp_path):
    out = tmp_path / "out"
    code = main([str(SAMPLE), "--out", str(out), "--model", "mobilenetv2-offline", "--method", "fullgrad,gradcam",
                 "--layer", "block_12_add", "--plain", "--save-maps"])
    assert code == 0
    entries = json.loads((out / "results.json").read_text())["photos"][0]["methods"]
    assert entries["fullgrad"]["layer"] == "input" and entries["gradcam"]["layer"] == "block_12_add"
    raw_name, shown_name = entries["fullgrad"]["maps"]
    assert np.load(out / raw_name).shape == (224, 224)  # the network's input, not the layer's 14×14
    assert np.load(out / shown_name).shape == (520, 800)
    assert entries["fullgrad"]["box"] is not None
