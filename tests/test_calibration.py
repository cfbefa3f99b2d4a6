"""Choosing τ (k-fold, by hand) and storing it with a model: sidecar, machine file, shipped fallback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core import calibration
from core.calibration import (
    calibration_entry, calibration_for, choose_thresholds, cross_validate, fold_indices, save_calibration,
    with_calibration,
)
from core.model_spec import inspect_model
from tests.conftest import tiny_cam_model


def test_folds_are_disjoint_cover_everything_and_differ_by_at_most_one():
    folds = fold_indices(10, 3, seed=1)
    assert sorted(len(f) for f in folds) == [3, 3, 4]
    assert sorted(np.concatenate(folds).tolist()) == list(range(10))
    assert [f.tolist() for f in folds] == [f.tolist() for f in fold_indices(10, 3, seed=1)]  # seeded


@pytest.mark.parametrize(("n", "k", "message"), [(5, 1, "at least 2"), (3, 4, "cannot split 3 photos")])
def test_bad_fold_counts_are_refused(n, k, message):
    with pytest.raises(ValueError, match=message):
        fold_indices(n, k)


def test_leave_one_out_shows_what_in_sample_tau_hides():
    # 3 photos × 2 thresholds. In-sample, τ index 1 wins (mean 0.533). Held out, each photo is scored with
    # the τ its two companions prefer: photo 0 gets τ1 (IoU 0), photos 1 and 2 get τ0 (0.45 > 0.4) → 0.
    curves = np.array([[0.9, 0.0], [0.0, 0.8], [0.0, 0.8]])
    ious, chosen = cross_validate(curves, k=3)
    assert chosen.tolist() == [1, 0, 0]
    assert ious.tolist() == [0.0, 0.0, 0.0]
    assert choose_thresholds(curves, thresholds=np.array([0.3, 0.6])) == {"mean_iou": 0.6, "boxacc@0.5": 0.6}


def test_entry_carries_per_method_thresholds_and_source():
    entry = calibration_entry({"gradcam": 0.5, "cam": 0.45}, "164 train photos", center_fraction=0.82)
    assert entry["threshold"] == 0.45  # CAM's when present
    assert entry["thresholds"] == {"gradcam": 0.5, "cam": 0.45}
    assert entry["threshold_source"] == "164 train photos"
    assert entry["calibration"] == {"center_fraction": 0.82}
    with pytest.raises(ValueError, match="within \\[0, 1\\]"):
        calibration_entry({"cam": 1.5}, "x")
    with pytest.raises(ValueError, match="no thresholds"):
        calibration_entry({}, "x")


def test_builtin_model_calibration_goes_to_the_models_folder_and_back(tmp_path, monkeypatch):
    monkeypatch.setattr(calibration, "SHIPPED_CALIBRATION", tmp_path / "absent.json")
    path = save_calibration("Tiny", calibration_entry({"cam": 0.4}, "fold A"), folder=tmp_path)
    save_calibration("Other", calibration_entry({"cam": 0.7}, "fold B"), folder=tmp_path)
    assert path == tmp_path / "calibration.json"
    assert sorted(json.loads(path.read_text())) == ["Other", "Tiny"]
    assert calibration_for("Tiny", tmp_path)["threshold"] == 0.4
    assert calibration_for("Unknown", tmp_path) == {}


def test_shipped_calibration_is_the_fallback(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped.json"
    shipped.write_text(json.dumps({"Tiny": calibration_entry({"cam": 0.55}, "shared photos")}))
    monkeypatch.setattr(calibration, "SHIPPED_CALIBRATION", shipped)
    assert calibration_for("Tiny", tmp_path / "empty")["threshold"] == 0.55
    save_calibration("Tiny", calibration_entry({"cam": 0.3}, "mine"), folder=tmp_path / "empty")
    assert calibration_for("Tiny", tmp_path / "empty")["threshold"] == 0.3  # this machine's wins


def test_keras_sidecar_keeps_its_other_keys(tmp_path):
    model_path = tmp_path / "cars.keras"
    (tmp_path / "cars.meta.json").write_text(json.dumps({"class_names": ["a", "b", "c"]}))
    written = save_calibration("cars", calibration_entry({"cam": 0.35, "gradcam": 0.4}, "val"), model_path)
    data = json.loads(written.read_text())
    assert written.name == "cars.meta.json"
    assert data["class_names"] == ["a", "b", "c"] and data["thresholds"] == {"cam": 0.35, "gradcam": 0.4}


def test_bundle_gets_its_calibration_in_metadata_and_a_sidecar_wins(tmp_path, monkeypatch):
    monkeypatch.setattr(calibration, "SHIPPED_CALIBRATION", tmp_path / "absent.json")
    bundle = inspect_model(tiny_cam_model(), name="Tiny", source="test", preprocessing="unit")
    save_calibration("Tiny", calibration_entry({"cam": 0.4}, "fold A", center_fraction=0.8), folder=tmp_path)
    calibrated = with_calibration(bundle, tmp_path)
    assert calibrated.metadata["threshold"] == 0.4 and calibrated.metadata["threshold_source"] == "fold A"
    assert calibrated.metadata["calibration"] == {"center_fraction": 0.8}
    assert bundle.metadata == {}  # the original is untouched
    own = bundle.replace(metadata={"threshold": 0.25})
    assert with_calibration(own, tmp_path).metadata == {"threshold": 0.25}


def test_corrupt_calibration_file_names_itself(tmp_path):
    (tmp_path / "calibration.json").write_text("{not json")
    with pytest.raises(ValueError, match="calibration.json is not valid JSON"):
        calibration_for("Tiny", tmp_path)


def test_calibration_rows_list_each_pipelines_tau_and_heldout_scores():
    from core.calibration import calibration_rows

    entry = {
        "thresholds": {"gradcam": 0.4, "cam": 0.5},
        "calibration": {
            "pipeline": {"methods": ["cam", "gradcam"], "target": "car", "recipe": {"sizes": [224, 704],
                                                                                    "flip": True}},
            "kfold_heldout": {"cam": {"mean_iou": 0.8, "boxacc_0.5": 0.9, "folds": 5}},
            "tau_boxacc_0_5": {"cam": 0.45},
            "other_pipelines": [{"pipeline": {"methods": ["cam"]}, "thresholds": {"cam": 0.3},
                                 "kfold_heldout_mean_iou": {"cam": 0.7}}],
        },
    }
    rows = calibration_rows(entry)
    assert [(r["method"], r["tau"], r["heldout_mean_iou"], r["heldout_boxacc_0.5"], r["tau_boxacc_0.5"])
            for r in rows] == [("cam", 0.5, 0.8, 0.9, 0.45), ("gradcam", 0.4, None, None, None),
                               ("cam", 0.3, 0.7, None, None)]  # registry order; BoxAcc only for the main one
    assert rows[0]["pipeline"].startswith("224px+704px + flip, target car")
    assert rows[2]["pipeline"].startswith("model's input size, target predicted")
    assert calibration_rows({}) == []  # no calibration: nothing to show (the fallback pipeline has no τ)
