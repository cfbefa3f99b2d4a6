"""``python -m core.evaluate`` end to end: tfds mock data with a tiny model, calibration stored and reused,
refusals, and a few real shared photos with the offline MobileNetV2."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from core.boxes import iou
from core.evaluate.__main__ import main
from tests.conftest import SHARED_CARS, require_shared, tiny_cam_model

SUMMARY_KEYS = {"n", "photos_per_second", "cam", "gradcam", "baselines"}
METHOD_KEYS = {"tau", "mean_iou", "median_iou", "boxacc", "maxboxacc", "maxboxaccv2", "top1_loc",
               "gt_known_loc"}


@pytest.fixture
def tiny_keras(tmp_path):
    path = tmp_path / "tiny.keras"
    tiny_cam_model().save(path)
    return path


def _rows(folder):
    with open(folder / "per_photo.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_calibrate_on_one_split_report_another_then_reuse_the_stored_threshold(tmp_path, tiny_keras, capsys):
    out, again = tmp_path / "out", tmp_path / "again"
    with tfds.testing.mock_data(num_examples=12):
        assert main(["--data", "tfds:cars196", "--split", "test", "--out", str(out),
                     "--model", str(tiny_keras), "--calibrate-on", "tfds:cars196:train",
                     "--batch-size", "4"]) == 0
        sidecar = json.loads((tmp_path / "tiny.meta.json").read_text())
        assert main(["--data", "tfds:cars196", "--split", "test", "--out", str(again),
                     "--model", str(tiny_keras)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary) and METHOD_KEYS <= set(summary["cam"])
    assert set(summary["cam"]["boxacc"]) == {"0.3", "0.5", "0.7"}
    assert set(summary["baselines"]) == {"full_image", "center_box"}
    assert summary["cam"]["top1_loc"] is None  # 3 model classes, 196 dataset classes: "right" is undefined
    assert sidecar["thresholds"]["cam"] == summary["cam"]["tau"]
    assert sidecar["threshold_source"].startswith("tfds:cars196 [train]")
    assert sidecar["calibration"]["pipeline"]["methods"] == ["cam", "gradcam"]
    rows = _rows(out)
    assert len(rows) == summary["n_photos"] == 12
    scored = [float(r["cam_iou"]) for r in rows if r["cam_iou"]]
    assert len(scored) == summary["n"]
    assert np.mean(scored) == pytest.approx(summary["cam"]["mean_iou"], abs=1e-4)
    reused = json.loads((again / "summary.json").read_text())
    assert reused["cam"]["tau"] == summary["cam"]["tau"]
    assert reused["cam"]["tau_source"].startswith("model metadata: tfds:cars196 [train]")
    assert reused["cam"]["mean_iou"] == pytest.approx(summary["cam"]["mean_iou"])
    printed = capsys.readouterr().out
    assert "Grad-CAM" in printed and "center box" in printed and "speed: " in printed


def test_calibrating_on_the_reported_photos_is_refused(tmp_path, tiny_keras, capsys):
    with tfds.testing.mock_data(num_examples=4):
        code = main(["--data", "tfds:cars196", "--split", "test", "--out", str(tmp_path / "o"),
                     "--model", str(tiny_keras), "--calibrate-on", "TFDS:cars196:test"])
    assert code == 2 and "refusing to calibrate on the photos being reported" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "message"), [
    (["--save-calibration"], "--save-calibration needs --folds"),
    (["--folds", "3", "--calibrate-on", "x:train"], "either --calibrate-on"),
    (["--calibrate-on", "nosplit"], "PATH:SPLIT"),
    (["--target", "car"], "no car class group"),
])
def test_bad_requests_exit_2_with_what_to_do(tmp_path, tiny_keras, capsys, extra, message):
    with tfds.testing.mock_data(num_examples=4):
        code = main(["--data", "tfds:cars196", "--out", str(tmp_path / "o"), "--model", str(tiny_keras),
                     *extra])
    assert code == 2 and message in capsys.readouterr().err


def test_shared_photos_with_folds_boxes_match_their_iou(tmp_path):
    require_shared()
    out = tmp_path / "shared"
    assert main(["--data", str(SHARED_CARS), "--split", "train", "--out", str(out),
                 "--model", "mobilenetv2-offline", "--sizes", "224", "--no-flip", "--target", "predicted",
                 "--limit", "6", "--folds", "3", "--batch-size", "3"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 6 and summary["folds"] == 3 and summary["photos_per_second"] > 0
    assert summary["cam"]["tau_source"].startswith("3-fold")
    assert summary["correct_rule"] == "predicted ImageNet class is one of the car classes"
    for row in _rows(out):
        box = [float(row[f"cam_{s}"]) for s in ("x1", "y1", "x2", "y2")]
        truth = [float(row[f"truth_{s}"]) for s in ("x1", "y1", "x2", "y2")]
        # the IoU was measured on the 224×224 grid; in photo pixels it differs only by rounding
        assert iou(box, truth) == pytest.approx(float(row["cam_iou"]), abs=0.005)
    assert (out / "plots" / "cam_vs_gradcam.json").is_file()
    # a shorter run over the same folder reuses the stored photos and reports only its own
    assert main(["--data", str(SHARED_CARS), "--split", "train", "--out", str(out),
                 "--model", "mobilenetv2-offline", "--sizes", "224", "--no-flip", "--target", "predicted",
                 "--limit", "3", "--folds", "3"]) == 0
    assert json.loads((out / "summary.json").read_text())["n"] == 3 and len(_rows(out)) == 3


def test_faithfulness_metrics_fill_the_leaderboard_and_the_tables(tmp_path, tiny_keras, capsys):
    out = tmp_path / "board"
    with tfds.testing.mock_data(num_examples=12):
        assert main(["--data", "tfds:cars196", "--split", "test", "--out", str(out), "--model", str(tiny_keras),
                     "--metrics", "deletion,insertion,avg_drop,pointing_game,energy_pointing_game",
                     "--batch-size", "4"]) == 0
    printed = capsys.readouterr()
    assert "forward passes" in printed.err and "leaderboard" in printed.out
    summary = json.loads((out / "summary.json").read_text())
    board = summary["leaderboard"]
    assert [r["method"] for r in board["rows"]] == ["cam", "gradcam"]
    keys = [c["key"] for c in board["metrics"]]
    assert keys[:3] == ["mean_iou", "boxacc@0.5", "boxacc@0.7"] and "deletion" in keys and "pointing_game" in keys
    rows = _rows(out)
    for method in ("cam", "gradcam"):
        cells = next(r for r in board["rows"] if r["method"] == method)
        for key in ("deletion", "insertion", "avg_drop"):
            per_photo = [float(r[f"{method}_{key}"]) for r in rows]
            assert cells[key]["n"] == len(per_photo) == 12
            assert cells[key]["mean"] == pytest.approx(np.mean(per_photo), abs=1e-4)
            assert cells[key]["low"] <= cells[key]["mean"] <= cells[key]["high"]
        assert cells["mean_iou"]["mean"] == pytest.approx(summary[method]["mean_iou"])
        assert len(board["curves"]["deletion"][method]) == len(board["curve_fractions"])
    assert board["cost"]["photos_timed"] == 12 and board["cost"]["ms_per_photo_per_method"]["curve"] > 0
    with open(out / "leaderboard.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 2 * len(keys)


def test_fullgrads_input_resolution_maps_evaluate_beside_layer_maps_unchanged(tmp_path, tiny_keras):
    """FullGrad's 16×16 maps next to the 8×8 ones: every column as when FullGrad is evaluated alone."""
    metrics = "deletion,insertion,avg_drop,pointing_game"
    runs = {}
    for name, methods in (("together", "cam,gradcam,fullgrad"), ("alone", "fullgrad")):
        out = tmp_path / name
        with tfds.testing.mock_data(num_examples=12):
            assert main(["--data", "tfds:cars196", "--split", "test", "--out", str(out), "--model",
                         str(tiny_keras), "--methods", methods, "--metrics", metrics, "--batch-size", "4"]) == 0
        runs[name] = _rows(out)
    together, alone = runs["together"], runs["alone"]
    columns = [c for c in alone[0] if c.startswith("fullgrad_")]
    assert {f"fullgrad_{m}" for m in metrics.split(",")} <= set(columns)
    assert any(a[c] for a in alone for c in columns)
    for a, b in zip(together, alone):
        for column in columns:  # empty where a photo has no box (pointing games)
            assert (a[column] == b[column] == "") or float(a[column]) == pytest.approx(float(b[column]), abs=1e-5)


def test_speed_reads_as_seconds_a_photo_for_slow_methods():
    from core.evaluate.cli_format import speed_text

    assert speed_text(12.345) == "12.3 photos/s"
    assert speed_text(1 / 42) == "42.0 s a photo"  # IS-CAM's 0.024 photos/s, once printed as "0.0"
    assert speed_text(None) == "not measured (resumed run)"
